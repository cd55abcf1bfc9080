package enforce

import (
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

const (
	lTenant   = sgv1.ScopeLevel_SCOPE_LEVEL_TENANT
	lDomain   = sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN
	lSender   = sgv1.ScopeLevel_SCOPE_LEVEL_SENDER
	lCampaign = sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN
	lVariant  = sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT
	lProvider = sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER
	lAccount  = sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT
	lRcpt     = sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT
	lDomProv  = sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER

	aPause      = sgv1.Action_ACTION_PAUSE
	aResume     = sgv1.Action_ACTION_RESUME
	aThrottle   = sgv1.Action_ACTION_THROTTLE
	aSuppress   = sgv1.Action_ACTION_SUPPRESS
	aUnsuppress = sgv1.Action_ACTION_UNSUPPRESS

	allow  = sgv1.Verdict_VERDICT_ALLOW
	deny   = sgv1.Verdict_VERDICT_DENY
	deferV = sgv1.Verdict_VERDICT_DEFER
)

func TestCheckDeniesEachPausedLevel(t *testing.T) {
	// The message: Ann@Acme.io → bob@gmail.com, campaign c1, variant v1;
	// and carol@bigco.com for the account level.
	tests := []struct {
		name      string
		level     sgv1.ScopeLevel
		target    string
		action    sgv1.Action
		recipient string
		word      string
	}{
		{"tenant", lTenant, "t1", aPause, "bob@gmail.com", "tenant"},
		{"domain", lDomain, "ACME.io", aPause, "bob@gmail.com", "domain"},
		{"sender", lSender, "ann@acme.io", aPause, "bob@gmail.com", "sender"},
		{"campaign", lCampaign, "c1", aPause, "bob@gmail.com", "campaign"},
		{"variant", lVariant, "c1/v1", aPause, "bob@gmail.com", "variant"},
		{"provider", lProvider, "gmail", aPause, "bob@gmail.com", "provider"},
		{"domain_provider", lDomProv, "acme.io|gmail", aPause, "bob@gmail.com", "domain_provider"},
		{"provider other for a company domain", lProvider, "other", aPause, "carol@bigco.com", "provider"},
		{"account", lAccount, "bigco.com", aSuppress, "carol@bigco.com", "account"},
		{"recipient", lRcpt, "Bob@Gmail.com", aSuppress, "bob@gmail.com", "recipient"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestState(nil)
			c := command("t1", tc.level, tc.target, tc.action, "r1", t0.Add(time.Hour))
			c.Reason = "because"
			mustApply(t, s, c)
			got := s.Check("t1", req("Ann@Acme.io", tc.recipient), t0)
			wantVerdict(t, got, deny)
			if len(got.Reasons) != 1 {
				t.Fatalf("reasons = %v, want 1", got.Reasons)
			}
			r := got.Reasons[0]
			if r.Rule != "r1" || r.Level != tc.word || r.Action != tc.action || !r.Until.AsTime().Equal(t0.Add(time.Hour)) || r.Detail == "" {
				t.Errorf("reason = %v", r)
			}
			// A different target at the same level does not matter.
			other := s.Check("t1", &sgv1.CheckRequest{Sender: "zed@other.io", Recipient: "x@yahoo.com", Campaign: "c2", Variant: "v2"}, t0)
			if tc.level != lTenant {
				wantVerdict(t, other, allow)
			} else {
				wantVerdict(t, other, deny)
			}
		})
	}
}

func TestCheckListsEveryCause(t *testing.T) {
	s, _ := newTestState(nil)
	mustApply(t, s, command("t1", lDomain, "acme.io", aPause, "complaint_spike", time.Time{}))
	mustApply(t, s, command("t1", lRcpt, "bob@gmail.com", aSuppress, RuleSuppression, time.Time{}))
	mustApply(t, s, command("t1", lCampaign, "c1", aPause, RuleManual, time.Time{}))
	got := s.Check("t1", req("ann@acme.io", "bob@gmail.com"), t0)
	wantVerdict(t, got, deny)
	seen := map[string]bool{}
	for _, r := range got.Reasons {
		seen[r.Level+"/"+r.Rule] = true
		if r.Until != nil {
			t.Errorf("open-ended reason has until: %v", r)
		}
	}
	for _, k := range []string{"domain/complaint_spike", "recipient/suppression", "campaign/manual"} {
		if !seen[k] {
			t.Errorf("missing reason %s in %v", k, got.Reasons)
		}
	}
}

func TestPauseExpiryAndResume(t *testing.T) {
	s, _ := newTestState(nil)
	mustApply(t, s, command("t1", lSender, "ann@acme.io", aPause, "r", t0.Add(time.Hour)))
	r := req("ann@acme.io", "bob@gmail.com")
	wantVerdict(t, s.Check("t1", r, t0.Add(59*time.Minute)), deny)
	wantVerdict(t, s.Check("t1", r, t0.Add(time.Hour)), allow)

	mustApply(t, s, command("t1", lSender, "ann@acme.io", aPause, "r", time.Time{}))
	wantVerdict(t, s.Check("t1", r, t0.Add(1000*time.Hour)), deny)
	mustApply(t, s, command("t1", lSender, "ann@acme.io", aResume, "r", time.Time{}))
	wantVerdict(t, s.Check("t1", r, t0), allow)
	if s.Apply(command("t1", lSender, "ann@acme.io", aResume, "r", time.Time{})) {
		t.Error("resume of an unpaused scope reported a change")
	}
	// Manual commands work the same and carry actor and reason.
	m := command("t1", lDomain, "acme.io", aPause, RuleManual, time.Time{})
	m.Actor, m.Reason = "ops@acme.io", "DNS migration"
	mustApply(t, s, m)
	got := s.Check("t1", r, t0)
	wantVerdict(t, got, deny)
	if d := got.Reasons[0].Detail; d != "paused: DNS migration by ops@acme.io" {
		t.Errorf("detail = %q", d)
	}
}

func TestSuppressionMergeAndUnsuppress(t *testing.T) {
	s, _ := newTestState(nil)
	r := req("ann@acme.io", "bob@bigco.com")
	mustApply(t, s, command("t1", lRcpt, "bob@bigco.com", aSuppress, RuleSuppression, time.Time{}))
	// A shorter suppression does not shorten an open-ended one.
	if s.Apply(command("t1", lRcpt, "bob@bigco.com", aSuppress, RuleSuppression, t0.Add(time.Hour))) {
		t.Error("shorter suppression replaced an open-ended one")
	}
	wantVerdict(t, s.Check("t1", r, t0.Add(2*time.Hour)), deny)
	mustApply(t, s, command("t1", lRcpt, "bob@bigco.com", aUnsuppress, RuleManual, time.Time{}))
	wantVerdict(t, s.Check("t1", r, t0), allow)
	// A longer one extends a bounded one.
	mustApply(t, s, command("t1", lAccount, "bigco.com", aSuppress, RuleCooldown, t0.Add(time.Hour)))
	mustApply(t, s, command("t1", lAccount, "bigco.com", aSuppress, RuleSuppression, t0.Add(48*time.Hour)))
	wantVerdict(t, s.Check("t1", r, t0.Add(47*time.Hour)), deny)
	wantVerdict(t, s.Check("t1", r, t0.Add(48*time.Hour)), allow)
}

func TestTenantIsolation(t *testing.T) {
	s, _ := newTestState(nil)
	mustApply(t, s, command("A", lTenant, "", aPause, RuleManual, time.Time{}))
	mustApply(t, s, command("A", lDomain, "acme.io", aPause, "r", time.Time{}))
	mustApply(t, s, command("A", lRcpt, "bob@gmail.com", aSuppress, RuleSuppression, time.Time{}))
	mustApply(t, s, command("A", lSender, "ann@acme.io", aThrottle, "r", time.Time{}))
	r := req("ann@acme.io", "bob@gmail.com")
	wantVerdict(t, s.Check("A", r, t0), deny)
	wantVerdict(t, s.Check("B", r, t0), allow)
	if st := s.Status("B"); len(st) != 0 {
		t.Errorf("tenant B status = %v", st)
	}
	// The same command id in another tenant is another command.
	c := command("A", lCampaign, "c9", aPause, "r", time.Time{})
	mustApply(t, s, c)
	c.Scope.Tenant = "B"
	mustApply(t, s, c)
}

func TestRoleAccounts(t *testing.T) {
	tests := []struct {
		name string
		on   bool
		want sgv1.Verdict
	}{{"off", false, allow}, {"on", true, deny}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestState(func(c *Config) { c.SuppressRoleAccounts = tc.on })
			wantVerdict(t, s.Check("t1", req("ann@acme.io", "info@bigco.com"), t0), tc.want)
			wantVerdict(t, s.Check("t1", req("ann@acme.io", "jane@bigco.com"), t0), allow)
		})
	}
}

func TestDailyCapThrottle(t *testing.T) {
	s, _ := newTestState(nil)
	c := command("t1", lSender, "ann@acme.io", aThrottle, "bounce_warning", time.Time{})
	c.DailyCap = 5
	mustApply(t, s, c)
	r := req("ann@acme.io", "bob@gmail.com")
	for i := range 5 {
		wantVerdict(t, s.Check("t1", r, t0.Add(time.Duration(i)*time.Minute)), allow)
	}
	now := t0.Add(10 * time.Minute)
	got := s.Check("t1", r, now)
	wantVerdict(t, got, deferV)
	if want := 13*time.Hour + 50*time.Minute; got.RetryAfter.AsDuration() != want {
		t.Errorf("retry_after = %v, want %v (next UTC day)", got.RetryAfter.AsDuration(), want)
	}
	if got.Reasons[0].Rule != "bounce_warning" || got.Reasons[0].Action != aThrottle {
		t.Errorf("reason = %v", got.Reasons[0])
	}
	wantVerdict(t, s.Check("t1", r, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)), allow)
}

func TestDailyCapCountsVolumeSentBeforeTheThrottle(t *testing.T) {
	s, _ := newTestState(nil)
	r := req("ann@acme.io", "bob@gmail.com")
	for range 4 {
		wantVerdict(t, s.Check("t1", r, t0), allow)
	}
	c := command("t1", lSender, "ann@acme.io", aThrottle, "r", time.Time{})
	c.DailyCap = 5
	mustApply(t, s, c)
	wantVerdict(t, s.Check("t1", r, t0), allow)
	wantVerdict(t, s.Check("t1", r, t0), deferV)
}

func TestRatioThrottleTokenBucket(t *testing.T) {
	s, _ := newTestState(nil)
	// Yesterday the domain sent 1000; a 0.5 throttle allows 500/day.
	s.ObserveVolume("t1", lDomain, "acme.io", t0.Add(-24*time.Hour), 1000)
	c := command("t1", lDomain, "acme.io", aThrottle, "complaint_warning", t0.Add(72*time.Hour))
	c.CapRatio = 0.5
	mustApply(t, s, c)
	r := &sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: "bob@gmail.com", Count: 500}
	wantVerdict(t, s.Check("t1", r, t0), allow)
	one := req("ann@acme.io", "bob@gmail.com")
	got := s.Check("t1", one, t0)
	wantVerdict(t, got, deferV)
	// One token refills every 86400/500 = 172.8 s.
	if d := got.RetryAfter.AsDuration(); d != 172800*time.Millisecond {
		t.Errorf("retry_after = %v, want 2m52.8s", d)
	}
	wantVerdict(t, s.Check("t1", one, t0.Add(172*time.Second)), deferV)
	wantVerdict(t, s.Check("t1", one, t0.Add(173*time.Second)), allow)
	// After the throttle's until the scope is free again.
	big := &sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: "x@y.com", Count: 5000}
	wantVerdict(t, s.Check("t1", big, t0.Add(72*time.Hour)), allow)
}

func TestRatioThrottleBaselineFallbacks(t *testing.T) {
	tests := []struct {
		name   string
		sample int64
		want   int64 // allowance
	}{
		{"explanation sample size", 400, 200},
		{"floor", 0, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestState(nil)
			c := command("t1", lCampaign, "c1", aThrottle, "r", time.Time{})
			c.CapRatio = 0.5
			c.Explanation = &sgv1.Explanation{SampleSize: tc.sample}
			mustApply(t, s, c)
			r := &sgv1.CheckRequest{Sender: "a@acme.io", Recipient: "b@x.com", Campaign: "c1", Count: int32(tc.want)}
			wantVerdict(t, s.Check("t1", r, t0), allow)
			r.Count = 1
			wantVerdict(t, s.Check("t1", r, t0), deferV)
		})
	}
}

func TestWarmupSchedule(t *testing.T) {
	tests := []struct {
		day int
		cap int64 // 0: no cap
	}{
		{1, 20}, {2, 25}, {3, 30}, {4, 40}, {7, 60}, {8, 60}, {14, 100}, {15, 0},
	}
	for _, tc := range tests {
		t.Run("day"+itoa(tc.day), func(t *testing.T) {
			s, _ := newTestState(nil)
			start := t0.Add(-time.Duration(tc.day-1) * 24 * time.Hour)
			mustApply(t, s, WarmupCommand("t1", "ann@acme.io", start))
			r := &sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: "b@x.com"}
			if tc.cap == 0 {
				r.Count = 1000
				wantVerdict(t, s.Check("t1", r, t0), allow)
				return
			}
			r.Count = int32(tc.cap)
			wantVerdict(t, s.Check("t1", r, t0), allow)
			r.Count = 1
			got := s.Check("t1", r, t0)
			wantVerdict(t, got, deferV)
			if d := got.RetryAfter.AsDuration(); d != 14*time.Hour {
				t.Errorf("retry_after = %v, want 14h (next UTC day)", d)
			}
			if got.Reasons[0].Rule != RuleWarmup || got.Reasons[0].Level != "sender" {
				t.Errorf("reason = %v", got.Reasons[0])
			}
		})
	}
}

func TestAutoWarmupAndHold(t *testing.T) {
	s, clk := newTestState(func(c *Config) { c.AutoWarmup = true })
	r := &sgv1.CheckRequest{Sender: "new@acme.io", Recipient: "b@x.com", Count: 20}
	wantVerdict(t, s.Check("t1", r, t0), allow)
	r.Count = 1
	wantVerdict(t, s.Check("t1", r, t0), deferV)
	p := s.DrainPending()
	if len(p) != 1 || p[0].Rule != RuleWarmup || p[0].Scope.Target != "new@acme.io" {
		t.Fatalf("pending = %v", p)
	}
	if len(s.DrainPending()) != 0 {
		t.Error("pending not drained")
	}
	if s.Apply(p[0]) {
		t.Error("publishing the pending warm-up back re-applied it")
	}
	// Day 9: cap 66; a complaint freezes the ramp there.
	day9 := t0.Add(8 * 24 * time.Hour)
	clk.Set(day9)
	cmds := s.FromEvent(&sgv1.Event{
		EventId: "e1", Tenant: "t1", Type: sgv1.EventType_EVENT_TYPE_COMPLAINED,
		OccurredAt: ts(day9), Sender: "new@acme.io", Recipient: "bob@gmail.com",
	})
	var hold *sgv1.ControlCommand
	for _, c := range cmds {
		if c.Rule == RuleWarmup {
			hold = c
		}
		mustApply(t, s, c)
	}
	if hold == nil || hold.DailyCap != 66 {
		t.Fatalf("hold = %v, want daily_cap 66", hold)
	}
	day12 := t0.Add(11 * 24 * time.Hour)
	r.Count = 66
	wantVerdict(t, s.Check("t1", r, day12), allow)
	r.Count = 1
	wantVerdict(t, s.Check("t1", r, day12), deferV)
	// Established sender: a warm-up record from long ago caps nothing.
	mustApply(t, s, WarmupCommand("t1", "old@acme.io", t0.Add(-400*24*time.Hour)))
	wantVerdict(t, s.Check("t1", &sgv1.CheckRequest{Sender: "old@acme.io", Recipient: "b@x.com", Count: 5000}, t0), allow)
	if len(s.DrainPending()) != 0 {
		t.Error("known sender got an automatic warm-up")
	}
}

func TestFrequencyCap(t *testing.T) {
	s, _ := newTestState(func(c *Config) { c.FrequencyCap = 3; c.FrequencyWindow = 7 * 24 * time.Hour })
	rc := "bob@bigco.com"
	send := []struct {
		at       time.Duration
		sender   string
		campaign string
		want     sgv1.Verdict
		retry    time.Duration
	}{
		{0, "ann@acme.io", "c1", allow, 0},
		{24 * time.Hour, "joe@acme.io", "c2", allow, 0},
		{48 * time.Hour, "ann@other.io", "c3", allow, 0},
		{72 * time.Hour, "ann@acme.io", "c4", deferV, 4 * 24 * time.Hour},
		{7 * 24 * time.Hour, "ann@acme.io", "c4", allow, 0},
		{7*24*time.Hour + time.Minute, "ann@acme.io", "c5", deferV, 24*time.Hour - time.Minute},
	}
	for i, st := range send {
		got := s.Check("t1", &sgv1.CheckRequest{Sender: st.sender, Recipient: rc, Campaign: st.campaign}, t0.Add(st.at))
		if got.Verdict != st.want {
			t.Fatalf("send %d: verdict %v, want %v", i, got.Verdict, st.want)
		}
		if st.want == deferV {
			if d := got.RetryAfter.AsDuration(); d != st.retry {
				t.Errorf("send %d: retry_after %v, want %v", i, d, st.retry)
			}
			if got.Reasons[0].Rule != RuleFrequencyCap {
				t.Errorf("send %d: reason %v", i, got.Reasons[0])
			}
		}
	}
	// Other recipients are unaffected.
	wantVerdict(t, s.Check("t1", req("ann@acme.io", "eve@bigco.com"), t0.Add(72*time.Hour)), allow)
}

func TestDryRunAndRollback(t *testing.T) {
	s, _ := newTestState(func(c *Config) { c.FrequencyCap = 1 })
	c := command("t1", lSender, "ann@acme.io", aThrottle, "r", time.Time{})
	c.DailyCap = 2
	mustApply(t, s, c)
	dry := &sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: "a@x.com", DryRun: true}
	for range 5 {
		wantVerdict(t, s.Check("t1", dry, t0), allow)
	}
	wantVerdict(t, s.Check("t1", req("ann@acme.io", "a@x.com"), t0), allow)
	// The frequency cap defers this one; the daily cap must not be spent by it.
	wantVerdict(t, s.Check("t1", req("ann@acme.io", "a@x.com"), t0), deferV)
	wantVerdict(t, s.Check("t1", req("ann@acme.io", "b@x.com"), t0), allow)
	got := s.Check("t1", req("ann@acme.io", "c@x.com"), t0)
	wantVerdict(t, got, deferV)
	if len(got.Reasons) != 1 || got.Reasons[0].Rule != "r" {
		t.Errorf("reasons = %v", got.Reasons)
	}
}

func TestCheckInvalidAndBatch(t *testing.T) {
	s, _ := newTestState(nil)
	wantVerdict(t, s.Check("", req("a@b.c", "d@e.f"), t0), deny)
	wantVerdict(t, s.Check("t1", &sgv1.CheckRequest{Recipient: "d@e.f"}, t0), deny)
	wantVerdict(t, s.Check("t1", nil, t0), deny)
	mustApply(t, s, command("t1", lRcpt, "x@y.com", aSuppress, RuleSuppression, time.Time{}))
	out := s.CheckBatch("t1", []*sgv1.CheckRequest{req("a@b.c", "x@y.com"), req("a@b.c", "z@y.com")}, t0)
	if len(out) != 2 || out[0].Verdict != deny || out[1].Verdict != allow {
		t.Errorf("batch = %v", out)
	}
}

func TestReissuedThrottleKeepsCounters(t *testing.T) {
	tests := []struct {
		name  string
		set   func(c *sgv1.ControlCommand)
		level sgv1.ScopeLevel
		tgt   string
	}{
		{"daily cap at provider level", func(c *sgv1.ControlCommand) { c.DailyCap = 10 }, lProvider, "gmail"},
		{"ratio at domain_provider level", func(c *sgv1.ControlCommand) {
			c.CapRatio = 0.5
			c.Explanation = &sgv1.Explanation{SampleSize: 20}
		}, lDomProv, "acme.io|gmail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestState(nil)
			r := req("ann@acme.io", "bob@gmail.com")
			for round := range 3 {
				c := command("t1", tc.level, tc.tgt, aThrottle, "r", time.Time{})
				tc.set(c)
				mustApply(t, s, c)
				want := allow
				if round > 0 {
					want = deferV
				}
				got := s.Check("t1", &sgv1.CheckRequest{Sender: r.Sender, Recipient: r.Recipient, Count: 10}, t0)
				wantVerdict(t, got, want)
			}
		})
	}
}

func TestDeferRetryAfterStopsAtThrottleEnd(t *testing.T) {
	s, _ := newTestState(nil)
	c := command("t1", lCampaign, "c1", aThrottle, "r", t0.Add(2*time.Hour))
	c.DailyCap = 1
	mustApply(t, s, c)
	r := req("ann@acme.io", "bob@gmail.com")
	wantVerdict(t, s.Check("t1", r, t0), allow)
	got := s.Check("t1", r, t0)
	wantVerdict(t, got, deferV)
	if d := got.RetryAfter.AsDuration(); d != 2*time.Hour {
		t.Errorf("retry_after = %v, want 2h (the throttle's until)", d)
	}
	wantVerdict(t, s.Check("t1", r, t0.Add(2*time.Hour)), allow)
}

func TestTenantLevelTargetIsTheTenant(t *testing.T) {
	s, _ := newTestState(nil)
	mustApply(t, s, command("A", lTenant, "B", aPause, RuleManual, time.Time{}))
	wantVerdict(t, s.Check("A", req("a@b.io", "c@d.io"), t0), deny)
	wantVerdict(t, s.Check("B", req("a@b.io", "c@d.io"), t0), allow)
}
