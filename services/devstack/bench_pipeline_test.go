package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served by -bench.pprof
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/loadgen/drive"
)

var (
	benchDuration = flag.Duration("bench.duration", 10*time.Second, "load duration of BenchmarkPipeline and BenchmarkCheck")
	benchRate     = flag.Float64("bench.rate", 0, "target events/s of BenchmarkPipeline (0: as fast as possible)")
	benchConc     = flag.Int("bench.concurrency", 8, "requests in flight (pipeline) or callers (check)")
	benchHeap     = flag.String("bench.heapprofile", "", "write a heap profile of the running stack after the load (memory per active scope)")
	benchSpikes   = flag.Int("bench.spikes", 3, "complaint spikes injected over the load of BenchmarkPipeline (more make a steadier detection p99)")
	benchPprof    = flag.String("bench.pprof", "", "serve net/http/pprof on this address during the benchmark (profiles of a phase of a long soak)")
	benchTrace    = flag.String("bench.trace", "", "keep a flight recorder of the execution trace during BenchmarkPipeline and write the last seconds to DIR/spikeN.trace when spike N's detection took longer than -bench.trace-over")
	benchTraceMin = flag.Duration("bench.trace-over", 500*time.Millisecond, "detection latency from which -bench.trace saves a trace")
)

// slowSpikeTracer returns an OnDetect hook writing the flight recorder's
// window to dir/spikeN.trace when spike N took longer than over, and the
// function stopping the recorder once the writes started are done; a nil
// hook when dir is empty.
func slowSpikeTracer(tb testing.TB, dir string, over time.Duration) (func(int, time.Duration), func()) {
	if dir == "" {
		return nil, func() {}
	}
	// The window must reach back past the acknowledgement of the slowest
	// spike worth a look.
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: 5 * time.Second, MaxBytes: 512 << 20})
	if err := fr.Start(); err != nil {
		tb.Fatal(err)
	}
	var (
		mu     sync.Mutex // WriteTo allows one caller at a time
		writes sync.WaitGroup
	)
	return func(spike int, d time.Duration) {
		if d < over {
			return
		}
		writes.Go(func() {
			mu.Lock()
			defer mu.Unlock()
			name := filepath.Join(dir, fmt.Sprintf("spike%d.trace", spike))
			f, err := os.Create(name)
			if err != nil {
				tb.Logf("trace of spike %d: %v", spike, err)
				return
			}
			defer f.Close()
			if _, err := fr.WriteTo(f); err != nil {
				tb.Logf("trace of spike %d: %v", spike, err)
				return
			}
			tb.Logf("spike %d took %s: trace in %s", spike, d, name)
		})
	}, func() { writes.Wait(); fr.Stop() } // no write (nor Logf) after the benchmark
}

// gauge reads one unlabelled metric from the stack's /metrics.
func gauge(tb testing.TB, base, name string) float64 {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// BenchmarkPipeline runs the devstack in this process and drives it like
// `sgctl bench pipeline` (HTTP NDJSON load, complaint spikes, exactly-once
// accounting, broker lag), so `go test -cpuprofile` profiles the whole
// pipeline. Run it once: -run '^$' -bench Pipeline -benchtime 1x.
func BenchmarkPipeline(b *testing.B) {
	if *benchPprof != "" {
		go func() { _ = http.ListenAndServe(*benchPprof, nil) }()
	}
	s := startBenchStack(b, 10*time.Second)
	sink := drive.NewHTTPSink(s.http, drive.Keys{"default": benchKey}, *benchConc)
	defer sink.Close()
	onDetect, stopTrace := slowSpikeTracer(b, *benchTrace, *benchTraceMin)
	defer stopTrace()
	for b.Loop() {
		res, err := drive.Pipeline(context.Background(), drive.PipelineConfig{
			Sink: sink, Kafka: []string{s.kafka}, Tenant: "default", Duration: *benchDuration, Rate: *benchRate,
			Batch: 1000, Concurrency: *benchConc, Spikes: *benchSpikes, Drain: 120 * time.Second, OnDetect: onDetect,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s", drive.MarshalLine(res))
		b.ReportMetric(res.EventsPerSec, "events/s")
		b.ReportMetric(res.IngestEventsPerSec, "ingest-events/s")
		b.ReportMetric(res.DetectP99MS, "detect-p99-ms")
		b.ReportMetric(float64(res.ConsumerLagMax), "lag-max")
		b.ReportMetric(float64(res.Lost), "lost")
		b.ReportMetric(float64(res.Duplicated), "duplicated")
	}
	b.ReportMetric(gauge(b, "http://"+s.http, "sendguard_windows_active_scopes"), "scopes")
	if *benchHeap != "" {
		// The stack is still running: its window and enforcement state is
		// live. Memory per scope = inuse of pkg/window ÷ scopes.
		runtime.GC()
		f, err := os.Create(*benchHeap)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck runs the devstack in this process and drives
// PermissionService.Check like `sgctl bench check`.
func BenchmarkCheck(b *testing.B) {
	s := startBenchStack(b, 10*time.Second)
	for b.Loop() {
		res, err := drive.Checks(context.Background(), drive.ChecksConfig{
			Addr: s.grpc, Key: benchKey, Duration: *benchDuration, Concurrency: *benchConc * 2,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s", drive.MarshalLine(res))
		b.ReportMetric(res.ChecksPerSec, "checks/s")
		b.ReportMetric(res.P50MS, "p50-ms")
		b.ReportMetric(res.P99MS, "p99-ms")
	}
}
