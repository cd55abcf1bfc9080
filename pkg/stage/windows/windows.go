// Package windows is the windowed-metrics component, in two steps that make
// every count exact whatever partition an event lands on and however many
// instances run:
//
//  1. Admit (sg.events.v1, keyed tenant|event_id): per source partition,
//     lateness, future and exact id dedup; every admitted event fanned out
//     to the sg.scoped-events.v1 partitions its scopes' keys
//     (tenant|level|target) hash to, once per partition with the levels of
//     the scopes it owns, reduced to the fields windows read
//     (window.Counted) and stamped with its source partition and offset;
//     admitted events to ClickHouse; admitted ids checkpointed
//     incrementally to sg.admit-state.v1.
//  2. Stage (sg.scoped-events.v1): each scope has exactly one owner (the
//     consumer of its partition), which folds the records into the scope's
//     windows (skipping, per source partition, offsets it already folded
//     in), publishes coalesced snapshots to sg.metrics.v1 at each flush and
//     on a periodic tick, and checkpoints dirty scopes to the compacted
//     sg.window-state.v1 (with their source offsets, so a replay after a
//     restart changes nothing).
package windows

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Publisher writes records durably; *kafka.Producer implements it.
type Publisher interface {
	Produce(ctx context.Context, records ...kafka.Record) error
}

// EventSink receives every event that counted (not duplicates);
// *clickhouse.BatchWriter[*sgv1.Event] implements it. Flush must return only
// once what was appended is durable.
type EventSink interface {
	Append(ctx context.Context, events ...*sgv1.Event) error
	Flush(ctx context.Context) error
}

// Stage is the aggregating step, a kafka.Handler and kafka.Flusher over
// sg.scoped-events.v1.
//
// Ownership: the scopes of partition q of sg.scoped-events.v1 belong to
// whichever instance consumes q. When a record of q arrives that is not
// the successor of the last one handled from q (first record after start,
// or q given back after a rebalance), the stage drops what it holds for q
// and restores q's scopes from their checkpoints (records of
// sg.window-state.v1 whose HeaderPartition is q). Checkpoints are written
// at every flush, before the commit, so the restored source offsets are at
// or ahead of the committed position: records replayed below them are
// skipped, exactly.
type Stage struct {
	// mu serialises Handle, Flush and Tick (the runner and the ticker).
	mu     sync.Mutex
	agg    *window.Aggregator
	pub    Publisher
	read   StateReader
	logger *zap.Logger
	now    func() time.Time

	next   map[int32]int64
	owner  map[window.ScopeKey]int32
	keys   []window.ScopeKey // Handle's scratch
	reader scopedReader      // Handle's scratch
	events *decodedEvents    // Handle's scratch
	// cpDirty are scopes changed since their last checkpoint was built.
	cpDirty   map[window.ScopeKey]struct{}
	unflushed func(context.Context) error // Flush's failed flush, run first next time
	// snapDirty are scopes changed since their last published snapshot;
	// snapUrgent those of them changed by a window.UrgentType event.
	snapDirty  map[window.ScopeKey]struct{}
	snapUrgent map[window.ScopeKey]struct{}
	lastSnap   time.Time
	// lastTick is the time of the last tick's snapshots. A snapshot after a
	// change is evaluated no earlier than it: the rule engine ignores a
	// snapshot older than one it already evaluated, so a change published
	// "as of its newest event" after a tick would never be seen.
	lastTick  time.Time
	snapEvery time.Duration

	snapshots prometheus.Counter
	scopes    prometheus.Gauge
}

var (
	_ kafka.Handler  = (*Stage)(nil)
	_ kafka.Flusher  = (*Stage)(nil)
	_ kafka.Detacher = (*Stage)(nil)
)

// DefaultSnapshotEvery is how often, at most, a changed scope's snapshot
// is published.
const DefaultSnapshotEvery = 250 * time.Millisecond

// UrgentSnapshotEvery is how often the service calls PublishSnapshots: the
// snapshots of scopes changed by an urgent event (window.UrgentType: a
// complaint, an unsubscribe, ...) go out at the first call, the others at
// most every SnapshotEvery. Complaints are a few per ten thousand events,
// so announcing their scopes early costs a few hundred snapshots a second
// at 50k events/s, and takes a complaint spike's pause 100 ms sooner on
// average.
const UrgentSnapshotEvery = 50 * time.Millisecond

// New returns the aggregating step over an aggregator built with cfg (its
// Deduper, Lateness and MaxFuture are not used: admission decided).
// Snapshots of changed scopes are published at most every snapshotEvery
// (0: DefaultSnapshotEvery; negative: at every flush), coalesced per scope;
// checkpoints are written at every flush.
func New(cfg window.Config, pub Publisher, read StateReader, logger *zap.Logger, reg prometheus.Registerer, snapshotEvery time.Duration) (*Stage, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if snapshotEvery == 0 {
		snapshotEvery = DefaultSnapshotEvery
	}
	s := &Stage{
		agg: window.New(cfg), pub: pub, read: read, logger: logger, now: cfg.Now,
		next: make(map[int32]int64), owner: make(map[window.ScopeKey]int32), events: newDecodedEvents(decodedEventsSize),
		snapDirty: make(map[window.ScopeKey]struct{}), snapUrgent: make(map[window.ScopeKey]struct{}),
		cpDirty: make(map[window.ScopeKey]struct{}), snapEvery: snapshotEvery,
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sendguard_windows_snapshots_total", Help: "Window snapshots published.",
		}),
		scopes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sendguard_windows_active_scopes", Help: "Scopes held in memory.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.snapshots, s.scopes} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("windows metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Aggregator exposes the aggregator (read-only use: status, tests).
func (s *Stage) Aggregator() *window.Aggregator { return s.agg }

// restore drops the scopes held for partition q and restores q's scopes
// from their checkpoints.
func (s *Stage) restore(ctx context.Context, q int32) error {
	dropped := s.agg.Drop(func(k window.ScopeKey) bool {
		p, ok := s.owner[k]
		return !ok || p != q
	})
	for k, p := range s.owner {
		if p == q {
			delete(s.owner, k)
		}
	}
	want := []byte(strconv.FormatInt(int64(q), 10))
	var latest kafka.Latest
	err := s.read(ctx, topics.WindowState, func(m kafka.Message) error {
		if string(m.Header(HeaderPartition)) == string(want) {
			latest.Add(m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore windows %d: %w", q, err)
	}
	for key, v := range latest.Map() {
		k, err := s.agg.RestoreScopeKey(v)
		if err != nil {
			return fmt.Errorf("restore scope %s: %w", key, err)
		}
		s.owner[k] = q
	}
	s.logger.Info("window state restored", zap.Int32("partition", q), zap.Int("scopes", latest.Len()), zap.Int("dropped", dropped))
	s.scopes.Set(float64(s.agg.Len()))
	return nil
}

// Handle folds one scoped batch in: every update, each event decoded once.
// A record that does not decode is a permanent failure; so is one holding
// updates without a valid scope or event, or whose event does not count in
// the named scope — after its valid updates are folded in, so a re-drive
// from the dead-letter topic changes nothing they counted (their source
// offsets are remembered) and counts what was fixed.
func (s *Stage) Handle(ctx context.Context, msg kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, off := int32(msg.Partition()), msg.Offset()
	if n, ok := s.next[q]; !ok || n != off {
		if err := s.restore(ctx, q); err != nil {
			return err
		}
	}
	s.next[q] = off + 1
	firstForm, err := s.reader.read(msg.Value())
	if err != nil {
		return kafka.Permanent("window", fmt.Errorf("decode scoped batch: %w", err))
	}
	if !firstForm {
		bad, err := s.foldScoped(q, s.reader.entries)
		if err != nil {
			return err
		}
		if len(bad) > 0 {
			return kafka.Permanent("window", fmt.Errorf("%d of %d scoped entries refused: %w", len(bad), len(s.reader.entries), errors.Join(bad...)))
		}
		return nil
	}
	var batch sgv1.ScopedBatch
	if err := proto.Unmarshal(msg.Value(), &batch); err != nil {
		return kafka.Permanent("window", fmt.Errorf("decode scoped batch: %w", err))
	}
	entries := make([]scopedEntry, len(batch.GetScoped()))
	for i, se := range batch.GetScoped() {
		entries[i] = scopedEntry{event: se.GetEvent(), levels: se.GetLevels(), srcPartition: se.GetSrcPartition(), srcOffset: se.GetSrcOffset()}
	}
	bad, err := s.foldScoped(q, entries)
	if err != nil {
		return err
	}
	badUpdates, err := s.foldUpdates(q, &batch)
	if err != nil {
		return err
	}
	if bad = append(bad, badUpdates...); len(bad) > 0 {
		n := len(batch.GetScoped()) + len(batch.GetUpdates())
		return kafka.Permanent("window", fmt.Errorf("%d of %d scoped entries refused: %w", len(bad), n, errors.Join(bad...)))
	}
	return nil
}

// foldScoped folds the events of a batch into the scopes of partition q
// they name by level. It returns the entries refused (undecodable, invalid,
// a level the event has no scope at) and stops only on other errors.
// s.mu is held.
func (s *Stage) foldScoped(q int32, entries []scopedEntry) ([]error, error) {
	var bad []error
	for i, se := range entries {
		if len(se.levels) == 0 || se.srcPartition < 0 || se.srcOffset < 0 {
			bad = append(bad, fmt.Errorf("scoped event %d from %d@%d: no level or bad source", i, se.srcPartition, se.srcOffset))
			continue
		}
		ev, err := s.events.decode(se.srcPartition, se.srcOffset, se.event)
		if err != nil {
			bad = append(bad, fmt.Errorf("decode scoped event %d: %w", i, err))
			continue
		}
		s.keys, err = s.agg.ApplyLevels(ev, se.levels, se.srcPartition, se.srcOffset, s.keys[:0])
		if err != nil {
			if errors.Is(err, window.ErrInvalidEvent) {
				bad = append(bad, fmt.Errorf("scoped event %d from %d@%d: %w", i, se.srcPartition, se.srcOffset, err))
				continue
			}
			return bad, err
		}
		for _, k := range s.keys {
			// Looked up first: assigning an existing key rewrites it.
			if cur, ok := s.owner[k]; !ok || cur != q {
				s.owner[k] = q
			}
		}
	}
	return bad, nil
}

// foldUpdates folds a batch of the first form (events and one update per
// scope, written before ScopedEvent existed) like foldScoped.
func (s *Stage) foldUpdates(q int32, batch *sgv1.ScopedBatch) ([]error, error) {
	var bad []error
	events := make([]*sgv1.Event, len(batch.GetEvents()))
	for _, u := range batch.GetUpdates() {
		k := window.ScopeKey{Tenant: u.GetTenant(), Level: u.GetLevel(), Target: u.GetTarget()}
		i := int(u.GetEvent())
		if k.Tenant == "" || k.Target == "" || k.Level == sgv1.ScopeLevel_SCOPE_LEVEL_UNSPECIFIED || i >= len(events) || u.GetSrcPartition() < 0 || u.GetSrcOffset() < 0 {
			bad = append(bad, fmt.Errorf("scoped update %v of event %d from %d@%d: bad scope or source", k, i, u.GetSrcPartition(), u.GetSrcOffset()))
			continue
		}
		if events[i] == nil {
			ev := &sgv1.Event{}
			if err := proto.Unmarshal(batch.GetEvents()[i], ev); err != nil {
				bad = append(bad, fmt.Errorf("decode event %d: %w", i, err))
				continue
			}
			events[i] = ev
		}
		if _, err := s.agg.ApplyScoped(events[i], k, u.GetSrcPartition(), u.GetSrcOffset()); err != nil {
			if errors.Is(err, window.ErrInvalidEvent) {
				bad = append(bad, err)
				continue
			}
			return bad, err
		}
		s.owner[k] = q
	}
	return bad, nil
}

// Flush writes, before the runner commits, the checkpoints of the scopes
// that changed, and the snapshots of the scopes changed since the last
// published ones when SnapshotEvery has passed (one per scope, however many
// events changed it). It is Detach and the returned function, run at once.
func (s *Stage) Flush(ctx context.Context) error {
	return kafka.FlushDetached(ctx, &s.unflushed, s)
}

// Detach builds what Flush writes (kafka.Detacher) and returns the function
// that writes it, which the runner runs while the stage folds the next
// batches in. A checkpoint holds its scope's source offsets, so writing one
// again after a failure, or after a newer one, is harmless: restores keep
// the newest and skip replays below its offsets.
func (s *Stage) Detach(context.Context) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.takeDirty()
	dirty := make([]window.ScopeKey, 0, len(s.cpDirty))
	for k := range s.cpDirty {
		dirty = append(dirty, k)
	}
	recs, err := s.checkpoints(dirty)
	if err != nil {
		return nil, err
	}
	clear(s.cpDirty)
	if s.snapEvery < 0 || s.now().Sub(s.lastSnap) >= s.snapEvery {
		snapped := s.snapKeys()
		snaps, err := s.records(snapped, time.Time{})
		if err != nil {
			for _, k := range dirty {
				s.cpDirty[k] = struct{}{}
			}
			return nil, err
		}
		recs = append(recs, snaps...)
		s.published(snapped, true)
	}
	s.scopes.Set(float64(s.agg.Len()))
	return func(ctx context.Context) error {
		if len(recs) == 0 {
			return nil
		}
		if err := s.pub.Produce(ctx, recs...); err != nil {
			return fmt.Errorf("publish snapshots: %w", err)
		}
		return nil
	}, nil
}

// takeDirty moves the aggregator's changed scopes into the sets of scopes
// due a checkpoint (at the next flush) and a snapshot (at the next
// publication, which may come first). s.mu is held.
func (s *Stage) takeDirty() {
	s.agg.TakeChanged(func(k window.ScopeKey, urgent bool) {
		s.cpDirty[k] = struct{}{}
		s.snapDirty[k] = struct{}{}
		if urgent {
			s.snapUrgent[k] = struct{}{}
		}
	})
}

// PublishSnapshots publishes the snapshots of the scopes changed since
// their last published snapshot when SnapshotEvery has passed, and else
// those of the scopes changed by an urgent event (window.UrgentType); the
// service calls it every UrgentSnapshotEvery, so a change is announced
// within SnapshotEvery, an urgent one within UrgentSnapshotEvery, whenever
// the flushes (checkpoints) come. The step folds batches in while the
// snapshots are written; those that fail are published again at the next
// regular publication.
func (s *Stage) PublishSnapshots(ctx context.Context) error {
	s.mu.Lock()
	s.takeDirty()
	var keys []window.ScopeKey
	regular := false
	switch {
	case len(s.snapDirty) > 0 && s.now().Sub(s.lastSnap) >= s.snapEvery:
		keys, regular = s.snapKeys(), true
	case len(s.snapUrgent) > 0:
		keys = make([]window.ScopeKey, 0, len(s.snapUrgent))
		for k := range s.snapUrgent {
			keys = append(keys, k)
		}
	default:
		s.mu.Unlock()
		return nil
	}
	recs, err := s.records(keys, time.Time{})
	if err == nil {
		s.published(keys, regular)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.pub.Produce(ctx, recs...); err != nil {
		s.mu.Lock()
		for _, k := range keys {
			s.snapDirty[k] = struct{}{}
		}
		s.mu.Unlock()
		return fmt.Errorf("publish snapshots: %w", err)
	}
	return nil
}

func (s *Stage) snapKeys() []window.ScopeKey {
	keys := make([]window.ScopeKey, 0, len(s.snapDirty))
	for k := range s.snapDirty {
		keys = append(keys, k)
	}
	return keys
}

// published forgets keys' pending snapshots; a regular publication (every
// changed scope) restarts the SnapshotEvery clock.
func (s *Stage) published(keys []window.ScopeKey, regular bool) {
	for _, k := range keys {
		delete(s.snapDirty, k)
		delete(s.snapUrgent, k)
	}
	if regular && keys != nil {
		s.lastSnap = s.now()
	}
	s.snapshots.Add(float64(len(keys)))
}

// checkpoints builds the checkpoint records of keys, each stamped with the
// scoped-events partition that owns it.
func (s *Stage) checkpoints(keys []window.ScopeKey) ([]kafka.Record, error) {
	recs := make([]kafka.Record, 0, len(keys))
	for _, k := range keys {
		q, ok := s.owner[k]
		if !ok {
			continue
		}
		cp, err := s.agg.MarshalScope(k)
		if errors.Is(err, window.ErrUnknownScope) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", k, err)
		}
		recs = append(recs, kafka.Record{Topic: topics.WindowState, Key: topics.Key(k.Tenant, window.LevelWord(k.Level), k.Target), Value: cp,
			Headers: map[string][]byte{HeaderPartition: []byte(strconv.FormatInt(int64(q), 10))}})
	}
	return recs, nil
}

// Tick re-publishes every scope's snapshot at the current time, so rules
// see time-based changes (windows sliding, cooldowns ending) without new
// events, drops idle scopes and deletes their checkpoints.
func (s *Stage) Tick(ctx context.Context) error {
	recs, err := s.tickRecords()
	if err != nil || len(recs) == 0 {
		return err
	}
	return s.pub.Produce(ctx, recs...)
}

func (s *Stage) tickRecords() ([]kafka.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []kafka.Record
	for _, k := range s.agg.Expire(s.now()) {
		if q, ok := s.owner[k]; ok {
			recs = append(recs, kafka.Record{Topic: topics.WindowState, Key: topics.Key(k.Tenant, window.LevelWord(k.Level), k.Target),
				Headers: map[string][]byte{HeaderPartition: []byte(strconv.FormatInt(int64(q), 10))}})
			delete(s.owner, k)
		}
	}
	at := s.now()
	snaps, err := s.records(s.agg.All(), at)
	if err != nil {
		return nil, err
	}
	s.lastTick = at
	return append(recs, snaps...), nil
}

// records builds the snapshot records of keys: when at is zero (a change),
// as of each scope's newest event but no earlier than the last tick;
// otherwise at at (a tick: windows slide forward without new events).
// Callers hold s.mu.
func (s *Stage) records(keys []window.ScopeKey, at time.Time) ([]kafka.Record, error) {
	if at.IsZero() {
		at = s.lastTick
	}
	recs := make([]kafka.Record, 0, len(keys))
	for _, k := range keys {
		snap := s.agg.CompactSnapshotAt(k, at)
		if snap == nil {
			continue
		}
		b, err := proto.Marshal(snap)
		if err != nil {
			return nil, fmt.Errorf("marshal snapshot: %w", err)
		}
		recs = append(recs, kafka.Record{Topic: topics.Metrics, Key: topics.Key(k.Tenant, window.LevelWord(k.Level), k.Target), Value: b,
			Headers: map[string][]byte{kafka.HeaderTenant: []byte(k.Tenant)}})
	}
	return recs, nil
}
