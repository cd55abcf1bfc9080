package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/control"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func init() {
	register(command{"status", "status --addr HOST:PORT --api-key K [--level L] [--target T] [--json]", runStatus})
}

// statusLine is one scope in `status --json`: the command JSON form
// (ARCHITECTURE.md) plus the time left, empty when open-ended.
type statusLine struct {
	control.Command
	TimeToUnpause string `json:"time_to_unpause"`
}

func runStatus(args []string, _ io.Reader, out, errOut io.Writer) int {
	fs := flags("status", errOut)
	var c ctlConn
	c.bind(fs)
	levelWord := fs.String("level", "", "only this scope level")
	target := fs.String("target", "", "only this target")
	asJSON := fs.Bool("json", false, "JSON lines instead of a table")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var errs []error
	if c.key == "" {
		errs = append(errs, errors.New("--api-key (or SENDGUARD_API_KEY) is required"))
	}
	req := &sgv1.StatusRequest{Target: *target}
	if *levelWord != "" {
		l, err := canonical.ParseLevel(*levelWord)
		if err != nil {
			errs = append(errs, fmt.Errorf("--level: %w", err))
		}
		req.Level = l
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(errOut, "sgctl status: %v\n", err)
		return 2
	}
	client, ctx, done, err := c.dial()
	if err != nil {
		fmt.Fprintf(errOut, "sgctl status: %v\n", err)
		return 1
	}
	defer done()
	resp, err := client.Status(ctx, req)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		for _, s := range resp.GetScopes() {
			if err := enc.Encode(statusLine{Command: control.FromProto(s.GetCommand()), TimeToUnpause: left(s)}); err != nil {
				fmt.Fprintf(errOut, "sgctl status: %v\n", err)
				return 1
			}
		}
		return 0
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LEVEL\tTARGET\tACTION\tRULE\tUNTIL\tLEFT\tACTOR\tREASON")
	for _, s := range resp.GetScopes() {
		cmd := control.FromProto(s.GetCommand())
		until, l := cmd.Until, left(s)
		if until == "" {
			until, l = "-", "open-ended"
		}
		why := cmd.Reason
		if why == "" && cmd.Explanation != nil {
			why = cmd.Explanation.Summary
		}
		if cmd.Action == "throttle" {
			cmd.Action = throttleWords(cmd)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cmd.Level, cmd.Target, cmd.Action, cmd.Rule, until, l, dash(cmd.Actor), dash(why))
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(errOut, "sgctl status: %v\n", err)
		return 1
	}
	if len(resp.GetScopes()) == 0 {
		fmt.Fprintln(errOut, "sgctl status: nothing paused, throttled or suppressed")
	}
	return 0
}

// left renders the time to unpause, to the second; "" when open-ended.
func left(s *sgv1.ScopeState) string {
	if s.GetTimeToUnpause() == nil {
		return ""
	}
	return s.GetTimeToUnpause().AsDuration().Round(time.Second).String()
}

func throttleWords(c control.Command) string {
	s := "throttle"
	if c.CapRatio > 0 {
		s += fmt.Sprintf(" %g×", c.CapRatio)
	}
	if c.DailyCap > 0 {
		s += fmt.Sprintf(" %d/day", c.DailyCap)
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
