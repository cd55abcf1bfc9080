package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Deduper remembers (tenant, event_id) pairs. Seen reports whether the pair
// was seen before and records it otherwise; at is the event time.
type Deduper interface {
	Seen(tenant, eventID string, at time.Time) bool
}

// MemDeduper is an in-memory Deduper bounded by event time: per tenant it
// keeps the ids of events whose time is within Retention of the newest event
// time it was given (the tenant watermark), and forgets older ones.
//
// The bound is what makes a duplicate a duplicate: a redelivered event older
// than Retention behind the watermark is no longer recognised. The
// Aggregator rejects events older than its Lateness before it asks, so with
// Retention ≥ Lateness (the default is Lateness + 1 h) no event that counts
// can count twice. Memory is about 100 bytes plus the id per retained event
// (rate × Retention ids). The service persists the state with MarshalBinary
// next to its scope checkpoints and restores it with UnmarshalBinary, so a
// restart followed by a replay does not count twice either.
type MemDeduper struct {
	mu        sync.Mutex
	retention int64
	tenants   map[string]*tenantIDs
}

type tenantIDs struct {
	wm        int64
	lastSweep int64
	ids       map[string]int64 // id -> event time, unix ns
}

var _ Deduper = (*MemDeduper)(nil)

// NewMemDeduper returns an empty MemDeduper retaining ids for retention of
// event time.
func NewMemDeduper(retention time.Duration) *MemDeduper {
	if retention < 0 {
		retention = 0
	}
	return &MemDeduper{retention: int64(retention), tenants: make(map[string]*tenantIDs)}
}

// Seen implements Deduper.
func (d *MemDeduper) Seen(tenant, eventID string, at time.Time) bool {
	t := at.UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	ti := d.tenants[tenant]
	if ti == nil {
		ti = &tenantIDs{wm: t, lastSweep: t, ids: make(map[string]int64)}
		d.tenants[tenant] = ti
	}
	if _, ok := ti.ids[eventID]; ok {
		return true
	}
	ti.ids[eventID] = t
	if t > ti.wm {
		ti.wm = t
		// Sweep when the watermark moved a quarter of the retention (at
		// least a minute): amortised O(1) per id.
		if ti.wm-ti.lastSweep > max(d.retention/4, int64(time.Minute)) {
			cut := ti.wm - d.retention
			for id, at := range ti.ids {
				if at < cut {
					delete(ti.ids, id)
				}
			}
			ti.lastSweep = ti.wm
		}
	}
	return false
}

// Len returns the number of ids retained.
func (d *MemDeduper) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ti := range d.tenants {
		n += len(ti.ids)
	}
	return n
}

const dedupMagic = "SGD1"

// MarshalBinary exports the retained ids (tenants and ids sorted, so equal
// states give equal bytes).
func (d *MemDeduper) MarshalBinary() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := []byte(dedupMagic)
	tenants := make([]string, 0, len(d.tenants))
	for t := range d.tenants {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	b = binary.AppendUvarint(b, uint64(len(tenants)))
	for _, tn := range tenants {
		ti := d.tenants[tn]
		b = appendString(b, tn)
		b = binary.AppendVarint(b, ti.wm)
		ids := make([]string, 0, len(ti.ids))
		for id := range ti.ids {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = appendString(b, id)
			b = binary.AppendVarint(b, ti.ids[id])
		}
	}
	return b, nil
}

// UnmarshalBinary adds the ids of an export to d (a union: ids already
// retained stay).
func (d *MemDeduper) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	if string(r.bytes(len(dedupMagic))) != dedupMagic {
		return errors.New("decode dedup state: bad magic")
	}
	type entry struct {
		id string
		at int64
	}
	type tenantEntries struct {
		name string
		wm   int64
		ids  []entry
	}
	var all []tenantEntries
	nt := r.count()
	for range nt {
		te := tenantEntries{name: r.string(), wm: r.varint()}
		n := r.count()
		for range n {
			te.ids = append(te.ids, entry{id: r.string(), at: r.varint()})
		}
		all = append(all, te)
	}
	if r.err != nil {
		return fmt.Errorf("decode dedup state: %w", r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("decode dedup state: %d trailing bytes", len(r.b))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, te := range all {
		ti := d.tenants[te.name]
		if ti == nil {
			ti = &tenantIDs{wm: te.wm, lastSweep: te.wm, ids: make(map[string]int64, len(te.ids))}
			d.tenants[te.name] = ti
		}
		ti.wm = max(ti.wm, te.wm)
		for _, e := range te.ids {
			if _, ok := ti.ids[e.id]; !ok {
				ti.ids[e.id] = e.at
			}
		}
	}
	return nil
}
