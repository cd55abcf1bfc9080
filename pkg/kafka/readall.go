package kafka

import (
	"context"
	"fmt"

	kafkago "github.com/segmentio/kafka-go"
)

// ReadAll reads every partition of topic from its first offset up to the
// end it had when ReadAll started, calling fn for each record in partition
// order. It is how a service rebuilds state from a compacted state topic
// before it starts consuming.
func ReadAll(ctx context.Context, brokers []string, topic string, fn func(Message) error) error {
	client, closeClient := newClient(brokers)
	defer closeClient()
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("read %s: metadata: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return fmt.Errorf("read %s: topic not found", topic)
	}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, p := range meta.Topics[0].Partitions {
		req.Topics[topic] = append(req.Topics[topic], kafkago.FirstOffsetOf(p.ID), kafkago.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return fmt.Errorf("read %s: list offsets: %w", topic, err)
	}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return fmt.Errorf("read %s/%d: %w", topic, po.Partition, po.Error)
		}
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		if err := readPartition(ctx, brokers, topic, po.Partition, po.FirstOffset, po.LastOffset, fn); err != nil {
			return err
		}
	}
	return nil
}

func readPartition(ctx context.Context, brokers []string, topic string, partition int, first, end int64, fn func(Message) error) error {
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 16 << 20})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return fmt.Errorf("read %s/%d: %w", topic, partition, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		if err := fn(message{m}); err != nil {
			return err
		}
		if m.Offset >= end-1 {
			return nil
		}
	}
}
