package app

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/adapter"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/postfix"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestMain checks every test of the package for leaked goroutines (kafka-go
// readers stop asynchronously after Close).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*reader).run"))
}

// TestAdaptersFollowTheActuator runs the actuator component with the Postfix
// policy server and the Envoy rate limit service against a real broker, and
// an embedded adapter beside it: one manual pause reaches all three.
func TestAdaptersFollowTheActuator(t *testing.T) {
	_, broker := kafkatest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := Common{Kafka: []string{broker}, ClickHouse: "off", Partitions: 2, Replication: 1,
		APIKeys: "acme:key-acme", Grace: 5 * time.Second}
	env, err := Bootstrap(ctx, c, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	stage, err := AddActuator(ctx, env, enforce.DefaultConfig())
	if err != nil {
		env.Close()
		t.Fatal(err)
	}
	postfixAddr := kafkatest.FreeAddr(t)
	grpcAddr := kafkatest.FreeAddr(t)
	cfg := AdapterConfig{PostfixAddr: postfixAddr, PostfixTenant: "acme", EnvoyRLS: true, EnvoyRLSDomain: "sendguard"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := AddAdapters(env, cfg, StateChecker{State: stage.State()}); err != nil {
		env.Close()
		t.Fatal(err)
	}
	stop := make(chan struct{})
	env.Group.Add(func() error { <-stop; return nil }, func(error) {})
	if err := env.Serve(kafkatest.FreeAddr(t), grpcAddr); err != nil {
		env.Close()
		t.Fatal(err)
	}
	env.MarkReady()
	ran := make(chan error, 1)
	go func() { ran <- env.Run() }()
	defer func() {
		close(stop)
		if err := <-ran; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	emb, err := adapter.New(adapter.Config{Brokers: []string{broker}, Tenant: "acme", MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := emb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer emb.Close()

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rls := rlsv3.NewRateLimitServiceClient(conn)
	rlsCode := func() rlsv3.RateLimitResponse_Code {
		t.Helper()
		rctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer key-acme")
		resp, err := rls.ShouldRateLimit(rctx, &rlsv3.RateLimitRequest{Domain: "sendguard",
			Descriptors: []*ratelimitv3.RateLimitDescriptor{{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{
				{Key: "sender", Value: "ann@acme.io"}, {Key: "recipient", Value: "bob@example.com"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetOverallCode()
	}
	policy := func() string {
		t.Helper()
		nc, err := net.DialTimeout("tcp", postfixAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := postfix.WriteRequest(nc, postfix.Request{"request": "smtpd_access_policy", "protocol_state": "RCPT",
			"sender": "ann@acme.io", "recipient": "bob@example.com"}); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(strings.TrimSpace(line), "action=")
	}
	embedded := func() sgv1.Verdict {
		return emb.Check(&sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: "bob@example.com", DryRun: true}).GetVerdict()
	}

	if got := rlsCode(); got != rlsv3.RateLimitResponse_OK {
		t.Errorf("RLS before the pause: %v", got)
	}
	if got := policy(); got != postfix.ActionDunno {
		t.Errorf("postfix before the pause: %q", got)
	}
	if got := embedded(); got != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("adapter before the pause: %v", got)
	}

	if err := stage.Apply(ctx, &sgv1.ControlCommand{CommandId: "manual-1", Action: sgv1.Action_ACTION_PAUSE,
		Scope: &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, Target: "ann@acme.io"},
		Rule:  "manual", Reason: "test", At: timestamppb.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := rlsCode(); got != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Errorf("RLS after the pause: %v", got)
	}
	if got := policy(); !strings.HasPrefix(got, postfix.ActionDeferIfPermit+" ") {
		t.Errorf("postfix after the pause: %q", got)
	}
	deadline := time.Now().Add(time.Second)
	for embedded() != sgv1.Verdict_VERDICT_DENY {
		if time.Now().After(deadline) {
			t.Fatal("embedded adapter did not see the pause within 1s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAdapterConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    AdapterConfig
		ok   bool
	}{
		{"off", AdapterConfig{}, true},
		{"postfix with tenant", AdapterConfig{PostfixAddr: ":10040", PostfixTenant: "acme"}, true},
		{"postfix without tenant", AdapterConfig{PostfixAddr: ":10040"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
