package actuator_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/stage/actuator/actuatortest"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is a Monday 10:00 UTC.
var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	keyA = "key-default"
	keyB = "key-other"
)

type client struct {
	t    *testing.T
	ctl  sgv1.ControlServiceClient
	perm sgv1.PermissionServiceClient
}

func newClient(t *testing.T, s *actuatortest.Server) *client {
	conn := s.Dial(t)
	return &client{t: t, ctl: sgv1.NewControlServiceClient(conn), perm: sgv1.NewPermissionServiceClient(conn)}
}

func (c *client) check(key, sender, rcpt string) *sgv1.CheckResponse {
	c.t.Helper()
	resp, err := c.perm.Check(actuatortest.WithKey(context.Background(), key), &sgv1.CheckRequest{Sender: sender, Recipient: rcpt, DryRun: true})
	if err != nil {
		c.t.Fatalf("check: %v", err)
	}
	return resp
}

func manual(level sgv1.ScopeLevel, target, rid string) *sgv1.ManualCommand {
	return &sgv1.ManualCommand{Level: level, Target: target, Actor: "ann", Reason: "complaints from a seed list", RequestId: rid}
}

func readControl(t *testing.T, brokers []string, topic string) []*sgv1.ControlCommand {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*sgv1.ControlCommand
	err := kafka.ReadAll(ctx, brokers, topic, func(m kafka.Message) error {
		if len(m.Value()) == 0 {
			out = append(out, nil) // tombstone
			return nil
		}
		c := &sgv1.ControlCommand{}
		if err := proto.Unmarshal(m.Value(), c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return out
}

const dom = sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN

func TestManualPauseResume(t *testing.T) {
	clk := &clock{t: t0}
	s := actuatortest.Start(t, actuatortest.Options{Clock: clk.Now})
	c := newClient(t, s)
	ctx := actuatortest.WithKey(context.Background(), keyA)

	if v := c.check(keyA, "bob@acme.io", "x@example.org").GetVerdict(); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Fatalf("before pause: %v", v)
	}
	m := manual(dom, "acme.io", "req-1")
	m.Duration = durationpb.New(2 * time.Hour)
	resp, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: m})
	if err != nil {
		t.Fatalf("pause: %v", err)
	}
	cmd := resp.GetResult().GetCommand()
	if !resp.GetResult().GetChanged() || cmd.GetCommandId() != "manual:req-1:pause" || cmd.GetRule() != "manual" ||
		cmd.GetScope().GetTenant() != "default" || !cmd.GetUntil().AsTime().Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("pause result = %v", resp.GetResult())
	}
	// Check answers from memory: DENY at once, with the manual reason.
	r := c.check(keyA, "bob@acme.io", "x@example.org")
	if r.GetVerdict() != sgv1.Verdict_VERDICT_DENY || len(r.GetReasons()) != 1 || r.GetReasons()[0].GetRule() != "manual" {
		t.Fatalf("after pause: %v", r)
	}
	// The same request again (a client retry) changes and publishes nothing.
	again, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: m})
	if err != nil || again.GetResult().GetChanged() {
		t.Fatalf("retried pause: %v, %v; want unchanged", again, err)
	}

	// Status shows the pause with its time to unpause on the state's clock.
	clk.Advance(30 * time.Minute)
	st, err := c.ctl.Status(ctx, &sgv1.StatusRequest{})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st.GetScopes()) != 1 {
		t.Fatalf("status = %v, want one scope", st)
	}
	sc := st.GetScopes()[0]
	if sc.GetCommand().GetAction() != sgv1.Action_ACTION_PAUSE || sc.GetCommand().GetActor() != "ann" ||
		sc.GetCommand().GetReason() != "complaints from a seed list" || sc.GetTimeToUnpause().AsDuration() != 90*time.Minute ||
		sc.GetCommand().GetCommandId() != "manual:req-1:pause" || sc.GetCommand().GetExplanation().GetSource() != "manual" {
		t.Errorf("status scope = %v, want pause by ann with 1h30m left", sc)
	}

	if _, err := c.ctl.Resume(ctx, &sgv1.ResumeRequest{Command: manual(dom, "ACME.io", "req-2")}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if v := c.check(keyA, "bob@acme.io", "x@example.org").GetVerdict(); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Fatalf("after resume: %v, want ALLOW", v)
	}
	// Nothing left to resume: unchanged, not an error.
	if r, err := c.ctl.Resume(ctx, &sgv1.ResumeRequest{Command: manual(dom, "acme.io", "req-3")}); err != nil || r.GetResult().GetChanged() {
		t.Errorf("resume of nothing: %v, %v", r, err)
	}

	// The control topic holds pause, its alert, resume, its alert, once
	// each, with actor and reason; the state topic the pause then a
	// tombstone.
	var got []string
	for _, cmd := range readControl(t, s.Brokers, topics.Control) {
		got = append(got, cmd.GetCommandId())
		if cmd.GetActor() != "ann" || cmd.GetReason() == "" || cmd.GetRule() != "manual" || cmd.GetIssuedAt() == nil {
			t.Errorf("command without actor, reason, rule or issued_at: %v", cmd)
		}
	}
	want := map[string]bool{"manual:req-1:pause": true, "manual:req-1:pause:alert": true, "manual:req-2:resume": true, "manual:req-2:resume:alert": true}
	if len(got) != len(want) {
		t.Fatalf("control topic ids = %v, want %v once each", got, want)
	}
	for _, id := range got {
		if !want[id] {
			t.Errorf("unexpected command %s on the control topic", id)
		}
	}
	state := readControl(t, s.Brokers, topics.ControlState)
	if len(state) != 2 || state[0].GetAction() != sgv1.Action_ACTION_PAUSE || state[1] != nil {
		t.Errorf("state topic = %v, want the pause then a tombstone", state)
	}
}

func TestTenantIsolation(t *testing.T) {
	s := actuatortest.Start(t, actuatortest.Options{})
	c := newClient(t, s)
	ctxA := actuatortest.WithKey(context.Background(), keyA)
	ctxB := actuatortest.WithKey(context.Background(), keyB)
	if _, err := c.ctl.Pause(ctxA, &sgv1.PauseRequest{Command: manual(dom, "acme.io", "")}); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if v := c.check(keyB, "bob@acme.io", "x@example.org").GetVerdict(); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("tenant B's check: %v, want ALLOW", v)
	}
	st, err := c.ctl.Status(ctxB, &sgv1.StatusRequest{})
	if err != nil || len(st.GetScopes()) != 0 {
		t.Errorf("tenant B's status = %v, %v; want empty", st, err)
	}
	// B resuming the same target resumes B's scope (nothing), never A's.
	if r, err := c.ctl.Resume(ctxB, &sgv1.ResumeRequest{Command: manual(dom, "acme.io", "")}); err != nil || r.GetResult().GetChanged() {
		t.Errorf("tenant B's resume: %v, %v; want unchanged", r, err)
	}
	if v := c.check(keyA, "bob@acme.io", "x@example.org").GetVerdict(); v != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("tenant A after B's resume: %v, want DENY", v)
	}
	// A tenant-level pause names the key's tenant only.
	_, err = c.ctl.Pause(ctxB, &sgv1.PauseRequest{Command: manual(sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, "default", "")})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("B pausing tenant default: %v, want InvalidArgument", err)
	}
	if v := c.check(keyA, "x@calm.io", "y@example.org").GetVerdict(); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("tenant A after B's attempt: %v, want ALLOW", v)
	}
	if _, err := c.ctl.Status(context.Background(), &sgv1.StatusRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("status without key: %v, want Unauthenticated", err)
	}
	if _, err := c.ctl.Pause(actuatortest.WithKey(context.Background(), "nope"), &sgv1.PauseRequest{Command: manual(dom, "acme.io", "")}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("pause with a bad key: %v, want Unauthenticated", err)
	}
}

func TestSuppressThrottleAndValidation(t *testing.T) {
	clk := &clock{t: t0}
	s := actuatortest.Start(t, actuatortest.Options{Clock: clk.Now})
	c := newClient(t, s)
	ctx := actuatortest.WithKey(context.Background(), keyA)
	rcpt := sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT
	if _, err := c.ctl.Suppress(ctx, &sgv1.SuppressRequest{Command: manual(rcpt, "x@example.org", "")}); err != nil {
		t.Fatalf("suppress: %v", err)
	}
	if v := c.check(keyA, "bob@acme.io", "x@example.org").GetVerdict(); v != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("suppressed recipient: %v, want DENY", v)
	}
	if _, err := c.ctl.Unsuppress(ctx, &sgv1.UnsuppressRequest{Command: manual(rcpt, "x@example.org", "")}); err != nil {
		t.Fatalf("unsuppress: %v", err)
	}
	if v := c.check(keyA, "bob@acme.io", "x@example.org").GetVerdict(); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("unsuppressed recipient: %v, want ALLOW", v)
	}
	if _, err := c.ctl.Throttle(ctx, &sgv1.ThrottleRequest{Command: manual(sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, "bob@acme.io", ""), DailyCap: 1}); err != nil {
		t.Fatalf("throttle: %v", err)
	}
	send := func() sgv1.Verdict {
		r, err := c.perm.Check(ctx, &sgv1.CheckRequest{Sender: "bob@acme.io", Recipient: "y@example.org"})
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		return r.GetVerdict()
	}
	if v1, v2 := send(), send(); v1 != sgv1.Verdict_VERDICT_ALLOW || v2 != sgv1.Verdict_VERDICT_DEFER {
		t.Errorf("daily cap 1: %v then %v, want ALLOW then DEFER", v1, v2)
	}

	past := manual(dom, "acme.io", "")
	past.Until = timestamppb.New(t0.Add(-time.Hour))
	both := manual(dom, "acme.io", "")
	both.Until, both.Duration = timestamppb.New(t0.Add(time.Hour)), durationpb.New(time.Hour)
	tests := []struct {
		name string
		call func() error
	}{
		{"no actor", func() error {
			m := manual(dom, "acme.io", "")
			m.Actor = " "
			_, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: m})
			return err
		}},
		{"no reason", func() error {
			m := manual(dom, "acme.io", "")
			m.Reason = ""
			_, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: m})
			return err
		}},
		{"no level", func() error {
			_, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: manual(sgv1.ScopeLevel_SCOPE_LEVEL_UNSPECIFIED, "acme.io", "")})
			return err
		}},
		{"no target", func() error {
			_, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: manual(dom, "", "")})
			return err
		}},
		{"no command", func() error { _, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{}); return err }},
		{"until in the past", func() error { _, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: past}); return err }},
		{"until and duration", func() error { _, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: both}); return err }},
		{"throttle without caps", func() error {
			_, err := c.ctl.Throttle(ctx, &sgv1.ThrottleRequest{Command: manual(dom, "acme.io", "")})
			return err
		}},
		{"throttle ratio above 1", func() error {
			_, err := c.ctl.Throttle(ctx, &sgv1.ThrottleRequest{Command: manual(dom, "acme.io", ""), CapRatio: 1.5})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); status.Code(err) != codes.InvalidArgument {
				t.Errorf("err = %v, want InvalidArgument", err)
			}
		})
	}
	if v := c.check(keyA, "bob@acme.io", "z@example.org").GetVerdict(); v == sgv1.Verdict_VERDICT_DENY {
		t.Error("a rejected request changed the state")
	}
}

// flaky fails the first n Produce calls, then passes through.
type flaky struct {
	next actuator.Publisher
	n    atomic.Int32
}

func (f *flaky) Produce(ctx context.Context, records ...kafka.Record) error {
	if f.n.Add(-1) >= 0 {
		return errors.New("injected: broker unavailable")
	}
	return f.next.Produce(ctx, records...)
}

func TestRetryAfterFailedPublish(t *testing.T) {
	var f *flaky
	s := actuatortest.Start(t, actuatortest.Options{Publisher: func(p actuator.Publisher) actuator.Publisher {
		f = &flaky{next: p}
		f.n.Store(1)
		return f
	}})
	c := newClient(t, s)
	ctx := actuatortest.WithKey(context.Background(), keyA)
	req := &sgv1.PauseRequest{Command: manual(dom, "acme.io", "retry-me")}
	if _, err := c.ctl.Pause(ctx, req); status.Code(err) != codes.Unavailable {
		t.Fatalf("first pause: %v, want Unavailable", err)
	}
	resp, err := c.ctl.Pause(ctx, req)
	if err != nil || !resp.GetResult().GetChanged() {
		t.Fatalf("retried pause: %v, %v; want published and changed", resp, err)
	}
	if r, err := c.ctl.Pause(ctx, req); err != nil || r.GetResult().GetChanged() {
		t.Fatalf("third pause: %v, %v; want unchanged", r, err)
	}
	n := 0
	for _, cmd := range readControl(t, s.Brokers, topics.Control) {
		if cmd.GetCommandId() == "manual:retry-me:pause" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("pause on the control topic %d times, want 1", n)
	}
}

// msg is a consumed record for driving handlers directly.
type msg struct {
	value   []byte
	headers map[string][]byte
}

var _ kafka.Message = msg{}

func (m msg) Topic() string             { return topics.Decisions }
func (m msg) Partition() int            { return 0 }
func (m msg) Offset() int64             { return 0 }
func (m msg) Key() []byte               { return nil }
func (m msg) Value() []byte             { return m.value }
func (m msg) Time() time.Time           { return t0 }
func (m msg) Header(name string) []byte { return m.headers[name] }

// TestDecisionAlertsArePublished: every pause from a decision is announced
// by an alert on the control topic (alerts change no state, so they must
// not be filtered out as "no change"), once, even when redelivered.
func TestDecisionAlertsArePublished(t *testing.T) {
	s := actuatortest.Start(t, actuatortest.Options{})
	d := &sgv1.Decision{
		DecisionId: "d-1", Scope: &sgv1.Scope{Tenant: "default", Level: dom, Target: "acme.io"},
		Rule: "domain-complaint", Action: sgv1.Action_ACTION_PAUSE, At: timestamppb.New(t0),
		Explanation: &sgv1.Explanation{Metric: "complaint_rate_24h", Observed: 0.01, Threshold: 0.003, SampleSize: 600, Summary: "complaints"},
	}
	b, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Stage.DecisionsHandler()
	for range 2 { // a redelivery
		if err := h.Handle(context.Background(), msg{value: b}); err != nil {
			t.Fatalf("handle: %v", err)
		}
		if err := h.(kafka.Flusher).Flush(context.Background()); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	var ids []string
	for _, c := range readControl(t, s.Brokers, topics.Control) {
		ids = append(ids, c.GetCommandId())
	}
	if len(ids) != 2 || ids[0] != "d-1:pause" || ids[1] != "d-1:alert" {
		t.Errorf("control topic = %v, want [d-1:pause d-1:alert]", ids)
	}
	// Status explains an automatic pause with the rule's explanation.
	st := s.Stage.Status("default", dom, "acme.io")
	if len(st) != 1 || st[0].GetCommand().GetRule() != "domain-complaint" || st[0].GetCommand().GetCommandId() != "d-1:pause" ||
		st[0].GetCommand().GetExplanation().GetMetric() != "complaint_rate_24h" || st[0].GetTimeToUnpause() != nil {
		t.Errorf("status = %v, want the open-ended pause with its explanation", st)
	}
	if st := s.Stage.Status("default", sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, ""); len(st) != 0 {
		t.Errorf("status at sender level = %v, want none", st)
	}
}
