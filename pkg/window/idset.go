package window

import "math"

// idSet is the set of an admission tenant's remembered ids, each with the
// second of its event time, in 16 bytes of map slot per id: the first half
// of the idKey is the map key, the value packs the high 32 bits of the
// second half with the event second. Two ids are the same when those 96
// bits are: a false duplicate needs n²/2⁹⁷ luck for n retained ids (below
// 10⁻¹⁵ for 10⁷). Ids whose first halves collide while the rest differs
// (about n²/2⁶⁵, a few in a million sets of 10⁷) go to a small overflow map
// keyed by the whole idKey. Pointer-free, so the collector never scans it.
type idSet struct {
	m    map[uint64]uint64
	over map[idKey]int64 // first half shared with an id in m; value: event time
}

const idHighMask = 0xFFFFFFFF_00000000

func newIDSet() idSet { return idSet{m: make(map[uint64]uint64)} }

// eventSecond is t (unix ns) in whole seconds, clamped to 32 bits.
func eventSecond(t int64) uint64 {
	return uint64(min(max(t/1e9, 0), math.MaxUint32))
}

// has reports whether k is in the set.
func (s *idSet) has(k idKey) bool {
	if v, ok := s.m[k[0]]; ok && v&idHighMask == k[1]&idHighMask {
		return true
	}
	if s.over == nil {
		return false
	}
	// The id in m whose first half k shares may have been dropped since.
	_, ok := s.over[k]
	return ok
}

// add puts k, an id of an event at t (unix ns), in the set; an id already
// there keeps the later of its times.
func (s *idSet) add(k idKey, t int64) {
	v, ok := s.m[k[0]]
	switch {
	case !ok:
		s.m[k[0]] = k[1]&idHighMask | eventSecond(t)
	case v&idHighMask == k[1]&idHighMask:
		s.m[k[0]] = k[1]&idHighMask | max(v&^idHighMask, eventSecond(t))
	default:
		if s.over == nil {
			s.over = make(map[idKey]int64)
		}
		if at, ok := s.over[k]; !ok || t > at {
			s.over[k] = t
		}
	}
}

// dropBefore forgets ids of events before cut (unix ns). Times are kept to
// the second, so an id less than a second before cut may stay until the
// next call: ids are forgotten late, never early.
func (s *idSet) dropBefore(cut int64) {
	cutSecond := eventSecond(cut) // an id at second c < cutSecond is before cut
	for k, v := range s.m {
		if v&^idHighMask < cutSecond {
			delete(s.m, k)
		}
	}
	for k, at := range s.over {
		if at < cut {
			delete(s.over, k)
		}
	}
}

// len returns the number of ids in the set.
func (s *idSet) len() int { return len(s.m) + len(s.over) }
