package enforce

import (
	"sort"

	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/proto"
)

// ScopeStatus is one live enforcement entry, for `sgctl status`.
type ScopeStatus struct {
	Level  string // level word, e.g. "domain"
	Target string
	Action string // pause, throttle or suppress
	Rule   string
	Reason string
	Actor  string
	// At is when the entry began; Until when it ends (zero: open-ended).
	At, Until time.Time
	// Remaining is the time until it ends; 0 when open-ended.
	Remaining time.Duration
	CapRatio  float64
	// DailyCap is the throttle's daily cap, or a warming sender's cap today.
	DailyCap int64
	Summary  string
}

// Status lists a tenant's live pauses, throttles, suppressions and active
// warm-ups at the state's clock, sorted by level, target and action.
func (s *State) Status(tenantName string) []ScopeStatus {
	t := s.tenantFor(tenantName, false)
	if t == nil {
		return nil
	}
	now := s.cfg.Clock()
	var out []ScopeStatus
	row := func(cmd *sgv1.ControlCommand, until time.Time) ScopeStatus {
		st := ScopeStatus{
			Level:    LevelWord(cmd.GetScope().GetLevel()),
			Target:   cmd.GetScope().GetTarget(),
			Action:   ActionWord(cmd.GetAction()),
			Rule:     cmd.GetRule(),
			Reason:   cmd.GetReason(),
			Actor:    cmd.GetActor(),
			Until:    until,
			CapRatio: cmd.GetCapRatio(),
			DailyCap: cmd.GetDailyCap(),
			Summary:  cmd.GetExplanation().GetSummary(),
		}
		if cmd.GetAt() != nil {
			st.At = cmd.GetAt().AsTime()
		}
		if !until.IsZero() {
			st.Remaining = until.Sub(now)
		}
		return st
	}
	d := dayOf(now)
	t.mu.RLock()
	for _, g := range t.gates {
		if g.live(now) {
			out = append(out, row(g.cmd, g.until))
		}
	}
	for _, p := range t.supps {
		if p.live(now) {
			out = append(out, row(p.cmd, p.until))
		}
	}
	for _, w := range t.warmups {
		if c := s.warmupCap(w, d); c > 0 {
			r := row(w.cmd, dayStart(s.warmupEnd(w.start)))
			r.Action = ActionWord(sgv1.Action_ACTION_THROTTLE)
			r.DailyCap = c
			out = append(out, r)
		}
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Level != b.Level {
			return a.Level < b.Level
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Action < b.Action
	})
	return out
}

// Snapshot returns a tenant's current state as a minimal list of commands:
// one per live pause or throttle, one per live suppression and one per
// warm-up record (kept after the warm-up ends so the sender stays known),
// sorted by CommandKey. Restore of the list gives an equal state. Counters
// (daily usage, buckets, frequency windows) are not part of it; feed
// ObserveVolume after a restore.
func (s *State) Snapshot(tenantName string) []*sgv1.ControlCommand {
	t := s.tenantFor(tenantName, false)
	if t == nil {
		return nil
	}
	now := s.cfg.Clock()
	var out []*sgv1.ControlCommand
	t.mu.RLock()
	for _, g := range t.gates {
		if g.live(now) {
			out = append(out, proto.Clone(g.cmd).(*sgv1.ControlCommand))
		}
	}
	for _, p := range t.supps {
		if p.live(now) {
			out = append(out, proto.Clone(p.cmd).(*sgv1.ControlCommand))
		}
	}
	for _, w := range t.warmups {
		out = append(out, warmupRecord(w))
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return CommandKey(out[i]) < CommandKey(out[j]) })
	return out
}

// Export returns the current state of every tenant (Snapshot of each, by
// tenant name): what a compacted state topic holds.
func (s *State) Export() []*sgv1.ControlCommand {
	s.mu.RLock()
	names := make([]string, 0, len(s.tenants))
	for n := range s.tenants {
		names = append(names, n)
	}
	s.mu.RUnlock()
	sort.Strings(names)
	var out []*sgv1.ControlCommand
	for _, n := range names {
		out = append(out, s.Snapshot(n)...)
	}
	return out
}

// Restore applies a list of commands such as Export returned, in order,
// regardless of whether their ids were seen, and remembers their ids. It
// returns how many changed the state.
func (s *State) Restore(cmds []*sgv1.ControlCommand) int {
	n := 0
	for _, c := range cmds {
		k, tn, ok := commandScope(c)
		if !ok {
			continue
		}
		if id := c.GetCommandId(); id != "" {
			s.markSeen(tn + "\x00" + id)
		}
		if s.apply(c, tn, k) {
			n++
		}
	}
	return n
}

// Sweep forgets what can no longer matter at now: expired pauses, throttles
// and suppressions, frequency windows with no send inside the window, and
// volume counters two days old. Call it periodically (e.g. every minute);
// Check ignores expired entries whether or not they were swept.
func (s *State) Sweep(now time.Time) {
	s.mu.RLock()
	ts := make([]*tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		ts = append(ts, t)
	}
	s.mu.RUnlock()
	floor := now.Add(-s.cfg.FrequencyWindow).UnixNano()
	d := dayOf(now)
	for _, t := range ts {
		t.mu.Lock()
		for k, g := range t.gates {
			if !g.live(now) {
				t.deleteGate(k)
			}
		}
		for k, p := range t.supps {
			if !p.live(now) {
				t.deleteSupp(k)
			}
		}
		t.mu.Unlock()
		for i := range t.freq {
			sh := &t.freq[i]
			sh.mu.Lock()
			for r, ring := range sh.m {
				if len(ring.times) == 0 || ring.times[len(ring.times)-1] <= floor {
					delete(sh.m, r)
				}
			}
			sh.mu.Unlock()
		}
		for i := range t.vol {
			sh := &t.vol[i]
			sh.mu.Lock()
			for k, v := range sh.m {
				v.mu.Lock()
				old := v.day < d-1
				v.mu.Unlock()
				if old {
					delete(sh.m, k)
				}
			}
			sh.mu.Unlock()
		}
	}
	s.cdMu.Lock()
	cdFloor := now.Add(-s.cfg.CooldownWindow)
	for k, nc := range s.negatives {
		if !nc.last.After(cdFloor) {
			delete(s.negatives, k)
		}
	}
	s.cdMu.Unlock()
}

// Tenants lists the tenants the state knows, sorted.
func (s *State) Tenants() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.tenants))
	for n := range s.tenants {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
