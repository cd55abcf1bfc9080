package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
)

var webhookSamples = filepath.Join("..", "..", "..", "shared", "samples", "webhooks")

// TestIngestBinaryWebhookConfig runs the ingest binary as it is deployed:
// a webhook configuration with bad key material refuses the start with a
// clear error; a good one makes the binary verify SendGrid signatures
// (signed sample 202, unsigned 401, altered 403) and count the refusals on
// /metrics.
func TestIngestBinaryWebhookConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ingest binary")
	}
	bin := filepath.Join(t.TempDir(), "ingest")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sendguard/sendguard/services/ingest").CombinedOutput(); err != nil {
		t.Fatalf("build ingest: %v\n%s", err, out)
	}
	dir := t.TempDir()
	var side map[string]string
	raw, err := os.ReadFile(filepath.Join(webhookSamples, "sendgrid", "stronggrid_signed-test-event-batch.headers"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &side); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(webhookSamples, "sendgrid", "stronggrid_signed-test-event-batch.json"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bad key material refuses the start", func(t *testing.T) {
		cfg := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(cfg, []byte("tenants:\n  acme:\n    sendgrid_public_key: AAAA\n    mailgun_signing_key: s3cret-signing-key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "SENDGUARD_WEBHOOK_CONFIG="+cfg, "SENDGUARD_KAFKA=127.0.0.1:1", "SENDGUARD_CLICKHOUSE=off")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), `tenant "acme": sendgrid_public_key`) || strings.Contains(string(out), "s3cret-signing-key") {
			t.Fatalf("message: %s", out)
		}
	})

	t.Run("signatures are verified", func(t *testing.T) {
		_, broker := kafkatest.Start(t, "")
		cfg := filepath.Join(dir, "webhooks.yaml")
		if err := os.WriteFile(cfg, []byte("tenants:\n  acme:\n    sendgrid_public_key: "+side["verification_public_key_base64_der"]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		httpAddr := kafkatest.FreeAddr(t)
		p := &serviceProc{name: "ingest", out: &bytes.Buffer{}, admin: kafkatest.FreeAddr(t)}
		p.cmd = exec.Command(bin, "--webhook-config", cfg)
		p.cmd.Env = append(os.Environ(), "SENDGUARD_KAFKA="+broker, "SENDGUARD_CLICKHOUSE=off", "SENDGUARD_PARTITIONS=2",
			"SENDGUARD_API_KEYS=acme:sha256:"+auth.Hash("hook-key"), "SENDGUARD_LOG_LEVEL=warn",
			"SENDGUARD_HTTP_ADDR="+httpAddr, "SENDGUARD_GRPC_ADDR="+kafkatest.FreeAddr(t), "SENDGUARD_ADMIN_ADDR="+p.admin)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_ = p.cmd.Wait()
		}()
		waitReadyz(t, p)
		post := func(b []byte, sig, ts string) int {
			req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/webhooks/sendgrid?key=hook-key", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			if sig != "" {
				req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
				req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		sig, ts := side["X-Twilio-Email-Event-Webhook-Signature"], side["X-Twilio-Email-Event-Webhook-Timestamp"]
		for _, tc := range []struct {
			name    string
			body    []byte
			sig, ts string
			code    int
		}{
			{"signed sample", body, sig, ts, http.StatusAccepted},
			{"unsigned", body, "", "", http.StatusUnauthorized},
			{"altered", bytes.Replace(body, []byte("example@test.com"), []byte("example@test.org"), 1), sig, ts, http.StatusForbidden},
		} {
			if code := post(tc.body, tc.sig, tc.ts); code != tc.code {
				t.Errorf("%s: %d, want %d\n%s", tc.name, code, tc.code, p.out)
			}
		}
		resp, err := http.Get("http://" + p.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for _, want := range []string{
			`sendguard_ingest_signature_failures_total{endpoint="webhooks/sendgrid",reason="missing",tenant="acme"} 1`,
			`sendguard_ingest_signature_failures_total{endpoint="webhooks/sendgrid",reason="bad_signature",tenant="acme"} 1`,
		} {
			if !strings.Contains(string(metrics), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}
