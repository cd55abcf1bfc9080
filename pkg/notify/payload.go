package notify

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Message is the Slack-compatible body of a webhook post: "text" is what
// every Slack-compatible receiver (Slack, Mattermost, Rocket.Chat, Google
// Chat's text, Discord's /slack endpoint) shows; the attachment adds a
// colour by severity and the facts as fields.
type Message struct {
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Attachment is a Slack message attachment.
type Attachment struct {
	Color    string  `json:"color,omitempty"`
	Fallback string  `json:"fallback,omitempty"`
	Fields   []Field `json:"fields,omitempty"`
	Footer   string  `json:"footer,omitempty"`
	TS       int64   `json:"ts,omitempty"`
}

// Field is one fact of an attachment.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

var colors = map[sgv1.Severity]string{
	sgv1.Severity_SEVERITY_CRITICAL: "#d40e0d",
	sgv1.Severity_SEVERITY_WARNING:  "#e8a317",
	sgv1.Severity_SEVERITY_INFO:     "#2eb67d",
}

// Format renders an alert command as a Slack-compatible message: the text
// names the tenant, what happened (the alert's reason, e.g. "pause domain
// acme.io: …"), the rule and the time left; the fields carry scope, rule,
// explanation (observed vs threshold, sample size, window), actor and the
// command id, which a receiver can use to deduplicate.
func Format(c *sgv1.ControlCommand) Message {
	sc := c.GetScope()
	what := c.GetReason()
	if what == "" {
		what = c.GetExplanation().GetSummary()
	}
	if what == "" {
		what = fmt.Sprintf("alert on %s %s", canonical.LevelWord(sc.GetLevel()), sc.GetTarget())
	}
	text := fmt.Sprintf("[%s] %s", sc.GetTenant(), what)
	if r := c.GetRule(); r != "" && !strings.Contains(what, r) {
		text += " (rule " + r + ")"
	}
	if u := c.GetUntil(); u != nil {
		text += " until " + u.AsTime().UTC().Format(time.RFC3339)
	}
	fields := []Field{
		{Title: "Scope", Value: canonical.LevelWord(sc.GetLevel()) + " " + sc.GetTarget(), Short: true},
		{Title: "Rule", Value: c.GetRule(), Short: true},
	}
	if x := c.GetExplanation(); x.GetMetric() != "" {
		cmp := x.GetComparator()
		if cmp == "" {
			cmp = "vs"
		}
		fields = append(fields, Field{Title: "Why", Short: false, Value: fmt.Sprintf("%s = %s %s %s (sample %d, window %s)",
			x.GetMetric(), num(x.GetObserved()), cmp, num(x.GetThreshold()), x.GetSampleSize(), x.GetWindow())})
	}
	if a := c.GetActor(); a != "" {
		fields = append(fields, Field{Title: "Actor", Value: a, Short: true})
	}
	if s := canonical.SeverityWord(c.GetSeverity()); s != "" {
		fields = append(fields, Field{Title: "Severity", Value: s, Short: true})
	}
	fields = append(fields, Field{Title: "Command", Value: c.GetCommandId(), Short: false})
	att := Attachment{Color: colors[c.GetSeverity()], Fallback: text, Fields: fields, Footer: "sendguard"}
	if at := c.GetAt(); at != nil {
		att.TS = at.AsTime().Unix()
	}
	return Message{Text: text, Attachments: []Attachment{att}}
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

// Body returns the JSON body of Format(c).
func Body(c *sgv1.ControlCommand) ([]byte, error) {
	b, err := json.Marshal(Format(c))
	if err != nil {
		return nil, fmt.Errorf("alert body: %w", err)
	}
	return b, nil
}
