package rules

import (
	"testing"
	"time"
)

// BenchmarkEvaluateHealthy is the steady state: a sender snapshot that
// trips no rule of the default pack (every sender rule evaluated).
func BenchmarkEvaluateHealthy(b *testing.B) {
	e := NewEngine(Default())
	s := senderSnap(t0, perfect())
	n := len(Default().base.byLevel[lvSender])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.AsOf.Seconds = t0.Unix() + int64(i)
		e.Evaluate(s)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rules/s")
}

// BenchmarkEvaluateFiring: a paused sender whose trigger persists
// (rules fire, explanations are built, the state machine runs).
func BenchmarkEvaluateFiring(b *testing.B) {
	e := NewEngine(Default())
	s := senderSnap(t0, bad())
	n := len(Default().base.byLevel[lvSender])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.AsOf.Seconds = t0.Unix() + int64(i)*int64(time.Minute/time.Second)
		e.Evaluate(s)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rules/s")
}
