package rules

import (
	"strings"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

const tenantYAML = `version: "t-1"
rules:
  - id: complaints
    level: sender
    priority: 10
    condition: complaint_rate_24h >= threshold && delivered_24h >= min_delivered
    params: {threshold: 0.002, min_delivered: 500}
    actions:
      - {action: pause, duration: 72h}
    source: {seed: 002_854dfc82c04b0746.txt, quote: "Complaint rate ≥ 0.20%"}
  - id: volume
    level: sender
    priority: 20
    condition: sent_dod_change > 0.25
    actions:
      - {action: alert}
    source: {seed: 002_854dfc82c04b0746.txt, quote: "Watch"}
  - id: shadowed
    level: sender
    priority: 30
    shadow: true
    condition: hard_bounce_rate_24h > 0.02
    actions:
      - {action: pause, duration: 72h}
    source: {seed: 002_854dfc82c04b0746.txt, quote: "hard bounces"}
tenants:
  strict:
    rules:
      complaints:
        params: {threshold: 0.001}
  lenient:
    disable: [volume]
    rules:
      complaints:
        condition: complaint_rate_24h >= 0.004
  calibrating:
    shadow: [complaints]
    rules:
      shadowed: {shadow: false}
`

func tenantSnap(tenant string, at time.Time, mm m) *sgv1.WindowSnapshot {
	s := senderSnap(at, mm)
	s.Scope.Tenant = tenant
	return s
}

func TestTenantOverrides(t *testing.T) {
	rs, diags, err := Parse([]byte(tenantYAML), "tenants.yaml")
	if err != nil || len(diags) != 2 {
		t.Fatalf("parse: %v %v (want the two no-recovery warnings)", err, diags)
	}
	mm := m{"complaint_rate_24h": 0.0015, "delivered_24h": 800}
	cases := []struct {
		tenant    string
		fire      bool
		threshold float64
	}{
		{"default-tenant", false, 0},
		{"strict", true, 0.001},
		{"lenient", false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.tenant, func(t *testing.T) {
			exp := fireRule(t, rs, tc.tenant, "complaints", mm)
			if (exp != nil) != tc.fire {
				t.Fatalf("fired = %v, want %v", exp != nil, tc.fire)
			}
			if exp != nil && exp.Threshold != tc.threshold {
				t.Fatalf("explained threshold = %v, want the tenant's %v", exp.Threshold, tc.threshold)
			}
		})
	}
	// The base threshold shows in the default tenant's explanation.
	if exp := fireRule(t, rs, "x", "complaints", m{"complaint_rate_24h": 0.0025, "delivered_24h": 800}); exp == nil || exp.Threshold != 0.002 {
		t.Fatalf("base explanation = %v", exp)
	}
	if exp := fireRule(t, rs, "lenient", "complaints", m{"complaint_rate_24h": 0.004}); exp == nil || exp.Condition != "complaint_rate_24h >= 0.004" {
		t.Fatalf("lenient override explanation = %v", exp)
	}
	if rs.forTenant("lenient").byID["volume"] != nil {
		t.Fatal("disabled rule still present for the tenant")
	}
	// Tenants are isolated: the strict tenant's pause does not touch others.
	e := NewEngine(rs)
	if ds := e.Evaluate(tenantSnap("strict", t0, mm)); len(ds) != 1 || ds[0].Action != sgv1.Action_ACTION_PAUSE {
		t.Fatalf("strict: %v", ds)
	}
	if ds := e.Evaluate(tenantSnap("other", t0, mm)); len(ds) != 0 {
		t.Fatalf("other tenant: %v", ds)
	}
}

func TestTenantOverrideErrors(t *testing.T) {
	bad := tenantYAML + "  broken:\n    rules:\n      complaints:\n        params: {nope: 1}\n        condition: complaint_rate_24h >= missing_metric\n"
	diags := Lint([]byte(bad), "t.yaml")
	var sawParam, sawCond bool
	for _, d := range diags {
		if d.Severity != SeverityError || d.Rule != "complaints" {
			continue
		}
		sawParam = sawParam || d.Line == 42 && strings.Contains(d.Message, `param "nope"`)
		sawCond = sawCond || d.Line == 44 && d.Column == 42 && strings.Contains(d.Message, `unknown metric or param "missing_metric"`)
	}
	if !sawParam || !sawCond {
		t.Fatalf("want errors at lines 42 and 44:42, got %v", diags)
	}
}

func TestShadowMode(t *testing.T) {
	rs, _, err := Parse([]byte(tenantYAML), "tenants.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rs)
	hb := m{"hard_bounce_rate_24h": 0.05, "sent_24h": 300}
	ds := e.Evaluate(tenantSnap("a", t0, hb))
	if len(ds) != 1 || !ds[0].Shadow || ds[0].Rule != "shadowed" || ds[0].Action != sgv1.Action_ACTION_PAUSE || ds[0].ToState != paused {
		t.Fatalf("shadow decision = %v", ds)
	}
	mustDecisions(t, ds)
	if st, _ := e.State(tenantSnap("a", t0, nil).Scope); st.State != healthy {
		t.Fatalf("shadow rule changed the state to %v", st.State)
	}
	if ds := e.Evaluate(tenantSnap("a", t0.Add(time.Hour), hb)); len(ds) != 0 {
		t.Fatalf("shadow decision repeated within its duration: %v", ds)
	}
	if ds := e.Evaluate(tenantSnap("a", t0.Add(73*time.Hour), hb)); len(ds) != 1 || !ds[0].Shadow {
		t.Fatalf("shadow decision after its duration: %v", ds)
	}
	// Per tenant: "calibrating" enforces the shadow rule and shadows the
	// complaint rule.
	ds = e.Evaluate(tenantSnap("calibrating", t0, hb))
	if len(ds) != 1 || ds[0].Shadow {
		t.Fatalf("calibrating tenant must enforce 'shadowed': %v", ds)
	}
	ds = e.Evaluate(tenantSnap("calibrating", t0.Add(time.Minute), m{"complaint_rate_24h": 0.01, "delivered_24h": 900, "hard_bounce_rate_24h": 0.05, "sent_24h": 300}))
	if len(ds) != 1 || !ds[0].Shadow || ds[0].Rule != "complaints" {
		t.Fatalf("calibrating tenant must shadow 'complaints': %v", ds)
	}
}
