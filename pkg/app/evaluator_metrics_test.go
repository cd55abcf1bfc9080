package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/rules"
	"github.com/sendguard/sendguard/pkg/stage/evaluator"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestEvaluatorMetrics runs the default pack behind Instrument: a sender
// whose complaint rate trips a pause is counted as paused at sender level,
// each snapshot counts the sender rules it was evaluated against, and the
// rule set's version is exposed.
func TestEvaluatorMetrics(t *testing.T) {
	engine := rules.NewEngine(rules.Default())
	reg := prometheus.NewRegistry()
	in, err := evaluator.Instrument(engine, engineMetrics(engine), reg)
	if err != nil {
		t.Fatal(err)
	}
	sender := sgv1.ScopeLevel_SCOPE_LEVEL_SENDER
	senderRules := 0
	for _, r := range engine.RuleSet().Rules {
		if r.Level == sender {
			senderRules++
		}
	}
	if senderRules == 0 {
		t.Fatal("the default pack has no sender rule")
	}
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	snap := func(target string, m map[string]float64, at time.Time) *sgv1.WindowSnapshot {
		return &sgv1.WindowSnapshot{
			Scope: &sgv1.Scope{Tenant: "t1", Level: sender, Target: target},
			AsOf:  timestamppb.New(at), Version: 1, Metrics: m,
		}
	}
	bad := map[string]float64{"complaint_rate_24h": 0.0025, "complaint_rate_48h": 0.0025, "delivered_24h": 1000,
		"delivered_48h": 2000, "sent_avg_7d": 1000, "complaints_48h": 5}
	if ds := in.Evaluate(snap("ann@acme.io", bad, at)); len(ds) == 0 {
		t.Fatal("the bad sender produced no decision")
	}
	in.Evaluate(snap("bob@acme.io", map[string]float64{"delivered_24h": 10}, at.Add(-time.Hour)))

	if got := value(t, reg, "sendguard_evaluator_scopes", map[string]string{"level": "sender", "state": "paused"}); got != 1 {
		t.Errorf("paused senders = %v, want 1", got)
	}
	if got := value(t, reg, "sendguard_evaluator_scopes", map[string]string{"level": "domain", "state": "ramp"}); got != 0 {
		t.Errorf("ramping domains = %v, want a 0 series", got)
	}
	if got := value(t, reg, "sendguard_evaluator_snapshots_evaluated_total", nil); got != 2 {
		t.Errorf("snapshots = %v, want 2", got)
	}
	if got := value(t, reg, "sendguard_evaluator_rule_evaluations_total", nil); got != float64(2*senderRules) {
		t.Errorf("rule evaluations = %v, want %d", got, 2*senderRules)
	}
	if got := value(t, reg, "sendguard_evaluator_rules", map[string]string{"level": "sender"}); got != float64(senderRules) {
		t.Errorf("sender rules = %v, want %d", got, senderRules)
	}
	if got := value(t, reg, "sendguard_evaluator_rule_set_info", map[string]string{"version": engine.RuleSet().Version}); got != 1 {
		t.Errorf("rule set info = %v", got)
	}
	if got := value(t, reg, "sendguard_evaluator_newest_event_time_seconds", nil); got != float64(at.Unix()) {
		t.Errorf("newest event time = %v, want %d (the newer snapshot)", got, at.Unix())
	}
}

// value gathers reg and returns the value of the first series of family
// name whose labels include labels.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			default:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("%s%v not exposed", name, labels)
	return 0
}

// BenchmarkHealthCounts measures one scrape's health-state count with
// 100,000 scopes held (go test -bench HealthCounts -benchtime 5x).
func BenchmarkHealthCounts(b *testing.B) {
	engine := rules.NewEngine(rules.Default())
	recs := make([][]byte, 0, 100_000)
	for i := range 100_000 {
		recs = append(recs, []byte(fmt.Sprintf(`{"tenant":"t1","level":3,"target":"s%d@acme.io","state":5,"rule":"r","since":"2026-11-01T00:00:00Z","last_seen":"2026-11-02T00:00:00Z"}`, i)))
	}
	if err := engine.RestoreScopes(recs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if n := healthCounts(engine)[evaluator.HealthKey{Level: 3, State: 5}]; n != 100_000 {
			b.Fatalf("paused senders = %d", n)
		}
	}
}
