package window

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Defaults of Config.
const (
	// DefaultLateness is how far behind the tenant's watermark an event may
	// be and still count.
	DefaultLateness = time.Hour
	// DefaultIdleExpiry is the longest look-back of any metric: today plus
	// the 28 full days of the avg_28d baseline.
	DefaultIdleExpiry = dayKeep * 24 * time.Hour
	// DefaultMaxFuture is how far ahead of the clock an event may be.
	DefaultMaxFuture = time.Hour
	// DefaultDedupMargin is added to the lateness to get the default
	// deduper's retention.
	DefaultDedupMargin = time.Hour
)

// ErrLateEvent is matched (errors.Is) by a *LateEventError.
var ErrLateEvent = errors.New("event later than the allowed lateness")

// ErrFutureEvent is returned for an event further ahead of the clock than
// Config.MaxFuture.
var ErrFutureEvent = errors.New("event time too far in the future")

// ErrInvalidEvent is matched (errors.Is) by an *InvalidEventError.
var ErrInvalidEvent = errors.New("invalid event")

// ErrUnknownScope is returned for a scope the aggregator holds no state for.
var ErrUnknownScope = errors.New("unknown scope")

// LateEventError rejects an event whose time is more than Lateness behind
// its tenant's watermark. It is permanent: retrying cannot help.
type LateEventError struct {
	Tenant     string
	EventID    string
	OccurredAt time.Time
	Watermark  time.Time
	Lateness   time.Duration
}

func (e *LateEventError) Error() string {
	return fmt.Sprintf("event %s of tenant %s at %s is %s behind the watermark %s (lateness %s)",
		e.EventID, e.Tenant, e.OccurredAt.Format(time.RFC3339Nano), e.Watermark.Sub(e.OccurredAt),
		e.Watermark.Format(time.RFC3339Nano), e.Lateness)
}

// Is matches ErrLateEvent.
func (e *LateEventError) Is(target error) bool { return target == ErrLateEvent }

// InvalidEventError rejects an event that cannot be counted. It is
// permanent.
type InvalidEventError struct {
	Field  string
	Reason string
}

func (e *InvalidEventError) Error() string {
	return fmt.Sprintf("invalid event: %s: %s", e.Field, e.Reason)
}

// Is matches ErrInvalidEvent.
func (e *InvalidEventError) Is(target error) bool { return target == ErrInvalidEvent }

// Config configures an Aggregator. Zero values take the defaults.
type Config struct {
	// Lateness is how far an event may be behind its tenant's watermark (the
	// newest accepted event time of the tenant) and still count; older
	// events are rejected with a *LateEventError. Zero means
	// DefaultLateness; negative means no lateness at all.
	Lateness time.Duration
	// IdleExpiry is how long (event time) a scope may go without events
	// before Expire drops it. Zero means DefaultIdleExpiry.
	IdleExpiry time.Duration
	// MaxFuture is how far ahead of Now an event may be. Zero means
	// DefaultMaxFuture; negative disables the check (offline replays of
	// synthetic futures).
	MaxFuture time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Deduper remembers event ids. Nil means a MemDeduper retaining ids
	// for Lateness + DefaultDedupMargin, which makes deduplication exact for
	// every event the lateness check admits.
	Deduper Deduper
	// Owns, when set, restricts updates to the scopes it returns true for
	// (an instance owning part of the scope key space).
	Owns func(ScopeKey) bool
}

// Stats counts what Apply did with events.
type Stats struct {
	Applied    uint64 // events folded into at least one scope
	Duplicates uint64 // events ignored as duplicates
	Late       uint64 // events rejected as later than the lateness
	Future     uint64 // events rejected as too far in the future
	Invalid    uint64 // events rejected as invalid
	Ignored    uint64 // valid events that count nowhere (no scope, not-spam reports)
}

// Aggregator folds canonical events into per-scope, event-time windows. It
// is safe for concurrent use; Apply and Snapshot serialise on one mutex.
type Aggregator struct {
	mu        sync.Mutex
	cfg       Config
	lateness  time.Duration
	scopes    map[ScopeKey]*scopeState
	dirty     map[ScopeKey]bool // changed scopes; true: changed by an UrgentType event
	watermark map[string]int64  // tenant -> newest accepted event time (unix ns)
	stats     Stats
	keyBuf    []ScopeKey
}

// New returns an empty Aggregator.
func New(cfg Config) *Aggregator {
	if cfg.Lateness == 0 {
		cfg.Lateness = DefaultLateness
	}
	lateness := cfg.Lateness
	if lateness < 0 {
		lateness = 0
	}
	if cfg.IdleExpiry <= 0 {
		cfg.IdleExpiry = DefaultIdleExpiry
	}
	if cfg.MaxFuture == 0 {
		cfg.MaxFuture = DefaultMaxFuture
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Deduper == nil {
		cfg.Deduper = NewMemDeduper(lateness + DefaultDedupMargin)
	}
	return &Aggregator{
		cfg:       cfg,
		lateness:  lateness,
		scopes:    make(map[ScopeKey]*scopeState),
		dirty:     make(map[ScopeKey]bool),
		watermark: make(map[string]int64),
	}
}

// Deduper returns the deduper in use, so the service can persist it.
func (a *Aggregator) Deduper() Deduper { return a.cfg.Deduper }

// minEventTime and maxEventTime bound accepted event times (year 1970 to
// 2200) so slot numbers and nanosecond times cannot overflow.
var (
	minEventTime = time.Unix(0, 0)
	maxEventTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Apply folds ev into every scope it counts in (Scopes) and returns the keys
// of the scopes it changed. A duplicate (same tenant and event_id seen
// before) changes nothing and returns no error. Errors are permanent and
// typed: *InvalidEventError, *LateEventError (postmaster stats are exempt:
// they only replace a latest value) and ErrFutureEvent.
func (a *Aggregator) Apply(ev *sgv1.Event) ([]ScopeKey, error) {
	if err := validate(ev); err != nil {
		a.mu.Lock()
		a.stats.Invalid++
		a.mu.Unlock()
		return nil, err
	}
	at := ev.GetOccurredAt().AsTime()
	t := at.UnixNano()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.MaxFuture > 0 && at.After(a.cfg.Now().Add(a.cfg.MaxFuture)) {
		a.stats.Future++
		return nil, fmt.Errorf("event %s at %s: %w", ev.GetEventId(), at.Format(time.RFC3339Nano), ErrFutureEvent)
	}
	tenant := ev.GetTenant()
	isPostmaster := ev.GetType() == sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS
	wm, hasWM := a.watermark[tenant]
	if !isPostmaster && hasWM && t < wm-int64(a.lateness) {
		a.stats.Late++
		return nil, &LateEventError{
			Tenant: tenant, EventID: ev.GetEventId(), OccurredAt: at,
			Watermark: time.Unix(0, wm).UTC(), Lateness: a.lateness,
		}
	}
	if a.cfg.Deduper.Seen(tenant, ev.GetEventId(), at) {
		a.stats.Duplicates++
		return nil, nil
	}
	if !isPostmaster && (!hasWM || t > wm) {
		a.watermark[tenant] = t
	}
	d, counts := classifyEvent(ev)
	if !counts && !isPostmaster {
		a.stats.Ignored++
		return nil, nil
	}
	a.keyBuf = scopeKeys(ev, a.keyBuf[:0])
	var changed []ScopeKey
	for _, k := range a.keyBuf {
		if a.cfg.Owns != nil && !a.cfg.Owns(k) {
			continue
		}
		if changed == nil {
			changed = make([]ScopeKey, 0, len(a.keyBuf))
		}
		s := a.scopes[k]
		if s == nil {
			s = &scopeState{key: k}
			a.scopes[k] = s
		}
		s.apply(ev, t, &d, counts)
		a.markDirty(s, UrgentType(ev.GetType()))
		changed = append(changed, k)
	}
	if len(changed) == 0 {
		a.stats.Ignored++
	} else {
		a.stats.Applied++
	}
	return changed, nil
}

func validate(ev *sgv1.Event) error {
	switch {
	case ev == nil:
		return &InvalidEventError{Field: "event", Reason: "nil"}
	case ev.GetTenant() == "":
		return &InvalidEventError{Field: "tenant", Reason: "empty"}
	case ev.GetEventId() == "":
		return &InvalidEventError{Field: "event_id", Reason: "empty"}
	case ev.GetOccurredAt() == nil:
		return &InvalidEventError{Field: "occurred_at", Reason: "missing"}
	}
	if err := ev.GetOccurredAt().CheckValid(); err != nil {
		return &InvalidEventError{Field: "occurred_at", Reason: err.Error()}
	}
	if at := ev.GetOccurredAt().AsTime(); at.Before(minEventTime) || !at.Before(maxEventTime) {
		return &InvalidEventError{Field: "occurred_at", Reason: "outside 1970..2200"}
	}
	typ := ev.GetType()
	if typ == sgv1.EventType_EVENT_TYPE_UNSPECIFIED {
		return &InvalidEventError{Field: "type", Reason: "unspecified"}
	}
	if _, ok := sgv1.EventType_name[int32(typ)]; !ok {
		return &InvalidEventError{Field: "type", Reason: fmt.Sprintf("unknown value %d", typ)}
	}
	switch {
	case typ == sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST && ev.GetPlacement() == nil:
		return &InvalidEventError{Field: "placement", Reason: "missing on a placement_test event"}
	case typ == sgv1.EventType_EVENT_TYPE_AUTH_CHECK && ev.GetAuth() == nil:
		return &InvalidEventError{Field: "auth", Reason: "missing on an auth_check event"}
	case typ == sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS && ev.GetPostmaster() == nil:
		return &InvalidEventError{Field: "postmaster", Reason: "missing on a postmaster_stats event"}
	}
	return nil
}

// Stats returns the event counters.
func (a *Aggregator) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// Len returns the number of scopes held.
func (a *Aggregator) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.scopes)
}

// Watermark returns the newest accepted event time of tenant (zero when
// none). The lateness check is relative to it.
func (a *Aggregator) Watermark(tenant string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	wm, ok := a.watermark[tenant]
	if !ok {
		return time.Time{}
	}
	return time.Unix(0, wm).UTC()
}

// Dirty returns the scopes changed since the previous call (Dirty or
// TakeChanged), sorted, and clears the set: the caller publishes one
// snapshot per returned scope, so any number of changes between two
// flushes coalesce into one snapshot.
func (a *Aggregator) Dirty() []ScopeKey {
	out := []ScopeKey{}
	a.TakeChanged(func(k ScopeKey, _ bool) { out = append(out, k) })
	sortKeys(out)
	return out
}

// TakeChanged calls fn, in no order, for each scope changed since the
// previous call (Dirty or TakeChanged), urgent when an UrgentType event
// changed it, and clears the set. fn runs under the aggregator's lock and
// must not call it.
func (a *Aggregator) TakeChanged(fn func(k ScopeKey, urgent bool)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, urgent := range a.dirty {
		fn(k, urgent)
		if s := a.scopes[k]; s != nil {
			s.dirty, s.urgent = false, false
		}
	}
	clear(a.dirty)
}

// UrgentType reports whether events of type t are rare signals that can
// trip a stop rule by themselves (a complaint crossing a complaint rate, an
// unsubscribe, a rejection, a failed authentication, a spam-folder
// placement, a postmaster reputation): the scopes they change are worth
// announcing before the next regular snapshot publication. Deliveries,
// opens, bounces and the like change rates by small steps and wait for it.
func UrgentType(t sgv1.EventType) bool {
	switch t {
	case sgv1.EventType_EVENT_TYPE_COMPLAINED, sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED,
		sgv1.EventType_EVENT_TYPE_REJECTED, sgv1.EventType_EVENT_TYPE_AUTH_CHECK,
		sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST, sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS:
		return true
	}
	return false
}

// markDirty adds s to the dirty set, urgent when an UrgentType event
// changed it; a scope already in it as urgent as that (the common case:
// many events per scope between two flushes) costs no map write. a.mu is
// held.
func (a *Aggregator) markDirty(s *scopeState, urgent bool) {
	if s.dirty && (s.urgent || !urgent) {
		return
	}
	s.dirty, s.urgent = true, s.urgent || urgent
	a.dirty[s.key] = s.urgent
}

// All returns every scope held, sorted, for the periodic snapshot tick.
func (a *Aggregator) All() []ScopeKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]ScopeKey, 0, len(a.scopes))
	for k := range a.scopes {
		out = append(out, k)
	}
	sortKeys(out)
	return out
}

func sortKeys(ks []ScopeKey) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Tenant != ks[j].Tenant {
			return ks[i].Tenant < ks[j].Tenant
		}
		if ks[i].Level != ks[j].Level {
			return ks[i].Level < ks[j].Level
		}
		return ks[i].Target < ks[j].Target
	})
}

// Expire drops the scopes whose newest event (as_of) is more than
// IdleExpiry before now, and returns their keys so the caller can delete
// their checkpoints (a tombstone on the compacted topic). now is event time
// or wall time, the caller's choice; the tenant watermark is the event-time
// choice.
func (a *Aggregator) Expire(now time.Time) []ScopeKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	cut := now.Add(-a.cfg.IdleExpiry).UnixNano()
	var out []ScopeKey
	for k, s := range a.scopes {
		if s.asOf < cut {
			delete(a.scopes, k)
			delete(a.dirty, k)
			out = append(out, k)
		}
	}
	sortKeys(out)
	return out
}

// Merge adds other's state into a, bucket by bucket: counts add, as_of and
// watermarks take the maximum, first-seen the minimum, latest values
// (postmaster, auth) the newer, placement tests unite, versions add. Events
// split over several aggregators and merged give the snapshots one
// aggregator would have given. Merging does not touch the dedupers: the
// aggregators must have seen disjoint events. Do not merge two aggregators
// into each other concurrently.
func (a *Aggregator) Merge(other *Aggregator) {
	if other == a {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	other.mu.Lock()
	defer other.mu.Unlock()
	for k, o := range other.scopes {
		s := a.scopes[k]
		if s == nil {
			s = &scopeState{key: k}
			a.scopes[k] = s
		}
		s.merge(o)
		a.markDirty(s, false)
	}
	for tenant, wm := range other.watermark {
		if cur, ok := a.watermark[tenant]; !ok || wm > cur {
			a.watermark[tenant] = wm
		}
	}
	a.stats.Applied += other.stats.Applied
	a.stats.Duplicates += other.stats.Duplicates
	a.stats.Late += other.stats.Late
	a.stats.Future += other.stats.Future
	a.stats.Invalid += other.stats.Invalid
	a.stats.Ignored += other.stats.Ignored
}

// ScopeBytes returns the bytes held by one scope's state (tiers, tests,
// key strings and the state struct), for capacity planning; see doc.go.
func (a *Aggregator) ScopeBytes(k ScopeKey) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.scopes[k]
	if s == nil {
		return 0
	}
	return s.bytes()
}
