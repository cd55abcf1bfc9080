package ingest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestLimiter(t *testing.T) {
	t0 := testNow
	type step struct {
		tenant string
		n      int
		at     time.Duration // since t0
		wait   time.Duration // 0 = taken
		refund bool          // give the n tokens back instead of taking
	}
	for _, tc := range []struct {
		name        string
		rate, burst int
		steps       []step
	}{
		{"burst then refill", 10, 20, []step{
			{"a", 20, 0, 0, false},
			{"a", 1, 0, 100 * time.Millisecond, false},
			{"a", 5, 500 * time.Millisecond, 0, false},
			{"a", 1, 500 * time.Millisecond, 100 * time.Millisecond, false},
		}},
		{"tenants are independent", 10, 10, []step{
			{"a", 10, 0, 0, false},
			{"b", 10, 0, 0, false},
			{"a", 10, 0, time.Second, false},
		}},
		{"refill stops at the burst", 10, 10, []step{
			{"a", 10, 0, 0, false},
			{"a", 10, time.Hour, 0, false},
			{"a", 1, time.Hour, 100 * time.Millisecond, false},
		}},
		{"a request above the burst costs the burst", 10, 10, []step{
			{"a", 500, 0, 0, false},
			{"a", 500, 500 * time.Millisecond, 500 * time.Millisecond, false},
			{"a", 500, time.Second, 0, false},
		}},
		{"refund restores tokens", 10, 10, []step{
			{"a", 10, 0, 0, false},
			{"a", 4, 0, 0, true},
			{"a", 4, 0, 0, false},
			{"a", 1, 0, 100 * time.Millisecond, false},
		}},
		{"a refused take takes nothing", 10, 10, []step{
			{"a", 8, 0, 0, false},
			{"a", 5, 0, 300 * time.Millisecond, false},
			{"a", 2, 0, 0, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(float64(tc.rate), tc.burst)
			for i, s := range tc.steps {
				at := t0.Add(s.at)
				if s.refund {
					l.refund(s.tenant, s.n, at)
					continue
				}
				if got := l.take(s.tenant, s.n, at); got != s.wait {
					t.Fatalf("step %d: take(%s, %d) wait %v, want %v", i, s.tenant, s.n, got, s.wait)
				}
			}
		})
	}
	if newLimiter(-1, 0) != nil || newLimiter(0, 10) != nil {
		t.Error("a non-positive rate must mean no limiter")
	}
	var none *limiter
	if none.take("a", 1e9, t0) != 0 {
		t.Error("nil limiter limits")
	}
}

func TestTenantRateLimit(t *testing.T) {
	pub := &fakePublisher{}
	clk := newClock(testNow)
	s, h := newServer(t, pub, Config{TenantRate: 10, TenantBurst: 20, Now: clk.Now}, nil)
	ndjson := func(n int) []byte {
		var b strings.Builder
		for i := range n {
			b.WriteString(strings.Replace(okEvent, `"e1"`, `"rl-`+string(rune('a'+i))+`"`, 1) + "\n")
		}
		return []byte(b.String())
	}
	post := func(key string, n int) *http.Response {
		rec := request{path: "/v1/events", contentType: "application/x-ndjson", body: ndjson(n), bearer: key}.do(h)
		return rec.Result()
	}
	if r := post("k-acme", 15); r.StatusCode != http.StatusAccepted {
		t.Fatalf("within burst: %d", r.StatusCode)
	}
	r := post("k-acme", 10) // 5 tokens left, 10 needed: 0.5 s at 10/s
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if body := drain(r.Body); !strings.Contains(body, "rate limit") {
		t.Errorf("body %s", body)
	}
	if got := testutil.ToFloat64(s.limited.WithLabelValues("acme")); got != 10 {
		t.Errorf("limited metric = %v, want 10", got)
	}
	if r := post("k-globex", 20); r.StatusCode != http.StatusAccepted {
		t.Fatalf("another tenant is not limited by acme's traffic: %d", r.StatusCode)
	}
	clk.Add(500 * time.Millisecond)
	if r := post("k-acme", 10); r.StatusCode != http.StatusAccepted {
		t.Fatalf("after Retry-After: %d", r.StatusCode)
	}
	// Events the broker refused do not use up the tenant's budget.
	clk.Add(2 * time.Second) // bucket full again: 20
	pub.mu.Lock()
	pub.fail = errors.New("down")
	pub.mu.Unlock()
	for range 3 {
		if r := post("k-acme", 15); r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("broker down: %d", r.StatusCode)
		}
	}
	pub.mu.Lock()
	pub.fail = nil
	pub.mu.Unlock()
	if r := post("k-acme", 20); r.StatusCode != http.StatusAccepted {
		t.Fatalf("after broker refusals: %d", r.StatusCode)
	}

	// gRPC items over the limit are UNAVAILABLE with the wait in the error.
	g := &grpcServer{s: s}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer k-acme"))
	ev := &sgv1.Event{EventId: "g1", Type: sgv1.EventType_EVENT_TYPE_SENT, OccurredAt: timestamppb.New(testNow), Sender: "a@acme.io", Recipient: "b@example.com"}
	resp, err := g.Publish(ctx, &sgv1.PublishRequest{Items: []*sgv1.PublishItem{{Item: &sgv1.PublishItem_Event{Event: ev}}}})
	if err != nil {
		t.Fatal(err)
	}
	if res := resp.GetResults()[0]; res.GetStatus() != sgv1.ItemStatus_ITEM_STATUS_UNAVAILABLE || !strings.Contains(res.GetError(), "rate limit") {
		t.Fatalf("grpc over the limit: %v", res)
	}
	clk.Add(time.Second)
	resp, _ = g.Publish(ctx, &sgv1.PublishRequest{Items: []*sgv1.PublishItem{{Item: &sgv1.PublishItem_Event{Event: ev}}}})
	if res := resp.GetResults()[0]; res.GetStatus() != sgv1.ItemStatus_ITEM_STATUS_ACCEPTED {
		t.Fatalf("grpc after refill: %v", res)
	}
}
