package devstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

const testKey = "test-key"

type stack struct {
	http, grpc, kafka string
	analytics, db     string
	cancel            context.CancelFunc
	done              chan error
}

// startStack runs the devstack in this process: broker and five stages as
// goroutine-run servers that talk to each other over the Kafka protocol.
func startStack(t *testing.T, dataDir string) *stack {
	t.Helper()
	return restartStack(t, dataDir, &stack{http: kafkatest.FreeAddr(t), grpc: kafkatest.FreeAddr(t), kafka: kafkatest.FreeAddr(t),
		db: fmt.Sprintf("sendguard_test_%d", time.Now().UnixNano())})
}

// restartStack starts the devstack on prev's addresses and database.
func restartStack(t *testing.T, dataDir string, prev *stack) *stack {
	t.Helper()
	s := &stack{http: prev.http, grpc: prev.grpc, kafka: prev.kafka, db: prev.db, done: make(chan error, 1)}
	cfg := Config{
		DataDir: dataDir, HTTPAddr: s.http, GRPCAddr: s.grpc, KafkaAddr: s.kafka,
		ClickHouse: clickhouseAddr(), ClickHouseDB: s.db, APIKey: testKey, ExtraKeys: "other:other-key", Partitions: 4,
		LogFormat: "console", LogLevel: "warn", Tick: time.Second,
	}
	s.analytics = cfg.ClickHouse
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var out bytes.Buffer
	go func() { s.done <- Run(ctx, cfg, zaptest.NewLogger(t).Named("devstack"), &out) }()
	waitReady(t, "http://"+s.http, s.done)
	return s
}

func (s *stack) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("devstack exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devstack did not stop within 30s")
	}
}

func clickhouseAddr() string {
	if a := os.Getenv("SENDGUARD_CLICKHOUSE"); a != "" {
		return a
	}
	return "off"
}

func waitReady(t *testing.T, base string, done chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("devstack exited before ready: %v", err)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("/readyz did not answer 200 within 30s")
}

func post(t *testing.T, url, key, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readTopic returns every record of topic as decoded messages.
func readTopic[T proto.Message](t *testing.T, brokers []string, topic string, newT func() T) []T {
	t.Helper()
	var out []T
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := kafka.ReadAll(ctx, brokers, topic, func(m kafka.Message) error {
		v := newT()
		if err := proto.Unmarshal(m.Value(), v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return out
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func ndjson(lines []string) string { return strings.Join(lines, "\n") + "\n" }

// TestHopChain posts canonical events to ingest and follows them over the
// broker through every stage: raw → events → metrics → decisions → control,
// then asks PermissionService.
func TestHopChain(t *testing.T) {
	dataDir := t.TempDir()
	s := startStack(t, dataDir)
	stopped := false
	defer func() {
		if !stopped {
			s.stop(t)
		}
	}()
	base := "http://" + s.http
	brokers := []string{s.kafka}

	if code, _ := post(t, base+"/v1/events", "", "application/json", `{}`); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", code)
	}
	if code, body := post(t, base+"/v1/events", testKey, "application/json", `{"type":"bounced","occurred_at":"2026-11-20T10:00:00Z","recipient":"a@b.com","bounce":{"class":"squishy"}}`); code != http.StatusBadRequest || !strings.Contains(body, `"field":"bounce.class"`) {
		t.Fatalf("bad enum: %d %s, want 400 naming bounce.class", code, body)
	}

	now := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	var lines []string
	const delivered, complaints = 600, 6
	for i := range delivered {
		rcpt := fmt.Sprintf("r%d@example%d.com", i, i%40)
		lines = append(lines,
			fmt.Sprintf(`{"event_id":"s%d","type":"sent","occurred_at":%q,"sender":"ann@acme.io","recipient":%q,"campaign":"c1"}`, i, now, rcpt),
			fmt.Sprintf(`{"event_id":"d%d","type":"delivered","occurred_at":%q,"sender":"ann@acme.io","recipient":%q,"campaign":"c1"}`, i, now, rcpt))
	}
	for i := range complaints {
		lines = append(lines, fmt.Sprintf(`{"event_id":"x%d","type":"complained","occurred_at":%q,"sender":"ann@acme.io","recipient":"r%d@example%d.com","campaign":"c1","complaint":{"source":"fbl","feedback_type":"abuse"}}`, i, now, i, i%40))
	}
	// A healthy domain alongside.
	lines = append(lines, fmt.Sprintf(`{"event_id":"ok1","type":"delivered","occurred_at":%q,"sender":"bob@calm.io","recipient":"z@example.org"}`, now))
	total := len(lines)
	if code, body := post(t, base+"/v1/events", testKey, "application/x-ndjson", ndjson(lines)); code != http.StatusAccepted {
		t.Fatalf("post ndjson: %d %s", code, body)
	}
	// A redelivery of the same events must not count twice.
	if code, body := post(t, base+"/v1/events", testKey, "application/x-ndjson", ndjson(lines[:10])); code != http.StatusAccepted {
		t.Fatalf("post redelivery: %d %s", code, body)
	}

	eventually(t, "every event normalized onto sg.events.v1", 30*time.Second, func() bool {
		evs := readTopic(t, brokers, topics.Events, func() *sgv1.Event { return &sgv1.Event{} })
		ids := map[string]bool{}
		for _, e := range evs {
			if e.GetTenant() != DefaultTenant {
				t.Fatalf("event %s has tenant %q", e.GetEventId(), e.GetTenant())
			}
			ids[e.GetEventId()] = true
		}
		return len(ids) == total
	})
	var domainSnap *sgv1.WindowSnapshot
	eventually(t, "a snapshot of domain acme.io with every delivery counted once", 30*time.Second, func() bool {
		for _, sn := range readTopic(t, brokers, topics.Metrics, func() *sgv1.WindowSnapshot { return &sgv1.WindowSnapshot{} }) {
			if sn.GetScope().GetLevel() == sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN && sn.GetScope().GetTarget() == "acme.io" &&
				window.MetricValue(sn, "delivered_24h") == delivered && window.MetricValue(sn, "complaints_24h") == complaints {
				domainSnap = sn
				return true
			}
		}
		return false
	})
	if got := window.MetricValue(domainSnap, "complaint_rate_24h"); got != float64(complaints)/delivered {
		t.Errorf("complaint_rate_24h = %v, want %v", got, float64(complaints)/delivered)
	}
	defer func() {
		if t.Failed() {
			for _, d := range readTopic(t, brokers, topics.Decisions, func() *sgv1.Decision { return &sgv1.Decision{} }) {
				t.Logf("decision: %s %s %s %s→%s shadow=%v at=%s %s", d.GetScope().GetLevel(), d.GetScope().GetTarget(), d.GetRule(),
					d.GetFromState(), d.GetToState(), d.GetShadow(), d.GetAt().AsTime(), d.GetExplanation().GetSummary())
			}
		}
	}()
	eventually(t, "a pause decision for domain acme.io with its explanation", 30*time.Second, func() bool {
		for _, d := range readTopic(t, brokers, topics.Decisions, func() *sgv1.Decision { return &sgv1.Decision{} }) {
			if d.GetScope().GetTarget() == "acme.io" && d.GetAction() == sgv1.Action_ACTION_PAUSE && !d.GetShadow() {
				if d.GetExplanation().GetMetric() == "" || d.GetExplanation().GetSampleSize() == 0 {
					t.Fatalf("decision without explanation: %v", d)
				}
				return true
			}
		}
		return false
	})
	eventually(t, "a pause command for domain acme.io on sg.control.v1", 30*time.Second, func() bool {
		for _, c := range readTopic(t, brokers, topics.Control, func() *sgv1.ControlCommand { return &sgv1.ControlCommand{} }) {
			if c.GetScope().GetLevel() == sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN && c.GetScope().GetTarget() == "acme.io" && c.GetAction() == sgv1.Action_ACTION_PAUSE {
				return true
			}
		}
		return false
	})

	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	perm := sgv1.NewPermissionServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testKey)
	check := func(ctx context.Context, sender, rcpt string) sgv1.Verdict {
		resp, err := perm.Check(ctx, &sgv1.CheckRequest{Sender: sender, Recipient: rcpt, DryRun: true})
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		return resp.GetVerdict()
	}
	if v := check(ctx, "ann@acme.io", "new@example.net"); v != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("paused domain: %v, want DENY", v)
	}
	if v := check(ctx, "bob@calm.io", "r0@example0.com"); v != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("complainer (suppressed): %v, want DENY", v)
	}
	if v := check(ctx, "bob@calm.io", "new@example.net"); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("healthy domain: %v, want ALLOW", v)
	}
	if s.analytics != "off" {
		checkAnalytics(t, s, total, false)
	}
	// Tenant isolation: another tenant's view is untouched.
	other := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer other-key")
	if v := check(other, "ann@acme.io", "r0@example0.com"); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("other tenant: %v, want ALLOW", v)
	}
	pausesBefore := countPauses(t, brokers)

	// Stop gracefully and start again on the same data dir: enforcement,
	// windows, deduplication and health states all continue.
	conn.Close()
	s.stop(t)
	s = restartStack(t, dataDir, s)
	conn2, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	perm = sgv1.NewPermissionServiceClient(conn2)
	if v := check(ctx, "ann@acme.io", "new@example.net"); v != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("after restart, paused domain: %v, want DENY", v)
	}
	if v := check(ctx, "bob@calm.io", "r0@example0.com"); v != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("after restart, suppressed complainer: %v, want DENY", v)
	}
	// A redelivery of everything plus one new delivery: the window counts
	// the new one only.
	later := time.Now().UTC().Add(-10 * time.Second).Format(time.RFC3339)
	more := append(append([]string(nil), lines...), fmt.Sprintf(`{"event_id":"d-new","type":"delivered","occurred_at":%q,"sender":"ann@acme.io","recipient":"late@example.net","campaign":"c1"}`, later))
	if code, body := post(t, base+"/v1/events", testKey, "application/x-ndjson", ndjson(more)); code != http.StatusAccepted {
		t.Fatalf("post after restart: %d %s", code, body)
	}
	eventually(t, "the restored window counting only the new delivery", 30*time.Second, func() bool {
		for _, sn := range readTopic(t, brokers, topics.Metrics, func() *sgv1.WindowSnapshot { return &sgv1.WindowSnapshot{} }) {
			if sn.GetScope().GetLevel() == sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN && sn.GetScope().GetTarget() == "acme.io" {
				switch d := window.MetricValue(sn, "delivered_24h"); {
				case d > delivered+1:
					t.Fatalf("delivered_24h = %v after a redelivery: counted twice", d)
				case d == delivered+1:
					return true
				}
			}
		}
		return false
	})
	time.Sleep(time.Second)
	// The paused domain is not paused again: the health state survived.
	if after := countPauses(t, brokers); after != pausesBefore {
		t.Errorf("pause commands for acme.io: %d before restart, %d after: health state lost", pausesBefore, after)
	}
	if s.analytics != "off" {
		checkAnalytics(t, s, total+1, true)
	}
	stopped = true
	s.stop(t)
}

func countPauses(t *testing.T, brokers []string) int {
	t.Helper()
	n := 0
	for _, c := range readTopic(t, brokers, topics.Control, func() *sgv1.ControlCommand { return &sgv1.ControlCommand{} }) {
		if c.GetScope().GetTarget() == "acme.io" && c.GetAction() == sgv1.Action_ACTION_PAUSE {
			n++
		}
	}
	return n
}

// checkAnalytics asserts that ClickHouse holds every event exactly once and
// the audit log of the pause.
func checkAnalytics(t *testing.T, s *stack, total int, drop bool) {
	t.Helper()
	ctx := context.Background()
	conn, err := clickhouse.Open(ctx, clickhouse.Config{Addr: s.analytics, Database: s.db})
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	defer conn.Close()
	if drop {
		defer func() { _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db) }()
	}
	count := func(q string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	eventually(t, "every event in ClickHouse exactly once", 30*time.Second, func() bool {
		return count("SELECT count() FROM events WHERE tenant = 'default'") == uint64(total)
	})
	if n := count("SELECT uniqExact(event_id) FROM events WHERE tenant = 'default'"); n != uint64(total) {
		t.Errorf("distinct events = %d, want %d", n, total)
	}
	eventually(t, "the pause decision and command in the audit tables", 30*time.Second, func() bool {
		return count("SELECT count() FROM decisions WHERE tenant = 'default' AND target = 'acme.io' AND action = 'pause'") > 0 &&
			count("SELECT count() FROM commands WHERE tenant = 'default' AND target = 'acme.io' AND action = 'pause'") > 0
	})
}
