package app

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestActuatorInstancesShareCommands runs two actuator instances against
// one broker: a command applied by one is answered by the other within a
// second, and a third instance started later loads it from the state topic.
func TestActuatorInstancesShareCommands(t *testing.T) {
	_, broker := kafkatest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := func() (*Env, *actuator.Stage, func()) {
		t.Helper()
		c := Common{Kafka: []string{broker}, ClickHouse: "off", Partitions: 2, Replication: 1,
			APIKeys: "acme:key-acme", Grace: 5 * time.Second}
		env, err := Bootstrap(ctx, c, zap.NewNop(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		s, err := AddActuator(ctx, env, enforce.DefaultConfig())
		if err != nil {
			env.Close()
			t.Fatal(err)
		}
		return env, s, env.Close
	}
	_, a, closeA := start()
	defer closeA()
	_, b, closeB := start()
	defer closeB()

	check := func(s *actuator.Stage) sgv1.Verdict {
		return s.State().Check("acme", &sgv1.CheckRequest{Sender: "ann@spiky.io", Recipient: "x@example.org", DryRun: true}, time.Now()).GetVerdict()
	}
	if v := check(b); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Fatalf("before: %v", v)
	}
	pause := &sgv1.ControlCommand{
		CommandId: "manual:multi-1:pause", Action: sgv1.Action_ACTION_PAUSE, Rule: "manual", Actor: "ann", Reason: "test",
		Scope: &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "spiky.io"},
		At:    timestamppb.Now(), Until: timestamppb.New(time.Now().Add(time.Hour)),
	}
	if err := a.Apply(ctx, pause); err != nil {
		t.Fatal(err)
	}
	if v := check(a); v != sgv1.Verdict_VERDICT_DENY {
		t.Fatalf("instance that applied it: %v", v)
	}
	deadline := time.Now().Add(time.Second)
	for check(b) != sgv1.Verdict_VERDICT_DENY {
		if time.Now().After(deadline) {
			t.Fatal("the other instance did not see the pause within 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, c, closeC := start()
	defer closeC()
	if v := check(c); v != sgv1.Verdict_VERDICT_DENY {
		t.Fatalf("a new instance: %v, want DENY from the state topic", v)
	}
}
