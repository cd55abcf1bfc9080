package enforce

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestKind(t *testing.T) {
	tests := []struct {
		rule, reason, want string
	}{
		{RuleManual, "asked by phone", KindManual},
		{RuleCooldown, ReasonAccountCooldown, "cooldown"},
		{RuleWarmup, "", "warmup"},
		{RuleSuppression, ReasonUnsubscribe, "unsubscribe"},
		{RuleSuppression, ReasonHardBounce, "hard_bounce"},
		{RuleSuppression, ReasonAccountComplaint, "account_complaint"},
		{RuleSuppression, "free text from somewhere", KindEvent},
		{"domain-complaint-2days", "", KindRule},
	}
	for _, tc := range tests {
		t.Run(tc.rule+"/"+tc.reason, func(t *testing.T) {
			if got := Kind(&sgv1.ControlCommand{Rule: tc.rule, Reason: tc.reason}); got != tc.want {
				t.Errorf("Kind = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	s, clk := newTestState(func(c *Config) { c.FrequencyCap = 3 })
	hour := time.Hour
	throttle := func(tn string, level sgv1.ScopeLevel, target, rule string, until time.Time) *sgv1.ControlCommand {
		c := command(tn, level, target, aThrottle, rule, until)
		c.DailyCap = 100
		return c
	}
	for _, c := range []*sgv1.ControlCommand{
		command("t1", lDomain, "acme.io", aPause, "domain-complaint-2days", t0.Add(72*hour)),
		command("t2", lDomain, "beta.io", aPause, "domain-complaint-2days", time.Time{}),
		command("t1", lSender, "ann@acme.io", aPause, RuleManual, t0.Add(hour)), // expires below
		throttle("t1", lCampaign, "c1", "campaign-bounces", t0.Add(48*hour)),
		throttle("t1", lDomain, "acme.io", RuleManual, time.Time{}), // replaces the pause of acme.io
		command("t1", lCampaign, "c9", aPause, "r", time.Time{}),
		command("t1", lCampaign, "c9", aResume, "r", time.Time{}), // resumed: gone
		command("t1", lRcpt, "old@x.com", aSuppress, RuleManual, time.Time{}),
		command("t1", lRcpt, "gone@x.com", aSuppress, RuleManual, time.Time{}),
		command("t1", lRcpt, "gone@x.com", aUnsuppress, RuleManual, time.Time{}),
		WarmupCommand("t1", "new@acme.io", t0),
		WarmupCommand("t1", "old@acme.io", t0.Add(-30*24*hour)),
	} {
		mustApply(t, s, c)
	}
	for _, e := range []*sgv1.Event{
		event("u1", sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, "u1@bigco.com", t0),
		event("u2", sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, "u2@bigco.com", t0), // second contact at bigco.com: cooldown
		event("c1", sgv1.EventType_EVENT_TYPE_COMPLAINED, "c1@gmail.com", t0),
	} {
		applyAll(t, s, s.FromEvent(e))
	}
	for i := range 5 {
		wantVerdict(t, s.Check("t1", req("bob@calm.io", fmt.Sprintf("r%d@example.com", i)), t0), allow)
	}

	key := func(l sgv1.ScopeLevel, kind string) EntryKey { return EntryKey{l, kind} }
	want := Sizes{
		Tenants: 2,
		Pauses: map[EntryKey]int{
			key(lDomain, KindRule):   1,
			key(lSender, KindManual): 1,
		},
		Throttles: map[EntryKey]int{
			key(lCampaign, KindRule): 1,
			key(lDomain, KindManual): 1,
		},
		Suppressions: map[EntryKey]int{
			key(lRcpt, KindManual):    1,
			key(lRcpt, "unsubscribe"): 2,
			key(lRcpt, "complaint"):   1,
			key(lAccount, "cooldown"): 1,
		},
		WarmupsActive:       1,
		WarmupsDone:         1,
		FrequencyRecipients: 5,
		NegativeAccounts:    1,
		RecipientDomains:    1,
	}
	got := s.Sizes(t0)
	// Counters and remembered ids depend on Check's and Apply's internals;
	// they must be there, their exact numbers are not the contract.
	if got.VolumeCounters == 0 || got.SeenIDs < 12 {
		t.Errorf("VolumeCounters = %d, SeenIDs = %d: want both counted", got.VolumeCounters, got.SeenIDs)
	}
	got.VolumeCounters, got.SeenIDs = 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Sizes(t0) =\n%+v\nwant\n%+v", got, want)
	}

	// Two hours later the manual sender pause is expired: still stored (and
	// counted) until a Sweep removes it.
	later := t0.Add(2 * hour)
	clk.Set(later)
	if n := s.Sizes(later).Pauses[key(lSender, KindManual)]; n != 1 {
		t.Errorf("expired, unswept sender pause counted %d times, want 1", n)
	}
	s.Sweep(later)
	got = s.Sizes(later)
	if n, ok := got.Pauses[key(lSender, KindManual)]; ok {
		t.Errorf("after Sweep: sender pauses = %d, want none", n)
	}
	if got.Pauses[key(lDomain, KindRule)] != 1 || got.Suppressions[key(lRcpt, "unsubscribe")] != 2 {
		t.Errorf("after Sweep: live entries lost: %+v", got)
	}
}

// TestSizesCountsFollowEveryChange checks the kept counts against a scan of
// the entries after each kind of change: replacing a pause by a throttle,
// re-suppressing with a longer until, resume, unsuppress, restore, sweep.
func TestSizesCountsFollowEveryChange(t *testing.T) {
	s, clk := newTestState(nil)
	scan := func() (pauses, throttles, supps map[EntryKey]int) {
		pauses, throttles, supps = map[EntryKey]int{}, map[EntryKey]int{}, map[EntryKey]int{}
		for _, tn := range s.Tenants() {
			tt := s.tenantFor(tn, false)
			tt.mu.RLock()
			for k, g := range tt.gates {
				if g.lim == nil {
					pauses[EntryKey{k.level, Kind(g.cmd)}]++
				} else {
					throttles[EntryKey{k.level, Kind(g.cmd)}]++
				}
			}
			for k, p := range tt.supps {
				supps[EntryKey{k.level, Kind(p.cmd)}]++
			}
			tt.mu.RUnlock()
		}
		return pauses, throttles, supps
	}
	throttle := command("t1", lDomain, "acme.io", aThrottle, "r", time.Time{})
	throttle.CapRatio = 0.5
	manualSupp := command("t1", lRcpt, "bob@x.com", aSuppress, RuleManual, t0.Add(time.Hour))
	steps := []struct {
		name string
		do   func()
	}{
		{"pause", func() { s.Apply(command("t1", lDomain, "acme.io", aPause, RuleManual, time.Time{})) }},
		{"throttle replaces pause", func() { s.Apply(throttle) }},
		{"suppress", func() { s.Apply(command("t1", lRcpt, "bob@x.com", aSuppress, "r", t0.Add(time.Minute))) }},
		{"longer suppression replaces", func() { s.Apply(manualSupp) }},
		{"shorter suppression ignored", func() { s.Apply(command("t1", lRcpt, "bob@x.com", aSuppress, "r", t0.Add(time.Minute))) }},
		{"second tenant", func() { s.Apply(command("t2", lSender, "a@b.io", aPause, "r", t0.Add(time.Minute))) }},
		{"resume", func() { s.Apply(command("t1", lDomain, "acme.io", aResume, "r", time.Time{})) }},
		{"resume of nothing", func() { s.Apply(command("t1", lDomain, "none.io", aResume, "r", time.Time{})) }},
		{"restore", func() { s.Restore([]*sgv1.ControlCommand{throttle, manualSupp}) }},
		{"sweep", func() { clk.Set(t0.Add(2 * time.Hour)); s.Sweep(t0.Add(2 * time.Hour)) }},
		{"unsuppress", func() { s.Apply(command("t1", lRcpt, "bob@x.com", aUnsuppress, RuleManual, time.Time{})) }},
	}
	for _, st := range steps {
		st.do()
		got := s.Sizes(clk.Now())
		p, th, sp := scan()
		if !reflect.DeepEqual(got.Pauses, p) || !reflect.DeepEqual(got.Throttles, th) || !reflect.DeepEqual(got.Suppressions, sp) {
			t.Fatalf("after %s: Sizes = %v %v %v, scan = %v %v %v", st.name, got.Pauses, got.Throttles, got.Suppressions, p, th, sp)
		}
	}
}

func TestSizesEmpty(t *testing.T) {
	s, _ := newTestState(nil)
	got := s.Sizes(t0)
	want := Sizes{Pauses: map[EntryKey]int{}, Throttles: map[EntryKey]int{}, Suppressions: map[EntryKey]int{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Sizes of an empty state = %+v", got)
	}
}

// TestSizesConcurrent runs Sizes while commands and checks run (with -race
// it proves the counts are read under the locks).
func TestSizesConcurrent(t *testing.T) {
	s, _ := newTestState(nil)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := range 300 {
			s.Apply(command("t1", lRcpt, fmt.Sprintf("r%d@x.com", i), aSuppress, RuleManual, time.Time{}))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 300 {
			s.Check("t1", req("ann@acme.io", fmt.Sprintf("q%d@y.com", i)), t0)
		}
	}()
	go func() {
		defer wg.Done()
		for range 50 {
			s.Sizes(t0)
		}
	}()
	wg.Wait()
	if n := s.Sizes(t0).Suppressions[EntryKey{lRcpt, KindManual}]; n != 300 {
		t.Fatalf("suppressions = %d, want 300", n)
	}
}

// BenchmarkSizes measures a scrape of a large state: one tenant with 1M
// recipient suppressions and 10k pauses (go test -bench Sizes -benchtime 5x).
func BenchmarkSizes(b *testing.B) {
	s, _ := newTestState(nil)
	for i := range 1_000_000 {
		c := command("t1", lRcpt, fmt.Sprintf("r%d@x%d.com", i, i%1000), aSuppress, RuleSuppression, time.Time{})
		c.Reason = ReasonUnsubscribe
		s.Apply(c)
	}
	for i := range 10_000 {
		s.Apply(command("t1", lSender, fmt.Sprintf("s%d@acme.io", i), aPause, "r", time.Time{}))
	}
	b.ResetTimer()
	for range b.N {
		if n := s.Sizes(t0).Suppressions[EntryKey{lRcpt, ReasonUnsubscribe}]; n != 1_000_000 {
			b.Fatalf("suppressions = %d", n)
		}
	}
}
