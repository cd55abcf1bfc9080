package kafka

import (
	"fmt"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
)

// TestPartitionOfAgreesWithTheProducer: the producer's balancer sends a key
// where PartitionOf says, for every partition count.
func TestPartitionOfAgreesWithTheProducer(t *testing.T) {
	for n := 1; n <= 64; n++ {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for i := range 500 {
			key := []byte(fmt.Sprintf("tenant-%d|domain|ex%d.com", i%7, i))
			if want, got := (&kafkago.Hash{}).Balance(kafkago.Message{Key: key}, parts...), PartitionOf(key, n); got != want {
				t.Fatalf("key %q of %d partitions: %d, producer %d", key, n, got, want)
			}
		}
	}
}
