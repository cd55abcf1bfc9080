package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/notify"
	"github.com/sendguard/sendguard/pkg/service"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestNotifierFollowsManualCommands wires the actuator and the notifier as
// the actuator binary does: a manual pause over ControlService is announced
// once on the tenant's webhook (which fails first), with actor and reason.
func TestNotifierFollowsManualCommands(t *testing.T) {
	var mu sync.Mutex
	var posts int
	var texts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		posts++
		if posts == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var m notify.Message
		if err := json.Unmarshal(b, &m); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		texts = append(texts, m.Text)
	}))
	defer hook.Close()

	_, broker := kafkatest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := Common{Kafka: []string{broker}, ClickHouse: "off", Partitions: 2, Replication: 1,
		APIKeys: "acme:key-acme,globex:key-globex", Grace: 5 * time.Second}
	env, err := Bootstrap(ctx, c, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AddActuator(ctx, env, enforce.DefaultConfig()); err != nil {
		env.Close()
		t.Fatal(err)
	}
	o := NotifierOptions{Webhooks: "acme=" + hook.URL + "/services/secret", StatePath: filepath.Join(t.TempDir(), "alerts"),
		Attempts: 5, Timeout: time.Second}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if n, err := AddNotifier(env, o); err != nil || n == nil {
		env.Close()
		t.Fatalf("AddNotifier = %v, %v", n, err)
	}
	grpcAddr := kafkatest.FreeAddr(t)
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

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctl := sgv1.NewControlServiceClient(conn)
	pause := func(key, target string) {
		t.Helper()
		cctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		_, err := ctl.Pause(cctx, &sgv1.PauseRequest{Command: &sgv1.ManualCommand{
			Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: target, Duration: durationpb.New(time.Hour),
			Actor: "ops", Reason: "blocklisted", RequestId: "r-" + target,
		}})
		if err != nil {
			t.Fatalf("pause: %v", err)
		}
	}
	pause("key-globex", "globex.io") // no webhook for globex: not posted
	pause("key-acme", "acme.io")
	pause("key-acme", "acme.io") // a retried call
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(texts)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	mu.Lock()
	defer mu.Unlock()
	if len(texts) != 1 || posts != 2 {
		t.Fatalf("posts %d, delivered %v; want one delivery after one failure", posts, texts)
	}
	if !strings.Contains(texts[0], "[acme] pause domain acme.io by ops: blocklisted") {
		t.Errorf("alert text = %q", texts[0])
	}
}

func TestNotifierOptions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hooks.yaml")
	if err := os.WriteFile(file, []byte("default: [https://hooks.example/d]\ntenants:\n  acme: [https://hooks.example/a]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("defaults: [https://x]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		tenant  string
		want    string
		wantErr bool
	}{
		{"none", nil, "acme", "", false},
		{"env", map[string]string{"SENDGUARD_ALERT_WEBHOOKS": "acme=https://e/a,https://e/d"}, "globex", "https://e/d", false},
		{"file", map[string]string{"SENDGUARD_ALERT_WEBHOOKS_FILE": file}, "acme", "https://hooks.example/a", false},
		{"env and file", map[string]string{"SENDGUARD_ALERT_WEBHOOKS": "acme=https://e/a", "SENDGUARD_ALERT_WEBHOOKS_FILE": file}, "acme", "https://e/a https://hooks.example/a", false},
		{"bad url", map[string]string{"SENDGUARD_ALERT_WEBHOOKS": "acme=mailto:x"}, "", "", true},
		{"unknown file field", map[string]string{"SENDGUARD_ALERT_WEBHOOKS_FILE": bad}, "", "", true},
		{"missing file", map[string]string{"SENDGUARD_ALERT_WEBHOOKS_FILE": bad + ".nope"}, "", "", true},
		{"bad interval", map[string]string{"SENDGUARD_ALERT_INTERVAL": "-1s"}, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o NotifierOptions
			f := service.NewFlags("actuator", func(k string) string { return tc.env[k] })
			BindNotifier(f, &o)
			if err := f.Parse(nil); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			r, _ := o.Routes()
			if got := strings.Join(r.For(tc.tenant), " "); got != tc.want {
				t.Errorf("routes for %q = %q, want %q", tc.tenant, got, tc.want)
			}
		})
	}
}
