package kafka_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
)

// TestRunnerRidesOutASlowBroker: a broker that answers every fetch 200 ms
// late (a busy one) must not make the consumer drop its connections and
// fetch the same records again. With the former 50 ms fetch deadline each
// answer arrived after the reader had given up: it reconnected and fetched
// again, and under load the same batches were read tens of times. The
// reader's connects and errors are counted in the runner's metrics.
func TestRunnerRidesOutASlowBroker(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxWait time.Duration
		slow    bool // the test shows the failure it guards against
	}{
		{name: "default deadline", maxWait: 0},
		{name: "50ms deadline reconnects", maxWait: 50 * time.Millisecond, slow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, addr := kafkatest.Start(t, "")
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
			const batches, per = 20, 50
			for i := range batches {
				var recs []kafka.Record
				for j := range per {
					recs = append(recs, kafka.Record{Topic: "in", Key: fmt.Appendf(nil, "k%d-%d", i, j), Value: []byte("v")})
				}
				if err := prod.Produce(ctx, recs...); err != nil {
					t.Fatal(err)
				}
			}
			var fetches, sleeping atomic.Int64
			var stop atomic.Bool
			c := b.Cluster()
			c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
				if stop.Load() {
					c.DropControl()
					return nil, nil, false
				}
				c.KeepControl()
				fetches.Add(1)
				sleeping.Add(1)
				defer sleeping.Add(-1)
				c.SleepControl(func() { time.Sleep(200 * time.Millisecond) })
				return nil, nil, false // then answered as usual
			})
			// A control still sleeping when the broker closes never returns
			// (kfake): let them finish first.
			defer func() {
				stop.Store(true)
				for sleeping.Load() > 0 {
					time.Sleep(10 * time.Millisecond)
				}
			}()

			var handled atomic.Int64
			reg := prometheus.NewRegistry()
			r, err := kafka.NewRunner(kafka.RunnerConfig{Brokers: brokers, GroupID: "g", Topic: "in", Stage: "test", MaxWait: tc.maxWait},
				kafka.HandlerFunc(func(context.Context, kafka.Message) error { handled.Add(1); return nil }), nil, zaptest.NewLogger(t), reg)
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- r.Run(rctx) }()
			deadline := time.Now().Add(20 * time.Second)
			if tc.slow {
				deadline = time.Now().Add(3 * time.Second)
			}
			for handled.Load() < batches*per && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			connects := testutil.ToFloat64(counter(t, reg, "sendguard_kafka_reader_connects_total"))
			errs := testutil.ToFloat64(counter(t, reg, "sendguard_kafka_reader_errors_total"))
			t.Logf("handled %d, broker fetches %d, reader connects %v, errors %v", handled.Load(), fetches.Load(), connects, errs)
			if tc.slow {
				if errs == 0 || connects < 2 {
					t.Fatalf("a 50 ms deadline against a 200 ms broker: %v errors, %v connects; the test no longer shows the failure", errs, connects)
				}
				return
			}
			if handled.Load() != batches*per {
				t.Fatalf("handled %d of %d", handled.Load(), batches*per)
			}
			if errs != 0 || connects != 1 {
				t.Fatalf("reader errors %v, connects %v: it gave up on the slow broker", errs, connects)
			}
		})
	}
}

// counter returns the one series of the named counter family in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: name},
				func() float64 { return mf.GetMetric()[0].GetCounter().GetValue() })
		}
	}
	t.Fatalf("no single series of %s", name)
	return nil
}
