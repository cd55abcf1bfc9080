package window

import (
	"math"
	"strings"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
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

// windowSpecs are the catalogue windows (pkg/metrics Windows), in order.
var windowSpecs = []windowSpec{
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
	window, wilson        [8]string // <base>_<window>, <base>_wilson_<window>
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
func (a *Aggregator) Snapshot(k ScopeKey) *sgv1.WindowSnapshot {
	return a.SnapshotAt(k, time.Time{})
}

// SnapshotAt is Snapshot evaluated at the later of the scope's as_of and at,
// so a periodic tick can slide the windows of an idle scope forward to the
// tenant's watermark; the snapshot's as_of is that evaluation time.
func (a *Aggregator) SnapshotAt(k ScopeKey, at time.Time) *sgv1.WindowSnapshot {
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
	return s.snapshot(eval)
}

func (s *scopeState) snapshot(eval int64) *sgv1.WindowSnapshot {
	snap := &sgv1.WindowSnapshot{
		Scope:   s.key.Scope(),
		AsOf:    timestamppb.New(time.Unix(0, eval).UTC()),
		Version: s.version,
		Metrics: make(map[string]float64, 512),
	}
	m := snap.Metrics
	var tot [8]totals
	for i, w := range windowSpecs {
		res := tierRes[w.tier]
		base := floorDiv(eval, res)
		s.tierAt(w.tier).sum(base+w.lo, base+w.hi, &tot[i])
		if w.counted {
			snap.Windows = append(snap.Windows, windowCounts(w.name, &tot[i], time.Unix(0, (base+w.lo)*res), time.Unix(0, eval)))
		}
	}
	// Indexes into tot.
	const w24, w7d, wPrev24, wPrev7 = 1, 4, 6, 7

	di := floorDiv(eval, dayNanos)
	var avg7, avg28, d14 totals
	s.day.sum(di-7, di-1, &avg7)
	s.day.sum(di-28, di-1, &avg28)
	s.day.sum(di-13, di, &d14)

	for c, name := range counterNames {
		if name == "" {
			continue
		}
		n := &countMetricNames[c]
		for i := range windowSpecs {
			m[n.window[i]] = float64(tot[i].c[c])
		}
		m[n.avg7] = float64(avg7.c[c]) / 7
		m[n.avg28] = float64(avg28.c[c]) / 28
		m[n.dod] = change(float64(tot[w24].c[c]), float64(tot[wPrev24].c[c]))
		m[n.wow] = change(float64(tot[w7d].c[c]), float64(tot[wPrev7].c[c]))
	}
	for ri := range rateDefs {
		r := &rateDefs[ri]
		n := &rateMetricNames[ri]
		var rates [8]float64
		for i := range windowSpecs {
			num, den, rate := r.eval(&tot[i])
			rates[i] = rate
			m[n.window[i]] = rate
			if r.wilson {
				m[n.wilson[i]] = WilsonLower(num, den)
			}
		}
		m[n.dod] = change(rates[w24], rates[wPrev24])
		m[n.wow] = change(rates[w7d], rates[wPrev7])
	}

	// Scalars.
	if s.pm.set {
		m["postmaster_spam_rate"] = s.pm.spam
		m["postmaster_reputation"] = reputationScore(s.pm.rep)
		m["postmaster_delivery_error_rate"] = s.pm.der
		m["postmaster_age_hours"] = float64(eval-s.pm.at) / float64(hourNanos)
		snap.PostmasterSpamRate = s.pm.spam
		snap.PostmasterReputation = reputationWord(s.pm.rep)
		snap.PostmasterAt = timestamppb.New(time.Unix(0, s.pm.at).UTC())
	} else {
		m["postmaster_spam_rate"] = 0
		m["postmaster_reputation"] = 0
		m["postmaster_delivery_error_rate"] = 0
		m["postmaster_age_hours"] = -1
	}
	maxProv, nTests := s.placementMaxProvider(eval)
	m["placement_spam_rate_max_provider"] = maxProv
	m["placement_tests_recent"] = float64(nTests)
	m["provider_concentration_7d"] = providerConcentration(&tot[w7d])
	m["active_days"] = float64(floorDiv(eval-s.first, dayNanos))
	if s.auth.set && s.auth.failed {
		m["auth_fail_latest"] = 1
	} else {
		m["auth_fail_latest"] = 0
	}
	m["negative_contacts_14d"] = float64(d14.c[cComplaints] + d14.c[cNegativeReplies] + d14.c[cUnsubscribes])
	return snap
}

// providerConcentration is the top provider's share of the negative signals
// (complaints and hard bounces) in t; 0 when there are none.
func providerConcentration(t *totals) float64 {
	var sum, top int64
	for p := range nProviders {
		v := t.x[int(xProviderNegBase)+p]
		sum += v
		top = max(top, v)
	}
	if sum == 0 {
		return 0
	}
	return float64(top) / float64(sum)
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
