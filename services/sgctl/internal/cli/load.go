package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/loadgen"
	"github.com/sendguard/sendguard/pkg/loadgen/drive"
)

func init() {
	register(command{"load", "load --http ADDR|--grpc ADDR|--kafka BROKERS [--api-key K|tenant:K,…] [--rate N] [--duration D|--events N] [--concurrency N] [--batch N] [--seed N] [--complaint-spike DOMAIN@OFFSET]", runLoad})
}

// sinkFlags are the transport flags load and bench pipeline share.
type sinkFlags struct {
	http, grpc, kafka, keys string
	tls                     clientTLS
}

func (s *sinkFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&s.http, "http", "", "ingest HTTP address (POST /v1/events, NDJSON)")
	fs.StringVar(&s.grpc, "grpc", "", "ingest gRPC address (IngestService.PublishStream)")
	fs.StringVar(&s.kafka, "kafka", "", "Kafka brokers (comma separated)")
	fs.StringVar(&s.keys, "api-key", os.Getenv("SENDGUARD_API_KEY"), "API key, or tenant:KEY,… for several tenants (env SENDGUARD_API_KEY)")
	s.tls.bind(fs)
}

// only returns the transport of the one address given (http first).
func (s *sinkFlags) only() string {
	switch {
	case s.http != "":
		return "http"
	case s.grpc != "":
		return "grpc"
	case s.kafka != "":
		return "kafka"
	}
	return ""
}

// sink returns the sink for transport (http, grpc or kafka).
func (s *sinkFlags) sink(transport string, conns int) (drive.Sink, error) {
	var keys drive.Keys
	if transport != "kafka" {
		var err error
		if keys, err = drive.ParseKeys(s.keys); err != nil {
			return nil, err
		}
	}
	tlsCfg, err := s.tls.config()
	if err != nil {
		return nil, err
	}
	switch transport {
	case "http":
		if s.http == "" {
			return nil, fmt.Errorf("--http is required")
		}
		return drive.NewHTTPSink(s.http, keys, conns, drive.WithTLS(tlsCfg)), nil
	case "grpc":
		if s.grpc == "" {
			return nil, fmt.Errorf("--grpc is required")
		}
		return drive.NewGRPCSink(s.grpc, keys, drive.WithTLS(tlsCfg))
	case "kafka":
		if s.kafka == "" {
			return nil, fmt.Errorf("--kafka is required")
		}
		return drive.NewKafkaSink(kafka.ParseBrokers(s.kafka))
	}
	return nil, fmt.Errorf("unknown transport %q (http, grpc or kafka)", transport)
}

// signalContext is cancelled on SIGINT/SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runLoad(args []string, _ io.Reader, out, errOut io.Writer) int {
	fs := flags("load", errOut)
	var sf sinkFlags
	sf.bind(fs)
	transport := fs.String("transport", "", "http, grpc or kafka (default: the one address given)")
	rate := fs.Float64("rate", 0, "target events per second (0: as fast as possible)")
	duration := fs.Duration("duration", 0, "how long to send")
	events := fs.Int64("events", 0, "how many events to send")
	conc := fs.Int("concurrency", 4, "requests in flight")
	batch := fs.Int("batch", 500, "events per request")
	seed := fs.Uint64("seed", 1, "generator seed (same seed, same events)")
	tenants := fs.String("tenants", "", "tenants for --kafka (comma separated; default: default)")
	domains := fs.Int("domains", 50, "sending domains per tenant (Zipf)")
	senders := fs.Int("senders", 20, "senders per domain (Zipf)")
	idPrefix := fs.String("id-prefix", "", "event id prefix (default: unique per run)")
	bounce := fs.Float64("bounce-rate", loadgen.DefaultRates.Bounce, "share of messages that bounce")
	complaint := fs.Float64("complaint-rate", loadgen.DefaultRates.Complaint, "share of delivered messages complained about")
	unsub := fs.Float64("unsubscribe-rate", loadgen.DefaultRates.Unsubscribe, "share of delivered messages unsubscribed")
	spike := fs.String("complaint-spike", "", "DOMAIN@OFFSET: complaint rate 2% on DOMAIN from OFFSET (e.g. 30s) of event time")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *duration <= 0 && *events <= 0 {
		fmt.Fprintln(errOut, "sgctl load: --duration or --events is required")
		return 2
	}
	if *transport == "" {
		*transport = sf.only()
	}
	gen := loadgen.Config{
		Seed: *seed, Start: time.Now().UTC(), Domains: *domains, SendersPerDomain: *senders,
		MessagesPerSecond: max(*rate, 1000) / 2.2, MaxDelay: 5 * time.Second, IDPrefix: *idPrefix,
	}
	if gen.IDPrefix == "" {
		gen.IDPrefix = fmt.Sprintf("load%x", time.Now().UnixNano())
	}
	gen.Rates = loadgen.DefaultRates
	gen.Rates.Bounce, gen.Rates.Complaint, gen.Rates.Unsubscribe = *bounce, *complaint, *unsub
	if *transport == "kafka" {
		gen.Tenants = []string{"default"}
		if *tenants != "" {
			gen.Tenants = strings.Split(*tenants, ",")
		}
	} else if keys, err := drive.ParseKeys(sf.keys); err == nil {
		gen.Tenants = keys.Tenants()
		gen.OmitTenant = len(gen.Tenants) == 0
	}
	if *spike != "" {
		dom, off, ok := strings.Cut(*spike, "@")
		d, err := time.ParseDuration(off)
		if !ok || err != nil {
			fmt.Fprintf(errOut, "sgctl load: --complaint-spike %q: want DOMAIN@OFFSET\n", *spike)
			return 2
		}
		gen.Anomalies = append(gen.Anomalies, loadgen.Anomaly{Level: "domain", Target: dom, Start: gen.Start.Add(d), Rates: loadgen.Rates{Complaint: 0.02}})
	}
	sink, err := sf.sink(*transport, *conc)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl load: %v\n", err)
		return 2
	}
	defer sink.Close()
	ctx, stop := signalContext()
	defer stop()
	res, err := drive.Load(ctx, drive.LoadConfig{
		Gen: gen, Sink: sink, Rate: *rate, Duration: *duration, Events: *events,
		Batch: *batch, Concurrency: *conc, Progress: errOut,
	})
	if err != nil {
		fmt.Fprintf(errOut, "sgctl load: %v\n", err)
		return 1
	}
	out.Write(drive.MarshalLine(res))
	if res.Accepted == 0 {
		return 1
	}
	return 0
}
