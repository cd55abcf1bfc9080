package window

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestIDSetFirstHalfCollisions(t *testing.T) {
	const sec = int64(1e9)
	s := newIDSet()
	older := idKey{42, 0xAAAA_AAAA_0000_0001}
	newer := idKey{42, 0xBBBB_BBBB_0000_0002} // same first half, other id
	other := idKey{42, 0xCCCC_CCCC_0000_0001}
	sameID := idKey{42, 0xAAAA_AAAA_FFFF_FFFF} // low 32 bits are not compared
	s.add(older, 100*sec)
	if s.has(newer) || s.has(other) || !s.has(older) || !s.has(sameID) {
		t.Fatal("lookup before the collision")
	}
	s.add(newer, 200*sec)
	if !s.has(older) || !s.has(newer) || s.has(other) || s.len() != 2 {
		t.Fatalf("after the collision: older %v newer %v other %v len %d", s.has(older), s.has(newer), s.has(other), s.len())
	}
	// The id in the map goes first; the colliding one must still be found.
	s.dropBefore(150 * sec)
	if s.has(older) || !s.has(newer) || s.len() != 1 {
		t.Fatalf("after dropping the older: older %v newer %v len %d", s.has(older), s.has(newer), s.len())
	}
	s.dropBefore(250 * sec)
	if s.has(newer) || s.len() != 0 {
		t.Fatal("newer kept past its time")
	}

	// And the other way round: the overflow entry is the older one.
	s.add(newer, 300*sec)
	s.add(older, 100*sec)
	s.dropBefore(200 * sec)
	if s.has(older) || !s.has(newer) || s.len() != 1 {
		t.Fatalf("overflow not dropped: older %v newer %v len %d", s.has(older), s.has(newer), s.len())
	}
}

// TestIDSetDropsLateNeverEarly: an id is kept while its event time is at
// or after the cut, and gone once its whole second is before it.
func TestIDSetDropsLateNeverEarly(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		s := newIDSet()
		cut := rng.Int64N(1<<40) - 1<<20 // around and below zero too
		times := make(map[idKey]int64)
		for range 500 {
			k := idKey{rng.Uint64(), rng.Uint64()}
			at := cut + rng.Int64N(6e9) - 3e9
			s.add(k, at)
			times[k] = at
		}
		s.dropBefore(cut)
		for k, at := range times {
			switch {
			case at >= cut && !s.has(k):
				t.Fatalf("id at %d dropped by cut %d", at, cut)
			case at < 0 && cut >= 1e9 && s.has(k):
				t.Fatalf("id at %d kept after cut %d", at, cut)
			case at >= 0 && at/1e9 < cut/1e9 && s.has(k):
				t.Fatalf("id at %d kept after cut %d", at, cut)
			}
		}
	}
}

func TestIDSetKeepsLaterTime(t *testing.T) {
	s := newIDSet()
	k := idKey{7, 0x1234_5678_0000_0000}
	s.add(k, 500e9)
	s.add(k, 100e9) // a restore may see an id twice: the later time stays
	s.dropBefore(200e9)
	if !s.has(k) {
		t.Fatal("id dropped by its earlier time")
	}
	if got := eventSecond(math.MaxInt64); got != math.MaxUint32 {
		t.Fatalf("eventSecond(max) = %d", got)
	}
	if got := eventSecond(-5e9); got != 0 {
		t.Fatalf("eventSecond(-5s) = %d", got)
	}
}
