package window

import (
	"math"
	"sort"
	"time"
)

// Tier geometry. A tier keeps the buckets whose index is within keep of the
// bucket holding the scope's as_of; older buckets can never be in a window
// again (as_of only moves forward) and are dropped.
const (
	minuteNanos = int64(time.Minute)
	hourNanos   = int64(time.Hour)
	dayNanos    = int64(24 * time.Hour)

	minuteKeep = 60 // 1h
	hourKeep   = 72 // 48h and 3d
	dayKeep    = 29 // today and 28 full days before it (avg_28d)
)

// bucket is one time slot of dense counters. 88 bytes.
type bucket struct {
	idx int64 // slot number: unix time ÷ tier resolution (floored)
	c   [nCounters]uint32
}

// xentry is one sparse breakdown counter of one slot. 16 bytes.
type xentry struct {
	idx int64
	key xkey
	n   uint32
}

// tier is a sparse, index-sorted list of non-empty buckets at one
// resolution, with the breakdown counters beside it sorted by (idx, key).
type tier struct {
	b []bucket
	x []xentry
}

// floorDiv divides rounding towards negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// satAdd adds saturating at the uint32 maximum.
func satAdd(a uint32, n uint64) uint32 {
	s := uint64(a) + n
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// bucketAt finds or inserts the bucket of slot idx. keep caps the growth of
// the backing array.
func (t *tier) bucketAt(idx int64, keep int) *bucket {
	n := len(t.b)
	if n > 0 && t.b[n-1].idx == idx {
		return &t.b[n-1]
	}
	i := n
	if n > 0 && t.b[n-1].idx > idx {
		i = sort.Search(n, func(i int) bool { return t.b[i].idx >= idx })
		if t.b[i].idx == idx {
			return &t.b[i]
		}
	}
	if n == cap(t.b) {
		c := 2 * n
		if c < 1 {
			c = 1
		}
		if c > keep+1 {
			c = keep + 1
		}
		if c <= n {
			c = n + 1
		}
		nb := make([]bucket, n, c)
		copy(nb, t.b)
		t.b = nb
	}
	t.b = t.b[:n+1]
	copy(t.b[i+1:], t.b[i:n])
	t.b[i] = bucket{idx: idx}
	return &t.b[i]
}

// addX adds n to breakdown counter key of slot idx.
func (t *tier) addX(idx int64, key xkey, n uint64) {
	i := sort.Search(len(t.x), func(i int) bool {
		e := t.x[i]
		return e.idx > idx || (e.idx == idx && e.key >= key)
	})
	if i < len(t.x) && t.x[i].idx == idx && t.x[i].key == key {
		t.x[i].n = satAdd(t.x[i].n, n)
		return
	}
	t.x = append(t.x, xentry{})
	copy(t.x[i+1:], t.x[i:])
	t.x[i] = xentry{idx: idx, key: key, n: satAdd(0, n)}
}

// prune drops slots below minIdx, compacting in place so the backing array
// stays bounded.
func (t *tier) prune(minIdx int64) {
	k := 0
	for k < len(t.b) && t.b[k].idx < minIdx {
		k++
	}
	if k > 0 {
		n := copy(t.b, t.b[k:])
		t.b = t.b[:n]
	}
	k = 0
	for k < len(t.x) && t.x[k].idx < minIdx {
		k++
	}
	if k > 0 {
		n := copy(t.x, t.x[k:])
		t.x = t.x[:n]
		if cap(t.x) > 2*len(t.x)+8 {
			t.x = append([]xentry(nil), t.x...)
		}
	}
}

// totals are counts summed over a window.
type totals struct {
	c [nCounters]int64
	x [nX]int64
}

// sum adds the slots lo..hi (inclusive) into out.
func (t *tier) sum(lo, hi int64, out *totals) {
	i := sort.Search(len(t.b), func(i int) bool { return t.b[i].idx >= lo })
	for ; i < len(t.b) && t.b[i].idx <= hi; i++ {
		for j, v := range t.b[i].c {
			out.c[j] += int64(v)
		}
	}
	i = sort.Search(len(t.x), func(i int) bool { return t.x[i].idx >= lo })
	for ; i < len(t.x) && t.x[i].idx <= hi; i++ {
		out.x[t.x[i].key] += int64(t.x[i].n)
	}
}

// merge adds every slot of o into t.
func (t *tier) merge(o *tier, keep int) {
	for i := range o.b {
		b := t.bucketAt(o.b[i].idx, keep+len(o.b))
		for j, v := range o.b[i].c {
			b.c[j] = satAdd(b.c[j], uint64(v))
		}
	}
	for _, e := range o.x {
		t.addX(e.idx, e.key, uint64(e.n))
	}
}

// bytes is the memory held by the tier's backing arrays.
func (t *tier) bytes() int {
	return cap(t.b)*88 + cap(t.x)*16
}
