package main

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/loadgen/drive"
)

var (
	benchDuration = flag.Duration("bench.duration", 10*time.Second, "load duration of BenchmarkPipeline and BenchmarkCheck")
	benchRate     = flag.Float64("bench.rate", 0, "target events/s of BenchmarkPipeline (0: as fast as possible)")
	benchConc     = flag.Int("bench.concurrency", 8, "requests in flight (pipeline) or callers (check)")
)

// BenchmarkPipeline runs the devstack in this process and drives it like
// `sgctl bench pipeline` (HTTP NDJSON load, complaint spikes, exactly-once
// accounting, broker lag), so `go test -cpuprofile` profiles the whole
// pipeline. Run it once: -run '^$' -bench Pipeline -benchtime 1x.
func BenchmarkPipeline(b *testing.B) {
	s := startBenchStack(b)
	sink := drive.NewHTTPSink(s.http, drive.Keys{"default": benchKey}, *benchConc)
	defer sink.Close()
	for b.Loop() {
		res, err := drive.Pipeline(context.Background(), drive.PipelineConfig{
			Sink: sink, Kafka: []string{s.kafka}, Tenant: "default", Duration: *benchDuration, Rate: *benchRate,
			Batch: 1000, Concurrency: *benchConc, Spikes: 3, Drain: 120 * time.Second,
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
}

// BenchmarkCheck runs the devstack in this process and drives
// PermissionService.Check like `sgctl bench check`.
func BenchmarkCheck(b *testing.B) {
	s := startBenchStack(b)
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
