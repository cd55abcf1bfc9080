package evaluator

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/rules"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

type msg struct {
	key, value []byte
	headers    map[string][]byte
}

func (m msg) Topic() string             { return topics.Metrics }
func (m msg) Partition() int            { return 0 }
func (m msg) Offset() int64             { return 0 }
func (m msg) Key() []byte               { return m.key }
func (m msg) Value() []byte             { return m.value }
func (m msg) Time() time.Time           { return time.Time{} }
func (m msg) Header(name string) []byte { return m.headers[name] }

// counting is the default rule engine, counting the snapshots it evaluates.
type counting struct {
	*rules.Engine
	n int
}

func (c *counting) Evaluate(s *sgv1.WindowSnapshot) []*sgv1.Decision {
	c.n++
	return c.Engine.Evaluate(s)
}

type discard struct{}

func (discard) Produce(context.Context, ...kafka.Record) error { return nil }

// snapshotMsg is the record of a compact snapshot of a scope that saw
// delivered deliveries and complaints complaints today.
func snapshotMsg(t *testing.T, tenant string, level sgv1.ScopeLevel, target string, delivered, complaints int) msg {
	t.Helper()
	a := window.New(window.Config{Now: func() time.Time { return time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC) }})
	at := time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC)
	var evs []*sgv1.Event
	add := func(typ sgv1.EventType, n int) {
		for range n {
			evs = append(evs, &sgv1.Event{EventId: string(rune('a'+len(evs)%26)) + time.Duration(len(evs)).String(), Tenant: tenant, Type: typ,
				OccurredAt: timestamppb.New(at), Sender: "ann@ex.com", SendingDomain: "ex.com", Provider: sgv1.Provider_PROVIDER_GMAIL, Campaign: "c1"})
		}
	}
	add(sgv1.EventType_EVENT_TYPE_SENT, delivered)
	add(sgv1.EventType_EVENT_TYPE_DELIVERED, delivered)
	add(sgv1.EventType_EVENT_TYPE_COMPLAINED, complaints)
	for _, ev := range evs {
		if _, err := a.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	k := window.ScopeKey{Tenant: tenant, Level: level, Target: target}
	snap := a.CompactSnapshotAt(k, time.Time{})
	if snap == nil {
		t.Fatalf("no scope %v", k)
	}
	b, err := proto.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	return msg{key: topics.Key(tenant, window.LevelWord(level), target), value: b, headers: map[string][]byte{kafka.HeaderTenant: []byte(tenant)}}
}

func TestHandle(t *testing.T) {
	eng := &counting{Engine: rules.NewEngine(rules.Default())}
	s, err := New(eng, discard{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A domain over the default pack's complaint thresholds is decided.
	if err := s.Handle(ctx, snapshotMsg(t, "a|b", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, "ex.com", 1000, 5)); err != nil {
		t.Fatal(err)
	}
	if eng.n != 1 || len(s.pending) == 0 {
		t.Fatalf("domain snapshot: %d evaluations, %d records pending", eng.n, len(s.pending))
	}

	// No rule of the default pack watches the provider level: skipped
	// before decoding (the value is not even a snapshot).
	if err := s.Handle(ctx, msg{key: topics.Key("acme", "provider", "gmail"), value: []byte("not a snapshot"),
		headers: map[string][]byte{kafka.HeaderTenant: []byte("acme")}}); err != nil {
		t.Fatalf("provider snapshot: %v", err)
	}
	if eng.n != 1 {
		t.Fatalf("provider snapshot evaluated")
	}

	// Counters of a layout this version does not know: dead-lettered.
	bad, err := proto.Marshal(&sgv1.WindowSnapshot{Scope: &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "ex.com"},
		AsOf: timestamppb.Now(), Counters: &sgv1.SnapshotCounters{Layout: window.CountersLayout + 1}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Handle(ctx, msg{key: topics.Key("acme", "domain", "ex.com"), value: bad, headers: map[string][]byte{kafka.HeaderTenant: []byte("acme")}})
	var perm *kafka.PermanentError
	if !errors.As(err, &perm) {
		t.Fatalf("unknown layout: err = %v, want a permanent error", err)
	}
}

// TestPruneVersions: a scope's version is remembered (an older snapshot is
// skipped) until pruned.
func TestPruneVersions(t *testing.T) {
	eng := &counting{Engine: rules.NewEngine(rules.Default())}
	s, err := New(eng, discard{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := snapshotMsg(t, "acme", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, "ex.com", 10, 0)
	for range 2 {
		if err := s.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	older := &sgv1.WindowSnapshot{}
	if err := proto.Unmarshal(m.value, older); err != nil {
		t.Fatal(err)
	}
	older.Version--
	b, err := proto.Marshal(older)
	if err != nil {
		t.Fatal(err)
	}
	old := msg{key: m.key, value: b, headers: m.headers}
	if err := s.Handle(ctx, old); err != nil || eng.n != 2 {
		t.Fatalf("older version: %d evaluations, err %v; want it skipped", eng.n, err)
	}
	if n := s.Prune(time.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("pruned %d fresh versions", n)
	}
	if n := s.Prune(time.Now().Add(time.Second)); n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
	if err := s.Handle(ctx, old); err != nil || eng.n != 3 {
		t.Fatalf("after pruning: %d evaluations, err %v; want the snapshot evaluated", eng.n, err)
	}
}

func TestKeyLevel(t *testing.T) {
	for _, tt := range []struct {
		key, tenant string
		want        sgv1.ScopeLevel
		ok          bool
	}{
		{"acme|domain|ex.com", "acme", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, true},
		{"a|sender|domain|x", "a|sender", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, true}, // a tenant holding "|"
		{"acme|domain_provider|ex.com|gmail", "acme", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, true},
		{"acme|domain|ex.com", "", 0, false},
		{"acme|domain|ex.com", "other", 0, false},
		{"acme", "acme", 0, false},
		{"acme|nonsense|x", "acme", 0, false},
	} {
		t.Run(tt.key, func(t *testing.T) {
			var tenant []byte
			if tt.tenant != "" {
				tenant = []byte(tt.tenant)
			}
			got, ok := keyLevel([]byte(tt.key), tenant)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("keyLevel(%q, %q) = %v, %v; want %v, %v", tt.key, tt.tenant, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// flaky records what it is asked to publish, failing while fail is
// positive (counting down).
type flaky struct {
	fail    int
	written []string // record topics, in order
}

func (f *flaky) Produce(_ context.Context, rs ...kafka.Record) error {
	if f.fail > 0 {
		f.fail--
		return errors.New("broker unavailable")
	}
	for _, r := range rs {
		f.written = append(f.written, r.Topic)
	}
	return nil
}

// TestDetach: Detach takes the decisions and checkpoint of what was
// handled so far, and snapshots handled after it wait for the next flush;
// a failed flush is written again, first, by the next Flush.
func TestDetach(t *testing.T) {
	pub := &flaky{fail: 1}
	s, err := New(&counting{Engine: rules.NewEngine(rules.Default())}, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Handle(ctx, snapshotMsg(t, "acme", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, "ex.com", 1000, 5)); err != nil {
		t.Fatal(err)
	}
	first := len(s.pending)
	if first < 2 { // a decision and the scope's checkpoint at least
		t.Fatalf("%d records pending, want decisions and a checkpoint", first)
	}
	flush, err := s.Detach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(ctx, snapshotMsg(t, "globex", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, "ex.com", 1000, 5)); err != nil {
		t.Fatal(err)
	}
	if err := flush(ctx); err == nil {
		t.Fatal("flush against a failing broker succeeded")
	}
	if err := flush(ctx); err != nil { // the runner retries the same function
		t.Fatal(err)
	}
	if len(pub.written) != first || pub.written[len(pub.written)-1] != topics.RulesState {
		t.Fatalf("first flush wrote %v, want the %d records of the first snapshot, its checkpoint last", pub.written, first)
	}
	pub.fail = 1
	if err := s.Flush(ctx); err == nil {
		t.Fatal("Flush against a failing broker succeeded")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pub.written) != 2*first || len(s.pending) != 0 {
		t.Fatalf("after the second snapshot's flush: %d records written, %d pending; want %d and none", len(pub.written), len(s.pending), 2*first)
	}
}
