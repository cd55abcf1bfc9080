package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestPendingHeapPopsInOrder: interleaved pushes and pops return the
// follow-ups in (time, scheduling order) order, as a linear scan of what
// is pending would, including many at the same instant.
func TestPendingHeapPopsInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	var h pendingHeap
	var ref []pending
	var ord uint64
	for step := range 20000 {
		if len(ref) == 0 || rng.IntN(3) > 0 {
			ord++
			at := base.Add(time.Duration(rng.IntN(50)) * time.Millisecond) // many ties
			p := pending{at: at, ns: at.UnixNano(), ord: ord}
			h.push(p)
			ref = append(ref, p)
			continue
		}
		best := 0
		for i, p := range ref {
			if p.at.Before(ref[best].at) || p.at.Equal(ref[best].at) && p.ord < ref[best].ord {
				best = i
			}
		}
		want := ref[best]
		ref = append(ref[:best], ref[best+1:]...)
		if got := h.pop(); got.ord != want.ord {
			t.Fatalf("step %d: popped ord %d at %v, want ord %d at %v", step, got.ord, got.at, want.ord, want.at)
		}
		if len(h) != len(ref) {
			t.Fatalf("step %d: heap holds %d, want %d", step, len(h), len(ref))
		}
	}
}
