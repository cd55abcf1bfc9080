package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/control"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// ctlConn is what every ControlService command shares: the address, the
// key, the call timeout and TLS (a client certificate when the actuator
// requires mTLS for the control plane).
type ctlConn struct {
	addr, key string
	timeout   time.Duration
	tls       clientTLS
}

func (c *ctlConn) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9090", "actuator gRPC address (ControlService)")
	fs.StringVar(&c.key, "api-key", os.Getenv("SENDGUARD_API_KEY"), "API key (env SENDGUARD_API_KEY); the tenant is the key's")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "call timeout")
	c.tls.bind(fs)
}

// dial returns a ControlService client and a context carrying the key.
func (c *ctlConn) dial() (sgv1.ControlServiceClient, context.Context, func(), error) {
	creds, err := c.tls.grpcCredentials()
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := grpc.NewClient(c.addr, creds)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect %s: %w", c.addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.key)
	return sgv1.NewControlServiceClient(conn), ctx, func() { cancel(); _ = conn.Close() }, nil
}

// ctlManual holds the flags of a manual action.
type ctlManual struct {
	ctlConn
	level, target, until, dur, actor, reason, requestID string
	timed                                               bool
}

func (m *ctlManual) bind(fs *flag.FlagSet, timed bool) {
	m.ctlConn.bind(fs)
	m.timed = timed
	fs.StringVar(&m.level, "level", "", "scope level: tenant, domain, sender, campaign, variant (campaign/variant), provider, account, recipient, domain_provider (domain|provider)")
	fs.StringVar(&m.target, "target", "", "scope target, e.g. acme.io or ann@acme.io (empty at tenant level)")
	if timed {
		fs.StringVar(&m.until, "until", "", "end time, RFC 3339 (open-ended when neither --until nor --for)")
		fs.StringVar(&m.dur, "for", "", "duration from now, e.g. 90m, 72h, 14d")
	}
	fs.StringVar(&m.actor, "actor", os.Getenv("USER"), "who issues the command (default $USER)")
	fs.StringVar(&m.reason, "reason", "", "why (required; goes into the audit log and the alert)")
	fs.StringVar(&m.requestID, "request-id", "", "idempotency key: repeating a command with the same id applies it once")
}

// command validates the flags and returns the request's ManualCommand.
func (m *ctlManual) command() (*sgv1.ManualCommand, error) {
	var errs []error
	if m.key == "" {
		errs = append(errs, errors.New("--api-key (or SENDGUARD_API_KEY) is required"))
	}
	level, err := canonical.ParseLevel(m.level)
	if m.level == "" || err != nil {
		errs = append(errs, fmt.Errorf("--level %q: want tenant, domain, sender, campaign, variant, provider, account, recipient or domain_provider", m.level))
	}
	if m.target == "" && level != sgv1.ScopeLevel_SCOPE_LEVEL_TENANT {
		errs = append(errs, errors.New("--target is required"))
	}
	if strings.TrimSpace(m.actor) == "" {
		errs = append(errs, errors.New("--actor is required ($USER is empty)"))
	}
	if strings.TrimSpace(m.reason) == "" {
		errs = append(errs, errors.New("--reason is required"))
	}
	mc := &sgv1.ManualCommand{Level: level, Target: m.target, Actor: m.actor, Reason: m.reason, RequestId: m.requestID}
	switch {
	case m.until != "" && m.dur != "":
		errs = append(errs, errors.New("give --until or --for, not both"))
	case m.until != "":
		t, err := time.Parse(time.RFC3339, m.until)
		if err != nil {
			errs = append(errs, fmt.Errorf("--until: %w", err))
		}
		mc.Until = timestamppb.New(t)
	case m.dur != "":
		d, err := parseFor(m.dur)
		if err != nil {
			errs = append(errs, fmt.Errorf("--for: %w", err))
		}
		mc.Duration = durationpb.New(d)
	}
	return mc, errors.Join(errs...)
}

// parseFor parses a Go duration, or whole days as "14d".
func parseFor(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("%q: want a positive number of days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: must be positive", s)
	}
	return d, nil
}

// manualOutput is what a manual command prints: the command's JSON form
// (ARCHITECTURE.md) and whether the state changed.
type manualOutput struct {
	control.Command
	Changed bool `json:"changed"`
}

// runManualCommand parses the flags of a manual action, calls the service
// and prints the applied command as one JSON line.
func runManualCommand(name string, timed bool, args []string, out, errOut io.Writer,
	extra func(fs *flag.FlagSet) func() error,
	call func(ctx context.Context, c sgv1.ControlServiceClient, m *sgv1.ManualCommand) (*sgv1.ManualResult, error),
) int {
	fs := flags(name, errOut)
	var m ctlManual
	m.bind(fs, timed)
	check := func() error { return nil }
	if extra != nil {
		check = extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(errOut, "sgctl %s: unexpected arguments %v\n", name, fs.Args())
		return 2
	}
	mc, err := m.command()
	if err = errors.Join(err, check()); err != nil {
		fmt.Fprintf(errOut, "sgctl %s: %v\n", name, err)
		return 2
	}
	client, ctx, done, err := m.dial()
	if err != nil {
		fmt.Fprintf(errOut, "sgctl %s: %v\n", name, err)
		return 1
	}
	defer done()
	res, err := call(ctx, client, mc)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl %s: %v\n", name, err)
		return 1
	}
	b, err := json.Marshal(manualOutput{Command: control.FromProto(res.GetCommand()), Changed: res.GetChanged()})
	if err != nil {
		fmt.Fprintf(errOut, "sgctl %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(out, "%s\n", b)
	if !res.GetChanged() {
		fmt.Fprintf(errOut, "sgctl %s: nothing changed (already applied, or nothing to %s)\n", name, name)
	}
	return 0
}
