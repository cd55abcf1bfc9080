package window

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// benchEvents is a mixed stream over 200 senders, 20 campaigns and 500
// accounts, 10 ms of event time apart.
func benchEvents(n int) []*sgv1.Event {
	types := []sgv1.EventType{typSent, typSent, typDelivered, typDelivered, typOpened, typClicked, typBounced, typComplained, typReplied, typDeferred}
	out := make([]*sgv1.Event, n)
	start := t0.Add(-time.Duration(n) * 10 * time.Millisecond)
	for i := range out {
		e := &sgv1.Event{
			EventId:       fmt.Sprintf("b%d", i),
			Tenant:        "acme",
			Type:          types[i%len(types)],
			OccurredAt:    timestamppb.New(start.Add(time.Duration(i) * 10 * time.Millisecond)),
			Sender:        fmt.Sprintf("s%d@d%d.com", i%200, i%5),
			SendingDomain: fmt.Sprintf("d%d.com", i%5),
			Provider:      sgv1.Provider(1 + i%5),
			Campaign:      fmt.Sprintf("c%d", i%20),
			Variant:       []string{"A", "B"}[i%2],
			Account:       fmt.Sprintf("acct%d.com", i%500),
		}
		switch e.Type {
		case typBounced:
			e.Bounce = &sgv1.Bounce{SmtpCode: 550}
		case typReplied:
			e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory(1 + i%9)}
		}
		out[i] = e
	}
	return out
}

// BenchmarkApply measures events folded per second on one core; each event
// updates 9 scopes (tenant, domain, sender, campaign, variant, provider,
// domain_provider, account and its dedup entry).
func BenchmarkApply(b *testing.B) {
	evs := benchEvents(200_000)
	a := New(Config{Lateness: time.Hour, Now: func() time.Time { return t0 }})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := evs[i%len(evs)]
		if i >= len(evs) { // past one pass everything is a duplicate: make it new
			e = &sgv1.Event{EventId: fmt.Sprint("x", i), Tenant: e.Tenant, Type: e.Type, OccurredAt: e.OccurredAt,
				Sender: e.Sender, SendingDomain: e.SendingDomain, Provider: e.Provider, Campaign: e.Campaign,
				Variant: e.Variant, Account: e.Account, Bounce: e.Bounce, Reply: e.Reply}
		}
		if _, err := a.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(9*float64(b.N)/b.Elapsed().Seconds(), "scope-updates/s")
}

// BenchmarkSnapshot measures one snapshot of a busy scope with every tier
// full, marshalled as the stage publishes it (compact: counters only) and
// decoded as the evaluator reads it (unmarshal, MetricsOf, the six metrics
// a rule typically reads); "complete" is the form with every catalogue
// metric by name, for comparison.
func BenchmarkSnapshot(b *testing.B) {
	a := busyAggregator(b)
	for _, form := range []string{"compact", "complete"} {
		b.Run(form, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for i := 0; i < b.N; i++ {
				snap := a.CompactSnapshotAt(tenantKey, time.Time{})
				if form == "complete" {
					snap = a.Snapshot(tenantKey)
				}
				buf, err := proto.Marshal(snap)
				if err != nil {
					b.Fatal(err)
				}
				size = len(buf)
				var got sgv1.WindowSnapshot
				if err := proto.Unmarshal(buf, &got); err != nil {
					b.Fatal(err)
				}
				m, err := MetricsOf(&got)
				if err != nil {
					b.Fatal(err)
				}
				for _, name := range []string{"complaint_rate_24h", "delivered_24h", "complaint_rate_48h", "delivered_48h", "hard_bounce_rate_24h", "sent_24h"} {
					if _, ok := m.Get(name); !ok {
						b.Fatal(name)
					}
				}
			}
			b.ReportMetric(float64(size), "bytes/snapshot")
		})
	}
}

// BenchmarkCheckpoint measures MarshalScope of a busy scope and reports its
// size.
func BenchmarkCheckpoint(b *testing.B) {
	a := busyAggregator(b)
	var n int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		blob, err := a.MarshalScope(tenantKey)
		if err != nil {
			b.Fatal(err)
		}
		n = len(blob)
	}
	b.ReportMetric(float64(n), "bytes/checkpoint")
}

// busyAggregator holds one scope with traffic every hour for 40 days and
// every minute for the last 3 days: every tier full.
func busyAggregator(tb testing.TB) *Aggregator {
	a := newAgg(t0, time.Hour)
	start := t0.Add(-40 * 24 * time.Hour)
	busy := t0.Add(-72 * time.Hour)
	for at, m := start, 0; !at.After(t0); m++ {
		mustApply(tb, a, ev(typSent, at), ev(typDelivered, at), ev(typOpened, at),
			ev(typReplied, at, withReply(sgv1.ReplyCategory(m%10))))
		if m%7 == 0 {
			mustApply(tb, a, ev(typComplained, at), ev(typBounced, at, withBounce(1, 550)))
		}
		if at.Before(busy) {
			at = at.Add(time.Hour)
		} else {
			at = at.Add(time.Minute)
		}
	}
	return a
}

// BenchmarkBytesPerScope measures the heap held per active scope with
// runtime.MemStats: "sparse" scopes saw one event (the typical account or
// list-source scope), "busy" scopes saw traffic every minute of the last
// hour, every hour of the last 3 days and every day of the last 4 weeks
// (every tier full, reply categories spread).
func BenchmarkBytesPerScope(b *testing.B) {
	for _, profile := range []string{"sparse", "busy"} {
		b.Run(profile, func(b *testing.B) {
			const scopes = 2000
			var perScope float64
			for i := 0; i < b.N; i++ {
				evs := profileEvents(profile, scopes)
				a := New(Config{Lateness: 40 * 24 * time.Hour, Now: func() time.Time { return t0 }, Deduper: noDedup{}})
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for _, e := range evs {
					if _, err := a.Apply(e); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				// Each event counts on the tenant scope (shared) and its own
				// sender scope.
				perScope = float64(after.HeapAlloc-before.HeapAlloc) / float64(a.Len())
				runtime.KeepAlive(evs)
				runtime.KeepAlive(a)
			}
			b.ReportMetric(perScope, "bytes/scope")
		})
	}
}

// noDedup keeps the deduper out of the per-scope measurement.
type noDedup struct{}

func (noDedup) Seen(string, string, time.Time) bool { return false }

func profileEvents(profile string, scopes int) []*sgv1.Event {
	var out []*sgv1.Event
	add := func(s int, typ sgv1.EventType, at time.Time, cat int) {
		e := &sgv1.Event{EventId: fmt.Sprint(len(out)), Tenant: "acme", Type: typ, OccurredAt: timestamppb.New(at),
			Sender: fmt.Sprintf("s%05d@ex.com", s)}
		if typ == typReplied {
			e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory(cat)}
		}
		out = append(out, e)
	}
	for s := range scopes {
		if profile == "sparse" {
			add(s, typSent, t0, 0)
			continue
		}
		var times []time.Time
		for m := range 60 {
			times = append(times, t0.Add(-time.Duration(m)*time.Minute))
		}
		for h := 1; h < 72; h++ {
			times = append(times, t0.Add(-time.Duration(h)*time.Hour))
		}
		for d := 3; d < 29; d++ {
			times = append(times, t0.Add(-time.Duration(d)*24*time.Hour))
		}
		for i, at := range times {
			add(s, typDelivered, at, 0)
			add(s, typReplied, at, i%10)
		}
	}
	return out
}
