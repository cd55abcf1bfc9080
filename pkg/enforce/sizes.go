package enforce

import (
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Entry kinds reported by Sizes and Kind. A pause or throttle is "manual"
// or "rule" (set by a rule decision; warm-ups are counted apart). A
// suppression is "manual", "cooldown" (an account cooldown), "rule" (a rule
// decision), or, for the suppressions events cause at once (rule
// "suppression"), its reason: unsubscribe, hard_bounce, complaint,
// do_not_contact, not_interested, account_complaint, role_account ("event"
// for any other reason).
const (
	KindManual = "manual"
	KindRule   = "rule"
	KindEvent  = "event"
)

// eventKinds are the reasons of event-driven suppressions reported as
// their own kind; the set is closed so that a metric labelled by kind has a
// bounded number of series.
var eventKinds = map[string]bool{
	ReasonUnsubscribe: true, ReasonHardBounce: true, ReasonComplaint: true, ReasonDoNotContact: true,
	ReasonNotInterested: true, ReasonAccountComplaint: true, ReasonRoleAccount: true,
}

// Kind classifies an enforcement command for counting (see the Kind*
// constants). It only looks at the rule and, for event suppressions, the
// reason; the result is one of a fixed, small set of words.
func Kind(cmd *sgv1.ControlCommand) string {
	switch r := cmd.GetRule(); r {
	case RuleManual:
		return KindManual
	case RuleCooldown:
		return RuleCooldown
	case RuleWarmup:
		return RuleWarmup
	case RuleSuppression:
		if eventKinds[cmd.GetReason()] {
			return cmd.GetReason()
		}
		return KindEvent
	default:
		return KindRule
	}
}

// EntryKey groups live enforcement entries for Sizes.
type EntryKey struct {
	Level sgv1.ScopeLevel
	Kind  string // see Kind
}

// Sizes is what a State holds at one moment: the live enforcement entries
// by level and kind, and the sizes of the memories that grow with traffic.
// Entries past their until are not live; they are counted in Expired until
// Sweep removes them.
type Sizes struct {
	Tenants      int
	Pauses       map[EntryKey]int
	Throttles    map[EntryKey]int
	Suppressions map[EntryKey]int
	// Expired counts pauses, throttles and suppressions stored but past
	// their until (Check ignores them; Sweep drops them).
	Expired int
	// WarmupsActive are senders whose warm-up caps them today;
	// WarmupsDone are warm-up records kept after the schedule ended or was
	// ended by a resume (so the sender is never warmed up again).
	WarmupsActive, WarmupsDone int
	// VolumeCounters are per-scope daily admitted-volume counters,
	// FrequencyRecipients the recipients with a frequency-cap window,
	// NegativeAccounts the accounts with recent negative contacts (the
	// cooldown memory, bounded by Config.MaxCooldownAccounts), SeenIDs the
	// remembered command ids (bounded by Config.SeenIDs) and
	// RecipientDomains the cached recipient domains.
	VolumeCounters, FrequencyRecipients, NegativeAccounts, SeenIDs, RecipientDomains int
}

// Sizes counts the state at now. It takes each tenant's read lock in turn
// (and each counter shard's lock briefly), so it never blocks Check, and it
// costs one pass over the tenant's pauses, throttles, suppressions and
// warm-ups: call it at scrape time, not per command.
func (s *State) Sizes(now time.Time) Sizes {
	out := Sizes{
		Pauses:       map[EntryKey]int{},
		Throttles:    map[EntryKey]int{},
		Suppressions: map[EntryKey]int{},
	}
	s.mu.RLock()
	ts := make([]*tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		ts = append(ts, t)
	}
	s.mu.RUnlock()
	out.Tenants = len(ts)
	d := dayOf(now)
	for _, t := range ts {
		t.mu.RLock()
		for k, g := range t.gates {
			if !g.live(now) {
				out.Expired++
				continue
			}
			m := out.Pauses
			if g.lim != nil {
				m = out.Throttles
			}
			m[EntryKey{k.level, Kind(g.cmd)}]++
		}
		for k, p := range t.supps {
			if !p.live(now) {
				out.Expired++
				continue
			}
			out.Suppressions[EntryKey{k.level, Kind(p.cmd)}]++
		}
		for _, w := range t.warmups {
			if s.warmupCap(w, d) > 0 {
				out.WarmupsActive++
			} else {
				out.WarmupsDone++
			}
		}
		t.mu.RUnlock()
		for i := range t.vol {
			sh := &t.vol[i]
			sh.mu.RLock()
			out.VolumeCounters += len(sh.m)
			sh.mu.RUnlock()
		}
		for i := range t.freq {
			sh := &t.freq[i]
			sh.mu.Lock()
			out.FrequencyRecipients += len(sh.m)
			sh.mu.Unlock()
		}
	}
	s.cdMu.Lock()
	out.NegativeAccounts = len(s.negatives)
	s.cdMu.Unlock()
	s.seenMu.Lock()
	out.SeenIDs = len(s.seen)
	s.seenMu.Unlock()
	out.RecipientDomains = int(s.domainCount.Load())
	return out
}
