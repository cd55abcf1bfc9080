package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/services/devstack/internal/devstack"
)

const benchKey = "bench-key"

// benchStack is a devstack running in this process (broker and five stages
// talking over the Kafka protocol), for benchmarks and profiles.
type benchStack struct {
	http, grpc, kafka string
	cancel            context.CancelFunc
	done              chan error
}

// startBenchStack starts the devstack on free ports with analytics off, or
// on the ClickHouse at SENDGUARD_BENCH_CLICKHOUSE when set. tick is the
// snapshot re-publication period (the devstack default is 10s; every tick
// re-publishes every scope's snapshot).
func startBenchStack(tb testing.TB, tick time.Duration) *benchStack {
	tb.Helper()
	service.TuneGC() // as the binary does
	s := &benchStack{http: kafkatest.FreeAddr(tb), grpc: kafkatest.FreeAddr(tb), kafka: kafkatest.FreeAddr(tb), done: make(chan error, 1)}
	ch := os.Getenv("SENDGUARD_BENCH_CLICKHOUSE")
	if ch == "" {
		ch = "off"
	}
	cfg := devstack.Config{
		DataDir: tb.TempDir(), HTTPAddr: s.http, GRPCAddr: s.grpc, KafkaAddr: s.kafka,
		ClickHouse: ch, ClickHouseDB: fmt.Sprintf("sendguard_bench_%d", time.Now().UnixNano()),
		APIKey: benchKey, Partitions: 4, LogFormat: "console", LogLevel: "error", Tick: tick,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var out bytes.Buffer
	go func() { s.done <- devstack.Run(ctx, cfg, zap.NewNop(), &out) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-s.done:
			tb.Fatalf("devstack exited before ready: %v", err)
		default:
		}
		resp, err := http.Get("http://" + s.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			tb.Fatal("devstack not ready within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Cleanup(func() { s.stop(tb) })
	return s
}

func (s *benchStack) stop(tb testing.TB) {
	tb.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			tb.Errorf("devstack exited: %v", err)
		}
	case <-time.After(60 * time.Second):
		tb.Error("devstack did not stop within 60s")
	}
}
