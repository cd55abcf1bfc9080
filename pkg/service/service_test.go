package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFlagsPrecedence(t *testing.T) {
	env := map[string]string{"SG_ADDR": ":7000", "SG_N": "3", "SG_D": "2s", "SG_B": "true", "SG_L": "a,b"}
	for _, tc := range []struct {
		name string
		args []string
		addr string
		n    int
	}{
		{"env beats default", nil, ":7000", 3},
		{"flag beats env", []string{"--addr", ":9000", "--n", "5"}, ":9000", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				addr string
				n    int
				d    time.Duration
				b    bool
				l    []string
			)
			f := NewFlags("x", func(k string) string { return env[k] })
			f.String(&addr, "addr", "SG_ADDR", ":1", "")
			f.Int(&n, "n", "SG_N", 1, "")
			f.Duration(&d, "d", "SG_D", time.Second, "")
			f.Bool(&b, "b", "SG_B", false, "")
			f.List(&l, "l", "SG_L", "", "")
			if err := f.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if addr != tc.addr || n != tc.n || d != 2*time.Second || !b || strings.Join(l, "|") != "a|b" {
				t.Fatalf("got addr=%q n=%d d=%s b=%v l=%v", addr, n, d, b, l)
			}
		})
	}
}

func TestFlagsRejectBadEnvironment(t *testing.T) {
	var n int
	var d time.Duration
	f := NewFlags("x", func(k string) string { return map[string]string{"SG_N": "three", "SG_D": "soon"}[k] })
	f.Int(&n, "n", "SG_N", 1, "")
	f.Duration(&d, "d", "SG_D", time.Second, "")
	err := f.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "SG_N") || !strings.Contains(err.Error(), "SG_D") {
		t.Fatalf("Parse = %v, want both bad variables named", err)
	}
	f = NewFlags("x", nil)
	if err := f.Parse([]string{"stray"}); err == nil {
		t.Fatal("stray argument accepted")
	}
}

func TestAdminEndpoints(t *testing.T) {
	var depErr error
	p := NewProber(Check{Name: "kafka", Fn: func(context.Context) error { return depErr }})
	mux := http.NewServeMux()
	RegisterAdmin(mux, p, NewRegistry())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("healthz before start = %d", code)
	}
	p.Healthy()
	if code, _ := get("/livez"); code != http.StatusOK {
		t.Errorf("livez = %d", code)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before Ready = %d", code)
	}
	p.Ready()
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("readyz = %d", code)
	}
	depErr = errors.New("broker down")
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "kafka: broker down") {
		t.Errorf("readyz with failing check = %d %s", code, body)
	}
	depErr = nil
	p.NotReady()
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining = %d", code)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics = %d", code)
	}
}

func TestGRPCServerHealthReflectionAndShutdown(t *testing.T) {
	s := NewGRPCServer()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGroup(zaptest.NewLogger(t))
	g.Grace = 2 * time.Second
	g.AddGRPC(s, ln)
	stop := make(chan struct{})
	g.Add(func() error { <-stop; return nil }, func(error) {})
	done := make(chan error, 1)
	go func() { done <- g.Run() }()

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	health := healthpb.NewHealthClient(conn)
	resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before ready = %v, %v", resp.GetStatus(), err)
	}
	s.SetServing(true)
	if resp, err = health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health when ready = %v, %v", resp.GetStatus(), err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := stream.Recv()
	if err != nil || !strings.Contains(rr.String(), "grpc.health.v1.Health") {
		t.Fatalf("reflection list = %v, %v", rr, err)
	}
	_ = stream.CloseSend()
	close(stop)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("group did not stop")
	}
}

func TestNewLogger(t *testing.T) {
	for _, f := range []string{"json", "console"} {
		if _, err := NewLogger(f, "info"); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := NewLogger("xml", "info"); err == nil {
		t.Error("xml accepted")
	}
	if _, err := NewLogger("json", "loud"); err == nil {
		t.Error("level loud accepted")
	}
}

func TestRegisterSharesExistingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	first, err := Register(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	if err != nil || second != first {
		t.Fatalf("second registration = %p, %v; want the first collector %p", second, err, first)
	}
	if _, err := Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other"})); err == nil {
		t.Fatal("a conflicting collector was accepted")
	}
	c := prometheus.NewCounter(opts)
	if got, err := Register(nil, c); err != nil || got != c {
		t.Fatalf("nil registry: %v, %v", got, err)
	}
}
