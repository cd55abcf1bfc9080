package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/loadgen/drive"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/service/tlstest"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Two tenants: A (acme) and B (globex). The keys are long and distinctive
// so a leak into the logs cannot hide.
const (
	secKeyA   = "sg_acme_5ecret_key_0123456789abcdef"
	secKeyB   = "sg_globex_5ecret_key_fedcba9876543210"
	secBadKey = "sg_unknown_5ecret_key_0000000000"
)

// syncBuffer is the log sink of the stack under test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secureStack is ingest and the actuator wired by pkg/app exactly as the
// service binaries wire them, with TLS and a client CA, on a real embedded
// broker.
type secureStack struct {
	env                       *app.Env
	brokers                   []string
	http, grpc, admin         string
	serverCA                  *tlstest.CA
	serverFiles               tlstest.Files
	serverKeyPEM              []byte
	caFile                    string // verifies the server
	opsCert, opsKey           string // client certificate of the client CA
	rogueCert, rogueKey       string // client certificate of another CA
	clientKeyPEMs             [][]byte
	logs                      *syncBuffer
	stop                      func()
	httpTLS, httpMTLS         *http.Client
	httpPlain                 *http.Client
	grpcTLS, grpcMTLS, grpcNo *grpc.ClientConn
}

// startSecureStack starts the stack with client certificates required per
// clientAuth (service.ClientAuthControl or ClientAuthAll).
func startSecureStack(t *testing.T, clientAuth string) *secureStack {
	t.Helper()
	dir := t.TempDir()
	s := &secureStack{logs: &syncBuffer{}}
	s.serverCA = tlstest.NewCA(t, "sendguard server CA")
	clientCA := tlstest.NewCA(t, "sendguard operators CA")
	rogueCA := tlstest.NewCA(t, "rogue CA")
	srv := s.serverCA.Server(t, "sendguard")
	s.serverFiles, s.serverKeyPEM = srv.Write(t, dir, "server"), srv.KeyPEM
	s.caFile = s.serverCA.WriteCA(t, dir, "server-ca")
	ops := clientCA.Client(t, "ops")
	rogue := rogueCA.Client(t, "mallory")
	of, rf := ops.Write(t, dir, "ops"), rogue.Write(t, dir, "mallory")
	s.opsCert, s.opsKey, s.rogueCert, s.rogueKey = of.Cert, of.Key, rf.Cert, rf.Key
	s.clientKeyPEMs = [][]byte{ops.KeyPEM, rogue.KeyPEM}

	_, addr := kafkatest.Start(t, "")
	s.brokers = []string{addr}
	s.http, s.grpc, s.admin = kafkatest.FreeAddr(t), kafkatest.FreeAddr(t), kafkatest.FreeAddr(t)
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(s.logs), zap.DebugLevel))
	common := app.Common{
		Kafka: s.brokers, ClickHouse: "off", Partitions: 2, Replication: 1, Grace: 5 * time.Second,
		APIKeys: "acme:" + secKeyA + ",globex:" + secKeyB,
		TLS:     service.TLSFiles{Cert: s.serverFiles.Cert, Key: s.serverFiles.Key, ClientCA: clientCA.WriteCA(t, dir, "client-ca"), ClientAuth: clientAuth},
	}
	ctx, cancel := context.WithCancel(context.Background())
	env, err := app.Bootstrap(ctx, common, logger, service.NewRegistry())
	if err != nil {
		cancel()
		t.Fatalf("bootstrap: %v", err)
	}
	s.env = env
	mux := http.NewServeMux()
	if _, err := app.AddIngest(env, app.IngestOptions{Mux: mux}); err != nil {
		env.Close()
		cancel()
		t.Fatalf("ingest: %v", err)
	}
	err = env.AddHTTP("ingest", s.http, mux)
	if err == nil {
		_, err = app.AddActuator(ctx, env, enforce.DefaultConfig())
	}
	if err == nil {
		err = env.Serve(s.admin, s.grpc)
	}
	if err != nil {
		env.Close()
		cancel()
		t.Fatalf("setup: %v", err)
	}
	env.Group.AddContext("test", func(c context.Context) error {
		select {
		case <-ctx.Done():
		case <-c.Done():
		}
		return nil
	})
	env.MarkReady()
	done := make(chan error, 1)
	go func() { done <- env.Run() }()
	s.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("stack: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("stack did not stop within 30s")
		}
	}

	serverOnly, err := service.ClientTLSFiles{CA: s.caFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	mtls, err := service.ClientTLSFiles{CA: s.caFile, Cert: s.opsCert, Key: s.opsKey}.Config()
	if err != nil {
		t.Fatal(err)
	}
	s.httpTLS = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: serverOnly, ForceAttemptHTTP2: true}}
	s.httpMTLS = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: mtls}}
	s.httpPlain = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	dial := func(opt grpc.DialOption) *grpc.ClientConn {
		conn, err := grpc.NewClient(s.grpc, opt)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	s.grpcTLS = dial(grpc.WithTransportCredentials(credentials.NewTLS(serverOnly)))
	s.grpcMTLS = dial(grpc.WithTransportCredentials(credentials.NewTLS(mtls)))
	s.grpcNo = dial(grpc.WithTransportCredentials(insecure.NewCredentials()))
	return s
}

func (s *secureStack) close() {
	for _, c := range []*grpc.ClientConn{s.grpcTLS, s.grpcMTLS, s.grpcNo} {
		_ = c.Close()
	}
	for _, c := range []*http.Client{s.httpTLS, s.httpMTLS, s.httpPlain} {
		c.CloseIdleConnections()
	}
	s.stop()
}

// withKey returns a context carrying key, cancelled after 10 s or when the
// test ends.
func withKey(t *testing.T, key string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// sgctl runs a subcommand through Main with the connection flags.
func (s *secureStack) sgctl(t *testing.T, key string, tlsArgs []string, args ...string) (int, string, string) {
	t.Helper()
	full := append([]string{args[0], "--addr", s.grpc, "--api-key", key}, tlsArgs...)
	return run(t, "", append(full, args[1:]...)...)
}

func (s *secureStack) mtlsArgs() []string {
	return []string{"--tls-ca", s.caFile, "--tls-cert", s.opsCert, "--tls-key", s.opsKey}
}

func (s *secureStack) post(t *testing.T, c *http.Client, scheme, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, scheme+"://"+s.http+"/v1/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Proto + " " + string(b)
}

// envelopes reads the raw topic: tenant → payloads.
func (s *secureStack) envelopes(t *testing.T) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string][]string{}
	err := kafka.ReadAll(ctx, s.brokers, topics.Raw, func(m kafka.Message) error {
		env := &sgv1.RawEnvelope{}
		if err := proto.Unmarshal(m.Value(), env); err != nil {
			return err
		}
		if h := m.Header(kafka.HeaderTenant); string(h) != env.GetTenant() {
			t.Errorf("envelope of %s has tenant header %q", env.GetTenant(), h)
		}
		out[env.GetTenant()] = append(out[env.GetTenant()], string(env.GetPayload()))
		return nil
	})
	if err != nil {
		t.Fatalf("read raw topic: %v", err)
	}
	return out
}

func ndEvent(id, tenant, sender, rcpt string) string {
	ev := map[string]any{"event_id": id, "type": "delivered", "occurred_at": "2026-11-22T10:00:00Z", "sender": sender, "recipient": rcpt}
	if tenant != "" {
		ev["tenant"] = tenant
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func manualCmd(level sgv1.ScopeLevel, target, rid string) *sgv1.ManualCommand {
	return &sgv1.ManualCommand{Level: level, Target: target, Actor: "sec-test", Reason: "isolation test", RequestId: rid}
}

// statusOf returns a tenant's live scopes as "action level target tenant
// command_id", sorted.
func statusOf(t *testing.T, ctl sgv1.ControlServiceClient, key string) []string {
	t.Helper()
	resp, err := ctl.Status(withKey(t, key), &sgv1.StatusRequest{})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var out []string
	for _, sc := range resp.GetScopes() {
		c := sc.GetCommand()
		out = append(out, strings.Join([]string{c.GetAction().String(), c.GetScope().GetLevel().String(), c.GetScope().GetTarget(), c.GetScope().GetTenant(), c.GetCommandId()}, " "))
	}
	sort.Strings(out)
	return out
}

func verdict(t *testing.T, perm sgv1.PermissionServiceClient, key, sender, rcpt string) string {
	t.Helper()
	resp, err := perm.Check(withKey(t, key), &sgv1.CheckRequest{Sender: sender, Recipient: rcpt, DryRun: true})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return strings.TrimPrefix(resp.GetVerdict().String(), "VERDICT_")
}

const (
	domainLevel    = sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN
	recipientLevel = sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT
	senderB        = "ann@globex.io"
	vipB           = "vip@example.org"
)

// TestTLSAndTenantIsolation runs ingest and the actuator, wired by pkg/app
// with TLS and a client CA, and checks: HTTP and gRPC over TLS (plaintext
// refused), ControlService behind a verified client certificate (sgctl's
// real code path), certificate rotation without restart, and that tenant
// A's key cannot write, read, check or control tenant B's data over HTTP,
// gRPC and sgctl — B's state is the same afterwards. Finally no API key
// and no private key appears in the logs or in sgctl's output.
func TestTLSAndTenantIsolation(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	t.Setenv("SENDGUARD_API_KEY", "")
	t.Setenv("USER", "ops")
	s := startSecureStack(t, service.ClientAuthControl)
	defer s.close()
	var cliOutput strings.Builder // everything sgctl printed
	sg := func(t *testing.T, key string, tlsArgs []string, args ...string) (int, string, string) {
		t.Helper()
		code, out, errOut := s.sgctl(t, key, tlsArgs, args...)
		cliOutput.WriteString(out + errOut)
		return code, out, errOut
	}
	ctlM := sgv1.NewControlServiceClient(s.grpcMTLS)
	permTLS := sgv1.NewPermissionServiceClient(s.grpcTLS)

	// Tenant B's data: a paused domain, a suppressed recipient, events.
	if _, err := ctlM.Pause(withKey(t, secKeyB), &sgv1.PauseRequest{Command: manualCmd(domainLevel, "globex.io", "b-pause")}); err != nil {
		t.Fatalf("B pauses its domain: %v", err)
	}
	if _, err := ctlM.Suppress(withKey(t, secKeyB), &sgv1.SuppressRequest{Command: manualCmd(recipientLevel, vipB, "b-suppress")}); err != nil {
		t.Fatalf("B suppresses a recipient: %v", err)
	}
	if code, body := s.post(t, s.httpTLS, "https", secKeyB, ndEvent("b-1", "globex", senderB, "x@example.org")); code != http.StatusAccepted {
		t.Fatalf("B posts over TLS: %d %s", code, body)
	}
	stateB := statusOf(t, ctlM, secKeyB)
	if len(stateB) != 2 {
		t.Fatalf("B's state = %v, want its pause and suppression", stateB)
	}

	t.Run("HTTP ingest over TLS", func(t *testing.T) {
		code, body := s.post(t, s.httpTLS, "https", secKeyA, ndEvent("a-1", "", "ann@acme.io", "x@example.org"))
		if code != http.StatusAccepted || !strings.HasPrefix(body, "HTTP/2.0") {
			t.Errorf("TLS post: %d %s; want 202 over HTTP/2", code, body)
		}
		code, body = s.post(t, s.httpPlain, "http", secKeyA, ndEvent("a-plain", "", "ann@acme.io", "x@example.org"))
		if code == http.StatusAccepted {
			t.Errorf("plaintext post on the TLS listener accepted: %s", body)
		}
		// The admin address is separate and stays plaintext.
		resp, err := s.httpPlain.Get("http://" + s.admin + "/healthz")
		if err != nil {
			t.Fatalf("admin healthz: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("admin healthz: %d", resp.StatusCode)
		}
	})

	t.Run("gRPC over TLS", func(t *testing.T) {
		ing := sgv1.NewIngestServiceClient(s.grpcTLS)
		ev := &sgv1.Event{EventId: "a-g1", Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: timestamppb.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)), Sender: "ann@acme.io", Recipient: "y@example.org"}
		resp, err := ing.Publish(withKey(t, secKeyA), &sgv1.PublishRequest{Items: []*sgv1.PublishItem{{Item: &sgv1.PublishItem_Event{Event: ev}}}})
		if err != nil || resp.GetAccepted() != 1 {
			t.Errorf("Publish over TLS: %v, %v", resp, err)
		}
		if v := verdict(t, permTLS, secKeyA, "ann@acme.io", "y@example.org"); v != "ALLOW" {
			t.Errorf("Check over TLS without a client certificate: %s", v)
		}
		_, err = sgv1.NewPermissionServiceClient(s.grpcNo).Check(withKey(t, secKeyA), &sgv1.CheckRequest{Sender: "ann@acme.io"})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("plaintext gRPC on the TLS listener: %v, want Unavailable", err)
		}
	})

	t.Run("load and bench transports over TLS", func(t *testing.T) {
		cfg, err := service.ClientTLSFiles{CA: s.caFile}.Config()
		if err != nil {
			t.Fatal(err)
		}
		at := timestamppb.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
		evs := []*sgv1.Event{{EventId: "a-sink-1", Type: sgv1.EventType_EVENT_TYPE_SENT, OccurredAt: at, Sender: "ann@acme.io", Recipient: "s1@example.org"}}
		keys := drive.Keys{"acme": secKeyA}
		hs := drive.NewHTTPSink(s.http, keys, 1, drive.WithTLS(cfg))
		defer hs.Close()
		if n, err := hs.Send(context.Background(), "acme", evs); n != 1 || err != nil {
			t.Errorf("HTTP sink over TLS: %d, %v", n, err)
		}
		plain := drive.NewHTTPSink(s.http, keys, 1)
		defer plain.Close()
		if n, err := plain.Send(context.Background(), "acme", evs); n != 0 || err == nil {
			t.Errorf("plaintext HTTP sink on the TLS listener: %d, %v; want refused", n, err)
		}
		gs, err := drive.NewGRPCSink(s.grpc, keys, drive.WithTLS(cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer gs.Close()
		evs[0].EventId = "a-sink-2"
		if n, err := gs.Send(context.Background(), "acme", evs); n != 1 || err != nil {
			t.Errorf("gRPC sink over TLS: %d, %v", n, err)
		}
		res, err := drive.Checks(context.Background(), drive.ChecksConfig{Addr: s.grpc, Key: secKeyA, Duration: 200 * time.Millisecond, Concurrency: 2, Conns: 1, Tenant: "acme", DryRun: true, TLS: cfg})
		if err != nil || res.Checks == 0 || res.Errors != 0 {
			t.Errorf("bench check over TLS: %+v, %v", res, err)
		}
	})

	t.Run("ControlService needs a client certificate", func(t *testing.T) {
		serverOnly := []string{"--tls-ca", s.caFile}
		rogue := []string{"--tls-ca", s.caFile, "--tls-cert", s.rogueCert, "--tls-key", s.rogueKey}
		tests := []struct {
			name    string
			tlsArgs []string
			code    int
			stderr  string
		}{
			{"no TLS", nil, 1, "Unavailable"},
			{"server TLS without a client certificate", serverOnly, 1, "Unauthenticated"},
			{"client certificate of another CA", rogue, 1, "Unauthenticated"},
			{"client certificate of the client CA", s.mtlsArgs(), 0, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, _, errOut := sg(t, secKeyA, tc.tlsArgs, "status", "--json")
				if code != tc.code || !strings.Contains(errOut, tc.stderr) {
					t.Errorf("sgctl status: exit %d, stderr %q; want %d with %q", code, errOut, tc.code, tc.stderr)
				}
				code, _, errOut = sg(t, secKeyA, tc.tlsArgs, "pause", "--level", "domain", "--target", "acme.io", "--for", "1h", "--reason", "mtls test", "--request-id", "mtls-"+strings.ReplaceAll(tc.name, " ", "-"))
				if code != tc.code || !strings.Contains(errOut, tc.stderr) {
					t.Errorf("sgctl pause: exit %d, stderr %q; want %d with %q", code, errOut, tc.code, tc.stderr)
				}
			})
		}
		// Only the pause with the valid certificate happened.
		if v := verdict(t, permTLS, secKeyA, "ann@acme.io", "z@example.org"); v != "DENY" {
			t.Errorf("after the accepted pause: %s, want DENY", v)
		}
		if got := statusOf(t, ctlM, secKeyA); len(got) != 1 || !strings.Contains(got[0], "mtls-client-certificate-of-the-client-CA") {
			t.Errorf("A's state = %v, want only the pause made with the valid certificate", got)
		}
		if code, _, errOut := sg(t, secKeyA, s.mtlsArgs(), "resume", "--level", "domain", "--target", "acme.io", "--reason", "done"); code != 0 {
			t.Fatalf("resume: %s", errOut)
		}
		// Check needs no client certificate: server TLS and the key.
		code, out, errOut := sg(t, secKeyA, serverOnly, "check", "--sender", "ann@acme.io", "--recipient", "z@example.org", "--dry-run")
		if code != 0 || !strings.Contains(out, `"verdict":"ALLOW"`) {
			t.Errorf("sgctl check with server TLS: exit %d, %s %s", code, out, errOut)
		}
		if code, _, errOut := sg(t, secKeyA, []string{"--tls-ca", s.caFile, "--tls-cert", s.opsCert}, "check", "--sender", "a@acme.io"); code != 2 || !strings.Contains(errOut, "go together") {
			t.Errorf("--tls-cert without --tls-key: exit %d, %q", code, errOut)
		}
	})

	t.Run("certificate rotated on disk is served without restart", func(t *testing.T) {
		next := s.serverCA.Server(t, "sendguard-rotated")
		old := s.serverKeyPEM
		next.Write(t, filepath.Dir(s.serverFiles.Cert), "server")
		s.serverKeyPEM = next.KeyPEM
		s.clientKeyPEMs = append(s.clientKeyPEMs, old)
		if err := s.env.TLS.Reload(); err != nil {
			t.Fatalf("reload: %v", err)
		}
		for _, addr := range []string{s.grpc, s.http} {
			cfg, err := service.ClientTLSFiles{CA: s.caFile}.Config()
			if err != nil {
				t.Fatal(err)
			}
			cfg.NextProtos = []string{"h2"}
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			got := c.ConnectionState().PeerCertificates[0].SerialNumber
			_ = c.Close()
			if got.Cmp(next.Cert.SerialNumber) != 0 {
				t.Errorf("%s serves serial %s, want the rotated certificate's %s", addr, got, next.Cert.SerialNumber)
			}
		}
		if v := verdict(t, permTLS, secKeyA, "ann@acme.io", "z@example.org"); v != "ALLOW" {
			t.Errorf("check after rotation: %s", v)
		}
	})

	t.Run("A cannot write B's data", func(t *testing.T) {
		// HTTP: an event naming B is refused; several lines with one naming B
		// are refused whole.
		if code, body := s.post(t, s.httpTLS, "https", secKeyA, ndEvent("a-as-b", "globex", senderB, "x@example.org")); code != http.StatusForbidden {
			t.Errorf("HTTP event naming B with A's key: %d %s, want 403", code, body)
		}
		mixed := ndEvent("a-ok-mixed", "", "ann@acme.io", "x@example.org") + "\n" + ndEvent("a-as-b-2", "globex", senderB, "x@example.org")
		if code, body := s.post(t, s.httpTLS, "https", secKeyA, mixed); code != http.StatusForbidden {
			t.Errorf("NDJSON with one event naming B: %d %s, want 403", code, body)
		}
		// gRPC: per item, the item naming B is INVALID on field tenant.
		ing := sgv1.NewIngestServiceClient(s.grpcTLS)
		at := timestamppb.New(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
		asB := &sgv1.Event{EventId: "a-as-b-grpc", Tenant: "globex", Type: sgv1.EventType_EVENT_TYPE_COMPLAINED, OccurredAt: at, Sender: senderB, Recipient: "x@example.org"}
		own := &sgv1.Event{EventId: "a-own-grpc", Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: at, Sender: "ann@acme.io", Recipient: "x@example.org"}
		resp, err := ing.Publish(withKey(t, secKeyA), &sgv1.PublishRequest{Items: []*sgv1.PublishItem{{Item: &sgv1.PublishItem_Event{Event: asB}}, {Item: &sgv1.PublishItem_Event{Event: own}}}})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if r := resp.GetResults(); len(r) != 2 || r[0].GetStatus() != sgv1.ItemStatus_ITEM_STATUS_INVALID || r[0].GetField() != "tenant" ||
			r[1].GetStatus() != sgv1.ItemStatus_ITEM_STATUS_ACCEPTED {
			t.Errorf("Publish results = %v; want the item naming B invalid (tenant), A's own accepted", r)
		}
		stream, err := ing.PublishStream(withKey(t, secKeyA))
		if err != nil {
			t.Fatal(err)
		}
		asB2 := proto.Clone(asB).(*sgv1.Event)
		asB2.EventId = "a-as-b-stream"
		if err := stream.Send(&sgv1.PublishStreamRequest{Items: []*sgv1.PublishItem{{Item: &sgv1.PublishItem_Event{Event: asB2}}}}); err != nil {
			t.Fatal(err)
		}
		sresp, err := stream.CloseAndRecv()
		if err != nil || sresp.GetAccepted() != 0 || len(sresp.GetResults()) != 1 || sresp.GetResults()[0].GetField() != "tenant" {
			t.Errorf("PublishStream naming B: %v, %v; want refused on tenant", sresp, err)
		}
		// The raw topic: B's envelopes are B's own; A's all carry tenant acme.
		// (NDJSON events travel as protobuf: their ids appear verbatim.)
		envs := s.envelopes(t)
		if len(envs["globex"]) != 1 || !strings.Contains(envs["globex"][0], "b-1") {
			t.Errorf("B's envelopes = %q, want only B's own event", envs["globex"])
		}
		for tenant, payloads := range envs {
			if tenant != "acme" && tenant != "globex" {
				t.Errorf("envelope of unexpected tenant %q", tenant)
			}
			for _, p := range payloads {
				if tenant == "acme" && strings.Contains(p, "a-as-b") {
					t.Errorf("an event naming B was published for A: %s", p)
				}
			}
		}
	})

	t.Run("A cannot check B's data", func(t *testing.T) {
		if v := verdict(t, permTLS, secKeyB, senderB, vipB); v != "DENY" {
			t.Fatalf("B's own check: %s, want DENY (its pause and suppression)", v)
		}
		if v := verdict(t, permTLS, secKeyA, senderB, vipB); v != "ALLOW" {
			t.Errorf("A checking B's paused sender and suppressed recipient: %s, want ALLOW (A's own state)", v)
		}
		resp, err := permTLS.CheckBatch(withKey(t, secKeyA), &sgv1.CheckBatchRequest{Checks: []*sgv1.CheckRequest{
			{Sender: senderB, Recipient: "x@example.org", DryRun: true}, {Sender: "ann@acme.io", Recipient: vipB, DryRun: true},
		}})
		if err != nil || len(resp.GetResponses()) != 2 {
			t.Fatalf("CheckBatch: %v, %v", resp, err)
		}
		for i, r := range resp.GetResponses() {
			if r.GetVerdict() != sgv1.Verdict_VERDICT_ALLOW || len(r.GetReasons()) != 0 {
				t.Errorf("A's CheckBatch item %d sees B's state: %v", i, r)
			}
		}
		code, out, errOut := sg(t, secKeyA, []string{"--tls-ca", s.caFile}, "check", "--sender", senderB, "--recipient", vipB)
		if code != 0 || !strings.Contains(out, `"verdict":"ALLOW"`) || strings.Contains(out, "globex") {
			t.Errorf("sgctl check with A's key on B's scopes: exit %d, %s %s", code, out, errOut)
		}
	})

	t.Run("A cannot read or control B's data over gRPC", func(t *testing.T) {
		if got := statusOf(t, ctlM, secKeyA); len(got) != 0 {
			t.Errorf("A's status = %v, want nothing (B's scopes are B's)", got)
		}
		resp, err := ctlM.Status(withKey(t, secKeyA), &sgv1.StatusRequest{Level: domainLevel, Target: "globex.io"})
		if err != nil || len(resp.GetScopes()) != 0 {
			t.Errorf("A's status filtered on B's domain: %v, %v", resp, err)
		}
		if r, err := ctlM.Resume(withKey(t, secKeyA), &sgv1.ResumeRequest{Command: manualCmd(domainLevel, "globex.io", "a-resume")}); err != nil || r.GetResult().GetChanged() {
			t.Errorf("A resuming B's domain: %v, %v; want unchanged", r, err)
		}
		if r, err := ctlM.Unsuppress(withKey(t, secKeyA), &sgv1.UnsuppressRequest{Command: manualCmd(recipientLevel, vipB, "a-unsuppress")}); err != nil || r.GetResult().GetChanged() {
			t.Errorf("A unsuppressing B's recipient: %v, %v; want unchanged", r, err)
		}
		if _, err := ctlM.Pause(withKey(t, secKeyA), &sgv1.PauseRequest{Command: manualCmd(sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, "globex", "a-pause-b")}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("A pausing tenant globex: %v, want InvalidArgument", err)
		}
		if _, err := ctlM.Throttle(withKey(t, secKeyA), &sgv1.ThrottleRequest{Command: manualCmd(sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, "globex", "a-throttle-b"), DailyCap: 1}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("A throttling tenant globex: %v, want InvalidArgument", err)
		}
		// A's own suppression of the same recipient is A's only.
		if _, err := ctlM.Suppress(withKey(t, secKeyA), &sgv1.SuppressRequest{Command: manualCmd(recipientLevel, "only-a@example.org", "a-suppress")}); err != nil {
			t.Fatalf("A's own suppress: %v", err)
		}
		if v := verdict(t, permTLS, secKeyB, "bob@globex2.io", "only-a@example.org"); v != "ALLOW" {
			t.Errorf("B after A's suppression: %s, want ALLOW", v)
		}
		// A's pause of B's domain name is a pause of A's scope.
		p := manualCmd(domainLevel, "globex.io", "a-pause-same-name")
		p.Duration = durationpb.New(time.Hour)
		if r, err := ctlM.Pause(withKey(t, secKeyA), &sgv1.PauseRequest{Command: p}); err != nil || r.GetResult().GetCommand().GetScope().GetTenant() != "acme" {
			t.Errorf("A pausing a domain named like B's: %v, %v; want A's own scope", r, err)
		}
		if r, err := ctlM.Resume(withKey(t, secKeyA), &sgv1.ResumeRequest{Command: manualCmd(domainLevel, "globex.io", "a-resume-same-name")}); err != nil || !r.GetResult().GetChanged() {
			t.Errorf("A resuming its own pause: %v, %v", r, err)
		}
	})

	t.Run("A cannot read or control B's data with sgctl", func(t *testing.T) {
		code, out, errOut := sg(t, secKeyA, s.mtlsArgs(), "status", "--json")
		if code != 0 || strings.Contains(out, "globex") || strings.Contains(out, vipB) {
			t.Errorf("sgctl status with A's key: exit %d, %s %s", code, out, errOut)
		}
		code, out, errOut = sg(t, secKeyA, s.mtlsArgs(), "resume", "--level", "domain", "--target", "globex.io", "--reason", "not mine")
		if code != 0 || !strings.Contains(out, `"changed":false`) || !strings.Contains(out, `"tenant":"acme"`) {
			t.Errorf("sgctl resume of B's domain with A's key: exit %d, %s %s", code, out, errOut)
		}
		code, out, errOut = sg(t, secKeyA, s.mtlsArgs(), "unsuppress", "--level", "recipient", "--target", vipB, "--reason", "not mine")
		if code != 0 || !strings.Contains(out, `"changed":false`) {
			t.Errorf("sgctl unsuppress of B's recipient with A's key: exit %d, %s %s", code, out, errOut)
		}
		code, _, errOut = sg(t, secKeyA, s.mtlsArgs(), "pause", "--level", "tenant", "--target", "globex", "--reason", "hostile")
		if code != 1 || !strings.Contains(errOut, "InvalidArgument") {
			t.Errorf("sgctl pause of tenant globex with A's key: exit %d, %s", code, errOut)
		}
		code, out, errOut = sg(t, secKeyA, s.mtlsArgs(), "pause", "--level", "sender", "--target", senderB, "--for", "1h", "--reason", "same name, own scope")
		if code != 0 || !strings.Contains(out, `"tenant":"acme"`) {
			t.Errorf("sgctl pause of a sender named like B's: exit %d, %s %s", code, out, errOut)
		}
		// Unknown and missing keys are refused before anything is read.
		if code, _, errOut := sg(t, secBadKey, s.mtlsArgs(), "status"); code != 1 || !strings.Contains(errOut, "Unauthenticated") {
			t.Errorf("sgctl status with an unknown key: exit %d, %s", code, errOut)
		}
	})

	t.Run("B is unchanged", func(t *testing.T) {
		if got := statusOf(t, ctlM, secKeyB); strings.Join(got, "\n") != strings.Join(stateB, "\n") {
			t.Errorf("B's state after A's attempts:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(stateB, "\n"))
		}
		if v := verdict(t, permTLS, secKeyB, senderB, "x@example.org"); v != "DENY" {
			t.Errorf("B's paused domain: %s, want DENY", v)
		}
		if v := verdict(t, permTLS, secKeyB, "bob@globex2.io", vipB); v != "DENY" {
			t.Errorf("B's suppressed recipient: %s, want DENY", v)
		}
		code, out, errOut := sg(t, secKeyB, s.mtlsArgs(), "status", "--json")
		if code != 0 || strings.Count(out, "\n") != 2 || strings.Contains(out, "acme") {
			t.Errorf("sgctl status with B's key: exit %d, %s %s; want B's two scopes only", code, out, errOut)
		}
	})

	// A refused request with an unknown key, over HTTP and gRPC, for the
	// log check below.
	if code, _ := s.post(t, s.httpTLS, "https", secBadKey, ndEvent("bad", "", "a@acme.io", "b@example.org")); code != http.StatusUnauthorized {
		t.Errorf("unknown key over HTTP: %d, want 401", code)
	}
	if _, err := permTLS.Check(withKey(t, secBadKey), &sgv1.CheckRequest{Sender: "a@acme.io"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("unknown key over gRPC: %v", err)
	}
	// Keys in the URL (ESPs that can only call a URL): accepted, refused
	// as bad input, refused as unknown.
	for _, tc := range []struct {
		key, body string
		want      int
	}{
		{secKeyA, `[{"email":"a@example.org","timestamp":1795262400,"event":"delivered","sg_event_id":"sg-1"}]`, http.StatusAccepted},
		{secKeyA, `{"not":"sendgrid"`, http.StatusBadRequest},
		{secBadKey, `[]`, http.StatusUnauthorized},
	} {
		resp, err := s.httpTLS.Post("https://"+s.http+"/v1/webhooks/sendgrid?key="+tc.key, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("webhook with the key in the URL: %d, want %d", resp.StatusCode, tc.want)
		}
	}

	t.Run("no secret in logs", func(t *testing.T) {
		logs := s.logs.String()
		if !strings.Contains(logs, "TLS on") || !strings.Contains(logs, "certificate reloaded") {
			t.Fatalf("the logs do not show the TLS start and reload; is the logger wired?\n%s", logs)
		}
		secrets := map[string]string{"A's key": secKeyA, "B's key": secKeyB, "an unknown key": secBadKey}
		for i, pemKey := range append([][]byte{s.serverKeyPEM}, s.clientKeyPEMs...) {
			for j, line := range strings.Split(string(pemKey), "\n") {
				if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
					secrets[fmt.Sprintf("line %d of private key %d", j, i)] = line[:40]
				}
			}
		}
		for what, secret := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("%s appears in the logs", what)
			}
			if strings.Contains(cliOutput.String(), secret) {
				t.Errorf("%s appears in sgctl's output", what)
			}
		}
	})
}

// TestClientAuthAll: with --tls-client-auth all every TLS connection, HTTP
// ingest and gRPC Check included, needs a client certificate of the client
// CA; the admin address stays plaintext.
func TestClientAuthAll(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	s := startSecureStack(t, service.ClientAuthAll)
	defer s.close()
	if code, body := s.post(t, s.httpTLS, "https", secKeyA, ndEvent("all-1", "", "ann@acme.io", "x@example.org")); code == http.StatusAccepted {
		t.Errorf("HTTP without a client certificate: %d %s, want the handshake refused", code, body)
	}
	if code, body := s.post(t, s.httpMTLS, "https", secKeyA, ndEvent("all-2", "", "ann@acme.io", "x@example.org")); code != http.StatusAccepted {
		t.Errorf("HTTP with a client certificate: %d %s, want 202", code, body)
	}
	if _, err := sgv1.NewPermissionServiceClient(s.grpcTLS).Check(withKey(t, secKeyA), &sgv1.CheckRequest{Sender: "a@acme.io", DryRun: true}); status.Code(err) != codes.Unavailable {
		t.Errorf("Check without a client certificate: %v, want Unavailable (handshake refused)", err)
	}
	if _, err := sgv1.NewPermissionServiceClient(s.grpcMTLS).Check(withKey(t, secKeyA), &sgv1.CheckRequest{Sender: "a@acme.io", DryRun: true}); err != nil {
		t.Errorf("Check with a client certificate: %v", err)
	}
	if code, out, errOut := s.sgctl(t, secKeyA, s.mtlsArgs(), "status"); code != 0 {
		t.Errorf("sgctl status with a client certificate: exit %d %s %s", code, out, errOut)
	}
	resp, err := s.httpPlain.Get("http://" + s.admin + "/readyz")
	if err != nil {
		t.Fatalf("admin readyz: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("admin readyz: %d", resp.StatusCode)
	}
}

// TestInvalidTLSConfigurationStopsTheStart: a missing key or a mismatched
// pair is a clear error from Common.Validate and from Bootstrap, before
// anything connects (the broker address answers nothing).
func TestInvalidTLSConfigurationStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	a := ca.Server(t, "a").Write(t, dir, "a")
	b := ca.Server(t, "b").Write(t, dir, "b")
	tests := []struct {
		name string
		tls  service.TLSFiles
		want string
	}{
		{"missing key", service.TLSFiles{Cert: a.Cert}, "--tls-cert given without --tls-key"},
		{"key file absent", service.TLSFiles{Cert: a.Cert, Key: dir + "/absent.key"}, "tls key: open " + dir + "/absent.key"},
		{"mismatched pair", service.TLSFiles{Cert: a.Cert, Key: b.Key}, "private key does not match public key"},
		{"client auth all without a CA", service.TLSFiles{Cert: a.Cert, Key: a.Key, ClientAuth: "all"}, "needs --tls-client-ca"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := app.Common{Kafka: []string{"127.0.0.1:1"}, ClickHouse: "off", Partitions: 1, Replication: 1, Grace: time.Second, TLS: tc.tls}
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
			start := time.Now()
			_, err := app.Bootstrap(context.Background(), c, zap.NewNop(), service.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Bootstrap: %v, want %q", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Bootstrap took %s: it waited for the broker instead of refusing the configuration", d)
			}
		})
	}
}
