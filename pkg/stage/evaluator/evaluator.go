// Package evaluator is the rule-evaluator stage: window snapshots in,
// decisions (with their explanation) out, keyed tenant|level|target.
package evaluator

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Publisher writes records durably; *kafka.Producer implements it.
type Publisher interface {
	Produce(ctx context.Context, records ...kafka.Record) error
}

// Evaluator decides on one snapshot and keeps per-scope health state;
// *rules.Engine implements it.
type Evaluator interface {
	Evaluate(snap *sgv1.WindowSnapshot) []*sgv1.Decision
	// MarshalScope returns a scope's state record (nil: no state).
	MarshalScope(scope *sgv1.Scope) ([]byte, error)
	// RestoreScopes replaces all state with the given records.
	RestoreScopes(records [][]byte) error
}

// LevelWatcher is implemented by evaluators that know which scope levels
// their rules watch (*rules.Engine): the stage skips the snapshots of other
// levels before decoding them.
type LevelWatcher interface {
	Watches(level sgv1.ScopeLevel) bool
}

// Stage is a kafka.Handler and kafka.Detacher.
type Stage struct {
	eval      Evaluator
	pub       Publisher
	pending   []kafka.Record
	unflushed func(context.Context) error // Flush's failed write
	// mu guards versions: Handle runs on the consumer, Prune on a ticker.
	mu        sync.Mutex
	versions  map[string]seenVersion // newest snapshot version seen per scope
	decisions *prometheus.CounterVec
}

var (
	_ kafka.Handler  = (*Stage)(nil)
	_ kafka.Flusher  = (*Stage)(nil)
	_ kafka.Detacher = (*Stage)(nil)
)

// New returns the stage. reg may be nil.
func New(eval Evaluator, pub Publisher, reg prometheus.Registerer) (*Stage, error) {
	s := &Stage{eval: eval, pub: pub, versions: make(map[string]seenVersion),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_evaluator_decisions_total",
			Help: "Decisions published, by rule, action and shadow flag.",
		}, []string{"rule", "action", "shadow"}),
	}
	var err error
	if s.decisions, err = service.Register(reg, s.decisions); err != nil {
		return nil, fmt.Errorf("evaluator metrics: %w", err)
	}
	return s, nil
}

// Handle evaluates one snapshot. A snapshot older than one already seen for
// its scope (the periodic tick racing an update) is skipped, as is one of a
// level no rule watches (read from the record key, before decoding). A
// snapshot that does not decode, or whose counters have a layout this
// version cannot read, is a permanent error (dead-lettered).
func (s *Stage) Handle(_ context.Context, msg kafka.Message) error {
	if w, ok := s.eval.(LevelWatcher); ok {
		if l, ok := keyLevel(msg.Key(), msg.Header(kafka.HeaderTenant)); ok && !w.Watches(l) {
			return nil
		}
	}
	snap := &sgv1.WindowSnapshot{}
	if err := proto.Unmarshal(msg.Value(), snap); err != nil {
		return kafka.Permanent("snapshot", fmt.Errorf("decode snapshot: %w", err))
	}
	if err := window.CheckCounters(snap); err != nil {
		return kafka.Permanent("snapshot", err)
	}
	sc := snap.GetScope()
	key := string(topics.Key(sc.GetTenant(), canonical.LevelWord(sc.GetLevel()), sc.GetTarget()))
	s.mu.Lock()
	v, ok := s.versions[key]
	if ok && snap.GetVersion() < v.version {
		s.mu.Unlock()
		return nil
	}
	s.versions[key] = seenVersion{version: snap.GetVersion(), at: time.Now()}
	s.mu.Unlock()
	decisions := s.eval.Evaluate(snap)
	for _, d := range decisions {
		b, err := proto.Marshal(d)
		if err != nil {
			return kafka.Permanent("marshal", err)
		}
		ds := d.GetScope()
		s.pending = append(s.pending, kafka.Record{
			Topic:   topics.Decisions,
			Key:     topics.Key(ds.GetTenant(), canonical.LevelWord(ds.GetLevel()), ds.GetTarget()),
			Value:   b,
			Headers: map[string][]byte{kafka.HeaderTenant: []byte(ds.GetTenant())},
		})
		s.decisions.WithLabelValues(d.GetRule(), canonical.ActionWord(d.GetAction()), fmt.Sprint(d.GetShadow())).Inc()
	}
	if len(decisions) > 0 {
		// The scope's health state moved: checkpoint it with the decisions,
		// so a restarted evaluator keeps cooldowns and ramps.
		st, err := s.eval.MarshalScope(sc)
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", key, err)
		}
		s.pending = append(s.pending, kafka.Record{Topic: topics.RulesState, Key: []byte(key), Value: st})
	}
	return nil
}

// seenVersion is the newest snapshot version of a scope and when it came.
type seenVersion struct {
	version int64
	at      time.Time
}

// Prune forgets the versions of scopes without a snapshot since cutoff
// (wall time), so the map follows the live scopes rather than every scope
// ever seen. A forgotten scope's next snapshot is evaluated whatever its
// version; the engine still ignores one older than the state it holds.
func (s *Stage) Prune(cutoff time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.versions {
		if v.at.Before(cutoff) {
			delete(s.versions, k)
			n++
		}
	}
	return n
}

// keyLevel reads the scope level of a tenant|level|target record key whose
// tenant is in the tenant header (a tenant or target may hold '|').
func keyLevel(key, tenant []byte) (sgv1.ScopeLevel, bool) {
	if tenant == nil || len(key) <= len(tenant) || !bytes.HasPrefix(key, tenant) || key[len(tenant)] != '|' {
		return 0, false
	}
	word, _, ok := bytes.Cut(key[len(tenant)+1:], []byte{'|'})
	if !ok {
		return 0, false
	}
	l, err := canonical.ParseLevel(string(word))
	return l, err == nil
}

// Restore rebuilds the health states from the compacted state topic.
// Call it before consuming.
func (s *Stage) Restore(ctx context.Context, brokers []string) error {
	var latest kafka.Latest
	err := kafka.ReadAll(ctx, brokers, topics.RulesState, func(m kafka.Message) error {
		latest.Add(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore health states: %w", err)
	}
	records := make([][]byte, 0, latest.Len())
	for _, r := range latest.Map() {
		records = append(records, r)
	}
	if err := s.eval.RestoreScopes(records); err != nil {
		return fmt.Errorf("restore health states: %w", err)
	}
	return nil
}

// Flush publishes the pending decisions at once (Detach and its function;
// a write that failed is run again, first, by the next Flush).
func (s *Stage) Flush(ctx context.Context) error {
	return kafka.FlushDetached(ctx, &s.unflushed, s)
}

// Detach takes the decisions and scope checkpoints of the snapshots handled
// since the previous Detach and returns the function that writes them
// (kafka.Detacher): the runner writes them, and commits the snapshots,
// while the stage evaluates the next ones, so a slow broker delays the
// decisions it is writing, not the evaluation of the snapshots after them.
// Flushes run one at a time and in order, so a scope's checkpoints land in
// the order they were taken.
func (s *Stage) Detach(context.Context) (func(context.Context) error, error) {
	recs := s.pending
	s.pending = nil
	return func(ctx context.Context) error {
		if len(recs) == 0 {
			return nil
		}
		if err := s.pub.Produce(ctx, recs...); err != nil {
			return fmt.Errorf("publish decisions: %w", err)
		}
		return nil
	}, nil
}
