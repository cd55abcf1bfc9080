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
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

type serviceProc struct {
	name  string
	cmd   *exec.Cmd
	out   *bytes.Buffer
	admin string
}

// TestServicesAsSeparateProcesses runs the five service binaries as
// separate processes configured only by SENDGUARD_* variables, against a
// broker reached over TCP — the shape of docker-compose.yml and
// deployments/ — and checks an unsubscribe posted to ingest makes the
// actuator's Check answer DENY. Then every service gets SIGTERM and must
// drain and exit 0.
func TestServicesAsSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs five binaries")
	}
	_, broker := kafkatest.Start(t, "")
	binDir := t.TempDir()
	names := []string{"ingest", "normalizer", "windowed-metrics", "rule-evaluator", "actuator"}
	for _, n := range names {
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, n), "github.com/sendguard/sendguard/services/"+n).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", n, err, out)
		}
	}
	ingestHTTP, ingestGRPC, actuatorGRPC := kafkatest.FreeAddr(t), kafkatest.FreeAddr(t), kafkatest.FreeAddr(t)
	common := []string{
		"SENDGUARD_KAFKA=" + broker,
		"SENDGUARD_CLICKHOUSE=off",
		"SENDGUARD_PARTITIONS=3",
		"SENDGUARD_API_KEYS=acme:sha256:" + auth.Hash("proc-key"),
		"SENDGUARD_LOG_LEVEL=warn",
		"SENDGUARD_SHUTDOWN_GRACE=5s",
	}
	extra := map[string][]string{
		"ingest":           {"SENDGUARD_HTTP_ADDR=" + ingestHTTP, "SENDGUARD_GRPC_ADDR=" + ingestGRPC},
		"actuator":         {"SENDGUARD_GRPC_ADDR=" + actuatorGRPC},
		"windowed-metrics": {"SENDGUARD_SNAPSHOT_TICK=1s"},
	}
	var procs []*serviceProc
	for _, n := range names {
		p := &serviceProc{name: n, out: &bytes.Buffer{}, admin: kafkatest.FreeAddr(t)}
		p.cmd = exec.Command(filepath.Join(binDir, n))
		p.cmd.Env = append(append(append(os.Environ(), common...), extra[n]...), "SENDGUARD_ADMIN_ADDR="+p.admin)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	defer func() {
		for _, p := range procs {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
		}
	}()
	for _, p := range procs {
		waitReadyz(t, p)
	}

	body := `[{"email":"gone@example.com","timestamp":` + fmt.Sprint(time.Now().Add(-time.Minute).Unix()) +
		`,"event":"unsubscribe","sg_event_id":"evt-unsub-1","sg_message_id":"m1"}]`
	req, _ := http.NewRequest(http.MethodPost, "http://"+ingestHTTP+"/v1/webhooks/sendgrid?key=proc-key", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}

	conn, err := grpc.NewClient(actuatorGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	perm := sgv1.NewPermissionServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer proc-key")
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := perm.Check(ctx, &sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: "gone@example.com", DryRun: true})
		if err == nil && r.GetVerdict() == sgv1.Verdict_VERDICT_DENY {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range procs {
				t.Logf("%s output:\n%s", p.name, p.out)
			}
			t.Fatalf("Check never answered DENY for the unsubscribed recipient (last: %v, %v)", r.GetVerdict(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited with %v after SIGTERM:\n%s", p.name, err, p.out)
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		}
	}
}

func waitReadyz(t *testing.T, p *serviceProc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 30s:\n%s", p.name, p.out)
}
