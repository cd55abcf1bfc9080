package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"

	"github.com/sendguard/sendguard/pkg/control"
	"github.com/sendguard/sendguard/pkg/replay"
	"github.com/sendguard/sendguard/pkg/rules"
)

func init() {
	register(command{"replay", "replay --rules FILE|default EVENTS.jsonl", runReplay})
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
	arrival := fs.Bool("arrival-order", false, "process the events in file order, as live processing sees them in arrival order (events more than the lateness behind the newest are refused), instead of sorting them by event time")
	reorder := fs.Duration("reorder", 0, "with --arrival-order, hold events this much event time and count them in event-time order (0: the lateness, so any order of accepted events decides the same; negative: no hold)")
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
	st, err := replay.Run(events, replay.Config{Rules: rs, ArrivalOrder: *arrival, Reorder: *reorder}, func(c *sgv1.ControlCommand) error {
		return enc.Encode(control.FromProto(c))
	})
	if err != nil {
		fmt.Fprintf(errOut, "sgctl replay: %v\n", err)
		return 1
	}
	fmt.Fprintf(errOut, "replayed %d events (%d skipped): %d decisions, %d commands\n", st.Events, st.Skipped, st.Decisions, st.Commands)
	return 0
}
