package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// scopeMagic starts every scope checkpoint; the digit is the format version.
// Version 2 appends the source offsets (see ApplyScoped); version 1
// checkpoints (without them) still restore.
const (
	scopeMagic   = "SGW2"
	scopeMagicV1 = "SGW1"
)

// MarshalScope encodes the state of scope k for a checkpoint (the service
// writes it to a compacted topic keyed by k.String()). The encoding is
// compact (varints, only non-empty slots and non-zero counters) and
// deterministic. RestoreScope decodes it.
func (a *Aggregator) MarshalScope(k ScopeKey) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.scopes[k]
	if s == nil {
		return nil, fmt.Errorf("marshal scope %s: %w", k, ErrUnknownScope)
	}
	return s.marshal(), nil
}

// RestoreScope decodes a checkpoint written by MarshalScope and replaces the
// scope's state with it. The tenant's watermark moves up to the scope's
// newest counted (non-postmaster) event time. The scope is not marked dirty.
func (a *Aggregator) RestoreScope(data []byte) error {
	s, err := unmarshalScope(data)
	if err != nil {
		return fmt.Errorf("restore scope: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.scopes[s.key] = s
	if s.wmSet {
		if wm, ok := a.watermark[s.key.Tenant]; !ok || s.wm > wm {
			a.watermark[s.key.Tenant] = s.wm
		}
	}
	return nil
}

func (s *scopeState) marshal() []byte {
	b := make([]byte, 0, 64+len(s.min.b)*8+len(s.hour.b)*8+len(s.day.b)*12)
	b = append(b, scopeMagic...)
	b = appendString(b, s.key.Tenant)
	b = binary.AppendUvarint(b, uint64(s.key.Level))
	b = appendString(b, s.key.Target)
	b = binary.AppendVarint(b, s.version)
	b = binary.AppendVarint(b, s.asOf)
	b = binary.AppendVarint(b, s.first)
	if s.wmSet {
		b = append(b, 1)
		b = binary.AppendVarint(b, s.wm)
	} else {
		b = append(b, 0)
	}
	if s.pm.set {
		b = append(b, 1)
		b = binary.AppendVarint(b, s.pm.at)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.pm.spam))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.pm.der))
		b = binary.AppendUvarint(b, uint64(s.pm.rep))
	} else {
		b = append(b, 0)
	}
	switch {
	case !s.auth.set:
		b = append(b, 0)
	case s.auth.failed:
		b = append(b, 3)
		b = binary.AppendVarint(b, s.auth.at)
	default:
		b = append(b, 1)
		b = binary.AppendVarint(b, s.auth.at)
	}
	b = binary.AppendUvarint(b, uint64(len(s.tests)))
	for _, pt := range s.tests {
		b = appendString(b, pt.id)
		b = binary.AppendVarint(b, pt.at)
		var mask uint64
		for p := range nProviders {
			if pt.n[p] != 0 || pt.spam[p] != 0 {
				mask |= 1 << p
			}
		}
		b = binary.AppendUvarint(b, mask)
		for p := range nProviders {
			if mask&(1<<p) != 0 {
				b = binary.AppendUvarint(b, uint64(pt.n[p]))
				b = binary.AppendUvarint(b, uint64(pt.spam[p]))
			}
		}
	}
	for _, t := range []*tier{&s.min, &s.hour, &s.day} {
		b = binary.AppendUvarint(b, uint64(len(t.b)))
		prev := int64(0)
		for _, bk := range t.b {
			b = binary.AppendVarint(b, bk.idx-prev)
			prev = bk.idx
			var mask uint64
			for c, v := range bk.c {
				if v != 0 {
					mask |= 1 << c
				}
			}
			b = binary.AppendUvarint(b, mask)
			for _, v := range bk.c {
				if v != 0 {
					b = binary.AppendUvarint(b, uint64(v))
				}
			}
		}
		b = binary.AppendUvarint(b, uint64(len(t.x)))
		prev = 0
		for _, e := range t.x {
			b = binary.AppendVarint(b, e.idx-prev)
			prev = e.idx
			b = append(b, byte(e.key))
			b = binary.AppendUvarint(b, uint64(e.n))
		}
	}
	return appendSrc(b, s.src)
}

func unmarshalScope(data []byte) (*scopeState, error) {
	r := reader{b: data}
	magic := string(r.bytes(len(scopeMagic)))
	if magic != scopeMagic && magic != scopeMagicV1 {
		return nil, errors.New("bad magic")
	}
	s := &scopeState{}
	s.key.Tenant = r.string()
	lv := r.uvarint()
	s.key.Target = r.string()
	s.version = r.varint()
	s.asOf = r.varint()
	s.first = r.varint()
	switch r.byte() {
	case 0:
	case 1:
		s.wmSet, s.wm = true, r.varint()
	default:
		r.fail("watermark flag")
	}
	switch r.byte() {
	case 0:
	case 1:
		s.pm = postmasterState{set: true, at: r.varint(), spam: r.float64(), der: r.float64()}
		rep := r.uvarint()
		if rep > uint64(sgv1.DomainReputation_DOMAIN_REPUTATION_BAD) {
			r.fail("postmaster reputation %d", rep)
		}
		s.pm.rep = sgv1.DomainReputation(rep)
	default:
		r.fail("postmaster flag")
	}
	switch f := r.byte(); f {
	case 0:
	case 1, 3:
		s.auth = authState{set: true, failed: f == 3, at: r.varint()}
	default:
		r.fail("auth flag %d", f)
	}
	nt := r.count()
	if nt > maxPlacementTests {
		r.fail("%d placement tests", nt)
		nt = 0
	}
	for range nt {
		pt := placementTest{id: r.string(), at: r.varint()}
		mask := r.uvarint()
		if mask >= 1<<nProviders {
			r.fail("placement provider mask %#x", mask)
			break
		}
		for p := range nProviders {
			if mask&(1<<p) != 0 {
				pt.n[p] = r.uint32()
				pt.spam[p] = r.uint32()
				if pt.spam[p] > pt.n[p] {
					r.fail("placement spam %d > results %d", pt.spam[p], pt.n[p])
				}
			}
		}
		s.tests = append(s.tests, pt)
	}
	for _, t := range []*tier{&s.min, &s.hour, &s.day} {
		nb := r.count()
		prev := int64(0)
		for i := range nb {
			idx := prev + r.varint()
			if i > 0 && idx <= prev {
				r.fail("slots out of order")
				break
			}
			prev = idx
			bk := bucket{idx: idx}
			mask := r.uvarint()
			if mask >= 1<<nCounters {
				r.fail("counter mask %#x", mask)
				break
			}
			for c := range nCounters {
				if mask&(1<<c) != 0 {
					bk.c[c] = r.uint32()
				}
			}
			if r.err != nil {
				break
			}
			t.b = append(t.b, bk)
		}
		nx := r.count()
		prev = 0
		for i := range nx {
			idx := prev + r.varint()
			key := xkey(r.byte())
			e := xentry{idx: idx, key: key, n: r.uint32()}
			if int(key) >= nX {
				r.fail("breakdown key %d", key)
			}
			if i > 0 {
				last := t.x[len(t.x)-1]
				if idx < last.idx || (idx == last.idx && key <= last.key) {
					r.fail("breakdown entries out of order")
				}
			}
			if r.err != nil {
				break
			}
			prev = idx
			t.x = append(t.x, e)
		}
	}
	if magic == scopeMagic && r.err == nil {
		s.src = readSrc(&r)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if _, ok := sgv1.ScopeLevel_name[int32(lv)]; !ok || lv == 0 || lv > math.MaxInt32 {
		return nil, fmt.Errorf("scope level %d", lv)
	}
	s.key.Level = sgv1.ScopeLevel(lv)
	switch {
	case s.key.Tenant == "" || s.key.Target == "":
		return nil, errors.New("empty tenant or target")
	case s.version < 1:
		return nil, fmt.Errorf("version %d", s.version)
	case s.first > s.asOf || s.first < minEventTime.UnixNano() || s.asOf >= maxEventTime.UnixNano() ||
		(s.wmSet && (s.wm < s.first || s.wm > s.asOf)):
		return nil, errors.New("event times out of range")
	}
	s.prune()
	return s, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader decodes the checkpoint encodings; the first error sticks and
// every later read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uint32() uint32 {
	v := r.uvarint()
	if v > math.MaxUint32 {
		r.fail("counter %d overflows", v)
		return 0
	}
	return uint32(v)
}

// count reads a length, bounded by the bytes left (every element takes at
// least one byte) so bad input cannot force a huge allocation.
func (r *reader) count() int {
	v := r.uvarint()
	if v > uint64(len(r.b)) {
		r.fail("length %d exceeds input", v)
		return 0
	}
	return int(v)
}

func (r *reader) string() string {
	return string(r.bytes(r.count()))
}

func (r *reader) float64() float64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}
