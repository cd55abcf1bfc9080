// Package windows is the windowed-metrics stage: canonical events in,
// per-scope window snapshots out (coalesced per scope at each flush and
// re-published on a periodic tick), scope checkpoints to a compacted state
// topic, and every counted event to ClickHouse exactly once.
package windows

import (
	"context"
	"errors"
	"fmt"
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

// dedupKey is the state-topic key of the deduper's checkpoint.
const dedupKey = "_dedup"

// Stage is a kafka.Handler and kafka.Flusher.
type Stage struct {
	agg    *window.Aggregator
	dedup  *window.MemDeduper
	pub    Publisher
	sink   EventSink // nil when analytics are off
	logger *zap.Logger
	now    func() time.Time
	// unpublished are scopes whose snapshot a failed flush did not publish.
	unpublished []window.ScopeKey

	snapshots prometheus.Counter
	scopes    prometheus.Gauge
}

var (
	_ kafka.Handler = (*Stage)(nil)
	_ kafka.Flusher = (*Stage)(nil)
)

// New returns the stage over an aggregator built with cfg (its Deduper is
// replaced by a checkpointed MemDeduper). sink may be nil.
func New(cfg window.Config, pub Publisher, sink EventSink, logger *zap.Logger, reg prometheus.Registerer) (*Stage, error) {
	lateness := cfg.Lateness
	if lateness <= 0 {
		lateness = window.DefaultLateness
	}
	dedup := window.NewMemDeduper(lateness + window.DefaultDedupMargin)
	cfg.Deduper = dedup
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Stage{
		agg: window.New(cfg), dedup: dedup, pub: pub, sink: sink, logger: logger, now: cfg.Now,
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

// Restore rebuilds state from the compacted state topic. Call it before
// consuming.
func (s *Stage) Restore(ctx context.Context, brokers []string) error {
	n := 0
	err := kafka.ReadAll(ctx, brokers, topics.WindowState, func(m kafka.Message) error {
		if len(m.Value()) == 0 {
			return nil // tombstone
		}
		if string(m.Key()) == dedupKey {
			if err := s.dedup.UnmarshalBinary(m.Value()); err != nil {
				return fmt.Errorf("restore deduper: %w", err)
			}
			return nil
		}
		if err := s.agg.RestoreScope(m.Value()); err != nil {
			return fmt.Errorf("restore scope %s: %w", m.Key(), err)
		}
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore windows: %w", err)
	}
	s.logger.Info("window state restored", zap.Int("records", n), zap.Int("scopes", s.agg.Len()))
	s.scopes.Set(float64(s.agg.Len()))
	return nil
}

// Handle folds one event in. Late, future and invalid events are permanent
// failures (dead letters with the reason); duplicates are dropped.
func (s *Stage) Handle(ctx context.Context, msg kafka.Message) error {
	ev := &sgv1.Event{}
	if err := proto.Unmarshal(msg.Value(), ev); err != nil {
		return kafka.Permanent("event", fmt.Errorf("decode event: %w", err))
	}
	before := s.agg.Stats().Duplicates
	if _, err := s.agg.Apply(ev); err != nil {
		if errors.Is(err, window.ErrLateEvent) || errors.Is(err, window.ErrFutureEvent) || errors.Is(err, window.ErrInvalidEvent) {
			return kafka.Permanent("window", err)
		}
		return err
	}
	if s.sink != nil && s.agg.Stats().Duplicates == before {
		if err := s.sink.Append(ctx, ev); err != nil {
			return fmt.Errorf("analytics: %w", err)
		}
	}
	return nil
}

// Flush makes everything handled durable before the runner commits: the
// analytics rows, then the snapshots of the scopes that changed (one per
// scope, however many events changed it) and their checkpoints.
func (s *Stage) Flush(ctx context.Context) error {
	if s.sink != nil {
		if err := s.sink.Flush(ctx); err != nil {
			return fmt.Errorf("flush analytics: %w", err)
		}
	}
	dirty := mergeKeys(s.unpublished, s.agg.Dirty())
	s.unpublished = nil
	if len(dirty) == 0 {
		return nil
	}
	recs, err := s.records(dirty, time.Time{})
	if err != nil {
		return err
	}
	b, err := s.dedup.MarshalBinary()
	if err != nil {
		return fmt.Errorf("checkpoint deduper: %w", err)
	}
	recs = append(recs, kafka.Record{Topic: topics.WindowState, Key: []byte(dedupKey), Value: b})
	if err := s.pub.Produce(ctx, recs...); err != nil {
		s.unpublished = dirty // publish them again next time
		return fmt.Errorf("publish snapshots: %w", err)
	}
	s.snapshots.Add(float64(len(dirty)))
	s.scopes.Set(float64(s.agg.Len()))
	return nil
}

// Tick re-publishes every scope's snapshot at the current event time, so
// rules see time-based changes (windows sliding, cooldowns ending) without
// new events, and drops idle scopes.
func (s *Stage) Tick(ctx context.Context) error {
	s.agg.Expire(s.now())
	all := s.agg.All()
	if len(all) == 0 {
		return nil
	}
	recs, err := s.records(all, s.now())
	if err != nil {
		return err
	}
	return s.pub.Produce(ctx, recs...)
}

// records builds the snapshot records of keys. A zero at means "as of each
// scope's newest event" and adds checkpoints (a flush); otherwise snapshots
// are evaluated at at (a tick: windows slide forward without new events).
func (s *Stage) records(keys []window.ScopeKey, at time.Time) ([]kafka.Record, error) {
	checkpoint := at.IsZero()
	recs := make([]kafka.Record, 0, 2*len(keys))
	for _, k := range keys {
		var snap *sgv1.WindowSnapshot
		if checkpoint {
			snap = s.agg.Snapshot(k)
		} else {
			snap = s.agg.SnapshotAt(k, at)
		}
		if snap == nil {
			continue
		}
		b, err := proto.Marshal(snap)
		if err != nil {
			return nil, fmt.Errorf("marshal snapshot: %w", err)
		}
		key := topics.Key(k.Tenant, window.LevelWord(k.Level), k.Target)
		recs = append(recs, kafka.Record{Topic: topics.Metrics, Key: key, Value: b,
			Headers: map[string][]byte{kafka.HeaderTenant: []byte(k.Tenant)}})
		if checkpoint {
			cp, err := s.agg.MarshalScope(k)
			if err != nil {
				return nil, fmt.Errorf("checkpoint %s: %w", k, err)
			}
			recs = append(recs, kafka.Record{Topic: topics.WindowState, Key: key, Value: cp})
		}
	}
	return recs, nil
}

// mergeKeys returns the union of a and b.
func mergeKeys(a, b []window.ScopeKey) []window.ScopeKey {
	if len(a) == 0 {
		return b
	}
	seen := make(map[window.ScopeKey]struct{}, len(a)+len(b))
	out := make([]window.ScopeKey, 0, len(a)+len(b))
	for _, ks := range [][]window.ScopeKey{a, b} {
		for _, k := range ks {
			if _, ok := seen[k]; !ok {
				seen[k] = struct{}{}
				out = append(out, k)
			}
		}
	}
	return out
}
