package window

import (
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// wilsonZ is the standard normal quantile for a two-sided 95 % interval.
const wilsonZ = 1.959963984540054

// WilsonLower returns the lower bound of the 95 % Wilson score interval of
// k successes in n trials; 0 when n is 0. k is clamped to 0..n.
func WilsonLower(k, n float64) float64 {
	if n <= 0 {
		return 0
	}
	k = math.Min(math.Max(k, 0), n)
	p := k / n
	z2 := wilsonZ * wilsonZ
	center := p + z2/(2*n)
	margin := wilsonZ * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	lb := (center - margin) / (1 + z2/n)
	if lb < 0 {
		return 0
	}
	return lb
}

// rateDef is one catalogue rate: num ÷ den, times scale.
type rateDef struct {
	name   string
	num    []counter
	den    counter
	scale  float64
	wilson bool
}

// rateDefs are the catalogue rates (pkg/metrics Rates and WilsonRates).
var rateDefs = []rateDef{
	{name: "complaint_rate", num: []counter{cComplaints}, den: cDelivered, scale: 1, wilson: true},
	{name: "complaints_per_1000", num: []counter{cComplaints}, den: cDelivered, scale: 1000},
	{name: "hard_bounce_rate", num: []counter{cHardBounces}, den: cSent, scale: 1, wilson: true},
	{name: "soft_bounce_rate", num: []counter{cSoftBounces}, den: cSent, scale: 1},
	{name: "bounce_rate", num: []counter{cHardBounces, cSoftBounces}, den: cSent, scale: 1},
	{name: "error_rate", num: []counter{cDeliveryErrors}, den: cSent, scale: 1, wilson: true},
	{name: "deferral_rate", num: []counter{cDeferred}, den: cSent, scale: 1},
	{name: "unsubscribe_rate", num: []counter{cUnsubscribes}, den: cDelivered, scale: 1, wilson: true},
	{name: "open_rate", num: []counter{cOpens}, den: cDelivered, scale: 1},
	{name: "click_rate", num: []counter{cClicks}, den: cDelivered, scale: 1},
	{name: "ctor", num: []counter{cClicks}, den: cOpens, scale: 1},
	{name: "reply_rate", num: []counter{cReplies}, den: cDelivered, scale: 1},
	{name: "positive_reply_rate", num: []counter{cPositiveReplies}, den: cDelivered, scale: 1},
	{name: "negative_reply_rate", num: []counter{cNegativeReplies}, den: cDelivered, scale: 1, wilson: true},
	{name: "placement_spam_rate", num: []counter{cPlacementSpam}, den: cPlacementTests, scale: 1, wilson: true},
	{name: "placement_inbox_rate", num: []counter{cPlacementInbox}, den: cPlacementTests, scale: 1},
	{name: "auth_failure_rate", num: []counter{cAuthFailures}, den: cAuthChecks, scale: 1},
	{name: "delivery_rate", num: []counter{cDelivered}, den: cSent, scale: 1},
}

func (r *rateDef) eval(t *totals) (num, den, rate float64) {
	for _, c := range r.num {
		num += float64(t.c[c])
	}
	den = float64(t.c[r.den])
	if den == 0 {
		return num, 0, 0
	}
	return num, den, r.scale * num / den
}

// change is (cur − prev) ÷ prev, 0 when prev is 0.
func change(cur, prev float64) float64 {
	if prev == 0 {
		return 0
	}
	return (cur - prev) / prev
}

// windowSpec is one metric window over one tier.
type windowSpec struct {
	name    string
	tier    int   // 0 minute, 1 hour, 2 day
	lo, hi  int64 // slot offsets from the slot holding the evaluation time
	counted bool  // published in WindowSnapshot.windows
}

// nWindowSpecs is the number of catalogue windows.
const nWindowSpecs = 8

// windowSpecs are the catalogue windows (pkg/metrics Windows), in order.
var windowSpecs = [nWindowSpecs]windowSpec{
	{name: "1h", tier: 0, lo: -(minuteKeep - 1), hi: 0, counted: true},
	{name: "24h", tier: 2, lo: 0, hi: 0, counted: true},
	{name: "48h", tier: 1, lo: -47, hi: 0, counted: true},
	{name: "3d", tier: 1, lo: -(hourKeep - 1), hi: 0, counted: true},
	{name: "7d", tier: 2, lo: -6, hi: 0, counted: true},
	{name: "28d", tier: 2, lo: -27, hi: 0, counted: true},
	{name: "prev_24h", tier: 2, lo: -1, hi: -1},
	{name: "prev_7d", tier: 2, lo: -13, hi: -7},
}

var tierRes = [3]int64{minuteNanos, hourNanos, dayNanos}

// metricNames are the precomputed catalogue names of one count or rate base.
type metricNames struct {
	window, wilson        [nWindowSpecs]string // <base>_<window>, <base>_wilson_<window>
	avg7, avg28, dod, wow string
}

func namesOf(base string, wilson bool) metricNames {
	n := metricNames{avg7: base + "_avg_7d", avg28: base + "_avg_28d", dod: base + "_dod_change", wow: base + "_wow_change"}
	for i, w := range windowSpecs {
		n.window[i] = base + "_" + w.name
		if wilson {
			n.wilson[i] = base + "_wilson_" + w.name
		}
	}
	return n
}

var (
	countMetricNames = func() (out [nCounters]metricNames) {
		for c, name := range counterNames {
			if name != "" {
				out[c] = namesOf(name, false)
			}
		}
		return out
	}()
	rateMetricNames = func() []metricNames {
		out := make([]metricNames, len(rateDefs))
		for i, r := range rateDefs {
			out[i] = namesOf(r.name, r.wilson)
		}
		return out
	}()
)

func (s *scopeState) tierAt(i int) *tier {
	switch i {
	case 0:
		return &s.min
	case 1:
		return &s.hour
	}
	return &s.day
}

// Snapshot returns the state of scope k evaluated at its as_of (the newest
// event time folded in), or nil when the aggregator holds no such scope.
// The snapshot is complete: counters, the counted windows and every
// catalogue metric by name (for tools and tests; the pipeline publishes
// CompactSnapshotAt).
func (a *Aggregator) Snapshot(k ScopeKey) *sgv1.WindowSnapshot {
	return a.SnapshotAt(k, time.Time{})
}

// SnapshotAt is Snapshot evaluated at the later of the scope's as_of and at,
// so a periodic tick can slide the windows of an idle scope forward to the
// tenant's watermark; the snapshot's as_of is that evaluation time.
func (a *Aggregator) SnapshotAt(k ScopeKey, at time.Time) *sgv1.WindowSnapshot {
	return a.snapshotAt(k, at, true)
}

// CompactSnapshotAt is SnapshotAt with the counters only: what the
// windowed-metrics stage publishes and the rules read through MetricsOf,
// about 0.5 KB where the complete form is 15 KB.
func (a *Aggregator) CompactSnapshotAt(k ScopeKey, at time.Time) *sgv1.WindowSnapshot {
	return a.snapshotAt(k, at, false)
}

func (a *Aggregator) snapshotAt(k ScopeKey, at time.Time, complete bool) *sgv1.WindowSnapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.scopes[k]
	if s == nil {
		return nil
	}
	eval := s.asOf
	if !at.IsZero() && at.UnixNano() > eval {
		eval = at.UnixNano()
	}
	return s.snapshot(eval, complete)
}

// snapshot evaluates s at eval; complete adds the counted windows and the
// metrics map to the counters.
func (s *scopeState) snapshot(eval int64, complete bool) *sgv1.WindowSnapshot {
	snap := &sgv1.WindowSnapshot{
		Scope:   s.key.Scope(),
		AsOf:    timestamppb.New(time.Unix(0, eval).UTC()),
		Version: s.version,
	}
	if s.pm.set {
		snap.PostmasterSpamRate = s.pm.spam
		snap.PostmasterReputation = reputationWord(s.pm.rep)
		snap.PostmasterAt = timestamppb.New(time.Unix(0, s.pm.at).UTC())
	}
	var tot layoutTotals
	s.sumLayout(eval, &tot)
	snap.Counters = s.counters(eval, &tot)
	if !complete {
		return snap
	}
	for _, w := range windowSpecs {
		if w.counted {
			// The breakdowns (replies by category, placement by
			// provider and folder) need the tier's sparse counters.
			var t totals
			res := tierRes[w.tier]
			base := floorDiv(eval, res)
			s.tierAt(w.tier).sum(base+w.lo, base+w.hi, &t)
			snap.Windows = append(snap.Windows, windowCounts(w.name, &t, time.Unix(0, (base+w.lo)*res), time.Unix(0, eval)))
		}
	}
	m := Metrics{snap: snap, tot: &tot}
	copy(m.neg[:], tot[w7d].x[xProviderNegBase:])
	snap.Metrics = m.All()
	return snap
}

// TopProvider returns the provider word with the most 7d negative signals of
// scope k at its as_of and its share, for decision explanations; "" when
// there are none.
func (a *Aggregator) TopProvider(k ScopeKey) (string, float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.scopes[k]
	if s == nil {
		return "", 0
	}
	di := floorDiv(s.asOf, dayNanos)
	var t totals
	s.day.sum(di-6, di, &t)
	best, bestN, sum := -1, int64(0), int64(0)
	for p := range nProviders {
		v := t.x[int(xProviderNegBase)+p]
		sum += v
		if v > bestN {
			best, bestN = p, v
		}
	}
	if best < 0 {
		return "", 0
	}
	return ProviderWord(sgv1.Provider(best)), float64(bestN) / float64(sum)
}

func windowCounts(name string, t *totals, start, end time.Time) *sgv1.WindowCounts {
	wc := &sgv1.WindowCounts{
		Window:          name,
		Start:           timestamppb.New(start.UTC()),
		End:             timestamppb.New(end.UTC()),
		Sent:            t.c[cSent],
		Delivered:       t.c[cDelivered],
		Deferred:        t.c[cDeferred],
		HardBounces:     t.c[cHardBounces],
		SoftBounces:     t.c[cSoftBounces],
		DeliveryErrors:  t.c[cDeliveryErrors],
		Complaints:      t.c[cComplaints],
		Unsubscribes:    t.c[cUnsubscribes],
		Opens:           t.c[cOpens],
		Clicks:          t.c[cClicks],
		Replies:         t.c[cReplies],
		NegativeReplies: t.c[cNegativeReplies],
		PlacementTests:  t.c[cPlacementTests],
		AuthFailures:    t.c[cAuthFailures],
		Rejected:        t.c[cRejected],
	}
	for i := range nReplyCategories {
		if v := t.x[int(xReplyBase)+i]; v > 0 {
			if wc.RepliesByCategory == nil {
				wc.RepliesByCategory = make(map[string]int64)
			}
			wc.RepliesByCategory[replyCategoryWord(i)] = v
		}
	}
	for p := range nProviders {
		for f := range nFolders {
			if v := t.x[int(xPlacementBase)+p*nFolders+f]; v > 0 {
				if wc.Placement == nil {
					wc.Placement = make(map[string]int64)
				}
				wc.Placement[ProviderWord(sgv1.Provider(p))+"|"+folderWord(f)] = v
			}
		}
	}
	return wc
}

// reputationScore maps a Postmaster reputation to the catalogue's scale:
// 4 high, 3 medium, 2 low, 1 bad, 0 unknown.
func reputationScore(r sgv1.DomainReputation) float64 {
	switch r {
	case sgv1.DomainReputation_DOMAIN_REPUTATION_HIGH:
		return 4
	case sgv1.DomainReputation_DOMAIN_REPUTATION_MEDIUM:
		return 3
	case sgv1.DomainReputation_DOMAIN_REPUTATION_LOW:
		return 2
	case sgv1.DomainReputation_DOMAIN_REPUTATION_BAD:
		return 1
	}
	return 0
}

// reputationWord is the short word of a reputation; "" when unknown.
func reputationWord(r sgv1.DomainReputation) string {
	if r == sgv1.DomainReputation_DOMAIN_REPUTATION_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "DOMAIN_REPUTATION_"))
}
