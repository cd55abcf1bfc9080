package actuator

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sendguard/sendguard/pkg/enforce"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// maxFutureSkew bounds how far ahead of the wall clock an input's event
// time may be and still move the freshness gauges: a client with a wrong
// clock must not pin them in the future.
const maxFutureSkew = 5 * time.Minute

// eventClock keeps the newest event time seen (unix nanoseconds), for the
// freshness gauges. Safe for concurrent use.
type eventClock struct{ ns atomic.Int64 }

// observe moves the clock forward to t, unless t is zero, not after the
// clock, or more than maxFutureSkew after now(). now is only called for a
// t newer than the clock (most events are not: they arrive out of order
// from many partitions and sources).
func (c *eventClock) observe(t time.Time, now func() time.Time) {
	if t.IsZero() {
		return
	}
	n := t.UnixNano()
	if n <= c.ns.Load() || t.After(now().Add(maxFutureSkew)) {
		return
	}
	for {
		old := c.ns.Load()
		if n <= old || c.ns.CompareAndSwap(old, n) {
			return
		}
	}
}

// seconds returns the clock as unix seconds, 0 before any observation.
func (c *eventClock) seconds() float64 { return float64(c.ns.Load()) / 1e9 }

// stateCollector reports the sizes of the enforcement state at scrape time
// (enforce.State.Sizes: counts kept by the state under its locks, read in
// constant time per tenant). Labels are bounded: level (the
// scope levels), kind (enforce.Kind's fixed words) — never a tenant or a
// target, whose number is unbounded.
type stateCollector struct {
	state *enforce.State
	now   func() time.Time

	tenants, pauses, throttles, suppressions, warmups, memory *prometheus.Desc
}

// levels are the scope levels an entry can have, for zero-valued series.
var levels = []sgv1.ScopeLevel{
	sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, sgv1.ScopeLevel_SCOPE_LEVEL_SENDER,
	sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER,
	sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT,
	sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT, sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE,
}

// suppressionKinds are the kinds reported (as 0 when absent) for
// recipients; accounts get suppressionAccountKinds.
var (
	suppressionKinds = []string{
		enforce.KindManual, enforce.KindRule, enforce.KindEvent, enforce.ReasonUnsubscribe, enforce.ReasonHardBounce,
		enforce.ReasonComplaint, enforce.ReasonDoNotContact, enforce.ReasonNotInterested, enforce.ReasonRoleAccount,
	}
	suppressionAccountKinds = []string{enforce.KindManual, enforce.KindRule, enforce.RuleCooldown, enforce.ReasonAccountComplaint}
)

func newStateCollector(state *enforce.State, now func() time.Time) *stateCollector {
	return &stateCollector{
		state: state, now: now,
		tenants: prometheus.NewDesc("sendguard_enforcement_tenants",
			"Tenants the enforcement state holds.", nil, nil),
		pauses: prometheus.NewDesc("sendguard_enforcement_pauses",
			"Pauses held, by scope level and kind (manual or rule); an expired one until the next sweep.", []string{"level", "kind"}, nil),
		throttles: prometheus.NewDesc("sendguard_enforcement_throttles",
			"Throttles held (daily caps, ratio caps, ramps), by scope level and kind (manual or rule); warm-ups are in sendguard_enforcement_warmups.",
			[]string{"level", "kind"}, nil),
		suppressions: prometheus.NewDesc("sendguard_enforcement_suppressions",
			"Suppressions held, by scope level and kind: manual, rule, cooldown, or the event reason (unsubscribe, hard_bounce, complaint, do_not_contact, not_interested, account_complaint, role_account, event).",
			[]string{"level", "kind"}, nil),
		warmups: prometheus.NewDesc("sendguard_enforcement_warmups",
			"Sender warm-up records: active (capped today) or done (schedule over or ended; kept so the sender is known).",
			[]string{"phase"}, nil),
		memory: prometheus.NewDesc("sendguard_enforcement_memory_entries",
			"Entries of the enforcement state's memories, by kind: volume_counters, frequency_recipients, negative_accounts, seen_ids, recipient_domains.",
			[]string{"kind"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tenants, c.pauses, c.throttles, c.suppressions, c.warmups, c.memory} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	sz := c.state.Sizes(c.now())
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(c.tenants, sz.Tenants)
	entries := func(d *prometheus.Desc, m map[enforce.EntryKey]int, zero map[sgv1.ScopeLevel][]string) {
		for l, kinds := range zero {
			for _, k := range kinds {
				if _, ok := m[enforce.EntryKey{Level: l, Kind: k}]; !ok {
					gauge(d, 0, enforce.LevelWord(l), k)
				}
			}
		}
		for k, n := range m {
			gauge(d, n, enforce.LevelWord(k.Level), k.Kind)
		}
	}
	gates := map[sgv1.ScopeLevel][]string{}
	for _, l := range levels {
		gates[l] = []string{enforce.KindManual, enforce.KindRule}
	}
	entries(c.pauses, sz.Pauses, gates)
	entries(c.throttles, sz.Throttles, gates)
	entries(c.suppressions, sz.Suppressions, map[sgv1.ScopeLevel][]string{
		sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT: suppressionKinds,
		sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT:   suppressionAccountKinds,
	})
	gauge(c.warmups, sz.WarmupsActive, "active")
	gauge(c.warmups, sz.WarmupsDone, "done")
	for _, m := range []struct {
		kind string
		n    int
	}{
		{"volume_counters", sz.VolumeCounters}, {"frequency_recipients", sz.FrequencyRecipients},
		{"negative_accounts", sz.NegativeAccounts}, {"seen_ids", sz.SeenIDs}, {"recipient_domains", sz.RecipientDomains},
	} {
		gauge(c.memory, m.n, m.kind)
	}
}
