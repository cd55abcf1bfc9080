package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/loadgen/drive"
)

// faultServices are the five service binaries, in pipeline order.
var faultServices = []string{"ingest", "normalizer", "windowed-metrics", "rule-evaluator", "actuator"}

// faultProc is one child process of the fault tests: a service binary or
// the broker. Its output goes to a file that survives restarts.
type faultProc struct {
	name  string
	path  string
	args  []string
	env   []string
	admin string // admin address serving /readyz; empty for the broker
	log   string
	cmd   *exec.Cmd
	done  chan struct{}
}

func (p *faultProc) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "---- start %s %s\n", p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done = cmd, done
}

// running reports whether the process has not exited.
func (p *faultProc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (p *faultProc) kill9(t *testing.T) {
	t.Helper()
	if !p.running() {
		t.Fatalf("%s is not running before SIGKILL:\n%s", p.name, p.tail())
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// stop sends SIGTERM and waits up to grace; then SIGKILL. It reports
// whether the process exited 0 within the grace.
func (p *faultProc) stop(grace time.Duration) bool {
	if !p.running() {
		return false
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.Success()
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// tail returns the end of the process's output.
func (p *faultProc) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	const n = 6000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitReady waits until the service's /readyz answers 200 (the broker: until
// it answers the Kafka protocol).
func (p *faultProc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.running() {
			t.Fatalf("%s exited before ready:\n%s", p.name, p.tail())
		}
		if p.admin == "" {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := kafka.Ping(ctx, []string{p.args[0]})
			cancel()
			if err == nil {
				return
			}
		} else if resp, err := http.Get("http://" + p.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %s:\n%s", p.name, timeout, p.tail())
}

// faultStack is the broker and the five services, each its own process,
// configured only by SENDGUARD_* variables as in docker-compose.yml.
type faultStack struct {
	kafka  string
	http   string
	broker *faultProc
	procs  map[string]*faultProc
	ch     *privateClickHouse // nil: analytics off
	chDB   string
}

// buildFaultBinaries builds the service binaries and the broker into dir.
func buildFaultBinaries(t *testing.T, dir string) {
	t.Helper()
	args := []string{"build", "-o", dir + string(filepath.Separator), "./testdata/faultbroker"}
	for _, n := range faultServices {
		args = append(args, "github.com/sendguard/sendguard/services/"+n)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

// startFaultStack builds and starts the broker (on a data dir) and the five
// services. keys maps tenants to API keys; ch is the ClickHouse the services
// write to, or nil for analytics off.
func startFaultStack(t *testing.T, keys map[string]string, ch *privateClickHouse) *faultStack {
	t.Helper()
	dir := t.TempDir()
	// Registered before the processes start, so it runs after they stop:
	// a failure shows what the services said, not only the figures.
	t.Cleanup(func() {
		if t.Failed() {
			logTails(t, dir, 40)
		}
	})
	buildFaultBinaries(t, dir)
	s := &faultStack{kafka: kafkatest.FreeAddr(t), http: kafkatest.FreeAddr(t), procs: map[string]*faultProc{}, ch: ch, chDB: "sendguard_fault"}
	s.broker = &faultProc{name: "broker", path: filepath.Join(dir, "faultbroker"), args: []string{s.kafka, filepath.Join(dir, "kafka")},
		env: os.Environ(), log: filepath.Join(dir, "broker.log")}
	s.broker.start(t)
	s.broker.waitReady(t, 30*time.Second)

	var apiKeys []string
	for tenant, key := range keys {
		apiKeys = append(apiKeys, tenant+":sha256:"+auth.Hash(key))
	}
	sort.Strings(apiKeys)
	common := []string{
		"SENDGUARD_KAFKA=" + s.kafka,
		"SENDGUARD_PARTITIONS=4",
		"SENDGUARD_API_KEYS=" + strings.Join(apiKeys, ","),
		"SENDGUARD_LOG_LEVEL=warn",
		"SENDGUARD_SHUTDOWN_GRACE=5s",
		"SENDGUARD_CLICKHOUSE_DB=" + s.chDB,
	}
	if ch != nil {
		common = append(common, "SENDGUARD_CLICKHOUSE="+ch.addr, "SENDGUARD_REQUIRE_CLICKHOUSE=true")
	} else {
		common = append(common, "SENDGUARD_CLICKHOUSE=off")
	}
	extra := map[string][]string{
		"ingest":   {"SENDGUARD_HTTP_ADDR=" + s.http, "SENDGUARD_GRPC_ADDR=" + kafkatest.FreeAddr(t)},
		"actuator": {"SENDGUARD_GRPC_ADDR=" + kafkatest.FreeAddr(t)},
		// No periodic re-publication of every scope during the test: the
		// decisions under test come from changes, and a tick would only
		// add load (and lag samples that are not backlog).
		"windowed-metrics": {"SENDGUARD_SNAPSHOT_TICK=10m"},
	}
	for _, n := range faultServices {
		p := &faultProc{name: n, path: filepath.Join(dir, n), admin: kafkatest.FreeAddr(t), log: filepath.Join(dir, n+".log")}
		p.env = append(append(append(os.Environ(), common...), extra[n]...), "SENDGUARD_ADMIN_ADDR="+p.admin)
		s.procs[n] = p
	}
	t.Cleanup(func() {
		// Every service drains and exits 0 on SIGTERM; all at once.
		stopping := time.Now()
		var wg sync.WaitGroup
		for _, n := range faultServices {
			if p := s.procs[n]; p.running() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if !p.stop(20 * time.Second) {
						t.Errorf("%s did not exit 0 within 20s of SIGTERM:\n%s", n, p.tail())
					}
				}()
			}
		}
		wg.Wait()
		s.broker.stop(10 * time.Second)
		t.Logf("services and broker stopped in %.1fs", time.Since(stopping).Seconds())
	})
	for _, n := range faultServices {
		s.procs[n].start(t)
	}
	for _, n := range faultServices {
		s.procs[n].waitReady(t, 60*time.Second)
	}
	return s
}

// restart kills name (a service or "broker") with SIGKILL, leaves it down
// for down, starts it again on the same configuration (the broker on the
// same data dir and port) and waits until it is ready.
func (s *faultStack) restart(t *testing.T, name string, down time.Duration) {
	t.Helper()
	p := s.broker
	if name != "broker" {
		p = s.procs[name]
	}
	p.kill9(t)
	time.Sleep(down)
	p.start(t)
	p.waitReady(t, 60*time.Second)
}

// alive fails the test for every service or broker that exited on its own.
func (s *faultStack) alive(t *testing.T) {
	t.Helper()
	for _, p := range append([]*faultProc{s.broker}, s.procs["ingest"], s.procs["normalizer"], s.procs["windowed-metrics"],
		s.procs["rule-evaluator"], s.procs["actuator"]) {
		if !p.running() {
			t.Errorf("%s exited on its own:\n%s", p.name, p.tail())
		}
	}
}

// privateClickHouse is a ClickHouse server of this test alone, started by
// scripts/clickhouse.sh on free ports in its own directory, so stopping it
// never disturbs the shared server other packages' tests use.
type privateClickHouse struct {
	dir  string
	addr string
	env  []string
}

// startPrivateClickHouse starts the server, or returns nil when
// clickhouse-server is not installed (a failure under CI=true).
func startPrivateClickHouse(t *testing.T) *privateClickHouse {
	t.Helper()
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("clickhouse-server is not installed (make clickhouse installs it): %v", err)
		}
		t.Log("clickhouse-server is not installed: the fault tests run with analytics off and without the ClickHouse fault")
		return nil
	}
	// Not t.TempDir(): its parent is private to this user, and the script
	// runs the server as the clickhouse user when it exists. In memory
	// when /dev/shm exists: the data is thrown away with the test, and
	// removing a server's directory from disk takes seconds.
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	dir, err := os.MkdirTemp(parent, "sendguard-fault-clickhouse-")
	if err != nil {
		t.Fatal(err)
	}
	tcp, httpAddr := kafkatest.FreeAddr(t), kafkatest.FreeAddr(t)
	_, tcpPort, _ := net.SplitHostPort(tcp)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	c := &privateClickHouse{dir: dir, addr: tcp, env: append(os.Environ(),
		"SENDGUARD_CH_DIR="+dir, "SENDGUARD_CH_TCP_PORT="+tcpPort, "SENDGUARD_CH_HTTP_PORT="+httpPort)}
	t.Cleanup(func() {
		// Its data goes away with it: SIGKILL (a graceful stop of 18.16
		// takes up to 20 s), by the pid the script recorded.
		began := time.Now()
		if err := c.kill(); err != nil {
			t.Errorf("private ClickHouse: %v", err)
		}
		killed := time.Since(began)
		_ = os.RemoveAll(dir)
		t.Logf("private ClickHouse killed in %.1fs, removed in %.1fs", killed.Seconds(), time.Since(began).Seconds())
	})
	if err := c.script("start"); err != nil {
		t.Fatalf("start private ClickHouse: %v", err)
	}
	return c
}

// kill ends the server with SIGKILL and waits until it is gone.
func (c *privateClickHouse) kill() error {
	b, err := os.ReadFile(filepath.Join(c.dir, "clickhouse-server.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return nil // not running
	}
	if err != nil {
		return fmt.Errorf("read pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return nil // already gone
	}
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still running 10s after SIGKILL", pid)
		}
	}
	return nil
}

// script runs scripts/clickhouse.sh ACTION for this server only.
func (c *privateClickHouse) script(action string) error {
	cmd := exec.Command("bash", "../../scripts/clickhouse.sh", action)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("clickhouse.sh %s: %w\n%s", action, err, out)
	}
	return nil
}

// kafkaClient is a fresh client (no connection survives a broker restart).
func kafkaClient(addr string) (*kafkago.Client, func()) {
	tr := &kafkago.Transport{DialTimeout: 3 * time.Second, IdleTimeout: 10 * time.Second, MetadataTTL: time.Second}
	return &kafkago.Client{Addr: kafkago.TCP(addr), Timeout: 10 * time.Second, Transport: tr}, tr.CloseIdleConnections
}

// endOffsets returns the end (next) offset of every partition of topic.
func endOffsets(ctx context.Context, addr, topic string) (map[int]int64, error) {
	c, closeIdle := kafkaClient(addr)
	defer closeIdle()
	meta, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata %s: topic not found", topic)
	}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, p := range meta.Topics[0].Partitions {
		req.Topics[topic] = append(req.Topics[topic], kafkago.LastOffsetOf(p.ID))
	}
	res, err := c.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets %s: %w", topic, err)
	}
	end := map[int]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets %s/%d: %w", topic, po.Partition, po.Error)
		}
		end[po.Partition] = po.LastOffset
	}
	return end, nil
}

// groupLag returns, per consumer group, the sum over the partitions it
// committed on of end offset minus committed offset.
func groupLag(ctx context.Context, addr string) (map[string]int64, error) {
	return drive.GroupLag(ctx, []string{addr})
}

// readRange reads topic from the offsets of from (0 for partitions it does
// not name) to the current end, calling fn for every message.
func readRange(ctx context.Context, addr, topic string, from map[int]int64, fn func(kafka.Message) error) (map[int]int64, error) {
	end, err := endOffsets(ctx, addr, topic)
	if err != nil {
		return nil, err
	}
	for p, e := range end {
		if from[p] >= e {
			continue
		}
		if err := kafka.Tail(ctx, []string{addr}, topic, p, from[p], e, 50*time.Millisecond, fn); err != nil {
			return nil, fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
	}
	return end, nil
}

// partitionOf returns the partition the pipeline's producers (kafka-go's
// Hash balancer) pick for key among n partitions.
func partitionOf(key []byte, n int) int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return (&kafkago.Hash{}).Balance(kafkago.Message{Key: key}, ps...)
}

// logTails logs the last n lines of every process log in dir, skipping
// debug lines.
func logTails(t *testing.T, dir string, n int) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Logf("%s: %v", path, err)
			continue
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if !strings.Contains(l, `"level":"debug"`) {
				lines = append(lines, l)
			}
		}
		lines = lines[max(0, len(lines)-n):]
		t.Logf("last %d lines of %s:\n%s", len(lines), filepath.Base(path), strings.Join(lines, "\n"))
	}
}
