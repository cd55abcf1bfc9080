package enforce

import (
	"sync"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// t0 is a Monday 10:00 UTC.
var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// newTestState returns a state with the default policy but no frequency cap
// (tests of other policies send many messages to one recipient), on a fake
// clock at t0.
func newTestState(mod func(*Config)) (*State, *fakeClock) {
	clk := &fakeClock{t: t0}
	cfg := DefaultConfig()
	cfg.Clock = clk.Now
	cfg.FrequencyCap = 0
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg), clk
}

var seq int

func command(tn string, level sgv1.ScopeLevel, target string, action sgv1.Action, rule string, until time.Time) *sgv1.ControlCommand {
	seq++
	c := &sgv1.ControlCommand{
		CommandId: "c-" + itoa(seq),
		Scope:     &sgv1.Scope{Tenant: tn, Level: level, Target: target},
		Action:    action,
		Rule:      rule,
		At:        timestamppb.New(t0),
	}
	if !until.IsZero() {
		c.Until = timestamppb.New(until)
	}
	return c
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func mustApply(t *testing.T, s *State, c *sgv1.ControlCommand) {
	t.Helper()
	if !s.Apply(c) {
		t.Fatalf("Apply(%v) = false, want true", c)
	}
}

func req(sender, recipient string) *sgv1.CheckRequest {
	return &sgv1.CheckRequest{Sender: sender, Recipient: recipient, Campaign: "c1", Variant: "v1"}
}

func wantVerdict(t *testing.T, got *sgv1.CheckResponse, want sgv1.Verdict) {
	t.Helper()
	if got.GetVerdict() != want {
		t.Fatalf("verdict = %v, want %v (reasons %v)", got.GetVerdict(), want, got.GetReasons())
	}
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
