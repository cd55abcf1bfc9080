package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sendguard/sendguard/pkg/kafka"
)

// TestProducerStaysUnderTheBrokersMessageLimit: a broker with Kafka's
// default message.max.bytes (about 1 MB) must accept a burst of records
// whose sum is far larger — the producer's batches stay under the limit.
func TestProducerStaysUnderTheBrokersMessageLimit(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, brokers, 1, kafka.TopicSpec{Name: "snapshots", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	value := bytes.Repeat([]byte("x"), 15<<10) // a window snapshot's size
	var recs []kafka.Record
	for i := range 200 { // 3 MB in one call, one partition
		recs = append(recs, kafka.Record{Topic: "snapshots", Key: fmt.Appendf(nil, "k%d", i), Value: value})
	}
	if err := p.Produce(ctx, recs...); err != nil {
		t.Fatalf("produce 3 MB of 15 KB records: %v", err)
	}
}
