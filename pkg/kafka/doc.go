// Package kafka is Sendguard's Kafka layer over github.com/segmentio/kafka-go.
//
// It keeps kafka-go types out of service code: handlers see the Message
// interface, producers take Record values. The contracts:
//
//   - Producer writes with acks=all and returns only after every record of a
//     call is acknowledged by the broker (or with an error naming how many
//     were not). Records of concurrent calls are batched together.
//   - Runner consumes a topic in a consumer group and commits an offset only
//     after the handler succeeded for every message up to it, and, when the
//     handler implements Flusher, after Flush succeeded. A handler error
//     wrapped with Permanent sends the message to the dead-letter topic with
//     the reason and moves on; any other error is transient: the message is
//     retried with backoff and nothing past it is committed. Delivery is
//     therefore at least once; stages deduplicate by event id.
//   - EnsureTopics creates missing topics at start (idempotent).
package kafka
