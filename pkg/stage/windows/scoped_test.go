package windows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// record is a kafka.Message in memory.
type record struct {
	topic     string
	partition int
	offset    int64
	key, val  []byte
}

func (r record) Topic() string        { return r.topic }
func (r record) Partition() int       { return r.partition }
func (r record) Offset() int64        { return r.offset }
func (r record) Key() []byte          { return r.key }
func (r record) Value() []byte        { return r.val }
func (r record) Time() time.Time      { return time.Now() }
func (r record) Header(string) []byte { return nil }

// collect is a Publisher keeping what it is given.
type collect struct{ recs []kafka.Record }

func (c *collect) Produce(_ context.Context, rs ...kafka.Record) error {
	c.recs = append(c.recs, rs...)
	return nil
}

func emptyState(context.Context, string, func(kafka.Message) error) error { return nil }

// admitAll runs events through the admission step (source partition 0)
// and returns the sg.scoped-events.v1 records it published, as messages of
// the partitions their keys hash to.
func admitAll(t *testing.T, evs []*sgv1.Event, partitions int) []record {
	t.Helper()
	pub := &collect{}
	admit := NewAdmit(window.AdmitConfig{},
		pub, nil, nil, emptyState, FixedPartitions(partitions), zap.NewNop())
	ctx := context.Background()
	for i, ev := range evs {
		v, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := admit.Handle(ctx, record{topic: topics.Events, offset: int64(i), val: v}); err != nil && !errors.Is(err, window.ErrLateEvent) {
			t.Fatal(err)
		}
		if i%100 == 99 {
			if err := admit.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := admit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	next := map[int]int64{}
	var out []record
	for _, r := range pub.recs {
		if r.Topic != topics.ScopedEvents {
			continue
		}
		q := kafka.PartitionOf(r.Key, partitions)
		out = append(out, record{topic: r.Topic, partition: q, offset: next[q], key: r.Key, val: r.Value})
		next[q]++
	}
	return out
}

func newStage(t *testing.T, now time.Time) *Stage {
	t.Helper()
	s, err := New(window.Config{Now: func() time.Time { return now }}, &collect{}, emptyState, zap.NewNop(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestScopedRecordsCarryEachEventOncePerPartition: the admission step's
// records name each admitted event once per partition, reduced
// (window.Counted), with the levels of exactly the scopes whose keys hash
// to that partition, and folding them equals folding the events.
func TestScopedRecordsCarryEachEventOncePerPartition(t *testing.T) {
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	evs := stream(5, 3000, base)
	const partitions = 4
	recs := admitAll(t, evs, partitions)
	byID := map[string]*sgv1.Event{}
	for _, ev := range evs {
		byID[ev.GetEventId()] = ev
	}
	seen := map[string]map[int]bool{} // event id -> partitions
	for _, r := range recs {
		var b sgv1.ScopedBatch
		if err := proto.Unmarshal(r.val, &b); err != nil {
			t.Fatal(err)
		}
		if len(b.GetEvents())+len(b.GetUpdates()) > 0 {
			t.Fatal("the admission step wrote the first form")
		}
		for _, se := range b.GetScoped() {
			ev := &sgv1.Event{}
			if err := proto.Unmarshal(se.GetEvent(), ev); err != nil {
				t.Fatal(err)
			}
			full := byID[ev.GetEventId()]
			if !proto.Equal(ev, window.Counted(full)) {
				t.Fatalf("event %s is not its reduced form", ev.GetEventId())
			}
			if seen[ev.GetEventId()] == nil {
				seen[ev.GetEventId()] = map[int]bool{}
			}
			if seen[ev.GetEventId()][r.partition] {
				t.Fatalf("event %s twice in partition %d", ev.GetEventId(), r.partition)
			}
			seen[ev.GetEventId()][r.partition] = true
			var want []sgv1.ScopeLevel
			for _, k := range window.ScopeKeys(full, nil) {
				if kafka.PartitionOf(topics.Key(k.Tenant, window.LevelWord(k.Level), k.Target), partitions) == r.partition {
					want = append(want, k.Level)
				}
			}
			if !slices.Equal(se.GetLevels(), want) {
				t.Fatalf("event %s in partition %d: levels %v, want %v", ev.GetEventId(), r.partition, se.GetLevels(), want)
			}
		}
	}
	now := time.Now()
	s := newStage(t, now)
	for _, r := range recs {
		if err := s.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	oracle := window.New(window.Config{Now: func() time.Time { return now }})
	for _, ev := range evs {
		if _, err := oracle.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	if d := diff(oracle, s.Aggregator(), now); d != "" {
		t.Fatal(d)
	}
}

// TestFirstFormRecordsStillFold: records written before ScopedEvent (an
// event list and one update per scope) fold exactly like the current form,
// so an upgrade with records of the old form on the topic loses nothing.
func TestFirstFormRecordsStillFold(t *testing.T) {
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	evs := stream(6, 1500, base)
	recs := admitAll(t, evs, 1)
	now := time.Now()
	current, first := newStage(t, now), newStage(t, now)
	for _, r := range recs {
		if err := current.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		var b sgv1.ScopedBatch
		if err := proto.Unmarshal(r.val, &b); err != nil {
			t.Fatal(err)
		}
		old := &sgv1.ScopedBatch{}
		for _, se := range b.GetScoped() {
			ev := &sgv1.Event{}
			if err := proto.Unmarshal(se.GetEvent(), ev); err != nil {
				t.Fatal(err)
			}
			old.Events = append(old.Events, se.GetEvent())
			for _, k := range window.ScopeKeys(ev, nil) {
				if !slices.Contains(se.GetLevels(), k.Level) {
					continue
				}
				old.Updates = append(old.Updates, &sgv1.ScopedUpdate{Tenant: k.Tenant, Level: k.Level, Target: k.Target,
					Event: uint32(len(old.Events) - 1), SrcPartition: se.GetSrcPartition(), SrcOffset: se.GetSrcOffset()})
			}
		}
		v, err := proto.Marshal(old)
		if err != nil {
			t.Fatal(err)
		}
		r.val = v
		if err := first.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if d := diff(current.Aggregator(), first.Aggregator(), now); d != "" {
		t.Fatal(d)
	}
	if len(current.Aggregator().All()) < 20 {
		t.Fatalf("only %d scopes", len(current.Aggregator().All()))
	}
}

// TestBadScopedEntriesAreRefusedAlone: an undecodable event, a level the
// event has no scope at and an entry without levels are refused (a
// permanent error naming each) while the valid entry of the same record
// is folded.
func TestBadScopedEntriesAreRefusedAlone(t *testing.T) {
	now := time.Now()
	ev := stream(7, 1, now.Add(-time.Hour))[0]
	ev.Variant = ""
	good, err := proto.Marshal(window.Counted(ev))
	if err != nil {
		t.Fatal(err)
	}
	batch := &sgv1.ScopedBatch{Scoped: []*sgv1.ScopedEvent{
		{Event: good, Levels: []sgv1.ScopeLevel{sgv1.ScopeLevel_SCOPE_LEVEL_TENANT}, SrcOffset: 1},
		{Event: []byte{0xff, 0xff}, Levels: []sgv1.ScopeLevel{sgv1.ScopeLevel_SCOPE_LEVEL_TENANT}, SrcOffset: 2},
		{Event: good, Levels: []sgv1.ScopeLevel{sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT}, SrcOffset: 3},
		{Event: good, SrcOffset: 4},
	}}
	v, err := proto.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	s := newStage(t, now)
	err = s.Handle(context.Background(), record{topic: topics.ScopedEvents, val: v})
	var perm *kafka.PermanentError
	if !errors.As(err, &perm) || !strings.Contains(err.Error(), "3 of 4") {
		t.Fatalf("want a permanent error for 3 of 4 entries, got %v", err)
	}
	k := window.ScopeKey{Tenant: ev.GetTenant(), Level: sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, Target: ev.GetTenant()}
	if off, ok := s.Aggregator().SourceOffset(k, 0); !ok || off != 1 {
		t.Fatalf("the valid entry was not folded: %d %v", off, ok)
	}
	if n := len(s.Aggregator().All()); n != 1 {
		t.Fatalf("%d scopes changed, want 1", n)
	}
}

// TestSnapshotsDoNotWaitForTheFlush: the aggregating step flushes
// (checkpoints) rarely; snapshots of changed scopes reach the rules
// through PublishSnapshots on their own clock, without a flush, and the
// checkpoints of those scopes are still written at the next flush.
func TestSnapshotsDoNotWaitForTheFlush(t *testing.T) {
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	recs := admitAll(t, stream(2, 400, base), 2)
	now := time.Now()
	pub := &collect{}
	s, err := New(window.Config{Now: func() time.Time { return now }}, pub, emptyState, zap.NewNop(), nil, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, r := range recs {
		if err := s.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	count := func(topic string) int {
		n := 0
		for _, r := range pub.recs {
			if r.Topic == topic {
				n++
			}
		}
		return n
	}
	now = now.Add(time.Second)
	if err := s.PublishSnapshots(ctx); err != nil {
		t.Fatal(err)
	}
	scopes := s.Aggregator().Len()
	if got := count(topics.Metrics); scopes == 0 || got != scopes {
		t.Fatalf("PublishSnapshots without a flush published %d snapshots, want one per scope (%d)", got, scopes)
	}
	if got := count(topics.WindowState); got != 0 {
		t.Fatalf("%d checkpoints before any flush", got)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(topics.WindowState); got != scopes {
		t.Fatalf("the flush wrote %d checkpoints, want %d (every scope changed)", got, scopes)
	}
	if got := count(topics.Metrics); got != scopes {
		t.Fatalf("the flush re-published snapshots of unchanged scopes: %d, want %d", got, scopes)
	}
}
