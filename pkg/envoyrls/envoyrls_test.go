package envoyrls

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/enforce"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type stateChecker struct{ s *enforce.State }

func (c stateChecker) Check(_ context.Context, tenant string, req *sgv1.CheckRequest) *sgv1.CheckResponse {
	return c.s.Check(tenant, req, time.Now())
}

// serve starts the service on a real gRPC server on a free loopback port
// over an enforcement state with a paused sender, a suppressed recipient
// and a sender capped at 1 message a day, all of tenant acme; keys "key-acme"
// and "key-beta" belong to tenants acme and beta.
func serve(t *testing.T) rlsv3.RateLimitServiceClient {
	t.Helper()
	cfg := enforce.DefaultConfig()
	cfg.FrequencyCap = 0
	st := enforce.New(cfg)
	now := time.Now()
	for i, c := range []*sgv1.ControlCommand{
		{Scope: &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, Target: "paused@acme.io"},
			Action: sgv1.Action_ACTION_PAUSE, Rule: "manual", Reason: "investigating"},
		{Scope: &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, Target: "gone@example.com"},
			Action: sgv1.Action_ACTION_SUPPRESS, Rule: "suppression", Reason: "unsubscribed"},
		{Scope: &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, Target: "slow@acme.io"},
			Action: sgv1.Action_ACTION_THROTTLE, Rule: "manual", DailyCap: 1},
	} {
		c.CommandId = fmt.Sprintf("c%d", i)
		c.At = timestamppb.New(now)
		st.Apply(c)
	}
	keys := auth.NewKeys()
	for tn, k := range map[string]string{"acme": "key-acme", "beta": "key-beta"} {
		if err := keys.AddKey(tn, k); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := New(Config{Keys: keys}, stateChecker{st})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
	})
	return rlsv3.NewRateLimitServiceClient(conn)
}

func desc(kv ...string) *ratelimitv3.RateLimitDescriptor {
	d := &ratelimitv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func withKey(key string) context.Context {
	ctx := context.Background()
	if key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

func header(r *rlsv3.RateLimitResponse, name string) string {
	for _, h := range r.GetResponseHeadersToAdd() {
		if h.GetKey() == name {
			return h.GetValue()
		}
	}
	return ""
}

func TestShouldRateLimit(t *testing.T) {
	client := serve(t)
	ok, over := rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OVER_LIMIT
	type want struct {
		overall  rlsv3.RateLimitResponse_Code
		statuses []rlsv3.RateLimitResponse_Code
		verdict  string // x-sendguard-verdict
		retry    bool   // retry-after header and duration_until_reset
	}
	for _, tc := range []struct {
		name string
		key  string
		req  *rlsv3.RateLimitRequest
		want want
	}{
		{"clean message is OK", "key-acme", &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			desc("sender", "ok@acme.io", "recipient", "bob@example.com", "campaign", "q4", "variant", "b", "region", "eu")}},
			want{ok, []rlsv3.RateLimitResponse_Code{ok}, "", false}},
		{"paused sender is over the limit (DENY)", "key-acme", &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			desc("sender", "paused@acme.io", "recipient", "bob@example.com")}},
			want{over, []rlsv3.RateLimitResponse_Code{over}, "DENY", false}},
		{"per-descriptor statuses", "key-acme", &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			desc("sender", "ok@acme.io", "recipient", "bob@example.com"),
			desc("sender", "ok@acme.io", "recipient", "gone@example.com")}},
			want{over, []rlsv3.RateLimitResponse_Code{ok, over}, "DENY", false}},
		{"first message under a daily cap", "key-acme", &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			desc("sender", "slow@acme.io", "recipient", "bob@example.com")}},
			want{ok, []rlsv3.RateLimitResponse_Code{ok}, "", false}},
		{"cap reached: DEFER with retry", "key-acme", &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			desc("sender", "slow@acme.io", "recipient", "carol@example.com")}},
			want{over, []rlsv3.RateLimitResponse_Code{over}, "DEFER", true}},
		{"another tenant's key sees its own state", "key-beta", &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			desc("sender", "paused@acme.io", "recipient", "gone@example.com")}},
			want{ok, []rlsv3.RateLimitResponse_Code{ok}, "", false}},
		{"hits_addend without a cap", "key-beta", &rlsv3.RateLimitRequest{Domain: "sendguard", HitsAddend: 100, Descriptors: []*ratelimitv3.RateLimitDescriptor{
			desc("sender", "new@beta.io", "recipient", "bob@example.com")}},
			want{ok, []rlsv3.RateLimitResponse_Code{ok}, "", false}},
		{"unknown domain is OK without a check", "key-acme", &rlsv3.RateLimitRequest{Domain: "edge-proxy", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			desc("sender", "paused@acme.io", "recipient", "bob@example.com")}},
			want{ok, nil, "", false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.ShouldRateLimit(withKey(tc.key), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetOverallCode() != tc.want.overall {
				t.Errorf("overall %v, want %v", resp.GetOverallCode(), tc.want.overall)
			}
			if len(resp.GetStatuses()) != len(tc.want.statuses) {
				t.Fatalf("statuses %v, want %v", resp.GetStatuses(), tc.want.statuses)
			}
			for i, st := range resp.GetStatuses() {
				if st.GetCode() != tc.want.statuses[i] {
					t.Errorf("status %d: %v, want %v", i, st.GetCode(), tc.want.statuses[i])
				}
			}
			if got := header(resp, HeaderVerdict); got != tc.want.verdict {
				t.Errorf("%s = %q, want %q", HeaderVerdict, got, tc.want.verdict)
			}
			if tc.want.verdict != "" {
				if header(resp, HeaderReason) == "" {
					t.Error("no reason header")
				}
				var body sgv1.CheckBatchResponse
				if err := protojson.Unmarshal(resp.GetRawBody(), &body); err != nil || len(body.GetResponses()) != len(tc.want.statuses) {
					t.Errorf("raw body %q: %v", resp.GetRawBody(), err)
				}
			}
			gotRetry := header(resp, HeaderRetryAfter) != ""
			if gotRetry != tc.want.retry {
				t.Errorf("retry-after present %v, want %v", gotRetry, tc.want.retry)
			}
			if tc.want.retry && resp.GetStatuses()[0].GetDurationUntilReset().AsDuration() <= 0 {
				t.Error("no duration_until_reset")
			}
		})
	}
}

func TestShouldRateLimitHitsAddend(t *testing.T) {
	client := serve(t)
	// slow@acme.io may send 1 a day: a descriptor asking for 2 is over.
	resp, err := client.ShouldRateLimit(withKey("key-acme"), &rlsv3.RateLimitRequest{Domain: "sendguard",
		Descriptors: []*ratelimitv3.RateLimitDescriptor{{
			Entries:    desc("sender", "slow@acme.io", "recipient", "bob@example.com").Entries,
			HitsAddend: wrapperspb.UInt64(2),
		}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Errorf("2 hits against a cap of 1: %v", resp.GetOverallCode())
	}
}

func TestShouldRateLimitErrors(t *testing.T) {
	client := serve(t)
	good := []*ratelimitv3.RateLimitDescriptor{desc("sender", "ok@acme.io", "recipient", "bob@example.com")}
	for _, tc := range []struct {
		name string
		key  string
		req  *rlsv3.RateLimitRequest
		code codes.Code
	}{
		{"no key", "", &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: good}, codes.Unauthenticated},
		{"unknown key", "nope", &rlsv3.RateLimitRequest{Domain: "sendguard", Descriptors: good}, codes.Unauthenticated},
		{"no descriptors", "key-acme", &rlsv3.RateLimitRequest{Domain: "sendguard"}, codes.InvalidArgument},
		{"descriptor without sender or recipient", "key-acme", &rlsv3.RateLimitRequest{Domain: "sendguard",
			Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("generic_key", "x")}}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.ShouldRateLimit(withKey(tc.key), tc.req)
			if status.Code(err) != tc.code {
				t.Errorf("error %v, want %v", err, tc.code)
			}
		})
	}
}
