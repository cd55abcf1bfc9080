package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// AdmitConfig configures an Admission. Zero values take the defaults.
type AdmitConfig struct {
	// Lateness is how far an event may be behind the watermark of its
	// tenant in its source partition; zero means DefaultLateness, negative
	// none.
	Lateness time.Duration
	// Retention is how long (event time, behind the watermark) ids are
	// remembered; it is raised to at least Lateness, which makes the
	// id check exact for every event the lateness check admits. Zero means
	// Lateness + DefaultDedupMargin.
	Retention time.Duration
	// MaxFuture is how far an event may be ahead of its record's log time;
	// zero means DefaultMaxFuture, negative disables the check.
	MaxFuture time.Duration
}

// Verdict is what Admit decided about a valid event.
type Verdict int

// Verdicts.
const (
	Admitted  Verdict = iota + 1 // counts: publish it to its scopes
	Duplicate                    // an event with this tenant and id was admitted before
)

// AdmitEntry is one admitted event as recorded in a segment.
type AdmitEntry struct {
	Tenant  string
	EventID string
	At      int64 // event time, unix ns
	Offset  int64 // source offset
	// Postmaster marks postmaster stats, which do not move the watermark.
	Postmaster bool
}

// Admission is the first, per-source-partition step of the exact
// pipeline: it decides which events count. Events are keyed by
// tenant|event_id, so every copy of an event lands on one source
// partition, and every decision depends only on that partition's records
// in offset order — a pure function of the log, so a replay decides the
// same way:
//
//   - invalid events are rejected (*InvalidEventError);
//   - an event more than MaxFuture ahead of its record's log time is
//     rejected (ErrFutureEvent) — relative to the log time, not the clock,
//     so a replay decides the same;
//   - an event more than Lateness behind the watermark of its tenant in
//     the partition is rejected (*LateEventError; postmaster stats exempt);
//   - an event whose (tenant, event_id) was admitted before is a Duplicate.
//
// The ids admitted since the last TakeSegment form a segment, the
// incremental checkpoint of the partition (bytes proportional to the new
// ids, never the whole set); Restore rebuilds a partition from its live
// segments, keeping only ids below the offset consumption resumes from.
// Memory is 25 to 40 bytes per retained id (rate × Retention; see idSet).
// Admission is not safe for concurrent use.
type Admission struct {
	lateness, retention, maxFuture int64
	parts                          map[int32]*admitPartition
}

type admitPartition struct {
	tenants map[string]*admitTenant
	pending []AdmitEntry
	segs    map[string]map[string]int64 // live segment key -> tenant -> newest event time
	// maxWM is the greatest tenant watermark of the partition; scannedWM
	// its value at the last scan of segs for expired ones (scanned: there
	// was one since the state was made or restored).
	maxWM, scannedWM int64
	scanned          bool
}

type admitTenant struct {
	wm, lastSweep int64
	wmSet         bool
	ids           idSet
}

// idKey is a 128-bit hash of an event id (two independently seeded
// maphash sums). Admission remembers ids as these pointer-free hashes (in
// an idSet, 96 bits of them with the event second), so the garbage
// collector never scans the set (at a sustained 50k events/s the scan of
// millions of id strings cost a fifth of the CPU and grew with the run)
// and an id costs the same whatever its length. The seeds are per process:
// the set is rebuilt from the segments, which hold the ids.
type idKey [2]uint64

var idSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func keyOf(id string) idKey {
	return idKey{maphash.String(idSeeds[0], id), maphash.String(idSeeds[1], id)}
}

// NewAdmission returns an empty Admission.
func NewAdmission(cfg AdmitConfig) *Admission {
	if cfg.Lateness == 0 {
		cfg.Lateness = DefaultLateness
	}
	if cfg.Lateness < 0 {
		cfg.Lateness = 0
	}
	if cfg.Retention == 0 {
		cfg.Retention = cfg.Lateness + DefaultDedupMargin
	}
	cfg.Retention = max(cfg.Retention, cfg.Lateness)
	if cfg.MaxFuture == 0 {
		cfg.MaxFuture = DefaultMaxFuture
	}
	return &Admission{
		lateness: int64(cfg.Lateness), retention: int64(cfg.Retention), maxFuture: int64(cfg.MaxFuture),
		parts: make(map[int32]*admitPartition),
	}
}

func (a *Admission) part(p int32) *admitPartition {
	ap := a.parts[p]
	if ap == nil {
		ap = &admitPartition{tenants: make(map[string]*admitTenant), segs: make(map[string]map[string]int64)}
		a.parts[p] = ap
	}
	return ap
}

// Admit decides about ev, the record at offset off of source partition p
// written at logTime. Errors are permanent and typed like Apply's.
func (a *Admission) Admit(p int32, off int64, logTime time.Time, ev *sgv1.Event) (Verdict, error) {
	if err := validate(ev); err != nil {
		return 0, err
	}
	at := ev.GetOccurredAt().AsTime()
	t := at.UnixNano()
	if a.maxFuture >= 0 && !logTime.IsZero() && t > logTime.UnixNano()+a.maxFuture {
		return 0, fmt.Errorf("event %s at %s, record written %s: %w", ev.GetEventId(), at.Format(time.RFC3339Nano),
			logTime.Format(time.RFC3339Nano), ErrFutureEvent)
	}
	ap := a.part(p)
	tenant := ev.GetTenant()
	ti := ap.tenants[tenant]
	if ti == nil {
		ti = &admitTenant{ids: newIDSet()}
		ap.tenants[tenant] = ti
	}
	isPostmaster := ev.GetType() == sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS
	if !isPostmaster && ti.wmSet && t < ti.wm-a.lateness {
		return 0, &LateEventError{
			Tenant: tenant, EventID: ev.GetEventId(), OccurredAt: at,
			Watermark: time.Unix(0, ti.wm).UTC(), Lateness: time.Duration(a.lateness),
		}
	}
	id := ev.GetEventId()
	k := keyOf(id)
	if ti.ids.has(k) {
		return Duplicate, nil
	}
	ti.remember(k, t, !isPostmaster, a.retention)
	if !isPostmaster {
		ap.maxWM = max(ap.maxWM, t)
	}
	ap.pending = append(ap.pending, AdmitEntry{Tenant: tenant, EventID: id, At: t, Offset: off, Postmaster: isPostmaster})
	return Admitted, nil
}

// remember records id; counted events move the watermark and sweep.
func (ti *admitTenant) remember(id idKey, t int64, moveWM bool, retention int64) {
	ti.ids.add(id, t)
	if !moveWM || (ti.wmSet && t <= ti.wm) {
		return
	}
	if !ti.wmSet {
		ti.lastSweep = t
	}
	ti.wm, ti.wmSet = t, true
	if ti.wm-ti.lastSweep > max(retention/4, int64(time.Minute)) {
		ti.ids.dropBefore(ti.wm - retention)
		ti.lastSweep = ti.wm
	}
}

// Len returns the number of ids retained over all partitions.
func (a *Admission) Len() int {
	n := 0
	for _, ap := range a.parts {
		for _, ti := range ap.tenants {
			n += ti.ids.len()
		}
	}
	return n
}

const admitMagic = "SGA1"

// SegmentKey is the state-topic key of partition p's segment starting at
// source offset first: "admit|p|first". A replay that starts a segment at
// the same offset replaces it (compaction keeps the newest).
func SegmentKey(p int32, first int64) string {
	return "admit|" + strconv.FormatInt(int64(p), 10) + "|" + strconv.FormatInt(first, 10)
}

// ParseSegmentKey returns the partition of a SegmentKey.
func ParseSegmentKey(key string) (int32, bool) {
	const prefix = "admit|"
	if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
		return 0, false
	}
	rest := key[len(prefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '|' {
			p, err := strconv.ParseInt(rest[:i], 10, 32)
			return int32(p), err == nil && p >= 0
		}
	}
	return 0, false
}

// TakeSegment returns the segment of the ids admitted in partition p since
// the previous call (key and value for the compacted state topic), and
// false when there are none. The caller must make it durable before it
// commits the source offsets.
func (a *Admission) TakeSegment(p int32) (key string, value []byte, ok bool) {
	ap := a.parts[p]
	if ap == nil || len(ap.pending) == 0 {
		return "", nil, false
	}
	key = SegmentKey(p, ap.pending[0].Offset)
	meta := make(map[string]int64)
	b := []byte(admitMagic)
	b = binary.AppendUvarint(b, uint64(len(ap.pending)))
	for _, e := range ap.pending {
		b = appendString(b, e.Tenant)
		b = appendString(b, e.EventID)
		b = binary.AppendVarint(b, e.At)
		b = binary.AppendVarint(b, e.Offset)
		if e.Postmaster {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		if cur, ok := meta[e.Tenant]; !ok || e.At > cur {
			meta[e.Tenant] = e.At
		}
	}
	ap.segs[key] = meta
	ap.pending = ap.pending[:0]
	return key, b, true
}

// Partitions returns the partitions with state.
func (a *Admission) Partitions() []int32 {
	out := make([]int32, 0, len(a.parts))
	for p := range a.parts {
		out = append(out, p)
	}
	return out
}

// ExpiredSegments returns (and forgets) the keys of partition p's live
// segments whose every id is older than its tenant's watermark minus the
// retention: the caller deletes them with tombstones.
//
// Only watermarks expire segments, so the live segments (one per flush,
// rate × retention of them) are scanned only when the partition's greatest
// watermark moved segmentScanInterval of event time since the previous
// scan: a segment is deleted up to that much later than it could be, and
// the cost stays constant per flush instead of growing with the run (at
// 50k events/s, scanning every flush was a twelfth of the pipeline's CPU
// two minutes into a run, and growing). The first call after NewAdmission
// or Restore scans.
func (a *Admission) ExpiredSegments(p int32) []string {
	ap := a.parts[p]
	if ap == nil {
		return nil
	}
	if ap.scanned && ap.maxWM-ap.scannedWM < a.segmentScanInterval() {
		return nil
	}
	ap.scanned, ap.scannedWM = true, ap.maxWM
	var out []string
	for key, meta := range ap.segs {
		expired := true
		for tenant, newest := range meta {
			ti := ap.tenants[tenant]
			if ti == nil || !ti.wmSet || newest >= ti.wm-a.retention {
				expired = false
				break
			}
		}
		if expired {
			out = append(out, key)
			delete(ap.segs, key)
		}
	}
	return out
}

// segmentScanInterval is how far (event time) the greatest watermark of a
// partition moves between two scans for expired segments: a minute, or a
// quarter of a shorter retention.
func (a *Admission) segmentScanInterval() int64 {
	return max(min(int64(time.Minute), a.retention/4), 1)
}

// DecodeSegment decodes a segment value.
func DecodeSegment(data []byte) ([]AdmitEntry, error) {
	r := reader{b: data}
	if string(r.bytes(len(admitMagic))) != admitMagic {
		return nil, errors.New("decode admit segment: bad magic")
	}
	n := r.count()
	out := make([]AdmitEntry, 0, n)
	for range n {
		e := AdmitEntry{Tenant: r.string(), EventID: r.string(), At: r.varint(), Offset: r.varint()}
		switch r.byte() {
		case 0:
		case 1:
			e.Postmaster = true
		default:
			r.fail("postmaster flag")
		}
		if r.err != nil {
			break
		}
		out = append(out, e)
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode admit segment: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("decode admit segment: %d trailing bytes", len(r.b))
	}
	return out, nil
}

// Restore replaces partition p's state with the segments given (key →
// value, as read from the state topic) for consumption resuming at source
// offset from: ids at offsets below from are remembered (and move the
// watermarks); entries at or above from were admitted by a run whose
// commit did not happen — they are returned, so the caller can tell which
// of the events it is about to admit again may already be downstream
// (ClickHouse). Pending entries of p are dropped.
func (a *Admission) Restore(p int32, from int64, segments map[string][]byte) ([]AdmitEntry, error) {
	ap := &admitPartition{tenants: make(map[string]*admitTenant), segs: make(map[string]map[string]int64)}
	var ahead []AdmitEntry
	for key, v := range segments {
		entries, err := DecodeSegment(v)
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", key, err)
		}
		meta := make(map[string]int64)
		for _, e := range entries {
			if e.Offset >= from {
				ahead = append(ahead, e)
				continue
			}
			ti := ap.tenants[e.Tenant]
			if ti == nil {
				ti = &admitTenant{ids: newIDSet()}
				ap.tenants[e.Tenant] = ti
			}
			ti.ids.add(keyOf(e.EventID), e.At)
			if !e.Postmaster && (!ti.wmSet || e.At > ti.wm) {
				ti.wm, ti.wmSet, ti.lastSweep = e.At, true, e.At
				ap.maxWM = max(ap.maxWM, e.At)
			}
			if cur, ok := meta[e.Tenant]; !ok || e.At > cur {
				meta[e.Tenant] = e.At
			}
		}
		ap.segs[key] = meta
	}
	a.parts[p] = ap
	return ahead, nil
}
