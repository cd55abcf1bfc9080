package rules

import (
	"math/rand/v2"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// noisy returns sender metrics whose complaint rates wander in [lo, hi].
func noisy(r *rand.Rand, lo, hi float64) m {
	c24 := lo + r.Float64()*(hi-lo)
	c48 := lo + r.Float64()*(hi-lo)
	return m{
		"complaint_rate_24h": c24, "complaint_rate_48h": c48,
		"complaints_48h": c48 * 2000, "delivered_24h": 400 + r.Float64()*800, "delivered_48h": 2000,
		"sent_avg_7d": 1000,
	}
}

// A rate wandering across the 0.2 % pause threshold but never below the
// 0.1 % recovery line must never let the scope de-escalate: at most the
// escalations healthy → warning → paused, and after that only pause
// extensions.
func TestNoFlapOnNoisyBoundary(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		e := NewEngine(Default())
		at := t0
		maxRank, changes := 0, 0
		for i := 0; i < 600; i++ {
			at = at.Add(time.Duration(5+r.IntN(300)) * time.Minute)
			for _, d := range e.Evaluate(senderSnap(at, noisy(r, 0.0011, 0.0029))) {
				if rank(d.ToState) < rank(d.FromState) {
					t.Fatalf("seed %d: de-escalated %s → %s at %v although recovery never held", seed, d.FromState, d.ToState, at)
				}
				if d.ToState != d.FromState {
					changes++
				}
			}
			st, _ := e.State(senderSnap(at, nil).Scope)
			if rank(st.State) < maxRank {
				t.Fatalf("seed %d: state fell from rank %d to %s", seed, maxRank, st.State)
			}
			maxRank = rank(st.State)
		}
		if changes > 3 {
			t.Fatalf("seed %d: %d state changes on a noisy boundary", seed, changes)
		}
	}
}

// Random incidents and recoveries: every de-escalation happens only when
// the driving rule's recovery holds and after the minimum dwell (24 h for
// alert states, the rule's duration for restrictions, 72 h from the pause
// for a full stop), and ramp steps are ≥ 48 h apart and increasing.
func TestStateMachineInvariants(t *testing.T) {
	rs := Default()
	deesc, steps := 0, 0
	for seed := uint64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		e := NewEngine(rs)
		at := t0
		var pausedAt, enteredAt, lastStep time.Time
		lastRatio := 0.0
		phase := 0
		for i := 0; i < 1500; i++ {
			at = at.Add(time.Duration(10+r.IntN(240)) * time.Minute)
			if r.IntN(200) == 0 {
				phase = r.IntN(4)
			}
			var mm m
			switch phase {
			case 0:
				mm = noisy(r, 0, 0.0009)
			case 1:
				mm = noisy(r, 0.0009, 0.0016)
			case 2:
				mm = noisy(r, 0.0015, 0.0045)
			default:
				mm = noisy(r, 0, 0.0025)
			}
			snap := senderSnap(at, mm)
			before, _ := e.State(snap.Scope)
			ds := e.Evaluate(snap)
			mustDecisions(t, ds)
			after, _ := e.State(snap.Scope)
			if after.State != before.State {
				if after.State == paused && before.State != cooldown {
					pausedAt = at
				}
				if rank(after.State) < rank(before.State) || before.State == cooldown && after.State == ramping {
					deesc++
					drv := rs.base.byID[before.Rule]
					act, err := newActivation(snap)
					if err != nil {
						t.Fatal(err)
					}
					if drv != nil && !drv.recovered(act) && before.State != ramping {
						t.Fatalf("seed %d: left %s at %v without recovery of %s", seed, before.State, at, before.Rule)
					}
					var minDwell time.Duration
					switch before.State {
					case warning, risk:
						minDwell = 24 * time.Hour
					case restricted:
						minDwell = drv.rule.duration()
					}
					if at.Sub(enteredAt) < minDwell {
						t.Fatalf("seed %d: left %s after %v < %v", seed, before.State, at.Sub(enteredAt), minDwell)
					}
					if (before.State == paused || before.State == cooldown) && at.Sub(pausedAt) < 72*time.Hour {
						t.Fatalf("seed %d: full stop lasted %v < 72h", seed, at.Sub(pausedAt))
					}
				}
				if rank(after.State) > rank(before.State) || after.State == paused {
					enteredAt = at
				}
				if after.State == ramping && before.State != ramping {
					lastStep, lastRatio = at, after.RampRatio
				}
			}
			for _, d := range ds {
				if d.ToState == ramping && d.FromState == ramping && d.Action == sgv1.Action_ACTION_THROTTLE {
					if at.Sub(lastStep) < 48*time.Hour || d.CapRatio <= lastRatio {
						t.Fatalf("seed %d: ramp step %v → %v after %v", seed, lastRatio, d.CapRatio, at.Sub(lastStep))
					}
					lastStep, lastRatio = at, d.CapRatio
					steps++
				}
			}
		}
	}
	if deesc < 20 || steps < 5 {
		t.Fatalf("the random walk exercised too little: %d de-escalations, %d ramp steps", deesc, steps)
	}
	t.Logf("%d de-escalations, %d ramp steps checked", deesc, steps)
}
