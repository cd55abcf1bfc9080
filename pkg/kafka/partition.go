package kafka

import (
	"context"
	"fmt"

	kafkago "github.com/segmentio/kafka-go"
)

// PartitionOf returns the partition, of n, that the producer's balancer
// sends a record keyed key to (kafka-go's Hash: FNV-1a, Sarama-compatible).
// A stage that groups records by destination partition itself uses it so
// its grouping and the producer agree.
func PartitionOf(key []byte, n int) int {
	if n <= 1 {
		return 0
	}
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for _, c := range key {
		h ^= uint32(c)
		h *= prime32
	}
	p := int32(h) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// Partitions returns the number of partitions of topic.
func Partitions(ctx context.Context, brokers []string, topic string) (int, error) {
	client, closeConns := newClient(brokers)
	defer closeConns()
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, fmt.Errorf("partitions of %s: %w", topic, t.Error)
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("partitions of %s: no such topic", topic)
}
