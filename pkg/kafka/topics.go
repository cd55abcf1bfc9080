package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// TopicSpec describes a topic the services need.
type TopicSpec struct {
	Name       string
	Partitions int
	// Compacted topics keep the latest record per key (state topics).
	Compacted bool
	// Retention of a non-compacted topic; 0 means the broker's default.
	Retention time.Duration
}

// EnsureTopics creates the topics that do not exist yet. Existing topics are
// left as they are (partition counts are never changed implicitly).
func EnsureTopics(ctx context.Context, brokers []string, replication int, specs ...TopicSpec) error {
	if len(brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	if replication <= 0 {
		replication = 1
	}
	client, closeClient := newClient(brokers)
	defer closeClient()
	req := &kafkago.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafkago.TopicConfig{Topic: s.Name, NumPartitions: max(s.Partitions, 1), ReplicationFactor: replication}
		if s.Compacted {
			tc.ConfigEntries = append(tc.ConfigEntries, kafkago.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
		}
		if s.Retention > 0 {
			tc.ConfigEntries = append(tc.ConfigEntries, kafkago.ConfigEntry{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(s.Retention.Milliseconds(), 10)})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafkago.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, terr)
		}
	}
	return nil
}

// Ping reports whether the cluster answers a metadata request.
func Ping(ctx context.Context, brokers []string) error {
	if len(brokers) == 0 {
		return errors.New("ping kafka: no brokers")
	}
	client, closeClient := newClient(brokers)
	defer closeClient()
	if _, err := client.Metadata(ctx, &kafkago.MetadataRequest{}); err != nil {
		return fmt.Errorf("ping kafka: %w", err)
	}
	return nil
}

// WaitReady pings until the cluster answers or ctx ends.
func WaitReady(ctx context.Context, brokers []string) error {
	var err error
	for {
		if err = Ping(ctx, brokers); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for kafka: %w (last: %w)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newClient returns an admin client with its own transport, and a func that
// closes the transport's connections (the default transport is shared and
// keeps them open for the life of the process).
func newClient(brokers []string) (*kafkago.Client, func()) {
	tr := &kafkago.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
	return &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}, tr.CloseIdleConnections
}
