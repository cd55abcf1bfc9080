package window

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// srcEntryBytes is the memory of one source-offset entry of a scope (map
// bucket share of an int32 key and an int64 value), for ScopeBytes.
const srcEntryBytes = 24

// ApplyScoped folds ev into the one scope k, for the re-keyed pipeline in
// which an admission step (Admission) has already rejected late, future and
// duplicate events and fanned every admitted event out to the owners of its
// scopes. srcPartition and srcOffset name the admitted record in the source
// topic; the scope remembers, per source partition, the newest offset it
// folded in, so a record at or below it (a replay after a crash or a
// rebalance) changes nothing and ApplyScoped returns false. Records of one
// source partition must reach a scope in offset order, which Kafka gives
// when one producer per source partition writes them in order.
//
// k must be one of the scopes of ev (Scopes); otherwise, and for an event
// that fails validation, the error is an *InvalidEventError. The tenant
// watermark moves as in Apply; no lateness, future or id check is made
// (they were the admission step's) and the Deduper is not consulted.
func (a *Aggregator) ApplyScoped(ev *sgv1.Event, k ScopeKey, srcPartition int32, srcOffset int64) (bool, error) {
	if err := validate(ev); err != nil {
		a.mu.Lock()
		a.stats.Invalid++
		a.mu.Unlock()
		return false, err
	}
	t := ev.GetOccurredAt().AsTime().UnixNano()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keyBuf = scopeKeys(ev, a.keyBuf[:0])
	if !slices.Contains(a.keyBuf, k) {
		a.stats.Invalid++
		return false, &InvalidEventError{Field: "scope", Reason: fmt.Sprintf("event %s does not count in %s", ev.GetEventId(), k)}
	}
	d, counts := classifyEvent(ev)
	return a.applyScope(k, ev, t, &d, counts, ev.GetType() == sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS, srcPartition, srcOffset), nil
}

// ApplyLevels is ApplyScoped for the scopes of ev at the given levels (each
// level's target follows from ev; see Scopes), so an event whose scopes
// share an owner is validated and classified once. It appends the keys of
// those scopes to dst, in the order of Scopes, whether they folded ev in
// or skipped it as a replay, and returns dst. A level ev has no scope at
// (its id is empty) is an *InvalidEventError, like an invalid event; then
// no scope changes.
func (a *Aggregator) ApplyLevels(ev *sgv1.Event, levels []sgv1.ScopeLevel, srcPartition int32, srcOffset int64, dst []ScopeKey) ([]ScopeKey, error) {
	if err := validate(ev); err != nil {
		a.mu.Lock()
		a.stats.Invalid++
		a.mu.Unlock()
		return dst, err
	}
	t := ev.GetOccurredAt().AsTime().UnixNano()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keyBuf = scopeKeys(ev, a.keyBuf[:0])
	for _, l := range levels {
		if !slices.ContainsFunc(a.keyBuf, func(sk ScopeKey) bool { return sk.Level == l }) {
			a.stats.Invalid++
			return dst, &InvalidEventError{Field: "scope", Reason: fmt.Sprintf("event %s has no %s scope", ev.GetEventId(), LevelWord(l))}
		}
	}
	n := len(dst)
	for _, sk := range a.keyBuf {
		if slices.Contains(levels, sk.Level) {
			dst = append(dst, sk)
		}
	}
	d, counts := classifyEvent(ev)
	isPostmaster := ev.GetType() == sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS
	for _, k := range dst[n:] {
		a.applyScope(k, ev, t, &d, counts, isPostmaster, srcPartition, srcOffset)
	}
	return dst, nil
}

// applyScope folds one validated, classified event into scope k unless
// the scope already holds srcOffset of srcPartition, and reports whether
// it counted. a.mu is held.
func (a *Aggregator) applyScope(k ScopeKey, ev *sgv1.Event, t int64, d *delta, counts, isPostmaster bool, srcPartition int32, srcOffset int64) bool {
	s := a.scopes[k]
	if s != nil {
		if last, ok := s.src[srcPartition]; ok && srcOffset <= last {
			a.stats.Duplicates++
			return false
		}
	}
	if s == nil {
		s = &scopeState{key: k}
		a.scopes[k] = s
	}
	if s.src == nil {
		s.src = make(map[int32]int64, 4)
	}
	s.src[srcPartition] = srcOffset
	if !counts && !isPostmaster {
		a.stats.Ignored++
		// The offset is remembered (a replay stays a replay) but nothing
		// counts; a scope created only for this stays empty until Expire.
		return false
	}
	if wm, ok := a.watermark[k.Tenant]; !isPostmaster && (!ok || t > wm) {
		a.watermark[k.Tenant] = t
	}
	s.apply(ev, t, d, counts)
	a.markDirty(s, UrgentType(ev.GetType()))
	a.stats.Applied++
	return true
}

// SourceOffset returns the newest source offset of srcPartition folded into
// scope k by ApplyScoped, and whether there is one.
func (a *Aggregator) SourceOffset(k ScopeKey, srcPartition int32) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.scopes[k]
	if s == nil {
		return 0, false
	}
	off, ok := s.src[srcPartition]
	return off, ok
}

// Drop forgets the scopes keep returns false for (an instance losing the
// partitions that own them) and returns how many it dropped. Their
// checkpoints stay: the new owner restores them.
func (a *Aggregator) Drop(keep func(ScopeKey) bool) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for k := range a.scopes {
		if !keep(k) {
			delete(a.scopes, k)
			delete(a.dirty, k)
			n++
		}
	}
	return n
}

// appendSrc encodes the source offsets sorted by partition.
func appendSrc(b []byte, src map[int32]int64) []byte {
	ps := make([]int32, 0, len(src))
	for p := range src {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = binary.AppendUvarint(b, uint64(p))
		b = binary.AppendVarint(b, src[p])
	}
	return b
}

func readSrc(r *reader) map[int32]int64 {
	n := r.count()
	if n == 0 || r.err != nil {
		return nil
	}
	src := make(map[int32]int64, n)
	for range n {
		p := r.uvarint()
		off := r.varint()
		if p > 1<<31-1 || off < 0 {
			r.fail("source offset %d@%d", p, off)
			return nil
		}
		src[int32(p)] = off
	}
	return src
}

// ScopeKeys appends the keys of the scopes ev counts in to dst, in the
// order of Scopes, and returns it (no allocation beyond dst's growth).
func ScopeKeys(ev *sgv1.Event, dst []ScopeKey) []ScopeKey { return scopeKeys(ev, dst) }

// CountsSomewhere reports whether ev changes any window: false for events
// only stored (e.g. not-spam feedback), which need no fan-out.
func CountsSomewhere(ev *sgv1.Event) bool {
	if ev.GetType() == sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS {
		return true
	}
	_, counts := classifyEvent(ev)
	return counts
}

// RestoreScopeKey is RestoreScope returning the restored scope's key.
func (a *Aggregator) RestoreScopeKey(data []byte) (ScopeKey, error) {
	s, err := unmarshalScope(data)
	if err != nil {
		return ScopeKey{}, fmt.Errorf("restore scope: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.scopes[s.key] = s
	if s.wmSet {
		if wm, ok := a.watermark[s.key.Tenant]; !ok || s.wm > wm {
			a.watermark[s.key.Tenant] = s.wm
		}
	}
	return s.key, nil
}
