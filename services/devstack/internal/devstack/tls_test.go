package devstack

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/service/tlstest"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDevstackTLS runs the devstack with --tls-cert, --tls-key and
// --tls-client-ca: its one HTTP address (ingest and the admin endpoints)
// speaks only TLS, gRPC too, Check works with server TLS and the key, and
// ControlService needs a client certificate of the client CA.
func TestDevstackTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server CA")
	clientCA := tlstest.NewCA(t, "operators CA")
	srv := ca.Server(t, "devstack").Write(t, dir, "server")
	ops := clientCA.Client(t, "ops").Write(t, dir, "ops")
	caFile := ca.WriteCA(t, dir, "ca")
	cfg := Config{
		DataDir: t.TempDir(), HTTPAddr: kafkatest.FreeAddr(t), GRPCAddr: kafkatest.FreeAddr(t), KafkaAddr: kafkatest.FreeAddr(t),
		ClickHouse: "off", ClickHouseDB: "sendguard", APIKey: testKey, Partitions: 2,
		LogFormat: "console", LogLevel: "warn", Tick: time.Second,
		TLS: service.TLSFiles{Cert: srv.Cert, Key: srv.Key, ClientCA: clientCA.WriteCA(t, dir, "client-ca")},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &lockedBuffer{}
	go func() { done <- Run(ctx, cfg, zaptest.NewLogger(t).Named("devstack"), out) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devstack exited: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("devstack did not stop within 30s")
		}
	}()

	serverTLS, err := service.ClientTLSFiles{CA: caFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	httpsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: serverTLS}}
	defer httpsClient.CloseIdleConnections()
	waitHTTPS(t, httpsClient, "https://"+cfg.HTTPAddr+"/readyz", done)

	banner := out.String()
	for _, want := range []string{"https://" + cfg.HTTPAddr, "client certificate required for ControlService"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if resp, err := http.Get("http://" + cfg.HTTPAddr + "/readyz"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plaintext /readyz answered 200 on the TLS address")
		}
	}
	req, err := http.NewRequest(http.MethodPost, "https://"+cfg.HTTPAddr+"/v1/events",
		strings.NewReader(`{"type":"delivered","occurred_at":"2026-11-22T10:00:00Z","sender":"ann@acme.io","recipient":"bob@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := httpsClient.Do(req)
	if err != nil {
		t.Fatalf("post over TLS: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("post over TLS: %d, want 202", resp.StatusCode)
	}

	mtls, err := service.ClientTLSFiles{CA: caFile, Cert: ops.Cert, Key: ops.Key}.Config()
	if err != nil {
		t.Fatal(err)
	}
	kctx, kcancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testKey), 10*time.Second)
	defer kcancel()
	for _, tc := range []struct {
		name    string
		cfg     credentials.TransportCredentials
		control codes.Code
	}{
		{"server TLS only", credentials.NewTLS(serverTLS), codes.Unauthenticated},
		{"client certificate", credentials.NewTLS(mtls), codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := grpc.NewClient(cfg.GRPCAddr, grpc.WithTransportCredentials(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := sgv1.NewPermissionServiceClient(conn).Check(kctx, &sgv1.CheckRequest{Sender: "ann@acme.io", DryRun: true}); err != nil {
				t.Errorf("Check: %v", err)
			}
			if _, err := sgv1.NewControlServiceClient(conn).Status(kctx, &sgv1.StatusRequest{}); status.Code(err) != tc.control {
				t.Errorf("ControlService.Status: %v, want %v", err, tc.control)
			}
		})
	}
}

func waitHTTPS(t *testing.T, c *http.Client, url string, done chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("devstack exited before ready: %v", err)
		default:
		}
		if resp, err := c.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 30s", url)
}

func TestConfigValidateTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	a := ca.Server(t, "a").Write(t, dir, "a")
	b := ca.Server(t, "b").Write(t, dir, "b")
	base := Config{DataDir: dir, HTTPAddr: ":8080", GRPCAddr: ":9090", KafkaAddr: ":9092"}
	for _, tc := range []struct {
		name string
		tls  service.TLSFiles
		want string
	}{
		{"plaintext", service.TLSFiles{}, ""},
		{"tls", service.TLSFiles{Cert: a.Cert, Key: a.Key}, ""},
		{"missing key", service.TLSFiles{Cert: a.Cert}, "--tls-cert given without --tls-key"},
		{"mismatched pair", service.TLSFiles{Cert: a.Cert, Key: b.Key}, "private key does not match public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.TLS = tc.tls
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestTLSFlags: the TLS settings come from flags or SENDGUARD_TLS_*
// variables, a flag beating its variable; client auth defaults to control.
func TestTLSFlags(t *testing.T) {
	env := map[string]string{"SENDGUARD_TLS_CERT": "/etc/sg/tls.crt", "SENDGUARD_TLS_KEY": "/etc/sg/tls.key", "SENDGUARD_TLS_CLIENT_CA": "/etc/sg/ca.pem"}
	for _, tc := range []struct {
		name string
		args []string
		want service.TLSFiles
	}{
		{"variables", nil, service.TLSFiles{Cert: "/etc/sg/tls.crt", Key: "/etc/sg/tls.key", ClientCA: "/etc/sg/ca.pem", ClientAuth: "control"}},
		{"flags beat variables", []string{"--tls-cert", "a.crt", "--tls-client-auth", "all"}, service.TLSFiles{Cert: "a.crt", Key: "/etc/sg/tls.key", ClientCA: "/etc/sg/ca.pem", ClientAuth: "all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			f := service.NewFlags("devstack", func(k string) string { return env[k] })
			BindFlags(f, &c)
			if err := f.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if c.TLS != tc.want {
				t.Errorf("TLS = %+v, want %+v", c.TLS, tc.want)
			}
		})
	}
}
