package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// devstackProcess is the devstack binary running as a child process.
type devstackProcess struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	http string
}

func buildDevstack(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "devstack")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startProcess(t *testing.T, bin, dataDir, httpAddr, grpcAddr, kafkaAddr string) *devstackProcess {
	t.Helper()
	p := &devstackProcess{out: &bytes.Buffer{}, http: httpAddr}
	p.cmd = exec.Command(bin, "--data-dir", dataDir, "--http-addr", httpAddr, "--grpc-addr", grpcAddr,
		"--kafka-addr", kafkaAddr, "--clickhouse", "off", "--api-key", "crash-key", "--log-level", "warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	t.Fatalf("devstack not ready within 30s:\n%s", p.out)
	return nil
}

// TestKill9KeepsEverythingAcknowledged kills the devstack with SIGKILL while
// clients post events, restarts it on the same data dir, and checks that
// every event answered 202 before the kill is in the log and gets
// normalized after the restart.
func TestKill9KeepsEverythingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the devstack binary")
	}
	bin := buildDevstack(t)
	dataDir := t.TempDir()
	httpAddr, grpcAddr, kafkaAddr := kafkatest.FreeAddr(t), kafkatest.FreeAddr(t), kafkatest.FreeAddr(t)
	p := startProcess(t, bin, dataDir, httpAddr, grpcAddr, kafkaAddr)

	// An unsubscribe enforced before the kill must still be enforced after.
	checkGone := func() sgv1.Verdict {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer crash-key"), 5*time.Second)
		defer cancel()
		r, err := sgv1.NewPermissionServiceClient(conn).Check(ctx, &sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: "gone@example.com", DryRun: true})
		if err != nil {
			return sgv1.Verdict_VERDICT_UNSPECIFIED
		}
		return r.GetVerdict()
	}
	unsub := fmt.Sprintf(`{"event_id":"unsub-1","type":"unsubscribed","occurred_at":%q,"sender":"ann@acme.io","recipient":"gone@example.com"}`,
		time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
	req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/events", strings.NewReader(unsub))
	req.Header.Set("Authorization", "Bearer crash-key")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post unsubscribe: %v %v", resp, err)
	}
	for deadline := time.Now().Add(10 * time.Second); checkGone() != sgv1.Verdict_VERDICT_DENY; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("unsubscribe not enforced before the kill")
		}
	}

	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		wg       sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	occurred := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := 0; ctx.Err() == nil; batch++ {
				var b strings.Builder
				var ids []string
				for i := range 25 {
					id := fmt.Sprintf("w%d-b%d-%d", w, batch, i)
					ids = append(ids, id)
					fmt.Fprintf(&b, `{"event_id":%q,"type":"delivered","occurred_at":%q,"sender":"ann@acme.io","recipient":"r%d@example.com"}`+"\n", id, occurred, i)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/v1/events", strings.NewReader(b.String()))
				req.Header.Set("Content-Type", "application/x-ndjson")
				req.Header.Set("Authorization", "Bearer crash-key")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the process is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					for _, id := range ids {
						accepted[id] = true
					}
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	stop()
	wg.Wait()
	if len(accepted) == 0 {
		t.Fatalf("no request was accepted before the kill:\n%s", p.out)
	}
	t.Logf("%d events acknowledged before SIGKILL", len(accepted))

	p2 := startProcess(t, bin, dataDir, httpAddr, grpcAddr, kafkaAddr)
	defer func() {
		_ = p2.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p2.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devstack exit after SIGTERM: %v\n%s", err, p2.out)
			}
		case <-time.After(30 * time.Second):
			_ = p2.cmd.Process.Kill()
			t.Errorf("devstack did not stop within 30s of SIGTERM")
		}
	}()
	if v := checkGone(); v != sgv1.Verdict_VERDICT_DENY {
		t.Fatalf("after SIGKILL and restart, the unsubscribed recipient is %v, want DENY", v)
	}
	brokers := []string{kafkaAddr}
	missing := func(topic string) []string {
		seen := map[string]bool{}
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := kafka.ReadAll(rctx, brokers, topic, func(m kafka.Message) error {
			switch topic {
			case topics.Raw:
				env := &sgv1.RawEnvelope{}
				if err := proto.Unmarshal(m.Value(), env); err != nil {
					return err
				}
				// Generic envelopes hold one event's JSON, or the events of
				// NDJSON lines as length-delimited protobuf (NDJSON lines
				// before): read their ids as the normalizer does.
				evs, err := normalize.Parse(env, normalize.Options{})
				if err != nil {
					return fmt.Errorf("envelope %s: %w", env.GetEnvelopeId(), err)
				}
				for _, ev := range evs {
					seen[ev.GetEventId()] = true
				}
			default:
				ev := &sgv1.Event{}
				if err := proto.Unmarshal(m.Value(), ev); err != nil {
					return err
				}
				seen[ev.GetEventId()] = true
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		var out []string
		for id := range accepted {
			if !seen[id] {
				out = append(out, id)
			}
		}
		return out
	}
	if m := missing(topics.Raw); len(m) > 0 {
		t.Fatalf("%d acknowledged events missing from %s after the kill, e.g. %v", len(m), topics.Raw, m[:min(5, len(m))])
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := missing(topics.Events)
		if len(m) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged events never normalized after restart, e.g. %v\n%s", len(m), m[:min(5, len(m))], p2.out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "kafka")); err != nil {
		t.Fatalf("broker data dir: %v", err)
	}
}
