package evaluator

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

type nopEvaluator struct{}

func (nopEvaluator) Evaluate(*sgv1.WindowSnapshot) []*sgv1.Decision { return nil }
func (nopEvaluator) MarshalScope(*sgv1.Scope) ([]byte, error)       { return nil, nil }
func (nopEvaluator) RestoreScopes([][]byte) error                   { return nil }

// TestInstrument: health counts are read at most once per HealthEvery, a
// snapshot dated far in the future does not move the freshness gauge, and
// only levels the rules watch get zero series.
func TestInstrument(t *testing.T) {
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	calls := 0
	domain, sender := sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, sgv1.ScopeLevel_SCOPE_LEVEL_SENDER
	reg := prometheus.NewRegistry()
	in, err := Instrument(nopEvaluator{}, MetricsOptions{
		RulesAt: func(l sgv1.ScopeLevel) int { return map[sgv1.ScopeLevel]int{domain: 3}[l] },
		HealthCounts: func() map[HealthKey]int {
			calls++
			return map[HealthKey]int{{domain, sgv1.HealthState_HEALTH_STATE_PAUSED}: calls}
		},
		HealthEvery: time.Minute,
		RuleSet: func() RuleSetInfo {
			return RuleSetInfo{Version: "v7", Hash: "abc", RulesByLevel: map[sgv1.ScopeLevel]int{domain: 3}}
		},
		Now: func() time.Time { return now },
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	snap := func(level sgv1.ScopeLevel, at time.Time) *sgv1.WindowSnapshot {
		return &sgv1.WindowSnapshot{Scope: &sgv1.Scope{Tenant: "t", Level: level, Target: "x"}, AsOf: timestamppb.New(at)}
	}
	in.Evaluate(snap(domain, now.Add(-time.Minute)))
	in.Evaluate(snap(sender, now.Add(24*time.Hour))) // a wrong client clock
	want := `
# HELP sendguard_evaluator_newest_event_time_seconds Event time (unix seconds) of the newest snapshot evaluated (its as_of); 0 before the first. time() minus it is the evaluator's freshness.
# TYPE sendguard_evaluator_newest_event_time_seconds gauge
sendguard_evaluator_newest_event_time_seconds ` + strconv.FormatInt(now.Add(-time.Minute).Unix(), 10) + `
# HELP sendguard_evaluator_rule_evaluations_total Rule conditions evaluated: for each snapshot, the rules of its level.
# TYPE sendguard_evaluator_rule_evaluations_total counter
sendguard_evaluator_rule_evaluations_total 3
# HELP sendguard_evaluator_snapshots_evaluated_total Window snapshots evaluated against the rule set (older versions of a scope are skipped before).
# TYPE sendguard_evaluator_snapshots_evaluated_total counter
sendguard_evaluator_snapshots_evaluated_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sendguard_evaluator_newest_event_time_seconds",
		"sendguard_evaluator_rule_evaluations_total", "sendguard_evaluator_snapshots_evaluated_total"); err != nil {
		t.Error(err)
	}
	for range 3 {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("HealthCounts called %d times within HealthEvery, want 1", calls)
	}
	now = now.Add(time.Minute)
	if n := testutil.CollectAndCount(reg, "sendguard_evaluator_scopes"); n != 7 {
		t.Errorf("scope series = %d, want 7 (every state of the one watched level)", n)
	}
	if calls != 2 {
		t.Errorf("HealthCounts called %d times after HealthEvery, want 2", calls)
	}
}

// BenchmarkInstrumentOverhead is what Instrument adds to each snapshot
// (the wrapped evaluator does nothing).
func BenchmarkInstrumentOverhead(b *testing.B) {
	in, err := Instrument(nopEvaluator{}, MetricsOptions{RulesAt: func(sgv1.ScopeLevel) int { return 5 }}, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	snap := &sgv1.WindowSnapshot{Scope: &sgv1.Scope{Tenant: "t", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "x"},
		AsOf: timestamppb.New(time.Now().Add(-time.Minute))}
	b.ReportAllocs()
	for range b.N {
		in.Evaluate(snap)
	}
}
