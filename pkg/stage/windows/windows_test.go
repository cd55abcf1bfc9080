package windows

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	groupAdmit = "test-windows-admit"
	groupAgg   = "test-windows-aggregate"
)

// stream returns n events of two tenants over the last two hours, with
// copies (same tenant and id) of recent events mixed in.
func stream(seed uint64, n int, base time.Time) []*sgv1.Event {
	rng := rand.New(rand.NewPCG(seed, seed))
	types := []sgv1.EventType{
		sgv1.EventType_EVENT_TYPE_SENT, sgv1.EventType_EVENT_TYPE_SENT, sgv1.EventType_EVENT_TYPE_DELIVERED,
		sgv1.EventType_EVENT_TYPE_DELIVERED, sgv1.EventType_EVENT_TYPE_COMPLAINED, sgv1.EventType_EVENT_TYPE_OPENED,
		sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, sgv1.EventType_EVENT_TYPE_DEFERRED,
	}
	provs := []sgv1.Provider{sgv1.Provider_PROVIDER_GMAIL, sgv1.Provider_PROVIDER_MICROSOFT, sgv1.Provider_PROVIDER_YAHOO}
	var out []*sgv1.Event
	for i := range n {
		if i > 0 && rng.IntN(8) == 0 {
			out = append(out, proto.Clone(out[len(out)-1-rng.IntN(min(len(out), 30))]).(*sgv1.Event))
			continue
		}
		dom := fmt.Sprintf("d%d.com", rng.IntN(3))
		at := base.Add(time.Duration(i)*time.Second - time.Duration(rng.IntN(600))*time.Second)
		out = append(out, &sgv1.Event{
			EventId: fmt.Sprintf("ev-%d", i), Tenant: []string{"acme", "beta"}[rng.IntN(2)],
			Type: types[rng.IntN(len(types))], OccurredAt: timestamppb.New(at),
			Sender: fmt.Sprintf("s%d@%s", rng.IntN(3), dom), SendingDomain: dom, Provider: provs[rng.IntN(3)],
			Campaign: fmt.Sprintf("c%d", rng.IntN(4)), Variant: []string{"", "a", "b"}[rng.IntN(3)],
			ListSource: []string{"", "import"}[rng.IntN(2)],
		})
	}
	return out
}

func produceEvents(t *testing.T, p *kafka.Producer, evs []*sgv1.Event) {
	t.Helper()
	recs := make([]kafka.Record, 0, len(evs))
	for _, e := range evs {
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, kafka.Record{Topic: topics.Events, Key: topics.Key(e.GetTenant(), e.GetEventId()), Value: b})
	}
	if err := p.Produce(context.Background(), recs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// instance is one windowed-metrics process: both steps, each a consumer
// group member.
type instance struct {
	cancel context.CancelFunc
	done   chan error
	agg    *Stage
}

func startInstance(t *testing.T, brokers []string, p *kafka.Producer, groupA, groupB string) *instance {
	t.Helper()
	read := BrokerStateReader(brokers)
	lg := zap.NewNop()
	admit := NewAdmit(window.AdmitConfig{}, p, nil, nil, read, BrokerPartitions(brokers), lg)
	agg, err := New(window.Config{}, p, read, lg, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan error, 2), agg: agg}
	for _, c := range []struct {
		group, topic string
		h            kafka.Handler
	}{{groupA, topics.Events, admit}, {groupB, topics.ScopedEvents, agg}} {
		r, err := kafka.NewRunner(kafka.RunnerConfig{Brokers: brokers, GroupID: c.group, Topic: c.topic, Stage: "test",
			DLQTopic: topics.DLQ, CommitInterval: 50 * time.Millisecond}, c.h, p, lg, nil)
		if err != nil {
			t.Fatal(err)
		}
		go func() { in.done <- r.Run(ctx) }()
	}
	return in
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.cancel()
	for range 2 {
		if err := <-in.done; err != nil {
			t.Errorf("runner: %v", err)
		}
	}
}

// checkpointed restores every checkpoint of sg.window-state.v1 into one
// aggregator: the state the instances left for their successors.
func checkpointed(ctx context.Context, brokers []string) (*window.Aggregator, error) {
	var latest kafka.Latest
	err := kafka.ReadAll(ctx, brokers, topics.WindowState, func(m kafka.Message) error {
		latest.Add(m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	a := window.New(window.Config{})
	for _, v := range latest.Map() {
		if err := a.RestoreScope(v); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// diff returns "" when got holds, for every scope of want, the same
// snapshot at at (versions aside), and no other scope.
func diff(want, got *window.Aggregator, at time.Time) string {
	keys := want.All()
	if n := len(got.All()); n != len(keys) {
		return fmt.Sprintf("%d scopes, want %d", n, len(keys))
	}
	for _, k := range keys {
		w, g := want.SnapshotAt(k, at), got.SnapshotAt(k, at)
		if g == nil {
			return fmt.Sprintf("scope %s missing", k)
		}
		w.Version, g.Version = 0, 0
		if !proto.Equal(w, g) {
			return fmt.Sprintf("scope %s:\nwant %s\ngot  %s", k, prototext.Format(w), prototext.Format(g))
		}
	}
	return ""
}

// eventually polls check until it returns "" or the deadline passes.
func eventually(t *testing.T, d time.Duration, check func() (string, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		msg, err := check()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if err == nil && msg == "" {
			return
		}
		last = msg
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("not converged after %s: %s", d, last)
}

// TestMultiInstanceExactWithRebalanceAndReplay runs three instances of
// both steps over 6-partition topics on a real (Kafka-protocol) broker:
// events with copies are produced in three waves; after the first an
// instance leaves, after the second a new one joins (two rebalances
// mid-stream). The checkpointed windows must equal one aggregator fed the
// stream in order. Then the whole input is replayed — the same events
// produced again, and a fresh pair of consumer groups re-reading both
// topics from the first offset with the restored state — and nothing may
// change.
func TestMultiInstanceExactWithRebalanceAndReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and nine consumers")
	}
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, brokers, 1, topics.Specs(6)...); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, BatchTimeout: 5 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	now := time.Now().UTC()
	evs := stream(7, 1800, now.Add(-40*time.Minute))
	oracle := window.New(window.Config{Now: func() time.Time { return now }})
	for _, e := range evs {
		if _, err := oracle.Apply(e); err != nil {
			t.Fatalf("oracle: %v", err)
		}
	}
	check := func() (string, error) {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		got, err := checkpointed(cctx, brokers)
		if err != nil {
			return "", err
		}
		return diff(oracle, got, now), nil
	}

	ins := []*instance{}
	for range 3 {
		ins = append(ins, startInstance(t, brokers, p, groupAdmit, groupAgg))
	}
	third := len(evs) / 3
	produceEvents(t, p, evs[:third])
	time.Sleep(time.Second)
	ins[0].stop(t) // rebalance: leaves
	produceEvents(t, p, evs[third:2*third])
	ins = append(ins[1:], startInstance(t, brokers, p, groupAdmit, groupAgg)) // rebalance: joins
	time.Sleep(time.Second)
	produceEvents(t, p, evs[2*third:])
	eventually(t, 60*time.Second, check)
	for _, in := range ins {
		in.stop(t)
	}

	// Replay: the same events again (redeliveries at new offsets), and both
	// topics re-read from the start by new groups restoring the state.
	produceEvents(t, p, evs)
	in := startInstance(t, brokers, p, groupAdmit+"-replay", groupAgg+"-replay")
	defer in.stop(t)
	time.Sleep(3 * time.Second)
	eventually(t, 30*time.Second, check)
}

// BenchmarkBrokerOneInstance measures events/s end to end through the
// embedded broker for one instance of both steps (admission, fan-out over
// sg.scoped-events.v1, aggregation, checkpoints and snapshots): b.N events
// are produced first, then the clock runs until every scoped record is
// folded in.
func BenchmarkBrokerOneInstance(b *testing.B) {
	_, addr := kafkatest.Start(b, "")
	brokers := []string{addr}
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, brokers, 1, topics.Specs(4)...); err != nil {
		b.Fatal(err)
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	now := time.Now().UTC()
	evs := make([]*sgv1.Event, b.N)
	want := uint64(0)
	for i := range evs {
		evs[i] = &sgv1.Event{EventId: fmt.Sprint("b", i), Tenant: "acme", Type: sgv1.EventType(1 + i%8),
			OccurredAt: timestamppb.New(now.Add(-time.Hour + time.Duration(i)*time.Millisecond)),
			Sender:     fmt.Sprintf("s%d@d%d.com", i%200, i%5), SendingDomain: fmt.Sprintf("d%d.com", i%5),
			Provider: sgv1.Provider(1 + i%5), Campaign: fmt.Sprintf("c%d", i%20), Account: fmt.Sprintf("acct%d.com", i%500)}
		if evs[i].Type == sgv1.EventType_EVENT_TYPE_BOUNCED {
			evs[i].Bounce = &sgv1.Bounce{SmtpCode: 550}
		}
		if window.CountsSomewhere(evs[i]) {
			want += uint64(len(window.ScopeKeys(evs[i], nil)))
		}
	}
	for i := 0; i < len(evs); i += 5000 {
		recs := make([]kafka.Record, 0, 5000)
		for _, e := range evs[i:min(i+5000, len(evs))] {
			v, _ := proto.Marshal(e)
			recs = append(recs, kafka.Record{Topic: topics.Events, Key: topics.Key(e.GetTenant(), e.GetEventId()), Value: v})
		}
		if err := p.Produce(ctx, recs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	read := BrokerStateReader(brokers)
	admit := NewAdmit(window.AdmitConfig{}, p, nil, nil, read, BrokerPartitions(brokers), benchLogger())
	agg, err := New(window.Config{}, p, read, benchLogger(), nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	for _, c := range []struct {
		topic string
		every int
		h     kafka.Handler
	}{{topics.Events, 1000, admit}, {topics.ScopedEvents, 8000, agg}} {
		r, err := kafka.NewRunner(kafka.RunnerConfig{Brokers: brokers, GroupID: "bench-" + c.topic, Topic: c.topic, Stage: "bench",
			CommitEvery: c.every}, c.h, nil, benchLogger(), nil)
		if err != nil {
			b.Fatal(err)
		}
		go func() { done <- r.Run(rctx) }()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for agg.Aggregator().Stats().Applied < want {
		if time.Now().After(deadline) {
			b.Fatalf("folded %+v of %d scoped records in 2 minutes", agg.Aggregator().Stats(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

func benchLogger() *zap.Logger {
	if os.Getenv("BENCH_LOG") != "" {
		return zap.NewExample()
	}
	return zap.NewNop()
}

// TestUrgentSnapshotsGoFirst: between two regular publications, the scopes
// a complaint changed are published at the next call; scopes changed only
// by deliveries wait for SnapshotEvery.
func TestUrgentSnapshotsGoFirst(t *testing.T) {
	now := time.Now()
	pub := &collect{}
	s, err := New(window.Config{Now: func() time.Time { return now }}, pub, emptyState, zap.NewNop(), nil, 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := now.Add(-time.Minute)
	apply := func(id string, typ sgv1.EventType, dom string) map[string]bool {
		t.Helper()
		keys, err := s.Aggregator().Apply(&sgv1.Event{EventId: id, Tenant: "acme", Type: typ, OccurredAt: timestamppb.New(at),
			Sender: "s@" + dom, SendingDomain: dom, Provider: sgv1.Provider_PROVIDER_GMAIL, Campaign: "c-" + dom})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, k := range keys {
			out[string(topics.Key(k.Tenant, window.LevelWord(k.Level), k.Target))] = true
		}
		return out
	}
	published := func() map[string]bool {
		t.Helper()
		pub.recs = nil
		if err := s.PublishSnapshots(ctx); err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, r := range pub.recs {
			if r.Topic == topics.Metrics {
				out[string(r.Key)] = true
			}
		}
		return out
	}
	apply("d1", sgv1.EventType_EVENT_TYPE_DELIVERED, "a.com")
	apply("d2", sgv1.EventType_EVENT_TYPE_DELIVERED, "b.com")
	if got := published(); len(got) != s.Aggregator().Len() {
		t.Fatalf("first publication: %d snapshots, want every scope (%d)", len(got), s.Aggregator().Len())
	}

	now = now.Add(50 * time.Millisecond)
	delivered := apply("d3", sgv1.EventType_EVENT_TYPE_DELIVERED, "a.com")
	complained := apply("c1", sgv1.EventType_EVENT_TYPE_COMPLAINED, "b.com")
	if got := published(); fmt.Sprint(got) != fmt.Sprint(complained) {
		t.Fatalf("50 ms later: published %v, want the complaint's scopes %v", got, complained)
	}
	now = now.Add(50 * time.Millisecond)
	if got := published(); len(got) != 0 {
		t.Fatalf("nothing urgent, 100 ms after the regular publication: published %v", got)
	}
	now = now.Add(200 * time.Millisecond)
	want := map[string]bool{}
	for k := range delivered {
		if !complained[k] {
			want[k] = true
		}
	}
	if got := published(); len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("regular publication: %v, want the delivery's scopes not published since %v", got, want)
	}
}
