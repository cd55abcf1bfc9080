package devstack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestNormalizerDeadLetterAndRedrive injects a SendGrid batch with one bad
// item into sg.raw.v1, as ingest would have written it: the normalizer
// publishes the two good events and dead-letters the envelope with the
// parser and the reason (and, with analytics on, the dead-letter writer
// stores it in dead_letters). The envelope is then re-driven twice through
// the same code as `sgctl dlq replay`: the good events keep their ids, so
// the window still counts two deliveries, and the re-failures fold into one
// selection.
func TestNormalizerDeadLetterAndRedrive(t *testing.T) {
	s := startStack(t, t.TempDir())
	defer s.stop(t)
	brokers := []string{s.kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ts := time.Now().Add(-time.Minute).Unix()
	payload := fmt.Sprintf(`[
 {"email":"a@example.net","timestamp":%d,"event":"delivered","sg_event_id":"dlq-e1","sender":"ann@dlq.io"},
 {"email":"b@example.net","timestamp":%d,"event":"teleported","sg_event_id":"dlq-e2","sender":"ann@dlq.io"},
 {"email":"c@example.net","timestamp":%d,"event":"delivered","sg_event_id":"dlq-e3","sender":"ann@dlq.io"}]`, ts, ts, ts)
	env := &sgv1.RawEnvelope{EnvelopeId: "dlq-env-1", Tenant: DefaultTenant, Source: sgv1.Source_SOURCE_SENDGRID,
		ReceivedAt: timestamppb.Now(), ContentType: "application/json", Payload: []byte(payload)}
	value, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.Produce(ctx, kafka.Record{Topic: topics.Raw, Key: topics.Key(DefaultTenant, env.GetEnvelopeId()), Value: value,
		Headers: map[string][]byte{kafka.HeaderTenant: []byte(DefaultTenant)}}); err != nil {
		t.Fatalf("inject envelope: %v", err)
	}

	letters := func() []*sgv1.DeadLetter {
		var out []*sgv1.DeadLetter
		for _, dl := range readTopic(t, brokers, topics.DLQ, func() *sgv1.DeadLetter { return &sgv1.DeadLetter{} }) {
			if bytes.Equal(dl.GetValue(), value) {
				out = append(out, dl)
			}
		}
		return out
	}
	eventually(t, "the envelope dead-lettered on sg.dlq.v1", 30*time.Second, func() bool { return len(letters()) == 1 })
	dl := letters()[0]
	if dl.GetStage() != "normalizer" || dl.GetHandler() != "sendgrid" || dl.GetTenant() != DefaultTenant || dl.GetTopic() != topics.Raw ||
		!strings.Contains(dl.GetReason(), "1 item(s) rejected") || !strings.Contains(dl.GetReason(), "teleported") {
		t.Fatalf("dead letter stage %q handler %q tenant %q topic %q reason %q", dl.GetStage(), dl.GetHandler(), dl.GetTenant(), dl.GetTopic(), dl.GetReason())
	}
	goodIDs := func() map[string]int {
		ids := map[string]int{}
		for _, ev := range readTopic(t, brokers, topics.Events, func() *sgv1.Event { return &sgv1.Event{} }) {
			if ev.GetSendingDomain() == "dlq.io" {
				ids[ev.GetEventId()]++
			}
		}
		return ids
	}
	eventually(t, "the two good items published", 30*time.Second, func() bool { return len(goodIDs()) == 2 })
	delivered := func() float64 {
		d := -1.0
		for _, sn := range readTopic(t, brokers, topics.Metrics, func() *sgv1.WindowSnapshot { return &sgv1.WindowSnapshot{} }) {
			if sn.GetScope().GetLevel() == sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN && sn.GetScope().GetTarget() == "dlq.io" {
				d = window.MetricValue(sn, "delivered_24h")
			}
		}
		return d
	}
	eventually(t, "dlq.io counted 2 deliveries", 30*time.Second, func() bool { return delivered() == 2 })

	// Re-drive twice, as sgctl dlq replay does.
	filter := app.DeadLetterFilter{Stage: "normalizer", Handler: "sendgrid", Tenant: DefaultTenant}
	for round := 1; round <= 2; round++ {
		entries, _, err := app.ReadDeadLetters(ctx, brokers, filter)
		if err != nil {
			t.Fatal(err)
		}
		sel := app.SelectDeadLetters(entries, filter, 0)
		if len(sel.Entries) != 1 || sel.Duplicates != round-1 {
			t.Fatalf("round %d: %d selected, %d duplicates; want 1 and %d (re-failures fold into one)", round, len(sel.Entries), sel.Duplicates, round-1)
		}
		if n, err := app.Redrive(ctx, prod, sel.Entries, time.Now()); err != nil || n != 1 {
			t.Fatalf("round %d: redrive %d, %v", round, n, err)
		}
		// The bad item still fails: one more dead letter per re-drive.
		eventually(t, fmt.Sprintf("re-drive %d processed (dead-lettered again)", round), 30*time.Second, func() bool { return len(letters()) == 1+round })
	}
	eventually(t, "the re-driven good items published again with the same ids", 30*time.Second, func() bool {
		ids := goodIDs()
		return len(ids) == 2 && ids["sendgrid:dlq-e1"] == 3 && ids["sendgrid:dlq-e3"] == 3
	})
	// Let windowed-metrics consume the duplicates and publish snapshots.
	time.Sleep(2 * time.Second)
	eventually(t, "a snapshot of dlq.io after the re-drives", 30*time.Second, func() bool { return delivered() >= 2 })
	if d := delivered(); d != 2 {
		t.Fatalf("dlq.io delivered_24h = %v after two re-drives, want 2 (re-drives counted twice)", d)
	}

	if s.analytics == "off" {
		return
	}
	conn, err := clickhouse.Open(ctx, clickhouse.Config{Addr: s.analytics, Database: s.db})
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	defer conn.Close()
	defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.db) }()
	count := func(q string, args ...any) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	eventually(t, "the three dead letters in dead_letters, exact bytes and reason", 30*time.Second, func() bool {
		return count(`SELECT count() FROM dead_letters WHERE tenant = ? AND stage = 'normalizer' AND handler = 'sendgrid'
			AND kafka_topic = ? AND value = ? AND position(reason, 'teleported') > 0`, DefaultTenant, topics.Raw, string(value)) == 3
	})
	eventually(t, "the good events in ClickHouse exactly once", 30*time.Second, func() bool {
		return count("SELECT count() FROM events WHERE tenant = ? AND sending_domain = 'dlq.io'", DefaultTenant) == 2
	})
}
