package evaluator

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/service"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// maxFutureSkew bounds how far ahead of the wall clock a snapshot's as_of
// may be and still move the freshness gauge.
const maxFutureSkew = 5 * time.Minute

// HealthKey groups scopes for the health-state gauge.
type HealthKey struct {
	Level sgv1.ScopeLevel
	State sgv1.HealthState
}

// RuleSetInfo describes the rule set running, for the info gauges.
type RuleSetInfo struct {
	Version, Hash string
	// RulesByLevel counts the set's rules per scope level (tenant
	// overrides change rules, they add none).
	RulesByLevel map[sgv1.ScopeLevel]int
}

// MetricsOptions are the engine read-outs Instrument exposes. Each may be
// nil; the metric it feeds is then not reported.
type MetricsOptions struct {
	// RulesAt returns how many rules a snapshot of level is evaluated
	// against; it is called once per snapshot, so it must be cheap.
	RulesAt func(level sgv1.ScopeLevel) int
	// HealthCounts returns how many scopes the engine holds in each health
	// state, by level. It is called at scrape time, at most once per
	// HealthEvery.
	HealthCounts func() map[HealthKey]int
	// HealthEvery is the shortest interval between two HealthCounts calls
	// (default 10s): several scrapers do not multiply its cost.
	HealthEvery time.Duration
	// RuleSet describes the running rule set, at scrape time.
	RuleSet func() RuleSetInfo
	// Now is the wall clock (default time.Now).
	Now func() time.Time
}

// Instrumented is an Evaluator that counts what it evaluates: snapshots,
// rule evaluations, evaluation latency and the newest event time, and that
// reports the engine's health states and rule set at scrape time. Put it
// between the engine and New.
type Instrumented struct {
	Evaluator
	o MetricsOptions

	snapshots prometheus.Counter
	ruleEvals prometheus.Counter
	seconds   prometheus.Histogram
	newest    atomic.Int64 // unix ns of the newest as_of evaluated
}

var _ Evaluator = (*Instrumented)(nil)

// Instrument wraps eval and registers its metrics with reg (nil: none).
// docs/metrics.md lists them.
func Instrument(eval Evaluator, o MetricsOptions, reg prometheus.Registerer) (*Instrumented, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HealthEvery <= 0 {
		o.HealthEvery = 10 * time.Second
	}
	in := &Instrumented{Evaluator: eval, o: o}
	var err error
	if in.snapshots, err = service.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sendguard_evaluator_snapshots_evaluated_total",
		Help: "Window snapshots evaluated against the rule set (older versions of a scope are skipped before).",
	})); err != nil {
		return nil, err
	}
	if in.ruleEvals, err = service.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sendguard_evaluator_rule_evaluations_total",
		Help: "Rule conditions evaluated: for each snapshot, the rules of its level.",
	})); err != nil {
		return nil, err
	}
	if in.seconds, err = service.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sendguard_evaluator_evaluate_seconds",
		Help:    "Time to evaluate one snapshot (all rules of its level and the health-state step).",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
	})); err != nil {
		return nil, err
	}
	fresh := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sendguard_evaluator_newest_event_time_seconds",
		Help: "Event time (unix seconds) of the newest snapshot evaluated (its as_of); 0 before the first. time() minus it is the evaluator's freshness.",
	}, func() float64 { return float64(in.newest.Load()) / 1e9 })
	if _, err := service.Register(reg, fresh); err != nil {
		return nil, err
	}
	if _, err := service.Register(reg, newEngineCollector(o)); err != nil {
		return nil, err
	}
	return in, nil
}

// Evaluate evaluates snap with the wrapped evaluator and counts it.
func (in *Instrumented) Evaluate(snap *sgv1.WindowSnapshot) []*sgv1.Decision {
	start := time.Now()
	out := in.Evaluator.Evaluate(snap)
	in.seconds.Observe(time.Since(start).Seconds())
	in.snapshots.Inc()
	if in.o.RulesAt != nil {
		in.ruleEvals.Add(float64(in.o.RulesAt(snap.GetScope().GetLevel())))
	}
	if snap.GetAsOf() != nil {
		t := snap.GetAsOf().AsTime()
		if !t.After(in.o.Now().Add(maxFutureSkew)) {
			n := t.UnixNano()
			for {
				old := in.newest.Load()
				if n <= old || in.newest.CompareAndSwap(old, n) {
					break
				}
			}
		}
	}
	return out
}

// engineCollector reports the engine's health states and rule set at
// scrape time. Labels are bounded: level, state, and the one running rule
// set's version and hash.
type engineCollector struct {
	o MetricsOptions

	scopes, rules, info *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	counts map[HealthKey]int
}

func newEngineCollector(o MetricsOptions) *engineCollector {
	return &engineCollector{
		o: o,
		scopes: prometheus.NewDesc("sendguard_evaluator_scopes",
			"Scopes the evaluator holds a health state for, by level and state (healthy ones only while they remember an alert); 0 for every state of a level the rules watch.",
			[]string{"level", "state"}, nil),
		rules: prometheus.NewDesc("sendguard_evaluator_rules",
			"Rules of the running rule set, by scope level.", []string{"level"}, nil),
		info: prometheus.NewDesc("sendguard_evaluator_rule_set_info",
			"Always 1; labels name the running rule set (changes on a hot reload).", []string{"version", "hash"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.scopes
	ch <- c.rules
	ch <- c.info
}

// healthCounts returns the engine's counts, refreshed at most once per
// HealthEvery.
func (c *engineCollector) healthCounts() map[HealthKey]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.o.Now(); c.counts == nil || now.Sub(c.at) >= c.o.HealthEvery {
		c.counts, c.at = c.o.HealthCounts(), now
	}
	return c.counts
}

// Collect implements prometheus.Collector.
func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	var info RuleSetInfo
	if c.o.RuleSet != nil {
		info = c.o.RuleSet()
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, info.Version, info.Hash)
		for l, n := range info.RulesByLevel {
			ch <- prometheus.MustNewConstMetric(c.rules, prometheus.GaugeValue, float64(n), canonical.LevelWord(l))
		}
	}
	if c.o.HealthCounts == nil {
		return
	}
	counts := map[HealthKey]int{}
	for l := range info.RulesByLevel {
		for s := range sgv1.HealthState_name {
			if st := sgv1.HealthState(s); st != sgv1.HealthState_HEALTH_STATE_UNSPECIFIED {
				counts[HealthKey{l, st}] = 0
			}
		}
	}
	for k, n := range c.healthCounts() {
		counts[k] += n
	}
	keys := make([]HealthKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Level != keys[j].Level {
			return keys[i].Level < keys[j].Level
		}
		return keys[i].State < keys[j].State
	})
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(c.scopes, prometheus.GaugeValue, float64(counts[k]),
			canonical.LevelWord(k.Level), canonical.Word(k.State))
	}
}
