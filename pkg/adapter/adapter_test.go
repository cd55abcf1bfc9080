package adapter

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*reader).run"))
}

var idSeq int

func cmd(tenant string, level sgv1.ScopeLevel, target string, action sgv1.Action) *sgv1.ControlCommand {
	idSeq++
	return &sgv1.ControlCommand{
		CommandId: "test-" + itoa(idSeq),
		Scope:     &sgv1.Scope{Tenant: tenant, Level: level, Target: target},
		Action:    action,
		Rule:      "manual",
		Reason:    "test",
		At:        timestamppb.Now(),
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

const (
	sender    = sgv1.ScopeLevel_SCOPE_LEVEL_SENDER
	recipient = sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT
	pause     = sgv1.Action_ACTION_PAUSE
	resume    = sgv1.Action_ACTION_RESUME
	suppress  = sgv1.Action_ACTION_SUPPRESS
)

// publisher is a real actuator stage: Apply publishes each command on the
// control topic and the scope's current state on the state topic, exactly as
// the actuator service does.
func publisher(t *testing.T, brokers []string) *actuator.Stage {
	t.Helper()
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, brokers, 1, topics.Specs(4)...); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, BatchTimeout: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	st, err := actuator.New(enforce.New(enforce.DefaultConfig()), prod, auth.NewKeys(), zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func verdict(a *Adapter, tenant, from, to string) sgv1.Verdict {
	return a.CheckTenant(tenant, &sgv1.CheckRequest{Sender: from, Recipient: to, DryRun: true}).GetVerdict()
}

// waitVerdict polls until the verdict is want, failing after within; it
// returns how long it took.
func waitVerdict(t *testing.T, a *Adapter, tenant, from, to string, want sgv1.Verdict, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := verdict(a, tenant, from, to)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s→%s: verdict %v after %v, want %v", from, to, got, within, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestAdapterFollowsStateAndControl(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	act := publisher(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// History before the adapter starts: it must come from the state topic.
	if err := act.Apply(ctx,
		cmd("acme", sender, "paused@acme.io", pause),
		cmd("acme", recipient, "gone@example.com", suppress),
		cmd("acme", sender, "back@acme.io", pause),
		cmd("acme", sender, "back@acme.io", resume),
		cmd("other", sender, "ann@other.io", pause),
	); err != nil {
		t.Fatal(err)
	}

	a, err := New(Config{Brokers: brokers, Tenant: "acme", MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Check(&sgv1.CheckRequest{Sender: "x@acme.io", Recipient: "y@example.com"}); got.GetVerdict() != sgv1.Verdict_VERDICT_DEFER ||
		got.GetReasons()[0].GetRule() != RuleNotReady {
		t.Fatalf("before ready: %v, want DEFER by %q", got, RuleNotReady)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()

	for _, tc := range []struct {
		name, tenant, from, to string
		want                   sgv1.Verdict
	}{
		{"paused sender", "acme", "paused@acme.io", "bob@example.com", sgv1.Verdict_VERDICT_DENY},
		{"suppressed recipient", "acme", "ok@acme.io", "gone@example.com", sgv1.Verdict_VERDICT_DENY},
		{"paused then resumed", "acme", "back@acme.io", "bob@example.com", sgv1.Verdict_VERDICT_ALLOW},
		{"clean", "acme", "ok@acme.io", "bob@example.com", sgv1.Verdict_VERDICT_ALLOW},
		{"other tenant's pause does not leak", "acme", "ann@other.io", "bob@example.com", sgv1.Verdict_VERDICT_ALLOW},
		{"other tenant is not followed", "other", "ann@other.io", "bob@example.com", sgv1.Verdict_VERDICT_DENY},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdict(a, tc.tenant, tc.from, tc.to); got != tc.want {
				t.Errorf("verdict %v, want %v", got, tc.want)
			}
		})
	}
	if r := a.CheckTenant("other", &sgv1.CheckRequest{Sender: "s@a.io", Recipient: "r@b.io"}); r.GetReasons()[0].GetRule() != RuleTenant {
		t.Errorf("other tenant: %v, want rule %q", r, RuleTenant)
	}

	// New commands arrive through the control topic within a second.
	if err := act.Apply(ctx, cmd("acme", sender, "new@acme.io", pause)); err != nil {
		t.Fatal(err)
	}
	d := waitVerdict(t, a, "acme", "new@acme.io", "bob@example.com", sgv1.Verdict_VERDICT_DENY, time.Second)
	t.Logf("pause visible after %v", d)
	if err := act.Apply(ctx, cmd("acme", sender, "new@acme.io", resume)); err != nil {
		t.Fatal(err)
	}
	d = waitVerdict(t, a, "acme", "new@acme.io", "bob@example.com", sgv1.Verdict_VERDICT_ALLOW, time.Second)
	t.Logf("resume visible after %v", d)

	// Another tenant's new pause of the same address leaves acme alone.
	if err := act.Apply(ctx, cmd("other", sender, "ok@acme.io", pause)); err != nil {
		t.Fatal(err)
	}
	all, err := New(Config{Brokers: brokers, MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := all.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	waitVerdict(t, all, "other", "ok@acme.io", "bob@example.com", sgv1.Verdict_VERDICT_DENY, time.Second)
	if got := verdict(all, "other", "ann@other.io", "bob@example.com"); got != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("all-tenant adapter: other's restored pause: %v, want DENY", got)
	}
	if got := verdict(a, "acme", "ok@acme.io", "bob@example.com"); got != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("acme after other's pause of the same address: %v, want ALLOW", got)
	}
}

func TestAdapterStartFailsWithoutTopics(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	a, err := New(Config{Brokers: []string{addr}, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err == nil {
		t.Fatal("Start without a control topic succeeded")
	}
	if a.Ready() {
		t.Fatal("ready without state")
	}
	_ = a.Close()
}

func TestNewRequiresBrokers(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without brokers succeeded")
	}
}

// TestSuperseded is the catch-up rule: a control command read again after
// the state load must not override the newer command restored for its key.
func TestSuperseded(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	mk := func(id string, at time.Time) *sgv1.ControlCommand {
		return &sgv1.ControlCommand{CommandId: id, IssuedAt: timestamppb.New(at)}
	}
	a := &Adapter{restored: map[string]restoredRecord{"acme|sender|s@a.io": {id: "t2", issued: t0}}}
	for _, tc := range []struct {
		name string
		key  string
		c    *sgv1.ControlCommand
		want bool
	}{
		{"older command of a restored key", "acme|sender|s@a.io", mk("t1", t0.Add(-time.Second)), true},
		{"the restored command itself", "acme|sender|s@a.io", mk("t2", t0), true},
		{"newer command", "acme|sender|s@a.io", mk("t3", t0.Add(time.Second)), false},
		{"after a newer command, order is the topic's", "acme|sender|s@a.io", mk("t0", t0.Add(-time.Hour)), false},
		{"key without restored state", "acme|sender|x@a.io", mk("t9", t0.Add(-time.Hour)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.superseded(tc.key, tc.c); got != tc.want {
				t.Errorf("superseded = %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkCheck is the in-process Check latency of a ready adapter over a
// state with 10k suppressions and 1k paused senders.
func BenchmarkCheck(b *testing.B) {
	a, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Tenant: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10_000 {
		a.state.Apply(cmd("acme", recipient, "r"+itoa(i)+"@example.com", suppress))
	}
	for i := range 1_000 {
		a.state.Apply(cmd("acme", sender, "s"+itoa(i)+"@acme.io", pause))
	}
	a.ready.Store(true)
	reqs := []*sgv1.CheckRequest{
		{Sender: "ok@acme.io", Recipient: "bob@example.com", DryRun: true},   // ALLOW
		{Sender: "s7@acme.io", Recipient: "bob@example.com", DryRun: true},   // DENY: paused
		{Sender: "ok@acme.io", Recipient: "r42@example.com", DryRun: true},   // DENY: suppressed
		{Sender: "ok@acme.io", Recipient: "carol@example.org", DryRun: true}, // ALLOW
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			a.Check(reqs[i%len(reqs)])
			i++
		}
	})
}
