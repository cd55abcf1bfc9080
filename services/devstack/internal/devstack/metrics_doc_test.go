package devstack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// metricsDoc is the operator's reference this test keeps true.
var metricsDoc = filepath.Join("..", "..", "..", "..", "docs", "metrics.md")

// docRow matches a metric row of docs/metrics.md's tables:
// | `name` | type | labels | when exposed | meaning |
var docRow = regexp.MustCompile("^\\| `(sendguard_[a-z0-9_]+)` \\| ([a-z]+) \\| ([^|]*)\\| ([^|]*)\\|")

// documented returns the families of docs/metrics.md with their type and
// "when exposed" cell.
func documented(t *testing.T) map[string][2]string {
	t.Helper()
	b, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := docRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("docs/metrics.md documents %s twice", m[1])
		}
		out[m[1]] = [2]string{m[2], strings.TrimSpace(m[4])}
	}
	if len(out) == 0 {
		t.Fatal("docs/metrics.md has no metric row")
	}
	return out
}

// exposed scrapes url and returns every sendguard_* family with its type.
func exposed(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "sendguard_") {
			out[f[2]] = f[3]
		}
	}
	return out
}

// rareFamilies are documented families that only appear when something
// goes wrong or a feature this test does not configure is used; each is
// documented with that condition in its "when exposed" cell, which the test
// checks.
var rareFamilies = map[string]string{
	"sendguard_ingest_signature_failures_total":  "--webhook-config",
	"sendguard_ingest_rate_limited_events_total": "rate limit",
	"sendguard_kafka_produce_failures_total":     "broker",
	"sendguard_normalizer_mx_enrichments_total":  "SENDGUARD_MX_LOOKUP",
	"sendguard_postfix_policy_errors_total":      "error",
}

// TestMetricsDocumented runs the devstack in process with every optional
// component this test can drive (Postfix policy server, alert webhooks,
// Envoy RLS; ClickHouse when SENDGUARD_CLICKHOUSE names a server), sends a
// little of every kind of traffic, scrapes /metrics and checks that every
// sendguard_* family exposed is documented in docs/metrics.md with its
// type, and that every documented family is exposed — except those
// documented as needing ClickHouse when analytics are off, and the
// rareFamilies, whose documented condition is checked instead.
func TestMetricsDocumented(t *testing.T) {
	doc := documented(t)

	var alerts atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		alerts.Add(1)
	}))
	defer hook.Close()
	dataDir := t.TempDir()
	cfg := Config{
		DataDir: dataDir, HTTPAddr: kafkatest.FreeAddr(t), GRPCAddr: kafkatest.FreeAddr(t), KafkaAddr: kafkatest.FreeAddr(t),
		ClickHouse: clickhouseAddr(), ClickHouseDB: fmt.Sprintf("sendguard_test_%d", time.Now().UnixNano()),
		APIKey: testKey, Partitions: 2, LogFormat: "console", LogLevel: "warn", Tick: time.Second,
		PostfixAddr: kafkatest.FreeAddr(t), TenantRate: 100000,
		Notifier: app.NotifierOptions{Webhooks: "*=" + hook.URL, Interval: 10 * time.Millisecond, Attempts: 2, Timeout: 5 * time.Second},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- Run(ctx, cfg, zaptest.NewLogger(t).Named("devstack"), &out) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devstack exited: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("devstack did not stop within 30s")
		}
	}()
	base := "http://" + cfg.HTTPAddr
	waitReady(t, base, done)
	analytics := cfg.ClickHouse != "off"

	// Traffic: a complaint spike on one domain (pause, alert, suppressions),
	// an unsubscribe, a bad request (400), a SendGrid batch with one bad
	// item (dead letter), checks over every API.
	now := time.Now().UTC().Add(-time.Minute)
	var lines []string
	for i := range 600 {
		rcpt := fmt.Sprintf("r%d@example%d.com", i, i%40)
		lines = append(lines,
			fmt.Sprintf(`{"event_id":"s%d","type":"sent","occurred_at":%q,"sender":"ann@acme.io","recipient":%q}`, i, now.Format(time.RFC3339), rcpt),
			fmt.Sprintf(`{"event_id":"d%d","type":"delivered","occurred_at":%q,"sender":"ann@acme.io","recipient":%q}`, i, now.Format(time.RFC3339), rcpt))
	}
	for i := range 6 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"x%d","type":"complained","occurred_at":%q,"sender":"ann@acme.io","recipient":"r%d@example%d.com","complaint":{"source":"fbl","feedback_type":"abuse"}}`, i, now.Format(time.RFC3339), i, i%40))
	}
	lines = append(lines, fmt.Sprintf(`{"event_id":"u1","type":"unsubscribed","occurred_at":%q,"sender":"bob@calm.io","recipient":"z@example.org"}`, now.Format(time.RFC3339)))
	if code, body := post(t, base+"/v1/events", testKey, "application/x-ndjson", ndjson(lines)); code != http.StatusAccepted {
		t.Fatalf("post events: %d %s", code, body)
	}
	if code, _ := post(t, base+"/v1/events", testKey, "application/json", `{"type":"nope"}`); code != http.StatusBadRequest {
		t.Fatalf("bad event: %d, want 400", code)
	}
	sg := fmt.Sprintf(`[{"email":"a@example.net","timestamp":%d,"event":"delivered","sg_event_id":"m-e1","sender":"ann@dlq.io"},
 {"email":"b@example.net","timestamp":%d,"event":"teleported","sg_event_id":"m-e2","sender":"ann@dlq.io"}]`, now.Unix(), now.Unix())
	if code, body := post(t, base+"/v1/webhooks/sendgrid", testKey, "application/json", sg); code != http.StatusAccepted {
		t.Fatalf("sendgrid batch: %d %s", code, body)
	}

	conn, err := grpc.NewClient(cfg.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testKey)
	perm := sgv1.NewPermissionServiceClient(conn)
	paused := func() bool {
		resp, err := perm.Check(gctx, &sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: "new@example.org", DryRun: true})
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		return resp.GetVerdict() != sgv1.Verdict_VERDICT_ALLOW
	}
	eventually(t, "the complaint spike pausing acme.io", 60*time.Second, paused)
	if _, err := perm.CheckBatch(gctx, &sgv1.CheckBatchRequest{Checks: []*sgv1.CheckRequest{
		{Sender: "bob@calm.io", Recipient: "y@example.org", DryRun: true}, {Sender: "bob@calm.io", Recipient: "z@example.org", DryRun: true},
	}}); err != nil {
		t.Fatalf("check batch: %v", err)
	}
	rls := rlsv3.NewRateLimitServiceClient(conn)
	if _, err := rls.ShouldRateLimit(gctx, &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: []*commonrl.RateLimitDescriptor{
		{Entries: []*commonrl.RateLimitDescriptor_Entry{{Key: "sender", Value: "bob@calm.io"}, {Key: "recipient", Value: "y@example.org"}}},
	}}); err != nil {
		t.Fatalf("envoy rls: %v", err)
	}
	postfixAsk(t, cfg.PostfixAddr)
	eventually(t, "an alert posted to the webhook", 30*time.Second, func() bool { return alerts.Load() > 0 })

	// Every family that the traffic above produces must be there; counters
	// of later stages lag by a commit interval, so scrape until stable.
	var got map[string]string
	want := func() []string {
		var missing []string
		for name, d := range doc {
			if _, ok := got[name]; ok {
				continue
			}
			if _, rare := rareFamilies[name]; rare || (!analytics && strings.Contains(d[1], "ClickHouse")) {
				continue
			}
			missing = append(missing, name)
		}
		sort.Strings(missing)
		return missing
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = exposed(t, base+"/metrics")
		if len(want()) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if missing := want(); len(missing) > 0 {
		t.Errorf("documented in docs/metrics.md but not exposed by the devstack (analytics %v): %v", analytics, missing)
	}
	var undocumented []string
	for name, typ := range got {
		d, ok := doc[name]
		if !ok {
			undocumented = append(undocumented, name)
			continue
		}
		if d[0] != typ {
			t.Errorf("%s is a %s, docs/metrics.md says %s", name, typ, d[0])
		}
	}
	sort.Strings(undocumented)
	if len(undocumented) > 0 {
		t.Errorf("exposed by the devstack but not in docs/metrics.md: %v", undocumented)
	}
	for name, cond := range rareFamilies {
		d, ok := doc[name]
		if !ok {
			t.Errorf("rare family %s is not documented", name)
			continue
		}
		if !strings.Contains(d[1], cond) {
			t.Errorf("docs/metrics.md: %s: when exposed %q does not name its condition (%q)", name, d[1], cond)
		}
	}
}

// postfixAsk sends one policy delegation request and reads the answer.
func postfixAsk(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("postfix: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "request=smtpd_access_policy\nprotocol_state=RCPT\nsender=bob@calm.io\nrecipient=y@example.org\n\n"); err != nil {
		t.Fatalf("postfix: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "action=") {
		t.Fatalf("postfix answer %q: %v", line, err)
	}
}
