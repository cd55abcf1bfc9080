package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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
		if err := readPartition(ctx, client, topic, po.Partition, po.FirstOffset, po.LastOffset, 0, fn); err != nil {
			return err
		}
	}
	return nil
}

// Tail reads one partition from offset, calling fn for each record in
// order: up to end (exclusive) when end >= 0, or, when end < 0, until ctx
// ends (then it returns nil). maxWait bounds how long one fetch waits for
// new records (default 100ms). Offsets missing from a compacted topic are
// skipped.
func Tail(ctx context.Context, brokers []string, topic string, partition int, offset, end int64, maxWait time.Duration, fn func(Message) error) error {
	client, closeClient := newClient(brokers)
	defer closeClient()
	err := readPartition(ctx, client, topic, partition, offset, end, maxWait, fn)
	if end < 0 && ctx.Err() != nil {
		return nil
	}
	return err
}

func readPartition(ctx context.Context, client *kafkago.Client, topic string, partition int, offset, end int64, maxWait time.Duration, fn func(Message) error) error {
	if maxWait <= 0 {
		maxWait = 100 * time.Millisecond
	}
	for end < 0 || offset < end {
		res, err := client.Fetch(ctx, &kafkago.FetchRequest{
			Topic: topic, Partition: partition, Offset: offset,
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: maxWait,
		})
		if err != nil {
			return fmt.Errorf("read %s/%d@%d: %w", topic, partition, offset, err)
		}
		if res.Error != nil {
			return fmt.Errorf("read %s/%d@%d: %w", topic, partition, offset, res.Error)
		}
		next := offset
		for {
			rec, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s/%d@%d: %w", topic, partition, next, err)
			}
			if rec.Offset < offset {
				continue // a batch may start before the requested offset
			}
			m := kafkago.Message{Topic: topic, Partition: partition, Offset: rec.Offset, Time: rec.Time}
			if m.Key, err = readBytes(rec.Key); err == nil {
				m.Value, err = readBytes(rec.Value)
			}
			if err != nil {
				return fmt.Errorf("read %s/%d@%d: %w", topic, partition, rec.Offset, err)
			}
			for _, h := range rec.Headers {
				m.Headers = append(m.Headers, kafkago.Header{Key: h.Key, Value: h.Value})
			}
			if err := fn(message{m}); err != nil {
				return err
			}
			next = rec.Offset + 1
			if end >= 0 && next >= end {
				return nil
			}
		}
		if next == offset && end >= 0 {
			if ctx.Err() != nil {
				return fmt.Errorf("read %s/%d@%d: %w", topic, partition, offset, ctx.Err())
			}
			if res.HighWatermark <= offset {
				return nil // compaction or truncation removed the tail
			}
			// Compaction may leave gaps: nothing at offset; ask again from
			// the next offset the broker has.
			offset++
			continue
		}
		offset = next
	}
	return nil
}

// readBytes reads a record's key or value into a slice of its length
// (io.ReadAll would start every one, however short, at 512 bytes); nil
// stays nil (tombstone).
func readBytes(b kafkago.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	out := make([]byte, b.Len())
	if _, err := io.ReadFull(b, out); err != nil {
		return nil, err
	}
	return out, nil
}
