package devstack

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/clickhouse/clickhousetest"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/stage/windows"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestWindowsClickHouseExactlyOnce posts events (and redeliveries) to the
// stack and checks the real ClickHouse server: every event exactly once in
// events (count() = distinct ids, before any merge), every rollup equal to
// the counts computed from raw events FINAL, and a replay of the whole
// events topic by a fresh admission step (the insert→commit crash window:
// everything re-admitted, nothing committed) inserting nothing.
func TestWindowsClickHouseExactlyOnce(t *testing.T) {
	addr, db := clickhousetest.Server(t)
	s := &stack{http: kafkatest.FreeAddr(t), grpc: kafkatest.FreeAddr(t), kafka: kafkatest.FreeAddr(t), db: db, done: make(chan error, 1)}
	cfg := Config{
		DataDir: t.TempDir(), HTTPAddr: s.http, GRPCAddr: s.grpc, KafkaAddr: s.kafka,
		ClickHouse: addr, ClickHouseDB: db, APIKey: testKey, Partitions: 4,
		LogFormat: "console", LogLevel: "warn", Tick: time.Second,
	}
	s.analytics = addr
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- Run(ctx, cfg, zaptest.NewLogger(t).Named("devstack"), nopWriter{}) }()
	waitReady(t, "http://"+s.http, s.done)
	defer s.stop(t)

	now := time.Now().UTC().Add(-10 * time.Minute).Format(time.RFC3339)
	types := []string{"sent", "delivered", "opened", "clicked", "unsubscribed"}
	var lines []string
	for i := range 400 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"w%d","type":%q,"occurred_at":%q,"sender":"ann@d%d.io","recipient":"r%d@example.com","campaign":"c%d","variant":"v%d","segment":"seg%d","list_source":"src%d"}`,
			i, types[i%len(types)], now, i%3, i, i%4, i%2, i%5, i%2))
	}
	for i := range 8 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"wx%d","type":"complained","occurred_at":%q,"sender":"ann@d0.io","recipient":"r%d@example.com","campaign":"c0","complaint":{"source":"fbl","feedback_type":"abuse"}}`, i, now, i))
		lines = append(lines, fmt.Sprintf(`{"event_id":"wb%d","type":"bounced","occurred_at":%q,"sender":"ann@d1.io","recipient":"b%d@example.com","campaign":"c1","list_source":"src1","bounce":{"class":"hard","smtp_code":550}}`, i, now, i))
	}
	total := len(lines)
	base := "http://" + s.http
	if code, body := post(t, base+"/v1/events", testKey, "application/x-ndjson", ndjson(lines)); code != http.StatusAccepted {
		t.Fatalf("post: %d %s", code, body)
	}
	if code, body := post(t, base+"/v1/events", testKey, "application/x-ndjson", ndjson(lines[:50])); code != http.StatusAccepted {
		t.Fatalf("post redelivery: %d %s", code, body)
	}

	conn, err := clickhouse.Open(ctx, clickhouse.Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	defer conn.Close()
	count := func(q string) uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	eventually(t, "every event in ClickHouse", 30*time.Second, func() bool {
		return count("SELECT uniqExact(event_id) FROM events WHERE tenant = 'default'") == uint64(total)
	})
	time.Sleep(500 * time.Millisecond) // a double insert would land now
	if n := count("SELECT count() FROM events WHERE tenant = 'default'"); n != uint64(total) {
		t.Fatalf("events rows = %d, want %d (exactly once, before merges)", n, total)
	}
	checkRollups := func() {
		t.Helper()
		from, to := time.Now().UTC().Add(-48*time.Hour), time.Now().UTC().Add(24*time.Hour)
		scopes := []struct {
			level  sgv1.ScopeLevel
			target string
		}{
			{sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, "default"}, {sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, "d0.io"},
			{sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, "d1.io"}, {sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, "c0"},
			{sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, "c1/v1"}, {sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT, "seg3"},
			{sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE, "src1"},
		}
		for _, sc := range scopes {
			q := clickhouse.ScopeQuery{Tenant: "default", Level: sc.level, Target: sc.target, From: from, To: to}
			raw, err := clickhouse.EventCounts(ctx, conn, q)
			if err != nil {
				t.Fatal(err)
			}
			sum := uint64(0)
			for _, n := range raw {
				sum += n
			}
			if sum == 0 {
				t.Fatalf("%s %s: no raw counts (%v)", sc.level, sc.target, raw)
			}
			for _, g := range []clickhouse.Granularity{clickhouse.Minute, clickhouse.Hour, clickhouse.Day} {
				rolled, err := clickhouse.RollupCounts(ctx, conn, g, q)
				if err != nil {
					t.Fatal(err)
				}
				for name, n := range raw {
					if rolled[name] != n {
						t.Errorf("%s %s %s: rollup %s = %d, raw events = %d", g.Table(), sc.level, sc.target, name, rolled[name], n)
					}
				}
			}
		}
	}
	checkRollups()

	// Replay: a fresh admission step (new group) re-reads sg.events.v1 from
	// the first offset with the checkpointed segments. Every event is "at or
	// above the resume offset", so it is admitted again and looked up in
	// ClickHouse before insertion: nothing may be inserted.
	brokers := []string{s.kafka}
	writer, err := clickhouse.NewBatchWriter(conn, clickhouse.EventsTable, clickhouse.EventRow, clickhouse.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	admit := windows.NewAdmit(window.AdmitConfig{}, p, writer, clickhouse.NewEventChecker(conn), windows.BrokerStateReader(brokers), windows.BrokerPartitions(brokers), zap.NewNop())
	counted := &countingAdmit{Admit: admit}
	r, err := kafka.NewRunner(kafka.RunnerConfig{Brokers: brokers, GroupID: "test-replay", Topic: topics.Events, Stage: "replay"}, counted, nil, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan error, 1)
	go func() { rdone <- r.Run(rctx) }()
	eventually(t, "the replay to re-admit every event", 30*time.Second, func() bool {
		return counted.n.Load() >= int64(total+50)
	})
	time.Sleep(time.Second) // let its flush (and any insert) happen
	rcancel()
	if err := <-rdone; err != nil {
		t.Fatalf("replay runner: %v", err)
	}
	if err := writer.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count("SELECT count() FROM events WHERE tenant = 'default'"); n != uint64(total) {
		t.Fatalf("after the replay: events rows = %d, want %d", n, total)
	}
	checkRollups()
}

// countingAdmit counts the records the admission step handled.
type countingAdmit struct {
	*windows.Admit
	n atomic.Int64
}

func (c *countingAdmit) Handle(ctx context.Context, m kafka.Message) error {
	err := c.Admit.Handle(ctx, m)
	if err == nil {
		c.n.Add(1)
	}
	return err
}

type nopWriter struct{}

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
