package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sendguard/sendguard/pkg/service/tlstest"
)

func TestTLSFilesValidate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	srv := ca.Server(t, "server").Write(t, dir, "server")
	other := ca.Server(t, "other").Write(t, dir, "other")
	caFile := ca.WriteCA(t, dir, "ca")
	notPEM := filepath.Join(dir, "not.pem")
	tlstest.WriteFile(t, notPEM, []byte("hello"))
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name  string
		files TLSFiles
		want  string // "" is valid
	}{
		{"plaintext", TLSFiles{}, ""},
		{"server tls", TLSFiles{Cert: srv.Cert, Key: srv.Key}, ""},
		{"mtls control", TLSFiles{Cert: srv.Cert, Key: srv.Key, ClientCA: caFile}, ""},
		{"mtls all", TLSFiles{Cert: srv.Cert, Key: srv.Key, ClientCA: caFile, ClientAuth: "all"}, ""},
		{"missing key", TLSFiles{Cert: srv.Cert}, "--tls-cert given without --tls-key"},
		{"key without cert", TLSFiles{Key: srv.Key}, "--tls-key given without --tls-cert"},
		{"unreadable cert", TLSFiles{Cert: missing, Key: srv.Key}, "tls cert: open " + missing},
		{"unreadable key", TLSFiles{Cert: srv.Cert, Key: missing}, "tls key: open " + missing},
		{"mismatched pair", TLSFiles{Cert: srv.Cert, Key: other.Key}, "private key does not match public key"},
		{"key is not a key", TLSFiles{Cert: srv.Cert, Key: notPEM}, "tls cert " + srv.Cert + " and key " + notPEM},
		{"client ca without cert", TLSFiles{ClientCA: caFile}, "--tls-client-ca needs --tls-cert"},
		{"client ca not pem", TLSFiles{Cert: srv.Cert, Key: srv.Key, ClientCA: notPEM}, "no PEM certificate found"},
		{"all without ca", TLSFiles{Cert: srv.Cert, Key: srv.Key, ClientAuth: "all"}, "needs --tls-client-ca"},
		{"unknown mode", TLSFiles{Cert: srv.Cert, Key: srv.Key, ClientCA: caFile, ClientAuth: "some"}, `--tls-client-auth "some"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.files.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tc.want)
			}
			if tc.want == "" && tc.files.Enabled() {
				if _, err := NewTLSReloader(tc.files, TLSReloaderOptions{}); err != nil {
					t.Fatalf("NewTLSReloader: %v", err)
				}
			}
		})
	}
}

func TestTLSFilesMode(t *testing.T) {
	for _, tc := range []struct {
		f    TLSFiles
		want string
	}{
		{TLSFiles{Cert: "c", Key: "k"}, ""},
		{TLSFiles{Cert: "c", Key: "k", ClientAuth: "all"}, ""},
		{TLSFiles{Cert: "c", Key: "k", ClientCA: "ca"}, ClientAuthControl},
		{TLSFiles{Cert: "c", Key: "k", ClientCA: "ca", ClientAuth: "all"}, ClientAuthAll},
	} {
		if got := tc.f.Mode(); got != tc.want {
			t.Errorf("%+v.Mode() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// serveTLS accepts connections on a loopback TLS listener and completes
// their handshakes until the test ends.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// servedSerial dials addr and returns the serial of the leaf served.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSReloaderRotation: a certificate replaced on disk is served at the
// first handshake after the check interval, without a restart; a half
// written rotation (new certificate, old key) keeps the old pair in service
// and is reported once; the CA bundle is reloaded too.
func TestTLSReloaderRotation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	first := ca.Server(t, "first")
	files := first.Write(t, dir, "server")
	clk := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	core, logs := observer.New(zapcore.InfoLevel)
	r, err := NewTLSReloader(TLSFiles{Cert: files.Cert, Key: files.Key}, TLSReloaderOptions{CheckEvery: time.Minute, Now: clk.Now, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	addr := serveTLS(t, r.ServerConfig(tls.NoClientCert, "http/1.1"))
	if got := servedSerial(t, addr, roots); got != first.Cert.SerialNumber.String() {
		t.Fatalf("served %s, want the first certificate %s", got, first.Cert.SerialNumber)
	}

	second := ca.Server(t, "second")
	second.Write(t, dir, "server")
	if got := servedSerial(t, addr, roots); got != first.Cert.SerialNumber.String() {
		t.Errorf("before the check interval: served %s, want still the first", got)
	}
	clk.Advance(time.Minute)
	if got := servedSerial(t, addr, roots); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after rotation: served %s, want the second certificate %s", got, second.Cert.SerialNumber)
	}
	if logs.FilterMessage("tls: certificate reloaded").Len() != 1 {
		t.Errorf("reload logs: %v", logs.All())
	}

	// Half-written rotation: the third certificate with the second's key.
	third := ca.Server(t, "third")
	tlstest.WriteFile(t, files.Cert, third.CertPEM)
	for range 3 {
		clk.Advance(time.Minute)
		if got := servedSerial(t, addr, roots); got != second.Cert.SerialNumber.String() {
			t.Fatalf("mismatched files on disk: served %s, want the second certificate kept", got)
		}
	}
	if n := logs.FilterMessage("tls: keeping the current certificate").Len(); n != 1 {
		t.Errorf("a bad rotation was reported %d times, want once", n)
	}
	tlstest.WriteFile(t, files.Key, third.KeyPEM)
	clk.Advance(time.Minute)
	if got := servedSerial(t, addr, roots); got != third.Cert.SerialNumber.String() {
		t.Fatalf("completed rotation: served %s, want the third certificate", got)
	}
	for _, e := range logs.All() {
		for _, secret := range [][]byte{first.KeyPEM, second.KeyPEM, third.KeyPEM} {
			if strings.Contains(e.Message+fieldsString(e.Context), string(secret[30:60])) {
				t.Errorf("log entry %q carries key material", e.Message)
			}
		}
	}
	if err := r.Reload(); err != nil {
		t.Errorf("Reload of unchanged files: %v", err)
	}
	leaf, err := r.Leaf()
	if err != nil || leaf.SerialNumber.Cmp(third.Cert.SerialNumber) != 0 {
		t.Errorf("Leaf = %v, %v; want the third certificate", leaf, err)
	}
}

func fieldsString(fs []zapcore.Field) string {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fs {
		f.AddTo(enc)
	}
	var b strings.Builder
	for k, v := range enc.Fields {
		b.WriteString(k)
		b.WriteString("=")
		if s, ok := v.(string); ok {
			b.WriteString(s)
		}
		b.WriteString(" ")
	}
	return b.String()
}

// TestRequireClientCert runs a gRPC server with client CA verification
// (VerifyClientCertIfGiven) and the interceptors guarding Health/Check and
// Health/Watch: guarded methods need a verified client certificate, List
// does not; a certificate from another CA fails the handshake.
func TestRequireClientCert(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	rogue := tlstest.NewCA(t, "rogue")
	srvFiles := ca.Server(t, "server").Write(t, dir, "server")
	r, err := NewTLSReloader(TLSFiles{Cert: srvFiles.Cert, Key: srvFiles.Key, ClientCA: ca.WriteCA(t, dir, "ca")}, TLSReloaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unary, stream := RequireClientCert("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch")
	s := NewGRPCServer(grpc.Creds(credentials.NewTLS(r.ServerConfig(tls.VerifyClientCertIfGiven, "h2"))),
		grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
	s.SetServing(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })

	caFile := ca.WriteCA(t, dir, "ca")
	good := ca.Client(t, "ops").Write(t, dir, "ops")
	bad := rogue.Client(t, "mallory").Write(t, dir, "mallory")
	tests := []struct {
		name   string
		client ClientTLSFiles
		check  codes.Code // Health/Check (guarded, unary)
		watch  codes.Code // Health/Watch (guarded, stream)
		list   codes.Code // Health/List (open)
		// force sends the certificate even though the server's
		// CertificateRequest names another CA (Go clients otherwise send
		// none); the handshake itself must then fail.
		force bool
	}{
		{"no client certificate", ClientTLSFiles{CA: caFile}, codes.Unauthenticated, codes.Unauthenticated, codes.OK, false},
		{"certificate of the client CA", ClientTLSFiles{CA: caFile, Cert: good.Cert, Key: good.Key}, codes.OK, codes.OK, codes.OK, false},
		{"certificate of another CA", ClientTLSFiles{CA: caFile, Cert: bad.Cert, Key: bad.Key}, codes.Unauthenticated, codes.Unauthenticated, codes.OK, false},
		{"certificate of another CA sent anyway", ClientTLSFiles{CA: caFile, Cert: bad.Cert, Key: bad.Key}, codes.Unavailable, codes.Unavailable, codes.Unavailable, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.client.Config()
			if err != nil {
				t.Fatal(err)
			}
			if tc.force {
				cert := cfg.Certificates[0]
				cfg.Certificates = nil
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
			}
			conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			h := healthpb.NewHealthClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = h.Check(ctx, &healthpb.HealthCheckRequest{})
			if status.Code(err) != tc.check {
				t.Errorf("Check: %v, want %v", err, tc.check)
			}
			w, err := h.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = w.Recv()
			}
			if status.Code(err) != tc.watch {
				t.Errorf("Watch: %v, want %v", err, tc.watch)
			}
			_, err = h.List(ctx, &healthpb.HealthListRequest{})
			if status.Code(err) != tc.list {
				t.Errorf("List: %v, want %v", err, tc.list)
			}

		})
	}
}

func TestClientTLSFilesConfig(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	caFile := ca.WriteCA(t, dir, "ca")
	c := ca.Client(t, "ops").Write(t, dir, "ops")
	o := ca.Client(t, "other").Write(t, dir, "other")
	tests := []struct {
		name  string
		files ClientTLSFiles
		nil   bool
		want  string
	}{
		{"plaintext", ClientTLSFiles{}, true, ""},
		{"system roots", ClientTLSFiles{On: true}, false, ""},
		{"ca", ClientTLSFiles{CA: caFile}, false, ""},
		{"mtls", ClientTLSFiles{CA: caFile, Cert: c.Cert, Key: c.Key}, false, ""},
		{"cert without key", ClientTLSFiles{CA: caFile, Cert: c.Cert}, false, "go together"},
		{"mismatched", ClientTLSFiles{CA: caFile, Cert: c.Cert, Key: o.Key}, false, "private key does not match"},
		{"ca not pem", ClientTLSFiles{CA: c.Key}, false, "no PEM certificate"},
		{"ca missing", ClientTLSFiles{CA: filepath.Join(dir, "nope")}, false, "tls ca: open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.files.Config()
			switch {
			case tc.want != "":
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Config: %v, want error containing %q", err, tc.want)
				}
			case err != nil:
				t.Fatalf("Config: %v", err)
			case (cfg == nil) != tc.nil:
				t.Fatalf("Config = %v, want nil %v", cfg, tc.nil)
			}
		})
	}
}
