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
	brokers, ctx := kfakeBroker(t)
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

// TestProducerKeepsOrderAcrossCallSizes: small calls and large ones go to
// different writers; calls made one after another still land in order, and
// each call's records in the order given.
func TestProducerKeepsOrderAcrossCallSizes(t *testing.T) {
	brokers, ctx := kfakeBroker(t)
	if err := kafka.EnsureTopics(ctx, brokers, 1, kafka.TopicSpec{Name: "ordered", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want []string
	n := 0
	for _, size := range []int{1, kafka.SmallCallRecords + 1, 3, kafka.SmallCallRecords, 500, 1, kafka.SmallCallRecords + 7} {
		recs := make([]kafka.Record, size)
		for i := range recs {
			v := fmt.Sprintf("r%04d", n)
			n++
			recs[i] = kafka.Record{Topic: "ordered", Key: []byte("same-key"), Value: []byte(v)}
			want = append(want, v)
		}
		if err := p.Produce(ctx, recs...); err != nil {
			t.Fatalf("produce %d records: %v", size, err)
		}
	}
	var got []string
	if err := kafka.ReadAll(ctx, brokers, "ordered", func(m kafka.Message) error {
		got = append(got, string(m.Value()))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %d records out of order or missing:\n got %v\nwant %v", len(got), got, want)
	}
}

// TestProducerCompressionCodecs: records written with every codec read back
// the same; an unknown codec is refused.
func TestProducerCompressionCodecs(t *testing.T) {
	brokers, ctx := kfakeBroker(t)
	if _, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, Compression: "brotli"}, nil); err == nil {
		t.Fatal("unknown codec accepted")
	}
	for _, codec := range []string{"", "snappy", "lz4", "zstd", "gzip", "none"} {
		topic := "codec-" + codec
		if err := kafka.EnsureTopics(ctx, brokers, 1, kafka.TopicSpec{Name: topic, Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, Compression: codec}, nil)
		if err != nil {
			t.Fatalf("%q: %v", codec, err)
		}
		value := bytes.Repeat([]byte("complained|gmail.com|acme.io|"), 40)
		var recs []kafka.Record
		for i := range 100 {
			recs = append(recs, kafka.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: value,
				Headers: map[string][]byte{"sg-tenant": []byte("acme")}})
		}
		if err := p.Produce(ctx, recs...); err != nil {
			t.Fatalf("%q: %v", codec, err)
		}
		p.Close()
		n := 0
		if err := kafka.ReadAll(ctx, brokers, topic, func(m kafka.Message) error {
			if !bytes.Equal(m.Value(), value) || string(m.Key()) != fmt.Sprintf("k%d", n) || string(m.Header("sg-tenant")) != "acme" {
				return fmt.Errorf("record %d: key %q, %d value bytes", n, m.Key(), len(m.Value()))
			}
			n++
			return nil
		}); err != nil || n != len(recs) {
			t.Fatalf("%q: read %d of %d: %v", codec, n, len(recs), err)
		}
	}
}

// kfakeBroker starts a one-broker kfake cluster with Kafka's default
// message.max.bytes, closed with the test, and a context for the test.
func kfakeBroker(t *testing.T) ([]string, context.Context) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c.ListenAddrs(), ctx
}
