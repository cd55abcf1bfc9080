package rules

import (
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

const (
	lvSender = sgv1.ScopeLevel_SCOPE_LEVEL_SENDER
	lvDomain = sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN
)

func senderSnap(at time.Time, mm m) *sgv1.WindowSnapshot {
	return snapAt(lvSender, "ann@example.com", at, mm)
}

// bad trips sender-complaint-pause (0.25 % on 1,000 delivered) and nothing
// stronger.
func bad() m {
	return m{"complaint_rate_24h": 0.0025, "complaint_rate_48h": 0.0025, "delivered_24h": 1000, "delivered_48h": 2000, "sent_avg_7d": 1000, "complaints_48h": 5}
}

// clean satisfies every sender rule's recovery.
func clean() m {
	return m{"complaint_rate_24h": 0, "complaint_rate_48h": 0.0004, "delivered_24h": 600, "delivered_48h": 1200, "sent_avg_7d": 300}
}

func mustDecisions(t *testing.T, ds []*sgv1.Decision) {
	t.Helper()
	for _, d := range ds {
		if d.GetExplanation() == nil || d.GetExplanation().GetCondition() == "" || d.GetExplanation().GetSummary() == "" {
			t.Fatalf("decision without a full explanation: %v", d)
		}
		if d.GetDecisionId() == "" || d.GetAt() == nil || d.GetScope() == nil || d.GetRule() == "" {
			t.Fatalf("incomplete decision: %v", d)
		}
	}
}

func only(t *testing.T, ds []*sgv1.Decision, action sgv1.Action) *sgv1.Decision {
	t.Helper()
	mustDecisions(t, ds)
	var got []*sgv1.Decision
	for _, d := range ds {
		if d.GetAction() == action {
			got = append(got, d)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want exactly one %s decision, got %d of %v", action, len(got), ds)
	}
	return got[0]
}

func TestLifecyclePauseCooldownRampHealthy(t *testing.T) {
	e := NewEngine(Default())
	ds := e.Evaluate(senderSnap(t0, bad()))
	p := only(t, ds, sgv1.Action_ACTION_PAUSE)
	if p.Rule != "sender-complaint-pause" || p.ToState != paused || p.FromState != healthy {
		t.Fatalf("pause decision = %v", p)
	}
	if !p.Until.AsTime().Equal(t0.Add(72 * time.Hour)) {
		t.Fatalf("until = %v, want t0+72h", p.Until.AsTime())
	}
	x := p.Explanation
	if x.Metric != "complaint_rate_24h" || x.Observed != 0.0025 || x.Threshold != 0.002 || x.Comparator != ">=" || x.SampleSize != 1000 || x.Window != "24h" {
		t.Fatalf("explanation = %v", x)
	}
	// Still bad an hour later: nothing new.
	if ds := e.Evaluate(senderSnap(t0.Add(time.Hour), bad())); len(ds) != 0 {
		t.Fatalf("repeat evaluation emitted %v", ds)
	}
	// Clean a day later: cooldown keeps the full stop until t0+72h.
	c := only(t, e.Evaluate(senderSnap(t0.Add(24*time.Hour), clean())), sgv1.Action_ACTION_PAUSE)
	if c.ToState != cooldown || !c.Until.AsTime().Equal(t0.Add(72*time.Hour)) {
		t.Fatalf("cooldown decision = %v", c)
	}
	if ds := e.Evaluate(senderSnap(t0.Add(71*time.Hour), clean())); len(ds) != 0 {
		t.Fatalf("left cooldown before 72h: %v", ds)
	}
	// After 72 h: ramp at 25 % of the prior volume (sent_avg_7d at pause).
	at := t0.Add(72 * time.Hour)
	r := only(t, e.Evaluate(senderSnap(at, clean())), sgv1.Action_ACTION_THROTTLE)
	if r.ToState != ramping || r.CapRatio != 0.25 || r.DailyCap != 250 {
		t.Fatalf("ramp start = %v", r)
	}
	want := []float64{0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1}
	for i, ratio := range want {
		// Hourly snapshots in between emit nothing.
		for h := 1; h < 48; h += 7 {
			if ds := e.Evaluate(senderSnap(at.Add(time.Duration(h)*time.Hour), clean())); len(ds) != 0 {
				t.Fatalf("step %d: emitted between steps: %v", i, ds)
			}
		}
		at = at.Add(48 * time.Hour)
		d := only(t, e.Evaluate(senderSnap(at, clean())), sgv1.Action_ACTION_THROTTLE)
		if math.Abs(d.CapRatio-ratio) > 1e-9 || d.DailyCap != int64(math.Ceil(ratio*1000)) {
			t.Fatalf("step %d: cap %v daily %d, want %v", i, d.CapRatio, d.DailyCap, ratio)
		}
	}
	// Full volume reached after 16 clean days; healthy needs 7 clean days
	// at full volume as well: already clean since ramp start, so resume now.
	res := only(t, e.Evaluate(senderSnap(at.Add(time.Hour), clean())), sgv1.Action_ACTION_RESUME)
	if res.ToState != healthy {
		t.Fatalf("resume = %v", res)
	}
	if st, _ := e.State(res.Scope); st.State != healthy {
		t.Fatalf("state = %v", st.State)
	}
}

func TestRampRelapseAndHold(t *testing.T) {
	e := NewEngine(Default())
	e.Evaluate(senderSnap(t0, bad()))
	e.Evaluate(senderSnap(t0.Add(72*time.Hour), clean()))
	st, _ := e.State(senderSnap(t0, nil).Scope)
	if st.State != ramping {
		t.Fatalf("state = %v, want ramp", st.State)
	}
	// A warning-level signal holds the ramp: no step after 48 h.
	warn := clean()
	warn["complaint_rate_24h"], warn["complaint_rate_48h"] = 0.0012, 0.0012
	e.Evaluate(senderSnap(t0.Add(100*time.Hour), warn))
	if ds := e.Evaluate(senderSnap(t0.Add(121*time.Hour), clean())); len(ds) != 0 {
		t.Fatalf("ramp stepped although not clean for 48h: %v", ds)
	}
	// Relapse: back to paused with the pre-incident prior volume.
	p := only(t, e.Evaluate(senderSnap(t0.Add(130*time.Hour), bad())), sgv1.Action_ACTION_PAUSE)
	if p.FromState != ramping || p.ToState != paused {
		t.Fatalf("relapse = %v", p)
	}
	st, _ = e.State(p.Scope)
	if st.PriorVolume != 1000 {
		t.Fatalf("prior volume = %v, want the pre-incident 1000", st.PriorVolume)
	}
}

func TestPauseExtendedWhileTriggerPersists(t *testing.T) {
	e := NewEngine(Default())
	e.Evaluate(senderSnap(t0, bad()))
	d := only(t, e.Evaluate(senderSnap(t0.Add(72*time.Hour), bad())), sgv1.Action_ACTION_PAUSE)
	if d.ToState != paused || !d.Until.AsTime().Equal(t0.Add(144*time.Hour)) {
		t.Fatalf("extension = %v", d)
	}
}

func TestBroadSymptomsLengthenCooldown(t *testing.T) {
	e := NewEngine(Default())
	mm := bad()
	mm["deferral_rate_wow_change"] = 0.8 // rising deferrals
	d := only(t, e.Evaluate(senderSnap(t0, mm)), sgv1.Action_ACTION_PAUSE)
	if !d.Until.AsTime().Equal(t0.Add(7 * 24 * time.Hour)) {
		t.Fatalf("until = %v, want 7 days", d.Until.AsTime())
	}
	// Domain critical: 14 days with broader symptoms.
	dm := m{"complaint_rate_24h": 0.004, "complaint_rate_prev_24h": 0.004, "delivered_24h": 900, "delivered_prev_24h": 900, "postmaster_reputation": 2}
	dd := only(t, NewEngine(Default()).Evaluate(snapAt(lvDomain, "example.com", t0, dm)), sgv1.Action_ACTION_PAUSE)
	if !dd.Until.AsTime().Equal(t0.Add(14 * 24 * time.Hour)) {
		t.Fatalf("domain until = %v, want 14 days", dd.Until.AsTime())
	}
	// A rule without broad_duration gets the 7-day default.
	hb := m{"hard_bounce_rate_24h": 0.05, "sent_24h": 400, "placement_inbox_rate_wow_change": -0.3}
	hd := only(t, NewEngine(Default()).Evaluate(senderSnap(t0, hb)), sgv1.Action_ACTION_PAUSE)
	if !hd.Until.AsTime().Equal(t0.Add(7 * 24 * time.Hour)) {
		t.Fatalf("hard bounce until = %v, want 7 days", hd.Until.AsTime())
	}
	// Broad symptoms never shorten a longer pause (account cooldown 14 d).
	am := m{"negative_contacts_14d": 3, "deferral_rate_wow_change": 2}
	ad := only(t, NewEngine(Default()).Evaluate(snapAt(sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, "acme.com", t0, am)), sgv1.Action_ACTION_PAUSE)
	if !ad.Until.AsTime().Equal(t0.Add(14 * 24 * time.Hour)) {
		t.Fatalf("account until = %v, want 14 days", ad.Until.AsTime())
	}
}

func TestRestrictedReleasesAfterDuration(t *testing.T) {
	e := NewEngine(Default())
	spike := m{"soft_bounce_rate_7d": 0.03, "soft_bounces_7d": 30, "sent_7d": 1000, "soft_bounces_28d": 60, "sent_28d": 4000, "soft_bounce_rate_28d": 0.015, "sent_avg_7d": 140}
	d := only(t, e.Evaluate(senderSnap(t0, spike)), sgv1.Action_ACTION_THROTTLE)
	if d.CapRatio != 0.7 || d.DailyCap != 98 || !d.Until.AsTime().Equal(t0.Add(72*time.Hour)) || d.ToState != restricted {
		t.Fatalf("throttle = %v", d)
	}
	// Still spiking at 72 h: renewed.
	r := only(t, e.Evaluate(senderSnap(t0.Add(72*time.Hour), spike)), sgv1.Action_ACTION_THROTTLE)
	if !r.Until.AsTime().Equal(t0.Add(144 * time.Hour)) {
		t.Fatalf("renewal = %v", r)
	}
	calm := m{"soft_bounce_rate_7d": 0.01, "soft_bounce_rate_28d": 0.01, "sent_7d": 1000}
	if ds := e.Evaluate(senderSnap(t0.Add(100*time.Hour), calm)); len(ds) != 0 {
		t.Fatalf("released before until: %v", ds)
	}
	res := only(t, e.Evaluate(senderSnap(t0.Add(144*time.Hour), calm)), sgv1.Action_ACTION_RESUME)
	if res.ToState != healthy {
		t.Fatalf("release = %v", res)
	}
}

func TestOpenEndedRetireAndSuppress(t *testing.T) {
	e := NewEngine(Default())
	v := snapAt(sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, "v1", t0, m{"placement_spam_rate_max_provider": 0.5, "placement_tests_recent": 2})
	d := only(t, e.Evaluate(v), sgv1.Action_ACTION_PAUSE)
	if d.Until != nil {
		t.Fatalf("retire must be open-ended: %v", d)
	}
	later := snapAt(sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, "v1", t0.Add(60*24*time.Hour), m{})
	if ds := e.Evaluate(later); len(ds) != 0 {
		t.Fatalf("retired variant came back: %v", ds)
	}
	// Account cooldown (in shadow in the default pack: pkg/enforce counts
	// distinct contacts): 14 days, then straight back (no ramp).
	src := strings.Replace(string(DefaultYAML()), "    shadow: true\n", "", 1)
	rs, _, err := Parse([]byte(src), "unshadowed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ae := NewEngine(rs)
	a := snapAt(sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, "acme.com", t0, m{"negative_contacts_14d": 2})
	p := only(t, ae.Evaluate(a), sgv1.Action_ACTION_PAUSE)
	if !p.Until.AsTime().Equal(t0.Add(14 * 24 * time.Hour)) {
		t.Fatalf("account cooldown until = %v", p.Until.AsTime())
	}
	a2 := snapAt(sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, "acme.com", t0.Add(14*24*time.Hour), m{"negative_contacts_14d": 0})
	if r := only(t, ae.Evaluate(a2), sgv1.Action_ACTION_RESUME); r.ToState != healthy {
		t.Fatalf("account resume = %v", r)
	}
	if s := only(t, e.Evaluate(a), sgv1.Action_ACTION_PAUSE); !s.Shadow {
		t.Fatalf("default pack account cooldown must be shadow: %v", s)
	}
	// A negative reply suppresses the recipient for 90 days, then unsuppresses.
	rc := snapAt(sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, "bob@acme.com", t0, m{"negative_replies_28d": 1})
	s := only(t, e.Evaluate(rc), sgv1.Action_ACTION_SUPPRESS)
	if !s.Until.AsTime().Equal(t0.Add(90 * 24 * time.Hour)) {
		t.Fatalf("suppress until = %v", s.Until.AsTime())
	}
	rc2 := snapAt(sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, "bob@acme.com", t0.Add(90*24*time.Hour), m{})
	only(t, e.Evaluate(rc2), sgv1.Action_ACTION_UNSUPPRESS)
}

func TestWarningAlertDwellAndCooldown(t *testing.T) {
	e := NewEngine(Default())
	warn := m{"complaint_rate_24h": 0.0012, "complaint_rate_48h": 0.0012, "delivered_24h": 1000}
	a := only(t, e.Evaluate(senderSnap(t0, warn)), sgv1.Action_ACTION_ALERT)
	if a.ToState != warning || a.Rule != "sender-complaint-warning" {
		t.Fatalf("warning = %v", a)
	}
	if ds := e.Evaluate(senderSnap(t0.Add(23*time.Hour), warn)); len(ds) != 0 {
		t.Fatalf("re-alerted inside the cooldown: %v", ds)
	}
	if ds := e.Evaluate(senderSnap(t0.Add(12*time.Hour), clean())); ds != nil {
		t.Fatalf("stale snapshot was evaluated: %v", ds)
	}
	if ds := e.Evaluate(senderSnap(t0.Add(23*time.Hour+30*time.Minute), clean())); len(ds) != 0 {
		t.Fatalf("left warning before the dwell: %v", ds)
	}
	back := only(t, e.Evaluate(senderSnap(t0.Add(25*time.Hour), clean())), sgv1.Action_ACTION_ALERT)
	if back.ToState != healthy {
		t.Fatalf("recovery = %v", back)
	}
}

// The same snapshots give the same decisions and ids (replay dedup), and
// an engine restored from Export mid-way decides exactly like one that ran
// through.
func TestReplayDeterminismAndExportImport(t *testing.T) {
	var seq []*sgv1.WindowSnapshot
	for h := 0; h < 24*30; h += 3 {
		mm := clean()
		if h >= 24 && h < 48 || h >= 400 && h < 410 {
			mm = bad()
		}
		seq = append(seq, senderSnap(t0.Add(time.Duration(h)*time.Hour), mm))
	}
	run := func(e *Engine, snaps []*sgv1.WindowSnapshot) []*sgv1.Decision {
		var out []*sgv1.Decision
		for _, s := range snaps {
			out = append(out, e.Evaluate(s)...)
		}
		return out
	}
	a := run(NewEngine(Default()), seq)
	b := run(NewEngine(Default()), seq)
	if len(a) < 5 || len(a) != len(b) {
		t.Fatalf("runs differ in length: %d vs %d", len(a), len(b))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Fatalf("decision %d differs:\n%v\n%v", i, a[i], b[i])
		}
	}
	half := len(seq) / 2
	e1 := NewEngine(Default())
	c := run(e1, seq[:half])
	state, err := e1.Export()
	if err != nil {
		t.Fatal(err)
	}
	e2 := NewEngine(Default())
	if err := e2.Import(state); err != nil {
		t.Fatal(err)
	}
	c = append(c, run(e2, seq[half:])...)
	if len(c) != len(a) {
		t.Fatalf("restored run: %d decisions, want %d", len(c), len(a))
	}
	for i := range a {
		if !proto.Equal(a[i], c[i]) {
			t.Fatalf("restored decision %d differs:\n%v\n%v", i, a[i], c[i])
		}
	}
	if err := e2.Import([]byte(`{"format":9}`)); err == nil {
		t.Fatal("Import accepted an unknown format")
	}
	if err := e2.Import([]byte(`not json`)); err == nil {
		t.Fatal("Import accepted garbage")
	}
}

func TestEvaluateBadInput(t *testing.T) {
	e := NewEngine(Default())
	for _, s := range []*sgv1.WindowSnapshot{nil, {}, {Scope: &sgv1.Scope{Tenant: "t"}}, {Scope: &sgv1.Scope{Tenant: "t", Level: 99}, AsOf: senderSnap(t0, nil).AsOf}} {
		if ds := e.Evaluate(s); ds != nil {
			t.Fatalf("Evaluate(%v) = %v", s, ds)
		}
	}
}

func TestDomainDecisionCarriesScoreAndConcentration(t *testing.T) {
	e := NewEngine(Default())
	s := snapAt(lvDomain, "example.com", t0, m{"complaint_rate_24h": 0.004, "complaint_rate_prev_24h": 0.004, "delivered_24h": 2000, "delivered_prev_24h": 2000, "provider_concentration_7d": 0.8, "sent_7d": 9000, "delivered_7d": 8800, "complaint_rate_7d": 0.004})
	ds := e.Evaluate(s)
	p := only(t, ds, sgv1.Action_ACTION_PAUSE)
	if p.Rule != "domain-complaint-2days" || p.Explanation.ProviderConcentration != 0.8 || p.Severity != sgv1.Severity_SEVERITY_CRITICAL || p.Priority != 100 {
		t.Fatalf("domain pause = %v", p)
	}
	if p.HealthScore <= 0 || p.HealthScore >= 100 {
		t.Fatalf("health score = %v", p.HealthScore)
	}
	if p.RuleSetVersion != Default().Version {
		t.Fatalf("rule set version = %q", p.RuleSetVersion)
	}
}

// When the rule holding a restriction recovers while another rule of the
// same strength fires, the scope stays restricted under the new rule.
func TestRestrictedHandover(t *testing.T) {
	e := NewEngine(Default())
	spike := m{"soft_bounce_rate_7d": 0.03, "soft_bounces_7d": 30, "sent_7d": 1000, "soft_bounces_28d": 60, "sent_28d": 4000}
	only(t, e.Evaluate(senderSnap(t0, spike)), sgv1.Action_ACTION_THROTTLE)
	surge := m{"soft_bounce_rate_7d": 0.01, "sent_7d": 1000, "sent_28d": 4000, "soft_bounces_28d": 40, "soft_bounces_7d": 10,
		"sent_dod_change": 0.8, "active_days": 40, "sent_prev_24h": 300}
	d := only(t, e.Evaluate(senderSnap(t0.Add(72*time.Hour), surge)), sgv1.Action_ACTION_THROTTLE)
	if d.Rule != "sender-volume-pause-scaling" || d.FromState != restricted || d.ToState != restricted || d.DailyCap != 300 || d.CapRatio != 1 {
		t.Fatalf("handover = %v", d)
	}
	if st, _ := e.State(d.Scope); st.Rule != "sender-volume-pause-scaling" {
		t.Fatalf("state rule = %q", st.Rule)
	}
}

func TestPrune(t *testing.T) {
	e := NewEngine(Default())
	e.Evaluate(snapAt(sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, "a@x.com", t0, m{"unsubscribes_28d": 1}))
	e.Evaluate(senderSnap(t0, bad()))
	e.Evaluate(senderSnap(t0.Add(time.Hour), m{"complaint_rate_24h": 0.0012, "delivered_24h": 900}))
	e.Evaluate(snapAt(lvDomain, "warn.com", t0, m{"complaint_rate_24h": 0.0012, "complaint_rate_48h": 0.0012, "delivered_24h": 900}))
	e.Evaluate(snapAt(lvDomain, "warn.com", t0.Add(30*time.Hour), m{}))
	// The domain recovered and its alert cooldown passed: already forgotten.
	if e.Len() != 2 {
		t.Fatalf("len = %d, want 2", e.Len())
	}
	counts := map[string]int{}
	e.CountStates(func(l sgv1.ScopeLevel, st sgv1.HealthState, n int) { counts[l.String()+"/"+st.String()] += n })
	if len(counts) != 2 || counts["SCOPE_LEVEL_SENDER/HEALTH_STATE_COOLDOWN"] != 1 {
		t.Fatalf("CountStates = %v, want the sender in cooldown and the recipient", counts)
	}
	if n := e.Prune(t0.Add(40 * time.Hour)); n != 1 || e.Len() != 1 {
		t.Fatalf("pruned %d, want only the suppressed recipient", n)
	}
	if st, ok := e.State(senderSnap(t0, nil).Scope); !ok || st.State != cooldown {
		t.Fatalf("sender in cooldown was pruned: %v %v", st.State, ok)
	}
}

func TestExplanationIsFinite(t *testing.T) {
	e := NewEngine(Default())
	spike := m{"soft_bounce_rate_7d": 0.03, "soft_bounces_7d": 30, "sent_7d": 1000, "soft_bounces_28d": 60, "sent_28d": 4000}
	e.Evaluate(senderSnap(t0, spike))
	// Baseline window now empty (28d == 7d): the recovery explanation's
	// threshold would be 0/0.
	ds := e.Evaluate(senderSnap(t0.Add(72*time.Hour), m{"sent_7d": 500, "sent_28d": 500}))
	d := only(t, ds, sgv1.Action_ACTION_RESUME)
	if x := d.Explanation; math.IsNaN(x.Threshold) || math.IsInf(x.Threshold, 0) || math.IsNaN(x.Observed) {
		t.Fatalf("non-finite explanation: %v", x)
	}
}
