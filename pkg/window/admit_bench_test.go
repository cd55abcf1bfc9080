package window

import (
	"fmt"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// uniqueEvent returns evs[i % len] with an id unique for i.
func uniqueEvent(evs []*sgv1.Event, i int) *sgv1.Event {
	e := evs[i%len(evs)]
	if i < len(evs) {
		return e
	}
	return &sgv1.Event{EventId: fmt.Sprint("x", i), Tenant: e.Tenant, Type: e.Type, OccurredAt: e.OccurredAt,
		Sender: e.Sender, SendingDomain: e.SendingDomain, Provider: e.Provider, Campaign: e.Campaign,
		Variant: e.Variant, Account: e.Account, Bounce: e.Bounce, Reply: e.Reply}
}

// BenchmarkAdmit measures the admission step (lateness, future and exact id
// checks, segment bookkeeping) per event on one core, segments taken every
// 1000 events as a flush would.
func BenchmarkAdmit(b *testing.B) {
	evs := benchEvents(200_000)
	a := NewAdmission(AdmitConfig{Lateness: time.Hour})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Admit(int32(i%6), int64(i), time.Time{}, uniqueEvent(evs, i)); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			for _, p := range a.Partitions() {
				a.TakeSegment(p)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkApplyScoped measures the aggregating step: one scope update per
// call (an event fans out to ~8), with the source-offset check.
func BenchmarkApplyScoped(b *testing.B) {
	evs := benchEvents(200_000)
	type rec struct {
		ev  *sgv1.Event
		k   ScopeKey
		off int64
	}
	var recs []rec
	for i, e := range evs {
		for _, k := range ScopeKeys(e, nil) {
			recs = append(recs, rec{e, k, int64(i)})
		}
	}
	a := New(Config{Now: func() time.Time { return t0 }})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := recs[i%len(recs)]
		if _, err := a.ApplyScoped(r.ev, r.k, 0, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scope-updates/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()*float64(len(evs))/float64(len(recs)), "events/s")
}
