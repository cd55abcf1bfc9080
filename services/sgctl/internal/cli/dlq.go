package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/kafka"
)

func init() {
	register(command{"dlq", "dlq list|replay --kafka BROKERS [--stage S --handler H --tenant T --since T --until T --limit N] [--dry-run]", runDLQ})
}

// dlqNow is the clock of relative --since/--until and of the re-drive
// header; tests replace it.
var dlqNow = time.Now

// dlqLine is one dead letter as `dlq list` and `dlq replay` print it.
type dlqLine struct {
	DLQPartition int    `json:"dlq_partition"`
	DLQOffset    int64  `json:"dlq_offset"`
	Stage        string `json:"stage"`
	Handler      string `json:"handler"`
	Reason       string `json:"reason"`
	Tenant       string `json:"tenant"`
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	Offset       int64  `json:"offset"`
	FailedAt     string `json:"failed_at"`
	Bytes        int    `json:"bytes"`
}

// dlqSummary is the last line of `dlq replay` (and the line `dlq list`
// writes to standard error).
type dlqSummary struct {
	Command     string `json:"command"`
	Matched     int    `json:"matched"`
	Duplicates  int    `json:"duplicates"`
	Selected    int    `json:"selected"`
	Redriven    int    `json:"redriven"`
	DryRun      bool   `json:"dry_run"`
	Undecodable int    `json:"undecodable"`
}

type dlqFlags struct {
	brokers      string
	filter       app.DeadLetterFilter
	since, until string
	limit        int
	dryRun       bool
	timeout      time.Duration
}

func runDLQ(args []string, _ io.Reader, out, errOut io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(errOut, "usage: sgctl dlq list|replay [flags]  (sgctl dlq list -h for the flags)")
		return 2
	}
	sub := args[0]
	fs := flags("dlq "+sub, errOut)
	var f dlqFlags
	def := os.Getenv("SENDGUARD_KAFKA")
	if def == "" {
		def = "127.0.0.1:9092"
	}
	fs.StringVar(&f.brokers, "kafka", def, "Kafka brokers, comma separated (env SENDGUARD_KAFKA)")
	fs.StringVar(&f.filter.Stage, "stage", "", "only dead letters of this stage (e.g. normalizer)")
	fs.StringVar(&f.filter.Handler, "handler", "", "only dead letters of this handler/parser (e.g. sendgrid)")
	fs.StringVar(&f.filter.Tenant, "tenant", "", "only dead letters of this tenant")
	fs.StringVar(&f.since, "since", "", "failed at or after: RFC 3339 time, or a duration ago (24h)")
	fs.StringVar(&f.until, "until", "", "failed before: RFC 3339 time, or a duration ago")
	fs.IntVar(&f.limit, "limit", 0, "at most this many dead letters, oldest first (0: all)")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "bound of the whole command")
	if sub == "replay" {
		fs.BoolVar(&f.dryRun, "dry-run", false, "print what would be re-driven, re-drive nothing")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := f.resolve(dlqNow(), fs); err != nil {
		fmt.Fprintf(errOut, "sgctl dlq %s: %v\n", sub, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	if err := dlqRun(ctx, sub, f, out, errOut); err != nil {
		fmt.Fprintf(errOut, "sgctl dlq %s: %v\n", sub, err)
		return 1
	}
	return 0
}

// resolve parses the time bounds relative to now and checks the flags.
func (f *dlqFlags) resolve(now time.Time, fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if strings.TrimSpace(f.brokers) == "" {
		return errors.New("--kafka: at least one broker is required")
	}
	if f.limit < 0 {
		return fmt.Errorf("--limit %d: want ≥ 0", f.limit)
	}
	var err error
	if f.filter.Since, err = parseWhen(f.since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if f.filter.Until, err = parseWhen(f.until, now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if !f.filter.Since.IsZero() && !f.filter.Until.IsZero() && !f.filter.Since.Before(f.filter.Until) {
		return errors.New("--since must be before --until")
	}
	return nil
}

// parseWhen reads an RFC 3339 time, or a positive duration meaning that
// long before now; "" is the zero time (unbounded).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time or a positive duration such as 24h", s)
	}
	return now.Add(-d), nil
}

func dlqRun(ctx context.Context, sub string, f dlqFlags, out, errOut io.Writer) error {
	brokers := strings.Split(f.brokers, ",")
	entries, undecodable, err := app.ReadDeadLetters(ctx, brokers, f.filter)
	if err != nil {
		return err
	}
	sel := app.SelectDeadLetters(entries, f.filter, f.limit)
	sum := dlqSummary{Command: "dlq " + sub, Matched: sel.Matched, Duplicates: sel.Duplicates,
		Selected: len(sel.Entries), DryRun: f.dryRun, Undecodable: undecodable}
	enc := json.NewEncoder(out)
	for _, e := range sel.Entries {
		if err := enc.Encode(lineOf(e)); err != nil {
			return err
		}
	}
	if sub == "list" {
		return json.NewEncoder(errOut).Encode(sum)
	}
	if !f.dryRun {
		p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
		if err != nil {
			return err
		}
		n, rerr := app.Redrive(ctx, p, sel.Entries, dlqNow())
		if err := errors.Join(rerr, p.Close()); err != nil {
			return err
		}
		sum.Redriven = n
	}
	return enc.Encode(sum)
}

func lineOf(e app.DeadLetterEntry) dlqLine {
	dl := e.Letter
	return dlqLine{
		DLQPartition: e.Partition, DLQOffset: e.Offset,
		Stage: dl.GetStage(), Handler: dl.GetHandler(), Reason: dl.GetReason(), Tenant: dl.GetTenant(),
		Topic: dl.GetTopic(), Partition: dl.GetPartition(), Offset: dl.GetOffset(),
		FailedAt: dl.GetFailedAt().AsTime().UTC().Format(time.RFC3339Nano), Bytes: len(dl.GetValue()),
	}
}
