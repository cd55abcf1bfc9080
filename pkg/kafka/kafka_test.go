package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*reader).run"))
}

// recorder handles messages, failing transiently on the first attempt for
// keys in flaky and permanently for keys in poison, and buffering handled
// values until Flush, like a stage that produces downstream.
type recorder struct {
	mu       sync.Mutex
	flaky    map[string]bool
	poison   map[string]bool
	buffered []string
	flushed  []string
	failNext int // flushes to fail before succeeding
}

func (r *recorder) Handle(_ context.Context, m kafka.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := string(m.Key())
	if r.poison[k] {
		return kafka.Permanent("test", fmt.Errorf("poison %s", k))
	}
	if r.flaky[k] {
		delete(r.flaky, k)
		return errors.New("transient")
	}
	r.buffered = append(r.buffered, k)
	return nil
}

func (r *recorder) Flush(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext > 0 {
		r.failNext--
		return errors.New("downstream unavailable")
	}
	r.flushed = append(r.flushed, r.buffered...)
	r.buffered = r.buffered[:0]
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buffered) + len(r.flushed)
}

func (r *recorder) flushedKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.flushed...)
}

func TestRunnerCommitsAfterFlushRetriesAndDeadLetters(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, brokers, 1,
		kafka.TopicSpec{Name: "in", Partitions: 3},
		kafka.TopicSpec{Name: "dlq", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// Second call is a no-op.
	if err := kafka.EnsureTopics(ctx, brokers, 1, kafka.TopicSpec{Name: "in", Partitions: 3}); err != nil {
		t.Fatalf("ensure again: %v", err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 200
	var recs []kafka.Record
	for i := range n {
		recs = append(recs, kafka.Record{Topic: "in", Key: fmt.Appendf(nil, "k%03d", i), Value: []byte("v"),
			Headers: map[string][]byte{kafka.HeaderTenant: []byte("acme")}})
	}
	if err := prod.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{flaky: map[string]bool{"k007": true, "k100": true}, poison: map[string]bool{"k042": true}, failNext: 2}
	runOnce := func(h kafka.Handler, want int, got func() int) {
		t.Helper()
		r, err := kafka.NewRunner(kafka.RunnerConfig{
			Brokers: brokers, GroupID: "g", Topic: "in", Stage: "test", DLQTopic: "dlq",
			RetryBackoff: 10 * time.Millisecond, CommitInterval: 20 * time.Millisecond,
		}, h, prod, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		deadline := time.Now().Add(20 * time.Second)
		for got() < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
	}
	runOnce(rec, n-1, func() int { return len(rec.flushedKeys()) })
	keys := rec.flushedKeys()
	seen := map[string]int{}
	for _, k := range keys {
		seen[k]++
	}
	if len(seen) != n-1 || seen["k042"] != 0 || seen["k007"] != 1 || seen["k100"] != 1 {
		t.Fatalf("handled %d distinct keys (want %d), k042=%d k007=%d k100=%d", len(seen), n-1, seen["k042"], seen["k007"], seen["k100"])
	}

	// The poison message is in the DLQ with its reason and raw bytes.
	var dl sgv1.DeadLetter
	dlqRec := &recorder{}
	dlqRunner := kafka.HandlerFunc(func(ctx context.Context, m kafka.Message) error {
		if err := proto.Unmarshal(m.Value(), &dl); err != nil {
			return err
		}
		return dlqRec.Handle(ctx, m)
	})
	rr, err := kafka.NewRunner(kafka.RunnerConfig{Brokers: brokers, GroupID: "dlq-reader", Topic: "dlq", Stage: "test"}, dlqRunner, nil, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	go func() {
		for dlqRec.count() == 0 && dctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	if err := rr.Run(dctx); err != nil {
		t.Fatal(err)
	}
	if string(dl.GetKey()) != "k042" || dl.GetStage() != "test" || dl.GetHandler() != "test" || dl.GetTenant() != "acme" || string(dl.GetValue()) != "v" {
		t.Fatalf("dead letter = %+v", &dl)
	}

	// A new runner in the same group resumes after the committed offsets:
	// nothing is handled again.
	again := &recorder{}
	if err := prod.Produce(ctx, kafka.Record{Topic: "in", Key: []byte("late"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	runOnce(again, 1, func() int { return len(again.flushedKeys()) })
	time.Sleep(100 * time.Millisecond)
	if got := again.flushedKeys(); len(got) != 1 || got[0] != "late" {
		t.Fatalf("after restart handled %v, want only [late]", got)
	}
}

func TestRunnerWithoutDLQStopsOnPermanentError(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, brokers, 1, kafka.TopicSpec{Name: "in", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.Produce(ctx, kafka.Record{Topic: "in", Key: []byte("bad"), Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	r, err := kafka.NewRunner(kafka.RunnerConfig{Brokers: brokers, GroupID: "g", Topic: "in", Stage: "test"},
		&recorder{poison: map[string]bool{"bad": true}}, nil, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := r.Run(rctx); err == nil || !kafka.IsPermanent(err) {
		t.Fatalf("run = %v, want a permanent error", err)
	}
}
