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

// kinds are the words Kind returns, in kindIndex order.
var kinds = [...]string{
	KindManual, KindRule, KindEvent, RuleCooldown, RuleWarmup,
	ReasonUnsubscribe, ReasonHardBounce, ReasonComplaint, ReasonDoNotContact,
	ReasonNotInterested, ReasonAccountComplaint, ReasonRoleAccount,
}

const numKinds = len(kinds)

// kindIndex is the position of an entry's Kind in kinds.
type kindIndex uint8

var kindIndexes = func() map[string]kindIndex {
	m := make(map[string]kindIndex, numKinds)
	for i, k := range kinds {
		m[k] = kindIndex(i)
	}
	return m
}()

func kindOf(cmd *sgv1.ControlCommand) kindIndex { return kindIndexes[Kind(cmd)] }

// entryCounts counts a tenant's stored pauses, throttles and suppressions
// by level and kind. It is kept up to date under the tenant's lock by
// setGate, deleteGate, setSupp and deleteSupp, so Sizes reads it in
// constant time instead of scanning entries (a scan of a million
// suppressions under the read lock would stall the writers, and Check
// behind them).
type entryCounts struct {
	pauses, throttles, supps [numLevels][numKinds]int
}

// gate adds delta to the count of g's kind at level.
func (c *entryCounts) gate(level sgv1.ScopeLevel, g *gate, delta int) {
	if g.lim == nil {
		c.pauses[level][g.kind] += delta
	} else {
		c.throttles[level][g.kind] += delta
	}
}

// EntryKey groups enforcement entries for Sizes.
type EntryKey struct {
	Level sgv1.ScopeLevel
	Kind  string // see Kind
}

// Sizes is what a State holds at one moment: the enforcement entries by
// level and kind, and the sizes of the memories that grow with traffic.
//
// Pauses, throttles and suppressions are the stored entries: one whose
// until has passed is ignored by Check at once but counted here until
// Sweep removes it (the adapter sweeps every minute).
type Sizes struct {
	Tenants      int
	Pauses       map[EntryKey]int
	Throttles    map[EntryKey]int
	Suppressions map[EntryKey]int
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

// Sizes counts the state at now (now only decides which warm-ups are
// active). It holds each tenant's read lock for a copy of its entry counts
// and a pass over its warm-ups (one per sender), and each counter shard's
// lock for its length: cheap enough for every scrape, and it never scans
// pauses or suppressions.
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
	add := func(m map[EntryKey]int, c *[numLevels][numKinds]int) {
		for l := range c {
			for k, n := range c[l] {
				if n != 0 {
					m[EntryKey{sgv1.ScopeLevel(l), kinds[k]}] += n
				}
			}
		}
	}
	for _, t := range ts {
		t.mu.RLock()
		c := t.counts
		for _, w := range t.warmups {
			if s.warmupCap(w, d) > 0 {
				out.WarmupsActive++
			} else {
				out.WarmupsDone++
			}
		}
		t.mu.RUnlock()
		add(out.Pauses, &c.pauses)
		add(out.Throttles, &c.throttles)
		add(out.Suppressions, &c.supps)
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
