package window

import (
	"fmt"
	"math"
	"sync"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// CountersLayout is the layout of SnapshotCounters.totals written by this
// package: for each layout window (the catalogue windows, then the 7 and 28
// days before the current day, then 14 days), the nCounters dense
// counters, followed by the 7d negative signals per provider. A change of
// counters or windows must bump it.
const CountersLayout = 1

// Layout windows beyond windowSpecs.
const (
	lwAvg7  = nWindowSpecs + iota // the 7 days before the current day
	lwAvg28                       // the 28 days before the current day
	lwD14                         // the 14 days up to and including the current day
	nLayoutWindows
)

// Indexes of windowSpecs used by the changes and concentrations.
const w24, w7d, wPrev24, wPrev7 = 1, 4, 6, 7

// countersLen is the length of SnapshotCounters.totals in CountersLayout.
const countersLen = nLayoutWindows*int(nCounters) + nProviders

// layoutTotals are the totals of every layout window.
type layoutTotals [nLayoutWindows]totals

// sumLayout sums s's tiers into every layout window at eval.
func (s *scopeState) sumLayout(eval int64, tot *layoutTotals) {
	for i, w := range windowSpecs {
		base := floorDiv(eval, tierRes[w.tier])
		s.tierAt(w.tier).sum(base+w.lo, base+w.hi, &tot[i])
	}
	di := floorDiv(eval, dayNanos)
	s.day.sum(di-7, di-1, &tot[lwAvg7])
	s.day.sum(di-28, di-1, &tot[lwAvg28])
	s.day.sum(di-13, di, &tot[lwD14])
}

// counters encodes the compact form of s at eval from its layout totals.
func (s *scopeState) counters(eval int64, tot *layoutTotals) *sgv1.SnapshotCounters {
	vals := make([]int64, 0, countersLen)
	for i := range tot {
		vals = append(vals, tot[i].c[:]...)
	}
	vals = append(vals, tot[w7d].x[xProviderNegBase:int(xProviderNegBase)+nProviders]...)
	maxProv, nTests := s.placementMaxProvider(eval)
	return &sgv1.SnapshotCounters{
		Layout:                       CountersLayout,
		Totals:                       vals,
		PlacementSpamRateMaxProvider: maxProv,
		PlacementTestsRecent:         int64(nTests),
		FirstUnixNanos:               s.first,
		AuthFailLatest:               s.auth.set && s.auth.failed,
		PostmasterDeliveryErrorRate:  s.pm.der,
	}
}

// metricKind is how a catalogue name is derived from the layout totals.
type metricKind uint8

const (
	kCount    metricKind = iota // counter in window
	kAvg7                       // counter's daily average over the 7 days before today
	kAvg28                      // … over the 28 days before today
	kCountDoD                   // counter's day-over-day change
	kCountWoW                   // counter's week-over-week change
	kRate                       // rate in window
	kWilson                     // rate's Wilson lower bound in window
	kRateDoD
	kRateWoW
	kScalar
)

// metricRef locates one catalogue name in the layout.
type metricRef struct {
	kind metricKind
	idx  int // counter, rate definition or scalar index
	win  int // window index (kCount, kRate, kWilson)
}

// Scalars, by index for metricRef.idx.
var scalarNames = []string{
	"postmaster_spam_rate", "postmaster_reputation", "postmaster_delivery_error_rate", "postmaster_age_hours",
	"placement_spam_rate_max_provider", "placement_tests_recent", "provider_concentration_7d",
	"active_days", "auth_fail_latest", "negative_contacts_14d",
}

// metricRefs maps every catalogue name this package derives to its place.
var metricRefs = func() map[string]metricRef {
	m := make(map[string]metricRef, 512)
	for c := range counterNames {
		n := &countMetricNames[c]
		if counterNames[c] == "" {
			continue
		}
		for w := range windowSpecs {
			m[n.window[w]] = metricRef{kind: kCount, idx: c, win: w}
		}
		m[n.avg7] = metricRef{kind: kAvg7, idx: c}
		m[n.avg28] = metricRef{kind: kAvg28, idx: c}
		m[n.dod] = metricRef{kind: kCountDoD, idx: c}
		m[n.wow] = metricRef{kind: kCountWoW, idx: c}
	}
	for r := range rateDefs {
		n := &rateMetricNames[r]
		for w := range windowSpecs {
			m[n.window[w]] = metricRef{kind: kRate, idx: r, win: w}
			if rateDefs[r].wilson {
				m[n.wilson[w]] = metricRef{kind: kWilson, idx: r, win: w}
			}
		}
		m[n.dod] = metricRef{kind: kRateDoD, idx: r}
		m[n.wow] = metricRef{kind: kRateWoW, idx: r}
	}
	for i, name := range scalarNames {
		m[name] = metricRef{kind: kScalar, idx: i}
	}
	return m
}()

// Metrics reads the catalogue metrics of one snapshot by name. It derives
// them from the snapshot's counters when it has them (what the
// windowed-metrics stage publishes), else reads its metrics map (snapshots
// built by hand or by older writers). The zero value has no metrics.
type Metrics struct {
	snap *sgv1.WindowSnapshot
	tot  *layoutTotals // nil: read snap.Metrics
	neg  [nProviders]int64
}

// MetricsOf returns the metrics of snap. A snapshot whose counters have a
// layout this package does not know is an error (a reader older than its
// writer); nil snap has no metrics.
func MetricsOf(snap *sgv1.WindowSnapshot) (Metrics, error) {
	m := Metrics{snap: snap}
	if err := CheckCounters(snap); err != nil {
		return Metrics{}, err
	}
	sc := snap.GetCounters()
	if sc == nil {
		return m, nil
	}
	m.tot = totalsPool.Get().(*layoutTotals)
	*m.tot = layoutTotals{}
	v := sc.GetTotals()
	for i := range m.tot {
		copy(m.tot[i].c[:], v[i*int(nCounters):(i+1)*int(nCounters)])
	}
	copy(m.neg[:], v[nLayoutWindows*int(nCounters):])
	return m, nil
}

// totalsPool recycles the totals of released Metrics: the rule evaluator
// derives the metrics of every snapshot it reads, several thousand a
// second.
var totalsPool = sync.Pool{New: func() any { return new(layoutTotals) }}

// Release hands m's buffers back for reuse by a later MetricsOf; m and
// every copy of it must not be used afterwards. Not releasing is fine: the
// collector takes them.
func (m *Metrics) Release() {
	if m.tot != nil {
		totalsPool.Put(m.tot)
		m.tot = nil
	}
}

// CheckCounters reports an error when snap's counters have a layout this
// package cannot read (MetricsOf would refuse them), without decoding them.
func CheckCounters(snap *sgv1.WindowSnapshot) error {
	sc := snap.GetCounters()
	if sc == nil || sc.GetLayout() == CountersLayout && len(sc.GetTotals()) == countersLen {
		return nil
	}
	return fmt.Errorf("snapshot counters: layout %d with %d totals, want layout %d with %d",
		sc.GetLayout(), len(sc.GetTotals()), CountersLayout, countersLen)
}

// Has reports whether name has a value in the snapshot (see Get): every
// catalogue name when the snapshot has counters, else the names of its map
// and the Postmaster scalars.
func (m Metrics) Has(name string) bool {
	_, ok := m.Get(name)
	return ok
}

// Get returns the value of the catalogue metric name and whether the
// snapshot has it (see Has). A snapshot without counters that lacks one of
// the Postmaster scalars yields it from its Postmaster fields, as one with
// counters does.
func (m Metrics) Get(name string) (float64, bool) {
	if m.tot == nil {
		v, ok := m.snap.GetMetrics()[name]
		if !ok {
			if ref, known := metricRefs[name]; known && ref.kind == kScalar && fromSnapshotFields(name) {
				return m.scalar(ref.idx), true
			}
		}
		return v, ok
	}
	ref, ok := metricRefs[name]
	if !ok {
		return 0, false
	}
	return m.value(ref), true
}

// All returns every metric by name (for tools and tests; the rules read
// only the names they use, with Get).
func (m Metrics) All() map[string]float64 {
	if m.tot == nil {
		out := make(map[string]float64, len(m.snap.GetMetrics()))
		for k, v := range m.snap.GetMetrics() {
			out[k] = v
		}
		return out
	}
	out := make(map[string]float64, len(metricRefs))
	for name, ref := range metricRefs {
		out[name] = m.value(ref)
	}
	return out
}

func (m Metrics) value(ref metricRef) float64 {
	t := m.tot
	switch ref.kind {
	case kCount:
		return float64(t[ref.win].c[ref.idx])
	case kAvg7:
		return float64(t[lwAvg7].c[ref.idx]) / 7
	case kAvg28:
		return float64(t[lwAvg28].c[ref.idx]) / 28
	case kCountDoD:
		return change(float64(t[w24].c[ref.idx]), float64(t[wPrev24].c[ref.idx]))
	case kCountWoW:
		return change(float64(t[w7d].c[ref.idx]), float64(t[wPrev7].c[ref.idx]))
	case kRate:
		_, _, rate := rateDefs[ref.idx].eval(&t[ref.win])
		return rate
	case kWilson:
		num, den, _ := rateDefs[ref.idx].eval(&t[ref.win])
		return WilsonLower(num, den)
	case kRateDoD:
		r := &rateDefs[ref.idx]
		_, _, cur := r.eval(&t[w24])
		_, _, prev := r.eval(&t[wPrev24])
		return change(cur, prev)
	case kRateWoW:
		r := &rateDefs[ref.idx]
		_, _, cur := r.eval(&t[w7d])
		_, _, prev := r.eval(&t[wPrev7])
		return change(cur, prev)
	}
	return m.scalar(ref.idx)
}

// fromSnapshotFields reports whether scalar name is read from the
// snapshot's own fields rather than its counters.
func fromSnapshotFields(name string) bool {
	switch name {
	case "postmaster_spam_rate", "postmaster_reputation", "postmaster_age_hours":
		return true
	}
	return false
}

func (m Metrics) scalar(i int) float64 {
	snap, sc := m.snap, m.snap.GetCounters()
	switch scalarNames[i] {
	case "postmaster_spam_rate":
		return snap.GetPostmasterSpamRate()
	case "postmaster_reputation":
		return reputationWordScore(snap.GetPostmasterReputation())
	case "postmaster_delivery_error_rate":
		return sc.GetPostmasterDeliveryErrorRate()
	case "postmaster_age_hours":
		if snap.GetPostmasterAt() == nil || snap.GetAsOf() == nil {
			return -1
		}
		return float64(snap.GetAsOf().AsTime().UnixNano()-snap.GetPostmasterAt().AsTime().UnixNano()) / float64(hourNanos)
	case "placement_spam_rate_max_provider":
		return sc.GetPlacementSpamRateMaxProvider()
	case "placement_tests_recent":
		return float64(sc.GetPlacementTestsRecent())
	case "provider_concentration_7d":
		var sum, top int64
		for _, v := range m.neg {
			sum += v
			top = max(top, v)
		}
		if sum == 0 {
			return 0
		}
		return float64(top) / float64(sum)
	case "active_days":
		return float64(floorDiv(snap.GetAsOf().AsTime().UnixNano()-sc.GetFirstUnixNanos(), dayNanos))
	case "auth_fail_latest":
		if sc.GetAuthFailLatest() {
			return 1
		}
		return 0
	case "negative_contacts_14d":
		d := &m.tot[lwD14]
		return float64(d.c[cComplaints] + d.c[cNegativeReplies] + d.c[cUnsubscribes])
	}
	return math.NaN()
}

// reputationWordScore is reputationScore of a reputation word.
func reputationWordScore(w string) float64 {
	for r := sgv1.DomainReputation_DOMAIN_REPUTATION_HIGH; r <= sgv1.DomainReputation_DOMAIN_REPUTATION_BAD; r++ {
		if reputationWord(r) == w {
			return reputationScore(r)
		}
	}
	return 0
}

// MetricValue is the value of the catalogue metric name in snap, 0 when
// the snapshot lacks it or its counters cannot be read (MetricsOf reports
// why): a shorthand for tools and tests reading the metrics topic.
func MetricValue(snap *sgv1.WindowSnapshot, name string) float64 {
	m, err := MetricsOf(snap)
	if err != nil {
		return 0
	}
	defer m.Release()
	v, _ := m.Get(name)
	return v
}
