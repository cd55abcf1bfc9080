package postfix

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/enforce"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const tenant = "acme"

// enforcement returns a real enforcement state with a paused sender, a
// suppressed recipient and a sender throttled to 1 message a day, and a
// Checker over it.
func enforcement(t testing.TB) (*enforce.State, Checker) {
	t.Helper()
	cfg := enforce.DefaultConfig()
	cfg.FrequencyCap = 0
	st := enforce.New(cfg)
	now := time.Now()
	for i, c := range []*sgv1.ControlCommand{
		{Scope: &sgv1.Scope{Tenant: tenant, Level: sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, Target: "paused@acme.io"},
			Action: sgv1.Action_ACTION_PAUSE, Rule: "sender-bounce-spike", Reason: "hard bounce rate 9%",
			Until: timestamppb.New(now.Add(72 * time.Hour))},
		{Scope: &sgv1.Scope{Tenant: tenant, Level: sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, Target: "gone@example.com"},
			Action: sgv1.Action_ACTION_SUPPRESS, Rule: "suppression", Reason: "unsubscribed"},
		{Scope: &sgv1.Scope{Tenant: tenant, Level: sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, Target: "slow@acme.io"},
			Action: sgv1.Action_ACTION_THROTTLE, Rule: "manual", DailyCap: 1},
	} {
		c.CommandId = fmt.Sprintf("setup-%d", i)
		c.At = timestamppb.New(now)
		if !st.Apply(c) {
			t.Fatalf("command %d not applied", i)
		}
	}
	return st, CheckerFunc(func(_ context.Context, tn string, req *sgv1.CheckRequest) *sgv1.CheckResponse {
		return st.Check(tn, req, time.Now())
	})
}

func rcpt(sender, recipient string) Request {
	return Request{
		"request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
		"client_address": "127.0.0.1", "sender": sender, "recipient": recipient, "instance": "1.2.3",
	}
}

func TestAnswer(t *testing.T) {
	_, checker := enforcement(t)
	s, err := New(Config{Mapping: Mapping{Tenant: tenant}}, checker)
	if err != nil {
		t.Fatal(err)
	}
	withCampaign := rcpt("ok@acme.io", "bob@example.com")
	withCampaign["campaign"] = "q4"
	data := rcpt("paused@acme.io", "bob@example.com")
	data["protocol_state"] = "DATA"
	for _, tc := range []struct {
		name     string
		req      Request
		want     string
		contains string
	}{
		{"clean mail", rcpt("ok@acme.io", "bob@example.com"), ActionDunno, ""},
		{"with a campaign", withCampaign, ActionDunno, ""},
		{"paused sender defers", rcpt("paused@acme.io", "bob@example.com"), ActionDeferIfPermit, "4.7.1"},
		{"suppressed recipient rejects", rcpt("ok@acme.io", "gone@example.com"), ActionReject, "5.7.1"},
		{"paused sender to suppressed recipient rejects", rcpt("paused@acme.io", "gone@example.com"), ActionReject, "gone@example.com"},
		{"first message under a cap", rcpt("slow@acme.io", "bob@example.com"), ActionDunno, ""},
		{"cap reached defers with retry", rcpt("slow@acme.io", "carol@example.com"), ActionDeferIfPermit, "retry after"},
		{"null sender (bounce) is not checked", rcpt("", "gone@example.com"), ActionDunno, ""},
		{"other protocol states are not checked", data, ActionDunno, ""},
		{"other requests are not checked", Request{"request": "junk", "protocol_state": "RCPT", "sender": "paused@acme.io", "recipient": "x@y.io"}, ActionDunno, ""},
		{"case of the address does not matter", rcpt("Paused@ACME.io", "bob@example.com"), ActionDeferIfPermit, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Answer(context.Background(), tc.req)
			if got.Verb() != tc.want || !strings.Contains(got.Action, tc.contains) {
				t.Errorf("action %q, want %s containing %q", got.Action, tc.want, tc.contains)
			}
			if strings.ContainsAny(got.Action, "\r\n") {
				t.Errorf("action %q holds a line break", got.Action)
			}
		})
	}
}

func TestMappingAttributes(t *testing.T) {
	m := Mapping{Tenant: tenant, SenderAttr: "sasl_username", CampaignAttr: "x_campaign"}
	req := rcpt("bounce+123@mailer.io", "bob@example.com")
	req["sasl_username"] = "ann@acme.io"
	req["x_campaign"] = " q4 "
	req["variant"] = "b"
	got := m.CheckRequest(req)
	if got.GetSender() != "ann@acme.io" || got.GetCampaign() != "q4" || got.GetVariant() != "b" || got.GetRecipient() != "bob@example.com" {
		t.Errorf("check request %v", got)
	}
}

func TestReplyForSanitizes(t *testing.T) {
	r := ReplyFor(&sgv1.CheckResponse{Verdict: sgv1.Verdict_VERDICT_DENY, Reasons: []*sgv1.Reason{{
		Action: sgv1.Action_ACTION_SUPPRESS, Detail: "evil\r\naction=DUNNO\n\n" + strings.Repeat("é", 300),
	}}})
	if strings.ContainsAny(r.Action, "\r\n") || len(r.Action) > len(ActionReject)+7+maxText {
		t.Errorf("unsafe action %q", r.Action)
	}
	if r.Verb() != ActionReject {
		t.Errorf("verb %q", r.Verb())
	}
}

// startServer serves on a free loopback port until the test ends.
func startServer(t testing.TB, cfg Config, checker Checker) (*Server, string) {
	t.Helper()
	if cfg.Tenant == "" {
		cfg.Tenant = tenant
	}
	s, err := New(cfg, checker)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// client speaks the protocol like Postfix's smtpd: many requests on one
// connection.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{c: c, r: bufio.NewReader(c)}
}

func (c *client) ask(req Request) (string, error) {
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := WriteRequest(c.c, req); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	empty, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if empty != "\n" {
		return "", fmt.Errorf("reply not ended by an empty line: %q", empty)
	}
	action, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "action=")
	if !ok {
		return "", fmt.Errorf("reply %q", line)
	}
	return action, nil
}

func TestServerConnectionReuseAndMetrics(t *testing.T) {
	_, checker := enforcement(t)
	reg := prometheus.NewRegistry()
	s, addr := startServer(t, Config{Registerer: reg}, checker)
	c := dial(t, addr)
	for i, tc := range []struct {
		req  Request
		verb string
	}{
		{rcpt("ok@acme.io", "bob@example.com"), ActionDunno},
		{rcpt("paused@acme.io", "bob@example.com"), ActionDeferIfPermit},
		{rcpt("ok@acme.io", "gone@example.com"), ActionReject},
		{rcpt("ok@acme.io", "carol@example.com"), ActionDunno},
	} {
		got, err := c.ask(tc.req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if v, _, _ := strings.Cut(got, " "); v != tc.verb {
			t.Errorf("request %d: %q, want %s", i, got, tc.verb)
		}
	}
	if got := testutil.ToFloat64(s.requests.WithLabelValues(ActionDunno)); got != 2 {
		t.Errorf("DUNNO count %v, want 2", got)
	}
	if got := testutil.ToFloat64(s.conns); got != 1 {
		t.Errorf("open connections %v, want 1", got)
	}
}

func TestServerClosesOnProtocolErrors(t *testing.T) {
	_, checker := enforcement(t)
	for _, tc := range []struct {
		name, send, kind string
	}{
		{"malformed", "no equals sign\n\n", "malformed"},
		{"line too long", "a=" + strings.Repeat("x", 200) + "\n", "line_too_long"},
		{"too many attributes", strings.Repeat("a=1\n", 10) + "\n", "too_many_attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := startServer(t, Config{Limits: Limits{MaxLine: 100, MaxAttrs: 5}}, checker)
			c := dial(t, addr)
			_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.c.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			if b, err := c.r.ReadByte(); err == nil {
				t.Fatalf("got %q, want the connection closed", b)
			}
			waitFor(t, func() bool { return testutil.ToFloat64(s.errs.WithLabelValues(tc.kind)) == 1 })
		})
	}
}

func TestServerRequestTimeout(t *testing.T) {
	_, checker := enforcement(t)
	s, addr := startServer(t, Config{RequestTimeout: 50 * time.Millisecond}, checker)
	c := dial(t, addr)
	if _, err := c.c.Write([]byte("request=smtpd_access_policy\n")); err != nil { // never finished
		t.Fatal(err)
	}
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("connection still open after the request timeout")
	}
	waitFor(t, func() bool { return testutil.ToFloat64(s.errs.WithLabelValues("request_timeout")) == 1 })
}

func TestServerMaxConns(t *testing.T) {
	_, checker := enforcement(t)
	_, addr := startServer(t, Config{MaxConns: 1}, checker)
	first := dial(t, addr)
	if _, err := first.ask(rcpt("ok@acme.io", "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	second := dial(t, addr)
	_ = second.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.r.ReadByte(); err == nil {
		t.Fatal("second connection over MaxConns was served")
	}
}

// TestShutdownLetsBusyConnectionsAnswer: a request being checked when
// Shutdown starts still gets its reply; idle connections close at once.
func TestShutdownLetsBusyConnectionsAnswer(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	checker := CheckerFunc(func(context.Context, string, *sgv1.CheckRequest) *sgv1.CheckResponse {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return &sgv1.CheckResponse{Verdict: sgv1.Verdict_VERDICT_ALLOW}
	})
	s, err := New(Config{Mapping: Mapping{Tenant: tenant}}, checker)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	busy := dial(t, ln.Addr().String())
	idle := dial(t, ln.Addr().String())
	waitFor(t, func() bool { return testutil.ToFloat64(s.conns) == 2 })
	var wg sync.WaitGroup
	var reply string
	var askErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		reply, askErr = busy.ask(rcpt("a@acme.io", "b@example.com"))
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("check never started")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if askErr != nil || reply != ActionDunno {
		t.Fatalf("busy connection: %q, %v; want DUNNO", reply, askErr)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_ = idle.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.r.ReadByte(); err == nil {
		t.Fatal("idle connection still open after shutdown")
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("serve: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkServer is requests/s over loopback with 8 connections, each
// used for many requests (as Postfix's smtpd processes do), backed by a real
// enforcement state.
func BenchmarkServer(b *testing.B) {
	_, checker := enforcement(b)
	_, addr := startServer(b, Config{}, checker)
	reqs := []Request{
		rcpt("ok@acme.io", "bob@example.com"),
		rcpt("paused@acme.io", "bob@example.com"),
		rcpt("ok@acme.io", "gone@example.com"),
	}
	b.SetParallelism(4) // × GOMAXPROCS connections
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := dial(b, addr)
		i := 0
		for pb.Next() {
			if _, err := c.ask(reqs[i%len(reqs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
