package enforce

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// benchState has a realistic spread: pauses and suppressions at several
// levels that do not match most checks, a throttle that does, and the
// frequency cap on.
func benchState(b *testing.B) *State {
	s, _ := newTestState(func(c *Config) { c.FrequencyCap = 1 << 30; c.Clock = func() time.Time { return t0 } })
	for i := range 1000 {
		s.Apply(command("t1", lRcpt, fmt.Sprintf("gone%d@bigco.com", i), aSuppress, RuleSuppression, time.Time{}))
	}
	s.Apply(command("t1", lCampaign, "paused", aPause, "r", time.Time{}))
	s.Apply(command("t1", lAccount, "blocked.com", aSuppress, RuleSuppression, time.Time{}))
	th := command("t1", lDomain, "acme.io", aThrottle, "r", time.Time{})
	th.DailyCap = 1 << 40
	s.Apply(th)
	return s
}

func BenchmarkCheckParallel(b *testing.B) {
	s := benchState(b)
	reqs := make([]*sgv1.CheckRequest, 4096)
	for i := range reqs {
		reqs[i] = &sgv1.CheckRequest{
			Sender:    fmt.Sprintf("s%d@acme.io", i%16),
			Recipient: fmt.Sprintf("r%d@co%d.com", i, i%100),
			Campaign:  "c1", Variant: "v1",
		}
	}
	var ctr atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := ctr.Add(1) * 7919
		for pb.Next() {
			i++
			if s.Check("t1", reqs[i%uint64(len(reqs))], t0).Verdict != allow {
				b.Fatal("not allowed")
			}
		}
	})
}

func BenchmarkCheckDeny(b *testing.B) {
	s := benchState(b)
	q := &sgv1.CheckRequest{Sender: "s@acme.io", Recipient: "gone7@bigco.com", Campaign: "c1"}
	b.ReportAllocs()
	for b.Loop() {
		if s.Check("t1", q, t0).Verdict != deny {
			b.Fatal("not denied")
		}
	}
}

func BenchmarkApply(b *testing.B) {
	s := benchState(b)
	cmds := make([]*sgv1.ControlCommand, 1024)
	for i := range cmds {
		a := aPause
		if i%2 == 1 {
			a = aResume
		}
		cmds[i] = command("t1", lSender, fmt.Sprintf("s%d@acme.io", i/2%64), a, "r", time.Time{})
		cmds[i].CommandId = ""
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Apply(cmds[i%len(cmds)])
		i++
	}
}
