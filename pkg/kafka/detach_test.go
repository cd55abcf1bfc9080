package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
)

// detacher buffers the keys it handles; Detach hands them to a flush that
// waits for gate (the first flush only), fails while failing returns true,
// and then records them.
type detacher struct {
	mu       sync.Mutex
	buffered []string
	handled  int
	flushed  []string
	gate     chan struct{}
	entered  chan struct{} // closed when the first flush starts
	failing  func() bool
	failures int
	first    bool
}

func newDetacher() *detacher {
	return &detacher{gate: make(chan struct{}), entered: make(chan struct{}), failing: func() bool { return false }, first: true}
}

func (d *detacher) Handle(_ context.Context, m kafka.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buffered = append(d.buffered, string(m.Key()))
	d.handled++
	return nil
}

func (d *detacher) Detach(context.Context) (func(context.Context) error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys := d.buffered
	d.buffered = nil
	first := d.first
	d.first = false
	return func(ctx context.Context) error {
		if first {
			select {
			case <-d.entered:
			default:
				close(d.entered)
			}
			select {
			case <-d.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.failing() {
			d.failures++
			return errors.New("downstream unavailable")
		}
		d.flushed = append(d.flushed, keys...)
		return nil
	}, nil
}

func (d *detacher) counts() (handled int, flushed []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handled, slices.Clone(d.flushed)
}

// committed returns the group's committed offset of topic's partition p
// (-1: none).
func committed(t *testing.T, addr, group, topic string, p int) int64 {
	t.Helper()
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(addr), Transport: tr}
	res, err := c.OffsetFetch(context.Background(), &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {p}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, po := range res.Topics[topic] {
		if po.Partition == p {
			return po.CommittedOffset
		}
	}
	return -1
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// twoPartitions starts a broker with topic "in" of two partitions and
// returns its address and a producer (closed with the test).
func twoPartitions(t *testing.T) (string, *kafka.Producer) {
	t.Helper()
	_, addr := kafkatest.Start(t, "")
	if err := kafka.EnsureTopics(context.Background(), []string{addr}, 1, kafka.TopicSpec{Name: "in", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{addr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	return addr, prod
}

// keysOn returns n keys with prefix that the producer's hash sends to
// partition p of a topic of parts partitions.
func keysOn(prefix string, p, parts, n int) []kafka.Record {
	var recs []kafka.Record
	for i := 0; len(recs) < n; i++ {
		k := fmt.Appendf(nil, "%s%03d", prefix, i)
		if kafka.PartitionOf(k, parts) == p {
			recs = append(recs, kafka.Record{Topic: "in", Key: k, Value: []byte("v")})
		}
	}
	return recs
}

// TestRunnerDetachedFlush: a Detacher's flush runs while the runner
// handles the next messages, also past the time the next flush is due
// (that one waits for it); nothing is committed before the flush that
// covers it returned nil; a failing flush is retried (the same function,
// so every key is flushed once, in order); a message of a partition the
// runner had not read waits for the flush in flight (a handler restoring
// state must see it); a flush interrupted by the end of the run is
// completed by the drain.
func TestRunnerDetachedFlush(t *testing.T) {
	addr, prod := twoPartitions(t)
	brokers := []string{addr}
	ctx := context.Background()
	produce := func(recs []kafka.Record) {
		t.Helper()
		if err := prod.Produce(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
	a0, b0, c1 := keysOn("a", 0, 2, 50), keysOn("b", 0, 2, 50), keysOn("c", 1, 2, 30)
	produce(a0)

	d := newDetacher()
	failUntil := 2 // the first flush fails twice once the gate opens
	d.failing = func() bool {
		if failUntil > 0 {
			failUntil--
			return true
		}
		return false
	}
	reg := prometheus.NewRegistry()
	r, err := kafka.NewRunner(kafka.RunnerConfig{
		Brokers: brokers, GroupID: "g", Topic: "in", Stage: "test",
		RetryBackoff: 10 * time.Millisecond, CommitInterval: 20 * time.Millisecond,
	}, d, nil, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()

	<-d.entered
	handledAtGate, _ := d.counts()
	// More of partition 0 is handled while the first flush is blocked,
	// also once the next flush is due (CommitInterval is 20 ms)...
	produce(b0[:25])
	waitFor(t, "partition 0 handled during the flush", func() bool { h, _ := d.counts(); return h >= handledAtGate+25 })
	time.Sleep(100 * time.Millisecond)
	produce(b0[25:])
	waitFor(t, "partition 0 handled while the next flush waits", func() bool { h, _ := d.counts(); return h >= handledAtGate+len(b0) })
	if got := committed(t, addr, "g", "in", 0); got > 0 {
		t.Fatalf("committed %d before any flush returned", got)
	}
	// ...but partition 1, new to the runner, waits for it.
	produce(c1)
	time.Sleep(300 * time.Millisecond)
	if h, _ := d.counts(); h > len(a0)+len(b0) {
		t.Fatalf("handled %d: partition 1 was handled before the flush in flight landed", h)
	}
	close(d.gate)
	waitFor(t, "everything flushed and committed", func() bool {
		_, f := d.counts()
		return len(f) == len(a0)+len(b0)+len(c1) && committed(t, addr, "g", "in", 0) == int64(len(a0)+len(b0)) &&
			committed(t, addr, "g", "in", 1) == int64(len(c1))
	})
	_, flushed := d.counts()
	var want []string
	for _, r := range append(append(slices.Clone(a0), b0...), c1...) {
		want = append(want, string(r.Key))
	}
	if got := slices.Clone(flushed); !slices.Equal(sortedStrings(got), sortedStrings(want)) {
		t.Fatalf("flushed %d keys, want each of %d once", len(got), len(want))
	}
	for i, k := range flushed[:len(a0)+len(b0)] {
		if k != want[i] {
			t.Fatalf("flush order: key %d is %s, want %s", i, k, want[i])
		}
	}
	if d.failures != 2 {
		t.Fatalf("failures = %d, want the 2 injected", d.failures)
	}
	// The first flush was held at the gate for over 300 ms: the flush
	// histogram has it, with its retries.
	if n, sum := histogram(t, reg, "sendguard_kafka_flush_seconds"); n < 1 || sum < 0.3 {
		t.Fatalf("flush histogram: %d flushes, %.3f s in all; want the gated one (over 0.3 s)", n, sum)
	}

	// A flush failing until the run ends is completed by the drain.
	d.mu.Lock()
	d.failing = func() bool { return runCtx.Err() == nil }
	d.mu.Unlock()
	late := keysOn("d", 0, 2, 10)
	produce(late)
	waitFor(t, "late keys handled and their flush failing", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.handled == len(want)+len(late) && d.failures > 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, f := d.counts(); len(f) != len(want)+len(late) {
		t.Fatalf("after the drain %d keys flushed, want %d", len(f), len(want)+len(late))
	}
	if got := committed(t, addr, "g", "in", 0); got != int64(len(a0)+len(b0)+len(late)) {
		t.Fatalf("after the drain partition 0 committed at %d, want %d", got, len(a0)+len(b0)+len(late))
	}
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}

// TestRunnerFlushesAtOnceWhenCaughtUp: a consumer at the end of its
// partitions flushes after CaughtUpInterval rather than CommitInterval, so
// a quiet pipeline passes records on in milliseconds; with the interval
// disabled it waits for CommitInterval.
func TestRunnerFlushesAtOnceWhenCaughtUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		caughtUp time.Duration
		prompt   bool
	}{
		{name: "default", caughtUp: 0, prompt: true},
		{name: "disabled", caughtUp: -1, prompt: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, prod := twoPartitions(t)
			brokers := []string{addr}
			ctx := context.Background()
			rec := &recorder{}
			r, err := kafka.NewRunner(kafka.RunnerConfig{
				Brokers: brokers, GroupID: "g", Topic: "in", Stage: "test",
				CommitInterval: 3 * time.Second, CaughtUpInterval: tc.caughtUp,
			}, rec, nil, zaptest.NewLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- r.Run(runCtx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			}()
			// Two rounds: the first lets the group settle.
			for round := range 2 {
				recs := append(keysOn(fmt.Sprintf("r%d-", round), 0, 2, 3), keysOn(fmt.Sprintf("r%d-", round), 1, 2, 3)...)
				want := len(rec.flushedKeys()) + len(recs)
				sent := time.Now()
				if err := prod.Produce(ctx, recs...); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "flushed", func() bool { return len(rec.flushedKeys()) >= want })
				took := time.Since(sent)
				if round == 0 {
					continue
				}
				if tc.prompt && took > time.Second {
					t.Fatalf("caught up, flushed after %v, want well under the 3 s CommitInterval", took)
				}
				if !tc.prompt && took < time.Second {
					t.Fatalf("caught-up flush disabled, flushed after %v, before the CommitInterval", took)
				}
			}
		})
	}
}

// TestFlushDetachedRetriesInOrder: a synchronous flush that fails is kept
// and run again, before the next one, so everything is written once and in
// the order it was handled.
func TestFlushDetachedRetriesInOrder(t *testing.T) {
	ctx := context.Background()
	d := newDetacher()
	d.first = false
	failures := 1
	d.failing = func() bool {
		if failures > 0 {
			failures--
			return true
		}
		return false
	}
	var failed func(context.Context) error
	for _, k := range []string{"a", "b"} {
		if err := d.Handle(ctx, message(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kafka.FlushDetached(ctx, &failed, d); err == nil || failed == nil {
		t.Fatalf("failing flush: err %v, kept %v", err, failed != nil)
	}
	if err := d.Handle(ctx, message("c")); err != nil {
		t.Fatal(err)
	}
	if err := kafka.FlushDetached(ctx, &failed, d); err != nil || failed != nil {
		t.Fatalf("second flush: err %v, still kept %v", err, failed != nil)
	}
	if _, got := d.counts(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("flushed %v, want [a b c] once each", got)
	}
}

// message is a kafka.Message holding only a key.
type message string

func (m message) Topic() string        { return "in" }
func (m message) Partition() int       { return 0 }
func (m message) Offset() int64        { return 0 }
func (m message) Key() []byte          { return []byte(m) }
func (m message) Value() []byte        { return nil }
func (m message) Time() time.Time      { return time.Time{} }
func (m message) Header(string) []byte { return nil }

// histogram returns the sample count and sum of the histogram family name
// in reg, over its label sets.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return n, sum
}
