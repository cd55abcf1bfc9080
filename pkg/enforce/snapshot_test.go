package enforce

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/proto"
)

// buildState fills a state with one of everything.
func buildState(t *testing.T, s *State) {
	t.Helper()
	mustApply(t, s, command("A", lDomain, "acme.io", aPause, "complaint_pause", t0.Add(72*time.Hour)))
	mustApply(t, s, command("A", lTenant, "", aPause, RuleManual, time.Time{}))
	th := command("A", lSender, "ann@acme.io", aThrottle, "bounce_warning", t0.Add(48*time.Hour))
	th.DailyCap, th.CapRatio = 50, 0.7
	mustApply(t, s, th)
	mustApply(t, s, command("B", lCampaign, "c1", aPause, "r", time.Time{}))
	mustApply(t, s, command("B", lCampaign, "c2", aPause, "r", t0.Add(-time.Hour))) // expired
	mustApply(t, s, command("B", lDomProv, "acme.io|gmail", aPause, "r", time.Time{}))
	mustApply(t, s, WarmupCommand("A", "new@acme.io", t0.Add(-2*24*time.Hour)))
	mustApply(t, s, WarmupCommand("A", "old@acme.io", t0.Add(-100*24*time.Hour)))
	done := WarmupCommand("B", "quick@acme.io", t0.Add(-3*24*time.Hour))
	mustApply(t, s, done)
	end := proto.Clone(done).(*sgv1.ControlCommand)
	end.CommandId, end.Action = "end-warmup", aResume
	mustApply(t, s, end)
	for _, e := range []*sgv1.Event{
		event("e1", sgv1.EventType_EVENT_TYPE_COMPLAINED, "bob@bigco.com", t0),
		event("e2", sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, "carol@bigco.com", t0),
		{EventId: "e3", Tenant: "B", Type: sgv1.EventType_EVENT_TYPE_REPLIED, OccurredAt: ts(t0), Recipient: "x@gmail.com",
			Reply: &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT}},
	} {
		applyAll(t, s, s.FromEvent(e))
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	s, clk := newTestState(nil)
	buildState(t, s)
	exp := s.Export()
	// One command per live scope state: A tenant, A domain, A sender gate,
	// 2 A warm-ups, bob + carol + bigco.com suppressions, B campaign c1,
	// B domain_provider, B warm-up, B x@gmail.com.
	if len(exp) != 12 {
		for _, c := range exp {
			t.Log(CommandKey(c), c.Action, c.Rule)
		}
		t.Fatalf("export has %d commands, want 12", len(exp))
	}
	keys := map[string]bool{}
	for _, c := range exp {
		k := CommandKey(c)
		if keys[k] {
			t.Errorf("duplicate key %s", k)
		}
		keys[k] = true
	}

	r, _ := newTestState(func(c *Config) { c.Clock = clk.Now })
	if n := r.Restore(exp); n != len(exp) {
		t.Errorf("Restore applied %d of %d", n, len(exp))
	}
	exp2 := r.Export()
	if len(exp2) != len(exp) {
		t.Fatalf("re-export has %d, want %d", len(exp2), len(exp))
	}
	for i := range exp {
		if !proto.Equal(exp[i], exp2[i]) {
			t.Errorf("command %d differs:\n%v\n%v", i, exp[i], exp2[i])
		}
	}
	for _, tn := range []string{"A", "B"} {
		if a, b := s.Status(tn), r.Status(tn); !reflect.DeepEqual(a, b) {
			t.Errorf("status %s differs:\n%v\n%v", tn, a, b)
		}
	}
	// Same answers for a grid of checks.
	senders := []string{"ann@acme.io", "new@acme.io", "old@acme.io", "quick@acme.io", "z@other.io"}
	rcpts := []string{"bob@bigco.com", "dan@bigco.com", "x@gmail.com", "y@gmail.com", "q@yahoo.com"}
	for _, tn := range []string{"A", "B", "C"} {
		for _, sd := range senders {
			for _, rc := range rcpts {
				for _, camp := range []string{"c1", "c2"} {
					q := &sgv1.CheckRequest{Sender: sd, Recipient: rc, Campaign: camp, DryRun: true, Count: 25}
					a, b := s.Check(tn, q, t0), r.Check(tn, q, t0)
					if !proto.Equal(a, b) {
						t.Errorf("%s %s→%s %s: %v vs %v", tn, sd, rc, camp, a, b)
					}
				}
			}
		}
	}
	// A restored state recognises the ids it was built from.
	if r.Apply(exp[0]) {
		t.Error("restored id applied again")
	}
}

func TestCurrentRecords(t *testing.T) {
	s, _ := newTestState(nil)
	p := command("A", lDomain, "Acme.io", aPause, "r", time.Time{})
	mustApply(t, s, p)
	key, cur := s.Current(p)
	if key != "A|domain|acme.io" || cur == nil || cur.Scope.Target != "acme.io" || cur.Action != aPause {
		t.Fatalf("Current = %q %v", key, cur)
	}
	res := command("A", lDomain, "acme.io", aResume, "r", time.Time{})
	mustApply(t, s, res)
	if key, cur := s.Current(res); key != "A|domain|acme.io" || cur != nil {
		t.Errorf("after resume Current = %q %v, want tombstone", key, cur)
	}
	long := command("A", lRcpt, "a@b.c", aSuppress, "x", time.Time{})
	mustApply(t, s, long)
	short := command("A", lRcpt, "a@b.c", aSuppress, "y", t0.Add(time.Hour))
	s.Apply(short)
	if _, cur := s.Current(short); cur == nil || cur.Rule != "x" {
		t.Errorf("Current after a shorter suppression = %v, want the open-ended one", cur)
	}
}

func TestStatus(t *testing.T) {
	s, clk := newTestState(nil)
	buildState(t, s)
	clk.Set(t0.Add(time.Hour))
	st := s.Status("A")
	var dom, warm *ScopeStatus
	for i := range st {
		switch {
		case st[i].Level == "domain":
			dom = &st[i]
		case st[i].Rule == RuleWarmup:
			warm = &st[i]
		}
	}
	if dom == nil || dom.Action != "pause" || dom.Remaining != 71*time.Hour || dom.Rule != "complaint_pause" {
		t.Errorf("domain status = %+v", dom)
	}
	if warm == nil || warm.Target != "new@acme.io" || warm.DailyCap != 30 || warm.Action != "throttle" {
		t.Errorf("warm-up status = %+v", warm)
	}
	for _, x := range st {
		if x.Target == "old@acme.io" {
			t.Errorf("graduated sender listed: %+v", x)
		}
	}
	if s.Status("nobody") != nil {
		t.Error("unknown tenant has status")
	}
}

func TestSweepKeepsLiveState(t *testing.T) {
	s, clk := newTestState(func(c *Config) { c.FrequencyCap = 2 })
	buildState(t, s)
	wantVerdict(t, s.Check("Z", req("a@b.io", "r@x.com"), t0), allow)
	before := s.Export()
	s.Sweep(t0)
	if after := s.Export(); len(after) != len(before) {
		t.Errorf("sweep at t0 changed export: %d → %d", len(before), len(after))
	}
	clk.Set(t0.Add(31 * 24 * time.Hour))
	s.Sweep(t0.Add(31 * 24 * time.Hour))
	for _, c := range s.Export() {
		if c.Until != nil && !c.Until.AsTime().After(t0.Add(31*24*time.Hour)) {
			t.Errorf("expired command survived sweep: %v", c)
		}
	}
	tn := s.tenantFor("Z", false)
	for i := range tn.freq {
		if len(tn.freq[i].m) != 0 {
			t.Error("frequency window survived sweep")
		}
	}
}

func TestConcurrentCheckAndApply(t *testing.T) {
	s, _ := newTestState(func(c *Config) { c.FrequencyCap = 1000; c.AutoWarmup = true })
	c := command("t1", lDomain, "acme.io", aThrottle, "r", time.Time{})
	c.DailyCap = 1000
	mustApply(t, s, c)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Go(func() {
			n := 0
			for i := range 2000 {
				x := i*7 + g*13
				q := &sgv1.CheckRequest{
					Sender:    fmt.Sprintf("s%d@acme.io", x%4),
					Recipient: fmt.Sprintf("r%d@bigco%d.com", x%50, x%3),
					Campaign:  fmt.Sprintf("c%d", x%3),
				}
				if s.Check("t1", q, t0.Add(time.Duration(i)*time.Millisecond)).Verdict == allow {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Go(func() {
		for i := range 500 {
			p := command("t1", lCampaign, "c2", aPause, "r", time.Time{})
			s.Apply(p)
			s.Apply(command("t1", lRcpt, fmt.Sprintf("r%d@bigco0.com", i%50), aSuppress, "r", time.Time{}))
			s.Apply(command("t1", lCampaign, "c2", aResume, "r", time.Time{}))
			s.Apply(command("t1", lRcpt, fmt.Sprintf("r%d@bigco0.com", i%50), aUnsuppress, "r", time.Time{}))
			if i%100 == 0 {
				s.Sweep(t0)
				_ = s.Export()
				_ = s.Status("t1")
			}
		}
	})
	wg.Wait()
	// The domain's daily cap holds under contention (warm-ups cap each of the
	// 4 senders at 20 first).
	if allowed > 80 {
		t.Errorf("allowed %d, want ≤ 80 (4 warming senders × 20)", allowed)
	}
	if allowed == 0 {
		t.Error("nothing allowed")
	}
}

func TestConcurrentDailyCapExact(t *testing.T) {
	s, _ := newTestState(nil)
	c := command("t1", lDomain, "acme.io", aThrottle, "r", time.Time{})
	c.DailyCap = 1000
	mustApply(t, s, c)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Go(func() {
			n := 0
			for i := range 500 {
				q := &sgv1.CheckRequest{Sender: fmt.Sprintf("s%d@acme.io", g), Recipient: fmt.Sprintf("r%d@x.com", i)}
				if s.Check("t1", q, t0).Verdict == allow {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 1000 {
		t.Errorf("allowed %d, want exactly 1000", allowed)
	}
}
