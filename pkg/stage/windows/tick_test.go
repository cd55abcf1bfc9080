package windows

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestSnapshotsAfterATickAreNotOlderThanIt: the rule engine ignores a
// snapshot older than one it has evaluated, so once a tick published a
// scope "as of now", a later change must not be published "as of its
// newest event" (earlier), or the change would never be evaluated.
func TestSnapshotsAfterATickAreNotOlderThanIt(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, brokers, 1, topics.Specs(2)...); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	in := startInstance(t, brokers, p, "a", "b")
	defer in.stop(t)

	occurred := time.Now().Add(-10 * time.Minute)
	ev := func(id string) *sgv1.Event {
		return &sgv1.Event{EventId: id, Tenant: "acme", Type: sgv1.EventType_EVENT_TYPE_DELIVERED,
			OccurredAt: timestamppb.New(occurred), Sender: "ann@acme.io", SendingDomain: "acme.io", Recipient: "r@example.com"}
	}
	domainSnaps := func() []*sgv1.WindowSnapshot {
		var out []*sgv1.WindowSnapshot
		err := kafka.ReadAll(ctx, brokers, topics.Metrics, func(m kafka.Message) error {
			sn := &sgv1.WindowSnapshot{}
			if err := proto.Unmarshal(m.Value(), sn); err != nil {
				return err
			}
			if sn.GetScope().GetLevel() == sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN {
				out = append(out, sn)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	waitDelivered := func(n float64) *sgv1.WindowSnapshot {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			// The service calls PublishSnapshots every SnapshotEvery.
			if err := in.agg.PublishSnapshots(ctx); err != nil {
				t.Fatal(err)
			}
			for _, sn := range domainSnaps() {
				if window.MetricValue(sn, "delivered_24h") == n {
					return sn
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no domain snapshot with delivered_24h = %v", n)
		return nil
	}
	produceEvents(t, p, []*sgv1.Event{ev("e1")})
	waitDelivered(1)
	tickAt := time.Now()
	if err := in.agg.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	produceEvents(t, p, []*sgv1.Event{ev("e2")})
	sn := waitDelivered(2)
	if got := sn.GetAsOf().AsTime(); got.Before(tickAt) {
		t.Fatalf("snapshot after the tick is as of %s, before the tick at %s (newest event %s)",
			got.Format(time.RFC3339Nano), tickAt.Format(time.RFC3339Nano), occurred.Format(time.RFC3339Nano))
	}
}
