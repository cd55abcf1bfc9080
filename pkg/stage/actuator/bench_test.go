package actuator_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/classify"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/loadgen"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/stage/actuator/actuatortest"
	"github.com/sendguard/sendguard/pkg/stage/normalizer"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// seedState pauses 1,000 domains and suppresses 10,000 recipients of the
// default tenant through ControlService, so checks probe a populated state.
func seedState(b *testing.B, s *actuatortest.Server) {
	b.Helper()
	st := s.Stage.State()
	for i := range 10_000 {
		c := &sgv1.ControlCommand{
			CommandId: fmt.Sprintf("seed-%d", i), Rule: "manual", Action: sgv1.Action_ACTION_SUPPRESS,
			Scope: &sgv1.Scope{Tenant: "default", Level: sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, Target: fmt.Sprintf("r%d@example.org", i)},
		}
		if i < 1000 {
			c.Action = sgv1.Action_ACTION_PAUSE
			c.Scope.Level, c.Scope.Target = sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, fmt.Sprintf("d%d.io", i)
		}
		st.Apply(c)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

// BenchmarkCheckGRPC measures PermissionService.Check over gRPC on loopback
// (real server, one client connection): sequential calls for p50/p99
// latency, then 16 concurrent callers for checks/s.
//
//	go test -run '^$' -bench CheckGRPC -benchtime 20000x ./pkg/stage/actuator/
func BenchmarkCheckGRPC(b *testing.B) {
	s := actuatortest.Start(b, actuatortest.Options{})
	seedState(b, s)
	perm := sgv1.NewPermissionServiceClient(s.Dial(b))
	ctx := actuatortest.WithKey(context.Background(), keyA)
	req := func(i int) *sgv1.CheckRequest {
		return &sgv1.CheckRequest{Sender: fmt.Sprintf("s%d@d%d.io", i%50, i%2000), Recipient: fmt.Sprintf("r%d@example.org", i%20000), DryRun: true}
	}
	b.Run("sequential", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			t := time.Now()
			if _, err := perm.Check(ctx, req(i)); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
		}
		b.StopTimer()
		b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), "p50-µs")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
	})
	b.Run("parallel16", func(b *testing.B) {
		const workers = 16
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		start := time.Now()
		b.ResetTimer()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < b.N; i += workers {
					if _, err := perm.Check(ctx, req(i)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checks/s")
	})
}

// discard is a Publisher that drops what it is given.
type discard struct{}

func (discard) Produce(context.Context, ...kafka.Record) error { return nil }

// BenchmarkEventsHandler measures the events handler per record of
// sg.events.v1 over the pipeline benchmark's traffic (pkg/loadgen's default
// mix, enriched as the normalizer does; 50,000 records cycled), with a
// flush every 10,000 records as the runner does: "headers" are records as
// the normalizer writes them (EventHeaders: non-enforcing types are not
// decoded), "no-headers" records written before the headers existed (every
// one decoded).
//
//	go test -run '^$' -bench EventsHandler -benchtime 200000x ./stage/actuator/
func BenchmarkEventsHandler(b *testing.B) {
	g, err := loadgen.New(loadgen.Config{Seed: 8, Start: t0.Add(-time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	const n = 50_000
	withHeaders, without := make([]msg, n), make([]msg, n)
	enforcing := 0
	for i := range n {
		ev := g.Next()
		classify.Enrich(ev)
		v, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		withHeaders[i] = msg{value: v, headers: normalizer.EventHeaders(ev)}
		without[i] = msg{value: v}
		if enforce.MayEnforce(ev.GetType()) {
			enforcing++
		}
	}
	for _, bc := range []struct {
		name string
		recs []msg
	}{{"headers", withHeaders}, {"no-headers", without}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := enforce.DefaultConfig()
			cfg.Clock = func() time.Time { return t0 }
			s, err := actuator.New(enforce.New(cfg), discard{}, nil, zap.NewNop(), nil)
			if err != nil {
				b.Fatal(err)
			}
			s.SetClock(cfg.Clock)
			h := s.EventsHandler()
			f := h.(kafka.Flusher)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := h.Handle(ctx, bc.recs[i%n]); err != nil {
					b.Fatal(err)
				}
				if i%10_000 == 9_999 {
					if err := f.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(100*float64(enforcing)/n, "enforcing-types-%")
		})
	}
}
