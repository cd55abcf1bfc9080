package window

import (
	"sort"
	"strconv"
	"unsafe"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

const (
	// maxPlacementTests is how many distinct placement tests a scope keeps
	// for placement_spam_rate_max_provider (which reads the newest 2). Keeping
	// more than 2 lets results of an older test that arrive late (within the
	// lateness) still land in their test rather than evict a newer one.
	maxPlacementTests = 8
	// recentPlacementTests is how many of the newest tests the scalar reads.
	recentPlacementTests = 2
	// placementTestMaxAge is how old (before the evaluation time) a test
	// may be and still be read.
	placementTestMaxAge = 28 * dayNanos
)

// scopeState is everything held for one scope.
type scopeState struct {
	key     ScopeKey
	version int64 // events folded in; monotonic
	asOf    int64 // newest event time folded in, unix ns
	first   int64 // oldest event time folded in, unix ns
	wm      int64 // newest counted (non-postmaster) event time, unix ns
	wmSet   bool
	min     tier // 1-minute slots: 1h
	hour    tier // 1-hour slots: 48h, 3d
	day     tier // UTC-day slots: 24h, prev_24h, 7d, prev_7d, 28d, baselines, 14d
	pm      postmasterState
	auth    authState
	tests   []placementTest
	// src is, per source partition, the offset of the newest source record
	// folded in through ApplyScoped: a record at or below it is a replay.
	src map[int32]int64
	// dirty: the key is in the aggregator's dirty set (markDirty), so an
	// event need not insert it again; urgent: marked urgent there.
	dirty, urgent bool
}

// postmasterState is the latest postmaster stats by event time.
type postmasterState struct {
	set  bool
	at   int64
	spam float64
	der  float64
	rep  sgv1.DomainReputation
}

// newer reports whether o replaces p: a later time, or at the same time the
// worse figures (so the result does not depend on arrival order).
func (p *postmasterState) newer(o postmasterState) bool {
	if !o.set {
		return false
	}
	if !p.set || o.at != p.at {
		return !p.set || o.at > p.at
	}
	if o.spam != p.spam {
		return o.spam > p.spam
	}
	if o.der != p.der {
		return o.der > p.der
	}
	return o.rep > p.rep
}

// authState is the latest auth check by event time; at equal times a
// failure wins.
type authState struct {
	set    bool
	failed bool
	at     int64
}

func (s *authState) observe(o authState) {
	if !o.set {
		return
	}
	switch {
	case !s.set || o.at > s.at:
		*s = o
	case o.at == s.at:
		s.failed = s.failed || o.failed
	}
}

// placementTest tallies the results of one placement test per seed
// provider.
type placementTest struct {
	id   string
	at   int64 // newest result time
	n    [nProviders]uint32
	spam [nProviders]uint32
}

func (s *scopeState) apply(ev *sgv1.Event, t int64, d *delta, counts bool) {
	if s.version == 0 || t < s.first {
		s.first = t
	}
	if s.version == 0 || t > s.asOf {
		s.asOf = t
		s.prune()
	}
	s.version++
	if ev.GetType() != sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS && (!s.wmSet || t > s.wm) {
		s.wm, s.wmSet = t, true
	}
	switch ev.GetType() {
	case sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS:
		p := ev.GetPostmaster()
		o := postmasterState{set: true, at: t, spam: p.GetSpamRate(), der: p.GetDeliveryErrorRate(), rep: p.GetDomainReputation()}
		if s.pm.newer(o) {
			s.pm = o
		}
	case sgv1.EventType_EVENT_TYPE_AUTH_CHECK:
		s.auth.observe(authState{set: true, at: t, failed: authFailed(ev.GetAuth())})
	case sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST:
		p := ev.GetPlacement()
		pp, f := placementIndex(p)
		id := p.GetTestId()
		if id == "" { // results without a test id group by tool and UTC hour
			id = p.GetTool() + "@" + strconv.FormatInt(floorDiv(t, hourNanos), 10)
		}
		var spam uint32
		if placementIsSpam(f) {
			spam = 1
		}
		s.addTestResult(id, t, pp, 1, spam)
	}
	if counts {
		s.add(t, d)
	}
}

// add puts one event's delta into the tier slots that can still be read.
func (s *scopeState) add(t int64, d *delta) {
	type slot struct {
		tr   *tier
		res  int64
		keep int
	}
	for _, sl := range [...]slot{{&s.min, minuteNanos, minuteKeep}, {&s.hour, hourNanos, hourKeep}, {&s.day, dayNanos, dayKeep}} {
		idx := floorDiv(t, sl.res)
		if idx <= floorDiv(s.asOf, sl.res)-int64(sl.keep) {
			continue // outside every window of this tier for good
		}
		b := sl.tr.bucketAt(idx, sl.keep)
		for i := 0; i < d.nc; i++ {
			b.c[d.c[i]] = satAdd(b.c[d.c[i]], 1)
		}
		for i := 0; i < d.nx; i++ {
			sl.tr.addX(idx, d.x[i], 1)
		}
		if sl.tr == &s.day && d.neg >= 0 {
			sl.tr.addX(idx, xProviderNegBase+xkey(d.neg), 1)
		}
	}
}

// prune drops tier slots that no window at as_of (or later) can read.
func (s *scopeState) prune() {
	s.min.prune(floorDiv(s.asOf, minuteNanos) - minuteKeep + 1)
	s.hour.prune(floorDiv(s.asOf, hourNanos) - hourKeep + 1)
	s.day.prune(floorDiv(s.asOf, dayNanos) - dayKeep + 1)
}

// addTestResult adds n results (spam of them spam or missing) at provider
// pp to test id, keeping at most maxPlacementTests newest tests.
func (s *scopeState) addTestResult(id string, t int64, pp int, n, spam uint32) {
	for i := range s.tests {
		pt := &s.tests[i]
		if pt.id == id {
			if t > pt.at {
				pt.at = t
			}
			pt.n[pp] = satAdd(pt.n[pp], uint64(n))
			pt.spam[pp] = satAdd(pt.spam[pp], uint64(spam))
			return
		}
	}
	pt := placementTest{id: id, at: t}
	pt.n[pp], pt.spam[pp] = n, spam
	s.tests = append(s.tests, pt)
	sortTests(s.tests)
	if len(s.tests) > maxPlacementTests {
		s.tests = append(s.tests[:0:0], s.tests[:maxPlacementTests]...)
	}
}

// sortTests orders tests newest first (ties by id, descending).
func sortTests(ts []placementTest) {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].at != ts[j].at {
			return ts[i].at > ts[j].at
		}
		return ts[i].id > ts[j].id
	})
}

// placementMaxProvider returns the highest spam-or-missing share at one
// provider over the newest recentPlacementTests tests no older than
// placementTestMaxAge before eval, and how many tests it read.
func (s *scopeState) placementMaxProvider(eval int64) (float64, int) {
	ts := make([]placementTest, 0, len(s.tests))
	for _, pt := range s.tests {
		if pt.at >= eval-placementTestMaxAge {
			ts = append(ts, pt)
		}
	}
	sortTests(ts)
	if len(ts) > recentPlacementTests {
		ts = ts[:recentPlacementTests]
	}
	var n, spam [nProviders]uint64
	for _, pt := range ts {
		for p := range nProviders {
			n[p] += uint64(pt.n[p])
			spam[p] += uint64(pt.spam[p])
		}
	}
	best := 0.0
	for p := range nProviders {
		if n[p] > 0 {
			if r := float64(spam[p]) / float64(n[p]); r > best {
				best = r
			}
		}
	}
	return best, len(ts)
}

// merge adds o into s.
func (s *scopeState) merge(o *scopeState) {
	if o.version == 0 {
		return
	}
	for p, off := range o.src {
		if cur, ok := s.src[p]; !ok || off > cur {
			if s.src == nil {
				s.src = make(map[int32]int64, len(o.src))
			}
			s.src[p] = off
		}
	}
	if s.version == 0 || o.first < s.first {
		s.first = o.first
	}
	if s.version == 0 || o.asOf > s.asOf {
		s.asOf = o.asOf
	}
	s.version += o.version
	if o.wmSet && (!s.wmSet || o.wm > s.wm) {
		s.wm, s.wmSet = o.wm, true
	}
	s.min.merge(&o.min, minuteKeep)
	s.hour.merge(&o.hour, hourKeep)
	s.day.merge(&o.day, dayKeep)
	if s.pm.newer(o.pm) {
		s.pm = o.pm
	}
	s.auth.observe(o.auth)
	for _, pt := range o.tests {
		for p := range nProviders {
			if pt.n[p] > 0 {
				s.addTestResult(pt.id, pt.at, p, pt.n[p], pt.spam[p])
			}
		}
	}
	s.prune()
}

// bytes estimates the memory held by the state.
func (s *scopeState) bytes() int {
	n := int(unsafe.Sizeof(*s)) + len(s.key.Tenant) + len(s.key.Target)
	n += s.min.bytes() + s.hour.bytes() + s.day.bytes()
	n += cap(s.tests) * int(unsafe.Sizeof(placementTest{}))
	for _, pt := range s.tests {
		n += len(pt.id)
	}
	n += len(s.src) * srcEntryBytes
	return n
}
