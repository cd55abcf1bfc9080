// Package cli implements sgctl's subcommands. Each returns an exit code:
// 0 success, 1 the input or the answer is bad (unparsable payload, lint
// errors), 2 usage errors.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/control"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/replay"
	"github.com/sendguard/sendguard/pkg/rules"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

type command struct {
	name, usage string
	run         func(args []string, in io.Reader, out, errOut io.Writer) int
}

var commands = []command{
	{"normalize", "normalize --source ses|sendgrid|mailgun|postmark|sparkpost|arf|dsn|postmaster|generic [FILE|-]", runNormalize},
	{"replay", "replay --rules FILE|default EVENTS.jsonl", runReplay},
	{"check", "check --addr HOST:PORT --api-key K --sender S --recipient R [--campaign C --variant V]", runCheck},
	{"rules", "rules lint FILE", runRules},
}

// Main runs sgctl with args and returns the exit code.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errOut)
		return 2
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], in, out, errOut)
		}
	}
	fmt.Fprintf(errOut, "sgctl: unknown command %q\n", args[0])
	usage(errOut)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sgctl COMMAND [flags]")
	for _, c := range commands {
		fmt.Fprintln(w, "  sgctl "+c.usage)
	}
}

func flags(name string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sgctl "+name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	return fs
}

// readInput reads FILE, or standard input for "-" or no argument.
func readInput(args []string, in io.Reader) ([]byte, string, error) {
	if len(args) > 1 {
		return nil, "", errors.New("one input at most")
	}
	if len(args) == 0 || args[0] == "-" {
		b, err := io.ReadAll(in)
		return b, "stdin", err
	}
	b, err := os.ReadFile(args[0])
	return b, args[0], err
}

func runNormalize(args []string, in io.Reader, out, errOut io.Writer) int {
	fs := flags("normalize", errOut)
	source := fs.String("source", "", "payload format: ses, sendgrid, mailgun, postmark, sparkpost, arf, dsn, postmaster, generic")
	tenant := fs.String("tenant", "default", "tenant to attribute the events to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	src, err := canonical.ParseSource(*source)
	if err != nil || src == sgv1.Source_SOURCE_UNSPECIFIED || src == sgv1.Source_SOURCE_GRPC {
		fmt.Fprintf(errOut, "sgctl normalize: --source %q: want ses, sendgrid, mailgun, postmark, sparkpost, arf, dsn, postmaster or generic\n", *source)
		return 2
	}
	payload, name, err := readInput(fs.Args(), in)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl normalize: %v\n", err)
		return 2
	}
	env := &sgv1.RawEnvelope{EnvelopeId: "sgctl", Tenant: *tenant, Source: src, ReceivedAt: timestamppb.Now(), Payload: payload}
	events, err := normalize.Parse(env, normalize.Options{})
	if err != nil {
		fmt.Fprintf(errOut, "sgctl normalize: %s: cannot parse as %s: %v\n", name, *source, err)
		return 1
	}
	m := protojson.MarshalOptions{UseProtoNames: true}
	for _, ev := range events {
		b, err := m.Marshal(ev)
		if err != nil {
			fmt.Fprintf(errOut, "sgctl normalize: %v\n", err)
			return 1
		}
		fmt.Fprintf(out, "%s\n", b)
	}
	return 0
}

func loadRules(spec string) (*rules.RuleSet, error) {
	if spec == "" || spec == "default" {
		return rules.Default(), nil
	}
	return rules.Load(spec)
}

func runReplay(args []string, in io.Reader, out, errOut io.Writer) int {
	fs := flags("replay", errOut)
	ruleSpec := fs.String("rules", "default", "rule-set file, or default for the built-in pack")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rs, err := loadRules(*ruleSpec)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl replay: %v\n", err)
		return 1
	}
	data, name, err := readInput(fs.Args(), in)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl replay: %v\n", err)
		return 2
	}
	events, err := replay.ReadEvents(strings.NewReader(string(data)))
	if err != nil {
		fmt.Fprintf(errOut, "sgctl replay: %s: %v\n", name, err)
		return 1
	}
	enc := json.NewEncoder(out)
	st, err := replay.Run(events, replay.Config{Rules: rs}, func(c *sgv1.ControlCommand) error {
		return enc.Encode(control.FromProto(c))
	})
	if err != nil {
		fmt.Fprintf(errOut, "sgctl replay: %v\n", err)
		return 1
	}
	fmt.Fprintf(errOut, "replayed %d events (%d skipped): %d decisions, %d commands\n", st.Events, st.Skipped, st.Decisions, st.Commands)
	return 0
}

type checkOutput struct {
	Verdict      string        `json:"verdict"`
	Reasons      []checkReason `json:"reasons"`
	RetryAfterMS int64         `json:"retry_after_ms,omitempty"`
}

type checkReason struct {
	Rule   string `json:"rule"`
	Level  string `json:"level"`
	Target string `json:"target"`
	Action string `json:"action"`
	Until  string `json:"until,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func runCheck(args []string, _ io.Reader, out, errOut io.Writer) int {
	fs := flags("check", errOut)
	addr := fs.String("addr", "127.0.0.1:9090", "PermissionService address")
	key := fs.String("api-key", os.Getenv("SENDGUARD_API_KEY"), "API key (env SENDGUARD_API_KEY)")
	req := &sgv1.CheckRequest{}
	fs.StringVar(&req.Sender, "sender", "", "sending mailbox")
	fs.StringVar(&req.Recipient, "recipient", "", "recipient address")
	fs.StringVar(&req.Campaign, "campaign", "", "campaign id")
	fs.StringVar(&req.Variant, "variant", "", "variant id")
	count := fs.Int("count", 1, "messages this check stands for")
	dry := fs.Bool("dry-run", false, "do not consume throttle capacity")
	timeout := fs.Duration("timeout", 5*time.Second, "call timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *key == "" || (req.Sender == "" && req.Recipient == "") {
		fmt.Fprintln(errOut, "sgctl check: --api-key and --sender or --recipient are required")
		return 2
	}
	req.Count, req.DryRun = int32(*count), *dry
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(errOut, "sgctl check: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*key)
	resp, err := sgv1.NewPermissionServiceClient(conn).Check(ctx, req)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl check: %v\n", err)
		return 1
	}
	o := checkOutput{Verdict: strings.TrimPrefix(resp.GetVerdict().String(), "VERDICT_"), Reasons: []checkReason{}}
	if ra := resp.GetRetryAfter(); ra != nil {
		o.RetryAfterMS = ra.AsDuration().Milliseconds()
	}
	for _, r := range resp.GetReasons() {
		cr := checkReason{Rule: r.GetRule(), Level: r.GetLevel(), Target: r.GetTarget(), Action: canonical.ActionWord(r.GetAction()), Detail: r.GetDetail()}
		if r.GetUntil() != nil {
			cr.Until = r.GetUntil().AsTime().UTC().Format(time.RFC3339)
		}
		o.Reasons = append(o.Reasons, cr)
	}
	b, _ := json.Marshal(o)
	fmt.Fprintf(out, "%s\n", b)
	return 0
}

func runRules(args []string, _ io.Reader, out, errOut io.Writer) int {
	if len(args) != 2 || args[0] != "lint" {
		fmt.Fprintln(errOut, "usage: sgctl rules lint FILE")
		return 2
	}
	data, err := os.ReadFile(args[1])
	if err != nil {
		fmt.Fprintf(errOut, "sgctl rules lint: %v\n", err)
		return 2
	}
	diags := rules.Lint(data, args[1])
	sort.SliceStable(diags, func(i, j int) bool { return diags[i].Line < diags[j].Line })
	errs := 0
	for _, d := range diags {
		fmt.Fprintln(out, d.String())
		if d.Severity == rules.SeverityError {
			errs++
		}
	}
	if errs > 0 {
		fmt.Fprintf(errOut, "%s: %d error(s)\n", args[1], errs)
		return 1
	}
	fmt.Fprintf(errOut, "%s: ok (%d warning(s))\n", args[1], len(diags))
	return 0
}
