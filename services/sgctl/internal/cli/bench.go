package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/loadgen/drive"
)

func init() {
	register(command{"bench", "bench pipeline --http ADDR --grpc ADDR --kafka ADDR --api-key K --duration D [--transport http|grpc|kafka --rate N --spikes N] | bench check --grpc ADDR --api-key K --duration D [--concurrency N]", runBench})
}

func runBench(args []string, _ io.Reader, out, errOut io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(errOut, "usage: sgctl bench pipeline|check [flags]")
		return 2
	}
	switch args[0] {
	case "pipeline":
		return benchPipeline(args[1:], out, errOut)
	case "check":
		return benchCheck(args[1:], out, errOut)
	}
	fmt.Fprintf(errOut, "sgctl bench: unknown benchmark %q (pipeline or check)\n", args[0])
	return 2
}

func benchPipeline(args []string, out, errOut io.Writer) int {
	fs := flags("bench pipeline", errOut)
	var sf sinkFlags
	sf.bind(fs)
	transport := fs.String("transport", "http", "how the load is sent: http, grpc or kafka")
	tenant := fs.String("tenant", "default", "the API key's tenant")
	duration := fs.Duration("duration", 0, "how long to load")
	rate := fs.Float64("rate", 0, "target events per second (0: as fast as possible)")
	conc := fs.Int("concurrency", 8, "requests in flight")
	batch := fs.Int("batch", 1000, "events per request")
	spikes := fs.Int("spikes", 5, "complaint spikes injected over the duration (each on a fresh domain)")
	drain := fs.Duration("drain", 0, "longest wait after the load for counts and detections (default 60s)")
	seed := fs.Uint64("seed", 1, "generator seed")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *duration <= 0 || sf.kafka == "" {
		fmt.Fprintln(errOut, "sgctl bench pipeline: --duration and --kafka are required")
		return 2
	}
	if *transport != "kafka" && sf.keys == "" {
		fmt.Fprintln(errOut, "sgctl bench pipeline: --api-key is required")
		return 2
	}
	if *transport != "kafka" {
		// One key: the events carry the tenant, which ingest checks against it.
		sf.keys = *tenant + ":" + sf.keys
	}
	sink, err := sf.sink(*transport, *conc)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl bench pipeline: %v\n", err)
		return 2
	}
	defer sink.Close()
	var progress io.Writer = errOut
	if *quiet {
		progress = nil
	}
	ctx, stop := signalContext()
	defer stop()
	res, err := drive.Pipeline(ctx, drive.PipelineConfig{
		Sink: sink, Kafka: kafka.ParseBrokers(sf.kafka), Tenant: *tenant, Duration: *duration, Rate: *rate,
		Batch: *batch, Concurrency: *conc, Spikes: *spikes, Seed: *seed, Drain: *drain, Progress: progress,
	})
	if err != nil {
		fmt.Fprintf(errOut, "sgctl bench pipeline: %v\n", err)
		return 1
	}
	out.Write(drive.MarshalLine(res))
	if res.Lost > 0 || res.Duplicated > 0 || res.SpikesDetected < res.Spikes {
		return 1
	}
	return 0
}

func benchCheck(args []string, out, errOut io.Writer) int {
	fs := flags("bench check", errOut)
	addr := fs.String("grpc", "127.0.0.1:9090", "PermissionService address")
	key := fs.String("api-key", os.Getenv("SENDGUARD_API_KEY"), "API key (env SENDGUARD_API_KEY)")
	tenant := fs.String("tenant", "default", "tenant whose senders are drawn")
	duration := fs.Duration("duration", 0, "how long to check")
	conc := fs.Int("concurrency", 16, "concurrent callers")
	conns := fs.Int("conns", 2, "gRPC connections")
	seed := fs.Uint64("seed", 1, "generator seed")
	dry := fs.Bool("dry-run", false, "do not consume throttle capacity")
	var ct clientTLS
	ct.bind(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *duration <= 0 || *key == "" {
		fmt.Fprintln(errOut, "sgctl bench check: --api-key and --duration are required")
		return 2
	}
	tlsCfg, err := ct.config()
	if err != nil {
		fmt.Fprintf(errOut, "sgctl bench check: %v\n", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	res, err := drive.Checks(ctx, drive.ChecksConfig{
		Addr: *addr, Key: *key, Duration: *duration, Concurrency: *conc, Conns: *conns, Tenant: *tenant, Seed: *seed, DryRun: *dry, TLS: tlsCfg,
	})
	if err != nil {
		fmt.Fprintf(errOut, "sgctl bench check: %v\n", err)
		return 1
	}
	out.Write(drive.MarshalLine(res))
	return 0
}
