package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
)

func TestReadAllReadsEveryPartitionToItsEnd(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, brokers, 1, kafka.TopicSpec{Name: "state", Partitions: 4, Compacted: true}, kafka.TopicSpec{Name: "empty", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := map[string]bool{}
	for i := range 50 {
		k := fmt.Sprintf("k%d", i)
		want[k] = true
		if err := prod.Produce(ctx, kafka.Record{Topic: "state", Key: []byte(k), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	if err := kafka.ReadAll(ctx, brokers, "state", func(m kafka.Message) error {
		got[string(m.Key())] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d keys, want %d", len(got), len(want))
	}
	if err := kafka.ReadAll(ctx, brokers, "empty", func(kafka.Message) error { t.Fatal("record in empty topic"); return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestTailFollowsUntilCancelled(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, brokers, 1, kafka.TopicSpec{Name: "control", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.Produce(ctx, kafka.Record{Topic: "control", Key: []byte("before"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	tctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- kafka.Tail(tctx, brokers, "control", 0, 0, -1, 20*time.Millisecond, func(m kafka.Message) error {
			got <- string(m.Key())
			return nil
		})
	}()
	if k := <-got; k != "before" {
		t.Fatalf("first record %q", k)
	}
	if err := prod.Produce(ctx, kafka.Record{Topic: "control", Key: []byte("after"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-got:
		if k != "after" {
			t.Fatalf("second record %q", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Tail did not deliver a record produced while following")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Tail after cancel = %v, want nil", err)
	}
}
