package notify

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// runNotifier consumes the control topic with n in group until every
// delivery the webhook expects arrived (failing after 20 s), then stops.
func runNotifier(t *testing.T, brokers []string, n *Notifier, until func() bool) {
	t.Helper()
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	r, err := kafka.NewRunner(kafka.RunnerConfig{Brokers: brokers, GroupID: "notifier-test", Topic: topics.Control,
		Stage: "notifier", DLQTopic: topics.DLQ}, n, prod, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !until() {
		if time.Now().After(deadline) {
			t.Error("timed out waiting for deliveries")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything more would arrive now, and commits happen
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runner: %v", err)
	}
}

// TestNotifierOnTheControlTopic runs the notifier as the service does: a
// consumer group on sg.control.v1 of a real broker. A failing webhook is
// retried until it takes the alert, a republished alert is posted once,
// other commands are not posted, and offsets are committed only after
// delivery: a second run of the group with an empty store posts nothing.
func TestNotifierOnTheControlTopic(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, brokers, 1, topics.Specs(2)...); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	pause := alert("acme", "d-1:pause")
	pause.Action = sgv1.Action_ACTION_PAUSE
	var recs []kafka.Record
	for _, c := range []*sgv1.ControlCommand{pause, alert("acme", "d-1:alert"), alert("acme", "d-1:alert"), alert("globex", "d-2:alert")} {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, kafka.Record{Topic: topics.Control, Key: []byte(c.GetScope().GetTenant() + "|domain|acme.io"), Value: b})
	}
	if err := prod.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	s := newSlack(t, 503, 503) // two failures, then success
	routes := Routes{Default: []string{s.srv.URL}}
	runNotifier(t, brokers, newNotifier(t, fastConfig(routes), nil), func() bool { _, d := s.counts(); return d >= 2 })
	posts, delivered := s.counts()
	if delivered != 2 || posts != 4 {
		t.Fatalf("posts %d, delivered %d; want 4 posts (2 failed) and 2 deliveries", posts, delivered)
	}
	// Committed: the same group with a fresh store reads only what is new.
	b, err := proto.Marshal(alert("acme", "d-3:alert"))
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Produce(ctx, kafka.Record{Topic: topics.Control, Key: []byte("acme|domain|acme.io"), Value: b}); err != nil {
		t.Fatal(err)
	}
	runNotifier(t, brokers, newNotifier(t, fastConfig(routes), NewMemoryStore(0)), func() bool { _, d := s.counts(); return d >= 3 })
	if _, d := s.counts(); d != 3 {
		t.Errorf("deliveries after a second run = %d, want 3 (offsets committed after delivery; only the new alert posted)", d)
	}
}
