package enforce

import (
	"fmt"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestShare(t *testing.T) {
	tests := []struct {
		capacity  int64
		instances int
	}{{0, 3}, {1, 3}, {10, 3}, {20, 4}, {1000, 7}, {99, 1}, {5, 0}, {-5, 2}}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d/%d", tc.capacity, tc.instances), func(t *testing.T) {
			n := max(tc.instances, 1)
			var sum, lo, hi int64 = 0, 1 << 62, 0
			for i := range n {
				p := Share(tc.capacity, tc.instances, i)
				sum += p
				lo, hi = min(lo, p), max(hi, p)
			}
			if want := max(tc.capacity, 0); sum != want {
				t.Errorf("shares sum to %d, want %d", sum, want)
			}
			if hi-lo > 1 {
				t.Errorf("shares differ by %d", hi-lo)
			}
		})
	}
	if Share(10, 3, 3) != 0 || Share(10, 3, -1) != 0 {
		t.Error("out-of-range index got a share")
	}
}

func TestOwner(t *testing.T) {
	members := []string{"a", "b", "c", "d"}
	counts := map[string]int{}
	moved := 0
	for i := range 4000 {
		key := fmt.Sprintf("t1|s%d@acme.io", i)
		o := Owner(key, members)
		if o != Owner(key, []string{"d", "c", "b", "a"}) {
			t.Fatal("owner depends on member order")
		}
		counts[o]++
		if o != "d" && Owner(key, members[:3]) != o {
			moved++
		}
	}
	for m, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("member %s owns %d of 4000", m, c)
		}
	}
	if moved != 0 {
		t.Errorf("%d keys moved between surviving members when d left", moved)
	}
	if Owner("k", nil) != "" {
		t.Error("owner of an empty fleet")
	}
}

// TestFleetCapWithinOnePercent runs four instances with split shares behind
// an unevenly balanced client that retries a DEFER on the next instance, and
// checks that the fleet admits the cap, not more and not less than 1 % less.
func TestFleetCapWithinOnePercent(t *testing.T) {
	const instances, capacity = 4, 10_000
	fleet := make([]*State, instances)
	for i := range fleet {
		s, _ := newTestState(func(c *Config) { c.Instances, c.Index = instances, i })
		th := command("t1", lDomain, "acme.io", aThrottle, "r", time.Time{})
		th.CommandId = "throttle-1"
		th.DailyCap = capacity
		mustApply(t, s, th)
		fleet[i] = s
	}
	// Skewed balancing: instance 0 gets 40 % of first attempts, 3 gets 10 %.
	weights := []int{4, 3, 2, 1}
	var pick []int
	for i, w := range weights {
		for range w {
			pick = append(pick, i)
		}
	}
	admitted := 0
	now := t0
	for m := range 2 * capacity {
		inst := pick[m%len(pick)]
		for try := range instances {
			got := fleet[(inst+try)%instances].Check("t1", &sgv1.CheckRequest{Sender: "a@acme.io", Recipient: fmt.Sprintf("r%d@x.com", m)}, now)
			if got.Verdict == allow {
				admitted++
				break
			}
			if d := got.RetryAfter.AsDuration(); d != 30*time.Second {
				t.Fatalf("spill retry_after = %v, want 30s", d)
			}
		}
		now = now.Add(time.Millisecond)
	}
	if admitted > capacity || admitted < capacity*99/100 {
		t.Errorf("fleet admitted %d, want %d within 1 %% and never more", admitted, capacity)
	}
}

func TestSenderAffinityHoldsWholeWarmup(t *testing.T) {
	s, _ := newTestState(func(c *Config) { c.Instances, c.Index, c.SenderAffinity = 4, 1, true })
	mustApply(t, s, WarmupCommand("t1", "new@acme.io", t0))
	r := &sgv1.CheckRequest{Sender: "new@acme.io", Recipient: "b@x.com", Count: 20}
	wantVerdict(t, s.Check("t1", r, t0), allow)
	split, _ := newTestState(func(c *Config) { c.Instances, c.Index = 4, 1 })
	mustApply(t, split, WarmupCommand("t1", "new@acme.io", t0))
	wantVerdict(t, split.Check("t1", r, t0), deferV)
	r.Count = 5
	wantVerdict(t, split.Check("t1", r, t0), allow)
}
