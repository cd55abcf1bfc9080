package devstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// suppressionBound is the promise: an unsubscribe posted to ingest
// is enforced by Check within 2 s.
const suppressionBound = 2 * time.Second

// TestActuatorEndToEnd is the end-to-end test on the embedded
// stack: a real SendGrid unsubscribe webhook posted to ingest makes Check
// for that recipient answer DENY within 2 s (measured from the post), and a
// complaint spike on one domain makes Check for that domain's senders
// DENY/DEFER while another domain stays ALLOW. A manual pause over
// ControlService on the same gRPC address takes effect at once and is
// announced on sg.control.v1.
func TestActuatorEndToEnd(t *testing.T) {
	s := startStack(t, t.TempDir())
	defer s.stop(t)
	base := "http://" + s.http
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	perm := sgv1.NewPermissionServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testKey)
	check := func(sender, rcpt string) sgv1.Verdict {
		t.Helper()
		resp, err := perm.Check(ctx, &sgv1.CheckRequest{Sender: sender, Recipient: rcpt, DryRun: true})
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		return resp.GetVerdict()
	}

	// 1. The SendGrid unsubscribe sample, unchanged, through ingest.
	payload, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "..", "shared", "samples", "webhooks", "sendgrid", "stronggrid_unsubscribe.json"))
	if err != nil {
		t.Fatal(err)
	}
	const unsubscriber = "example@test.com" // the sample's recipient
	if v := check("ann@acme.io", unsubscriber); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Fatalf("before the webhook: %v, want ALLOW", v)
	}
	start := time.Now()
	if code, body := post(t, base+"/v1/webhooks/sendgrid", testKey, "application/json", string(payload)); code != http.StatusAccepted {
		t.Fatalf("sendgrid webhook: %d %s", code, body)
	}
	var took time.Duration
	for {
		if check("ann@acme.io", unsubscriber) == sgv1.Verdict_VERDICT_DENY {
			took = time.Since(start)
			break
		}
		if time.Since(start) > 10*suppressionBound {
			t.Fatalf("recipient not denied %s after the unsubscribe webhook", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("unsubscribe webhook → Check DENY in %s", took.Round(time.Millisecond))
	if took > suppressionBound {
		t.Errorf("unsubscribe enforced after %s, want within %s", took, suppressionBound)
	}
	if v := check("ann@acme.io", "someone-else@test.com"); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("another recipient: %v, want ALLOW", v)
	}

	// 2. A complaint spike on spike.io (1 % of 600 delivered) beside a
	// healthy calm.io.
	now := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	var lines []string
	for i := range 600 {
		rcpt := fmt.Sprintf("r%d@example%d.com", i, i%40)
		lines = append(lines,
			fmt.Sprintf(`{"event_id":"es%d","type":"sent","occurred_at":%q,"sender":"ann@spike.io","recipient":%q,"campaign":"c1"}`, i, now, rcpt),
			fmt.Sprintf(`{"event_id":"ed%d","type":"delivered","occurred_at":%q,"sender":"ann@spike.io","recipient":%q,"campaign":"c1"}`, i, now, rcpt))
	}
	for i := range 20 {
		rcpt := fmt.Sprintf("q%d@example.org", i)
		lines = append(lines,
			fmt.Sprintf(`{"event_id":"cs%d","type":"sent","occurred_at":%q,"sender":"bob@calm.io","recipient":%q}`, i, now, rcpt),
			fmt.Sprintf(`{"event_id":"cd%d","type":"delivered","occurred_at":%q,"sender":"bob@calm.io","recipient":%q}`, i, now, rcpt))
	}
	for i := range 6 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"ex%d","type":"complained","occurred_at":%q,"sender":"ann@spike.io","recipient":"r%d@example%d.com","campaign":"c1","complaint":{"source":"fbl","feedback_type":"abuse"}}`, i, now, i, i%40))
	}
	spikeStart := time.Now()
	if code, body := post(t, base+"/v1/events", testKey, "application/x-ndjson", ndjson(lines)); code != http.StatusAccepted {
		t.Fatalf("post spike: %d %s", code, body)
	}
	defer func() {
		if t.Failed() {
			dumpState(t, []string{s.kafka})
		}
	}()
	eventually(t, "Check for spike.io's senders to answer DENY or DEFER", 60*time.Second, func() bool {
		v := check("carl@spike.io", "fresh@example.net") // a sender of that domain that never complained
		return v == sgv1.Verdict_VERDICT_DENY || v == sgv1.Verdict_VERDICT_DEFER
	})
	t.Logf("complaint spike → domain enforced in %s", time.Since(spikeStart).Round(time.Millisecond))
	if v := check("ann@spike.io", "fresh@example.net"); v != sgv1.Verdict_VERDICT_DENY && v != sgv1.Verdict_VERDICT_DEFER {
		t.Errorf("spike.io's complaining sender: %v, want DENY or DEFER", v)
	}
	if v := check("bob@calm.io", "fresh@example.net"); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("calm.io: %v, want ALLOW", v)
	}

	// 3. A manual pause over ControlService: DENY at once, on the control
	// topic with actor and reason, announced by an alert.
	ctl := sgv1.NewControlServiceClient(conn)
	resp, err := ctl.Pause(ctx, &sgv1.PauseRequest{Command: &sgv1.ManualCommand{
		Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "calm.io", Duration: durationpb.New(time.Hour),
		Actor: "ops", Reason: "seed test went to spam", RequestId: "e2e-1",
	}})
	if err != nil {
		t.Fatalf("manual pause: %v", err)
	}
	if v := check("bob@calm.io", "fresh@example.net"); v != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("calm.io after the manual pause: %v, want DENY", v)
	}
	eventually(t, "the manual pause and its alert on sg.control.v1", 10*time.Second, func() bool {
		var pause, alert bool
		for _, c := range readTopic(t, []string{s.kafka}, topics.Control, func() *sgv1.ControlCommand { return &sgv1.ControlCommand{} }) {
			switch c.GetCommandId() {
			case resp.GetResult().GetCommand().GetCommandId():
				pause = c.GetActor() == "ops" && c.GetReason() == "seed test went to spam"
			case resp.GetResult().GetCommand().GetCommandId() + ":alert":
				alert = true
			}
		}
		return pause && alert
	})
	if s.analytics == "off" {
		return
	}
	// Audited like automatic commands: the manual pause and its actor and
	// reason in ClickHouse's commands table.
	cctx := context.Background()
	ch, err := clickhouse.Open(cctx, clickhouse.Config{Addr: s.analytics, Database: s.db})
	if err != nil {
		t.Fatalf("open clickhouse: %v", err)
	}
	defer ch.Close()
	defer func() { _ = ch.Exec(cctx, "DROP DATABASE IF EXISTS "+s.db) }()
	eventually(t, "the manual pause in the commands audit table", 30*time.Second, func() bool {
		var n uint64
		if err := ch.QueryRow(cctx, "SELECT count() FROM commands WHERE tenant = 'default' AND rule = 'manual' AND action = 'pause' "+
			"AND target = 'calm.io' AND actor = 'ops' AND reason = 'seed test went to spam'").Scan(&n); err != nil {
			t.Fatalf("query commands: %v", err)
		}
		return n == 1
	})
}

// dumpState logs the decisions on the broker (when a test failed).
func dumpState(t *testing.T, brokers []string) {
	t.Helper()
	for _, d := range readTopic(t, brokers, topics.Decisions, func() *sgv1.Decision { return &sgv1.Decision{} }) {
		t.Logf("decision: %s %s %s %s shadow=%v %s", d.GetScope().GetLevel(), d.GetScope().GetTarget(), d.GetRule(),
			d.GetAction(), d.GetShadow(), d.GetExplanation().GetSummary())
	}
}
