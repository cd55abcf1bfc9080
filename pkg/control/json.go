// Package control renders control commands in their JSON form
// (ARCHITECTURE.md "Control commands"): what sender adapters, `sgctl replay`
// and `sgctl status` print.
package control

import (
	"encoding/json"
	"time"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Command is the JSON form of a control command.
type Command struct {
	CommandID   string       `json:"command_id"`
	Action      string       `json:"action"`
	Level       string       `json:"level"`
	Target      string       `json:"target"`
	Tenant      string       `json:"tenant"`
	Rule        string       `json:"rule"`
	At          string       `json:"at"`
	Until       string       `json:"until"`
	CapRatio    float64      `json:"cap_ratio,omitempty"`
	DailyCap    int64        `json:"daily_cap,omitempty"`
	Severity    string       `json:"severity,omitempty"`
	Actor       string       `json:"actor,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	DecisionID  string       `json:"decision_id,omitempty"`
	Explanation *Explanation `json:"explanation,omitempty"`
}

// Explanation is why the command exists.
type Explanation struct {
	Metric                string  `json:"metric,omitempty"`
	Observed              float64 `json:"observed"`
	Threshold             float64 `json:"threshold"`
	Comparator            string  `json:"comparator,omitempty"`
	SampleSize            int64   `json:"sample_size"`
	Window                string  `json:"window,omitempty"`
	ProviderConcentration float64 `json:"provider_concentration,omitempty"`
	TopProvider           string  `json:"top_provider,omitempty"`
	Condition             string  `json:"condition,omitempty"`
	Summary               string  `json:"summary,omitempty"`
	Source                string  `json:"source,omitempty"`
}

// FromProto converts a command to its JSON form.
func FromProto(c *sgv1.ControlCommand) Command {
	out := Command{
		CommandID:  c.GetCommandId(),
		Action:     canonical.ActionWord(c.GetAction()),
		Level:      canonical.LevelWord(c.GetScope().GetLevel()),
		Target:     c.GetScope().GetTarget(),
		Tenant:     c.GetScope().GetTenant(),
		Rule:       c.GetRule(),
		CapRatio:   c.GetCapRatio(),
		DailyCap:   c.GetDailyCap(),
		Severity:   canonical.SeverityWord(c.GetSeverity()),
		Actor:      c.GetActor(),
		Reason:     c.GetReason(),
		DecisionID: c.GetDecisionId(),
	}
	if c.GetAt() != nil {
		out.At = c.GetAt().AsTime().UTC().Format(time.RFC3339)
	}
	if c.GetUntil() != nil {
		out.Until = c.GetUntil().AsTime().UTC().Format(time.RFC3339)
	}
	if x := c.GetExplanation(); x != nil {
		out.Explanation = &Explanation{
			Metric: x.GetMetric(), Observed: x.GetObserved(), Threshold: x.GetThreshold(), Comparator: x.GetComparator(),
			SampleSize: x.GetSampleSize(), Window: x.GetWindow(), ProviderConcentration: x.GetProviderConcentration(),
			TopProvider: x.GetTopProvider(), Condition: x.GetCondition(), Summary: x.GetSummary(), Source: x.GetSource(),
		}
	}
	return out
}

// Marshal returns the JSON form of c on one line.
func Marshal(c *sgv1.ControlCommand) ([]byte, error) { return json.Marshal(FromProto(c)) }
