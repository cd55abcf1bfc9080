package clickhouse

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/metrics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestEnumWord(t *testing.T) {
	tests := []struct {
		name string
		in   interface {
			String() string
		}
		want string
	}{
		{"event type", sgv1.EventType_EVENT_TYPE_BOUNCED, "bounced"},
		{"two words", sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST, "placement_test"},
		{"unspecified", sgv1.EventType_EVENT_TYPE_UNSPECIFIED, ""},
		{"scope level", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, "domain_provider"},
		{"provider", sgv1.Provider_PROVIDER_GMAIL, "gmail"},
		{"feedback", sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM, "not_spam"},
		{"dmarc", sgv1.DmarcPolicy_DMARC_POLICY_MISSING, "missing"},
		{"unknown number", sgv1.EventType(99), "99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			switch v := tt.in.(type) {
			case sgv1.EventType:
				got = EnumWord(v)
			case sgv1.ScopeLevel:
				got = EnumWord(v)
			case sgv1.Provider:
				got = EnumWord(v)
			case sgv1.FeedbackType:
				got = EnumWord(v)
			case sgv1.DmarcPolicy:
				got = EnumWord(v)
			}
			if got != tt.want {
				t.Errorf("EnumWord(%s) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func fullEvent() *sgv1.Event {
	at := time.Date(2026, 11, 3, 10, 20, 30, 0, time.UTC)
	return &sgv1.Event{
		EventId: "e1", Tenant: "acme", Type: sgv1.EventType_EVENT_TYPE_BOUNCED, OccurredAt: timestamppb.New(at),
		Sender: "ann@send.example", SendingDomain: "send.example", Recipient: "bob@corp.example",
		RecipientDomain: "corp.example", Provider: sgv1.Provider_PROVIDER_MICROSOFT, Account: "corp.example",
		Campaign: "c1", Step: "2", Variant: "v1", Segment: "smb", ListSource: "apollo", MessageId: "<m1@send.example>",
		Bounce: &sgv1.Bounce{
			Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, Category: sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX,
			SmtpCode: 550, EnhancedCode: "5.1.1", Diagnostic: "no such user", ReportingMta: "mx.corp.example",
		},
		Complaint:   &sgv1.Complaint{Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL, FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE, ReportedDomain: "send.example", SourceIp: "192.0.2.1", FeedbackProvider: "fbl"},
		Unsubscribe: &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_TOPIC, Topic: "news"},
		Reply:       &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE, Risk: sgv1.Risk_RISK_HIGH, Text: "stop", Subject: "Re: hi"},
		Placement:   &sgv1.Placement{Provider: sgv1.Provider_PROVIDER_GMAIL, Folder: sgv1.PlacementFolder_PLACEMENT_FOLDER_SPAM, Tool: "glock", TestId: "t1"},
		Auth:        &sgv1.Auth{Spf: sgv1.AuthResult_AUTH_RESULT_PASS, Dkim: sgv1.AuthResult_AUTH_RESULT_FAIL, DmarcPolicy: sgv1.DmarcPolicy_DMARC_POLICY_REJECT, Aligned: true, Tls: true},
		Postmaster: &sgv1.Postmaster{
			SpamRate: 0.003, DomainReputation: sgv1.DomainReputation_DOMAIN_REPUTATION_LOW, DeliveryErrorRate: 0.01,
			SpfSuccessRate: 0.99, DkimSuccessRate: 0.98, DmarcSuccessRate: 0.97, InboundEncryptionRate: 0.9,
		},
		Source: sgv1.Source_SOURCE_SENDGRID, EnvelopeId: "env1", ReceivedAt: timestamppb.New(at.Add(time.Second)),
		RoleAccount: true, SourceEvent: "bounce",
	}
}

func TestEventRow(t *testing.T) {
	row := EventRow(fullEvent())
	if len(row) != len(EventColumns) {
		t.Fatalf("EventRow has %d values, EventColumns %d", len(row), len(EventColumns))
	}
	get := func(col string) any { return row[slices.Index(EventColumns, col)] }
	checks := map[string]any{
		"tenant": "acme", "type": "bounced", "provider": "microsoft", "bounce_class": "hard",
		"bounce_category": "invalid_mailbox", "bounce_smtp_code": int32(550), "complaint_feedback_type": "abuse",
		"unsubscribe_scope": "topic", "reply_category": "hostile", "reply_risk": "high", "placement_folder": "spam",
		"placement_provider": "gmail", "auth_dkim": "fail", "auth_dmarc_policy": "reject", "auth_aligned": uint8(1),
		"auth_ptr": uint8(0), "postmaster_domain_reputation": "low", "postmaster_spam_rate": 0.003, "source": "sendgrid",
		"role_account": uint8(1), "occurred_at": time.Date(2026, 11, 3, 10, 20, 30, 0, time.UTC),
		"received_at": time.Date(2026, 11, 3, 10, 20, 31, 0, time.UTC), "bounce_reporting_mta": "mx.corp.example",
	}
	for col, want := range checks {
		if got := get(col); got != want {
			t.Errorf("%s = %#v, want %#v", col, got, want)
		}
	}
	if got := EventRow(nil); len(got) != len(EventColumns) {
		t.Errorf("EventRow(nil) has %d values, want %d", len(got), len(EventColumns))
	}
}

func TestAuditRows(t *testing.T) {
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	scope := &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "send.example"}
	expl := &sgv1.Explanation{Metric: "complaint_rate_24h", Observed: 0.004, Threshold: 0.003, Comparator: ">=", SampleSize: 5000, Window: "24h", Source: "seed"}
	d := &sgv1.Decision{DecisionId: "d1", Scope: scope, Rule: "r1", Action: sgv1.Action_ACTION_PAUSE, At: timestamppb.New(at), Explanation: expl, ToState: sgv1.HealthState_HEALTH_STATE_PAUSED}
	c := &sgv1.ControlCommand{CommandId: "c1", Scope: scope, Action: sgv1.Action_ACTION_THROTTLE, At: timestamppb.New(at), Until: timestamppb.New(at.Add(time.Hour)), CapRatio: 0.7, Actor: "ops@acme", Reason: "manual"}
	dl := &sgv1.DeadLetter{Stage: "normalizer", Handler: "sendgrid", Reason: "bad json", Topic: "sg.raw.v1", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte{0xff, 0x00}, FailedAt: timestamppb.New(at)}
	tests := []struct {
		name string
		cols []string
		row  []any
		want map[string]any
	}{
		{"decision", DecisionColumns, DecisionRow(d), map[string]any{"level": "domain", "action": "pause", "to_state": "paused", "expl_metric": "complaint_rate_24h", "expl_sample_size": int64(5000), "until": (*time.Time)(nil)}},
		{"command", CommandColumns, CommandRow(c), map[string]any{"action": "throttle", "cap_ratio": 0.7, "actor": "ops@acme", "reason": "manual", "target": "send.example"}},
		{"dead letter", DeadLetterColumns, DeadLetterRow(dl), map[string]any{"kafka_partition": int32(3), "kafka_offset": int64(42), "value": "\xff\x00", "stage": "normalizer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.row) != len(tt.cols) {
				t.Fatalf("row has %d values, columns %d", len(tt.row), len(tt.cols))
			}
			for col, want := range tt.want {
				i := slices.Index(tt.cols, col)
				if i < 0 {
					t.Fatalf("no column %s", col)
				}
				if got := tt.row[i]; got != want {
					if gp, ok := got.(*time.Time); !ok || gp != nil || want != (*time.Time)(nil) {
						t.Errorf("%s = %#v, want %#v", col, got, want)
					}
				}
			}
		})
	}
	if got := CommandRow(c)[slices.Index(CommandColumns, "until")].(*time.Time); got == nil || !got.Equal(at.Add(time.Hour)) {
		t.Errorf("command until = %v, want %v", got, at.Add(time.Hour))
	}
}

var createTableRe = regexp.MustCompile("(?s)CREATE TABLE IF NOT EXISTS `db`\\.(\\w+) \\((.*?)\\n\\)\\nENGINE")

// tableColumns parses the rendered migrations into table → column names.
func tableColumns(t *testing.T, f Features) map[string][]string {
	t.Helper()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, m := range ms {
		stmts, err := m.Render("db", f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			mm := createTableRe.FindStringSubmatch(s)
			if mm == nil {
				continue
			}
			for _, line := range strings.Split(mm[2], "\n") {
				if f := strings.Fields(line); len(f) > 1 {
					out[mm[1]] = append(out[mm[1]], f[0])
				}
			}
		}
	}
	return out
}

func TestTablesMatchSchema(t *testing.T) {
	for _, f := range []Features{{}, {TTL: true, LowCardinality: true, DateTime64: true}} {
		cols := tableColumns(t, f)
		for _, tb := range []Table{EventsTable, DecisionsTable, CommandsTable, DeadLettersTable} {
			t.Run(tb.Name, func(t *testing.T) {
				schema := cols[tb.Name]
				if len(schema) == 0 {
					t.Fatalf("table %s not in the schema", tb.Name)
				}
				for _, c := range tb.Columns {
					if !slices.Contains(schema, c) {
						t.Errorf("column %s of %s not in the schema", c, tb.Name)
					}
				}
				// Every schema column but inserted_at is written by the row func.
				for _, c := range schema {
					if c != "inserted_at" && !slices.Contains(tb.Columns, c) {
						t.Errorf("schema column %s.%s is never written", tb.Name, c)
					}
				}
			})
		}
		for _, g := range []Granularity{Minute, Hour, Day} {
			for _, c := range Counters {
				if !slices.Contains(cols[g.Table()], c.Name) {
					t.Errorf("rollup %s lacks counter %s", g.Table(), c.Name)
				}
			}
		}
	}
}

func TestCountersCoverMetricCounts(t *testing.T) {
	for name := range metrics.Counts {
		if !slices.ContainsFunc(Counters, func(c Counter) bool { return c.Name == name }) {
			t.Errorf("metrics count %s has no rollup counter", name)
		}
	}
}

func TestRollupLevelNames(t *testing.T) {
	var got []string
	for _, l := range RollupLevels {
		got = append(got, l.Name())
	}
	want := []string{"tenant", "domain", "sender", "campaign", "variant", "provider", "domain_provider", "account", "segment", "list_source"}
	if !slices.Equal(got, want) {
		t.Errorf("levels = %v, want %v", got, want)
	}
}
