package rules

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMarshalScopeRestoreScopes(t *testing.T) {
	e := NewEngine(Default())
	scope := &sgv1.Scope{Tenant: "t", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "acme.io"}
	snap := &sgv1.WindowSnapshot{Scope: scope, AsOf: timestamppb.New(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)), Version: 1,
		Metrics: map[string]float64{"complaint_rate_24h": 0.01, "delivered_24h": 1000, "complaints_24h": 10,
			"complaint_rate_prev_24h": 0.01, "delivered_prev_24h": 1000, "complaint_rate_7d": 0.01, "delivered_7d": 2000}}
	if len(e.Evaluate(snap)) == 0 {
		t.Fatal("no decision on a complaint spike")
	}
	rec, err := e.MarshalScope(scope)
	if err != nil || rec == nil {
		t.Fatalf("MarshalScope = %q, %v", rec, err)
	}
	want, _ := e.State(scope)
	healthy := &sgv1.Scope{Tenant: "t", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "calm.io"}
	if rec, err := e.MarshalScope(healthy); rec != nil || err != nil {
		t.Fatalf("healthy scope record = %q, %v; want a tombstone", rec, err)
	}
	e2 := NewEngine(Default())
	if err := e2.RestoreScopes([][]byte{rec}); err != nil {
		t.Fatal(err)
	}
	got, ok := e2.State(scope)
	if !ok || got.State != want.State || !got.Since.Equal(want.Since) {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	if err := e2.RestoreScopes([][]byte{[]byte("{")}); err == nil {
		t.Fatal("garbage restored")
	}
}

// TestEnforcingRuleDoesNotAlertTwice: a rule listing pause and alert emits
// the pause only — enforcement announces it with its own alert command.
func TestEnforcingRuleDoesNotAlertTwice(t *testing.T) {
	e := NewEngine(Default())
	scope := &sgv1.Scope{Tenant: "t", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "acme.io"}
	snap := &sgv1.WindowSnapshot{Scope: scope, AsOf: timestamppb.New(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)), Version: 1,
		Metrics: map[string]float64{"complaint_rate_24h": 0.01, "delivered_24h": 1000, "complaints_24h": 10,
			"complaint_rate_prev_24h": 0.01, "delivered_prev_24h": 1000, "complaint_rate_7d": 0.01, "delivered_7d": 2000}}
	enforcing := map[string]bool{}
	decisions := e.Evaluate(snap)
	for _, d := range decisions {
		if d.GetAction() != sgv1.Action_ACTION_ALERT {
			enforcing[d.GetRule()] = true
		}
	}
	if len(enforcing) == 0 {
		t.Fatal("no enforcing decision on a complaint spike")
	}
	for _, d := range decisions {
		if d.GetAction() == sgv1.Action_ACTION_ALERT && enforcing[d.GetRule()] {
			t.Errorf("rule %s emitted an alert decision beside its enforcing one", d.GetRule())
		}
	}
}
