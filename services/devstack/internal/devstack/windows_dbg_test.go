package devstack

import (
	"context"
	"github.com/sendguard/sendguard/pkg/kafka"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestDbgWindows(t *testing.T) {
	s := startStack(t, t.TempDir())
	defer s.stop(t)
	now := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	var lines []string
	for i := range 600 {
		rcpt := fmt.Sprintf("r%d@example%d.com", i, i%40)
		lines = append(lines,
			fmt.Sprintf(`{"event_id":"s%d","type":"sent","occurred_at":%q,"sender":"ann@acme.io","recipient":%q,"campaign":"c1"}`, i, now, rcpt),
			fmt.Sprintf(`{"event_id":"d%d","type":"delivered","occurred_at":%q,"sender":"ann@acme.io","recipient":%q,"campaign":"c1"}`, i, now, rcpt))
	}
	for i := range 6 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"x%d","type":"complained","occurred_at":%q,"sender":"ann@acme.io","recipient":"r%d@example%d.com","campaign":"c1","complaint":{"source":"fbl","feedback_type":"abuse"}}`, i, now, i, i%40))
	}
	if code, body := post(t, "http://"+s.http+"/v1/events", testKey, "application/x-ndjson", ndjson(lines)); code != http.StatusAccepted {
		t.Fatalf("post ndjson: %d %s", code, body)
	}
	time.Sleep(20 * time.Second)
	brokers := []string{s.kafka}
	t.Logf("events %d scoped %d", len(readTopic(t, brokers, topics.Events, func() *sgv1.Event { return &sgv1.Event{} })), len(readTopic(t, brokers, topics.ScopedEvents, func() *sgv1.Event { return &sgv1.Event{} })))
	for _, tp := range []string{topics.Metrics, topics.WindowState, topics.AdmitState, topics.DLQ} {
		n := 0
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := kafka.ReadAll(ctx, brokers, tp, func(kafka.Message) error { n++; return nil })
		cancel()
		t.Logf("%s: %d records in %s (%v)", tp, n, time.Since(start), err)
	}
	for _, sn := range readTopic(t, brokers, topics.Metrics, func() *sgv1.WindowSnapshot { return &sgv1.WindowSnapshot{} }) {
		if sn.GetScope().GetLevel() == sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN {
			t.Logf("%s %v %v %v", sn.GetScope().GetTarget(), sn.GetMetrics()["delivered_24h"], sn.GetMetrics()["sent_24h"], sn.GetMetrics()["complaints_24h"])
		}
	}
}
