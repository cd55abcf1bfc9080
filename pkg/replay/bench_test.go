package replay

import (
	"sort"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// BenchmarkReplay replays four days of generated traffic (three mailboxes,
// ~1,000 messages a day, ~7,000 events) through windows, rules and
// enforcement with the default pack and reports events/s and rule
// evaluations/s (per evaluated snapshot, every rule of its level).
func BenchmarkReplay(b *testing.B) {
	evs := readTraffic(b, 1, 4)
	var st Stats
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		st, err = Run(evs, Config{}, func(*sgv1.ControlCommand) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*st.Events)/sec, "events/s")
	b.ReportMetric(float64(b.N*st.RuleEvaluations)/sec, "rule-evals/s")
	b.ReportMetric(float64(b.N*st.Snapshots)/sec, "snapshots/s")
}

// BenchmarkDecisionLatency measures the time from feeding the event that
// crosses a threshold (the second complaint of 400 delivered by a sender:
// 0.5 % ≥ 0.3 %, sender-complaint-critical) to the pause command, with the
// runner evaluating after every event (Flush −1) without the reorder hold
// (Reorder −1), as live processing does. With the default flush a
// decision additionally waits for up to DefaultFlush of event time.
// Reports the median and the 99th percentile.
func BenchmarkDecisionLatency(b *testing.B) {
	var prefix []*sgv1.Event
	evs, err := ReadEvents(bytesReader(latencyStream()))
	if err != nil {
		b.Fatal(err)
	}
	prefix, crossing := evs[:len(evs)-1], evs[len(evs)-1]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var start time.Time
		var got time.Duration
		r := NewRunner(Config{Flush: -1, Reorder: -1}, func(c *sgv1.ControlCommand) error {
			if got == 0 && !start.IsZero() && c.GetAction() == sgv1.Action_ACTION_PAUSE && c.GetScope().GetLevel() == sgv1.ScopeLevel_SCOPE_LEVEL_SENDER {
				got = time.Since(start)
			}
			return nil
		})
		for _, ev := range prefix {
			if err := r.Feed(ev); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start = time.Now()
		if err := r.Feed(crossing); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got == 0 {
			b.Fatal("the crossing event did not pause the sender")
		}
		lat = append(lat, got)
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
