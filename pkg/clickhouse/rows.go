package clickhouse

import (
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Table names a table and the columns a batch INSERT into it names, in the
// order its row function returns values.
type Table struct {
	Name    string
	Columns []string
}

// InsertSQL is the batch INSERT statement with the explicit column list
// (18.16 rejects a batch without one).
func (t Table) InsertSQL() string {
	return "INSERT INTO " + t.Name + " (" + strings.Join(t.Columns, ", ") + ")"
}

// EnumWord is the short lower-case word of an enum value, as in the JSON
// form: EVENT_TYPE_BOUNCED → "bounced", SCOPE_LEVEL_DOMAIN_PROVIDER →
// "domain_provider". The zero (UNSPECIFIED) value gives "", a number the
// descriptor does not know gives its decimal form.
func EnumWord(e protoreflect.Enum) string {
	if e.Number() == 0 {
		return ""
	}
	desc := e.Descriptor()
	v := desc.Values().ByNumber(e.Number())
	if v == nil {
		return strconv.Itoa(int(e.Number()))
	}
	name := string(v.Name())
	if zero := desc.Values().ByNumber(0); zero != nil {
		prefix := strings.TrimSuffix(string(zero.Name()), "UNSPECIFIED")
		name = strings.TrimPrefix(name, prefix)
	}
	return strings.ToLower(name)
}

func ts(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Unix(0, 0).UTC()
	}
	return t.AsTime().UTC()
}

func optTS(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime().UTC()
	return &v
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// EventColumns are the columns of events that EventRow fills, in order.
// inserted_at is left to its DEFAULT now().
var EventColumns = []string{
	"tenant", "event_id", "type", "occurred_at",
	"sender", "sending_domain", "recipient", "recipient_domain", "provider", "account",
	"campaign", "step", "variant", "segment", "list_source", "message_id",
	"bounce_class", "bounce_category", "bounce_smtp_code", "bounce_enhanced_code", "bounce_diagnostic", "bounce_reporting_mta",
	"complaint_source", "complaint_feedback_type", "complaint_reported_domain", "complaint_source_ip", "complaint_feedback_provider",
	"unsubscribe_method", "unsubscribe_scope", "unsubscribe_topic",
	"reply_category", "reply_risk", "reply_text", "reply_subject",
	"placement_provider", "placement_folder", "placement_tool", "placement_test_id",
	"auth_spf", "auth_dkim", "auth_dmarc_policy", "auth_aligned", "auth_tls", "auth_ptr",
	"postmaster_spam_rate", "postmaster_domain_reputation", "postmaster_delivery_error_rate",
	"postmaster_spf_success_rate", "postmaster_dkim_success_rate", "postmaster_dmarc_success_rate", "postmaster_inbound_encryption_rate",
	"source", "envelope_id", "received_at", "role_account", "source_event",
}

// EventsTable is the events table with EventColumns.
var EventsTable = Table{Name: "events", Columns: EventColumns}

// EventRow maps an event to the values of EventColumns. Enums become their
// short words ("" when unspecified), missing sub-messages their zero
// values, a missing timestamp the Unix epoch. It never fails: nil gives
// a row of zero values.
func EventRow(e *sgv1.Event) []any {
	b, c, u, r := e.GetBounce(), e.GetComplaint(), e.GetUnsubscribe(), e.GetReply()
	p, a, pm := e.GetPlacement(), e.GetAuth(), e.GetPostmaster()
	return []any{
		e.GetTenant(), e.GetEventId(), EnumWord(e.GetType()), ts(e.GetOccurredAt()),
		e.GetSender(), e.GetSendingDomain(), e.GetRecipient(), e.GetRecipientDomain(), EnumWord(e.GetProvider()), e.GetAccount(),
		e.GetCampaign(), e.GetStep(), e.GetVariant(), e.GetSegment(), e.GetListSource(), e.GetMessageId(),
		EnumWord(b.GetClass()), EnumWord(b.GetCategory()), b.GetSmtpCode(), b.GetEnhancedCode(), b.GetDiagnostic(), b.GetReportingMta(),
		EnumWord(c.GetSource()), EnumWord(c.GetFeedbackType()), c.GetReportedDomain(), c.GetSourceIp(), c.GetFeedbackProvider(),
		EnumWord(u.GetMethod()), EnumWord(u.GetScope()), u.GetTopic(),
		EnumWord(r.GetCategory()), EnumWord(r.GetRisk()), r.GetText(), r.GetSubject(),
		EnumWord(p.GetProvider()), EnumWord(p.GetFolder()), p.GetTool(), p.GetTestId(),
		EnumWord(a.GetSpf()), EnumWord(a.GetDkim()), EnumWord(a.GetDmarcPolicy()), b2u(a.GetAligned()), b2u(a.GetTls()), b2u(a.GetPtr()),
		pm.GetSpamRate(), EnumWord(pm.GetDomainReputation()), pm.GetDeliveryErrorRate(),
		pm.GetSpfSuccessRate(), pm.GetDkimSuccessRate(), pm.GetDmarcSuccessRate(), pm.GetInboundEncryptionRate(),
		EnumWord(e.GetSource()), e.GetEnvelopeId(), ts(e.GetReceivedAt()), b2u(e.GetRoleAccount()), e.GetSourceEvent(),
	}
}

// explanationColumns are the flattened sgv1.Explanation fields shared by
// decisions and commands.
var explanationColumns = []string{
	"expl_metric", "expl_observed", "expl_threshold", "expl_comparator", "expl_sample_size", "expl_window",
	"expl_provider_concentration", "expl_top_provider", "expl_condition", "expl_summary", "expl_source",
}

func explanationValues(x *sgv1.Explanation) []any {
	return []any{
		x.GetMetric(), x.GetObserved(), x.GetThreshold(), x.GetComparator(), x.GetSampleSize(), x.GetWindow(),
		x.GetProviderConcentration(), x.GetTopProvider(), x.GetCondition(), x.GetSummary(), x.GetSource(),
	}
}

// DecisionColumns are the columns of decisions that DecisionRow fills.
var DecisionColumns = append([]string{
	"tenant", "decision_id", "level", "target", "rule", "rule_set_version", "severity", "action",
	"at", "until", "cap_ratio", "daily_cap",
	"from_state", "to_state", "shadow", "health_score", "priority",
}, explanationColumns...)

// DecisionsTable is the decisions audit table with DecisionColumns.
var DecisionsTable = Table{Name: "decisions", Columns: DecisionColumns}

// DecisionRow maps a decision to the values of DecisionColumns; until is
// NULL when the decision is open-ended.
func DecisionRow(d *sgv1.Decision) []any {
	s := d.GetScope()
	row := []any{
		s.GetTenant(), d.GetDecisionId(), EnumWord(s.GetLevel()), s.GetTarget(), d.GetRule(), d.GetRuleSetVersion(),
		EnumWord(d.GetSeverity()), EnumWord(d.GetAction()),
		ts(d.GetAt()), optTS(d.GetUntil()), d.GetCapRatio(), d.GetDailyCap(),
		EnumWord(d.GetFromState()), EnumWord(d.GetToState()), b2u(d.GetShadow()), d.GetHealthScore(), d.GetPriority(),
	}
	return append(row, explanationValues(d.GetExplanation())...)
}

// CommandColumns are the columns of commands that CommandRow fills.
var CommandColumns = append([]string{
	"tenant", "command_id", "level", "target", "action", "rule", "severity",
	"at", "until", "issued_at", "cap_ratio", "daily_cap",
	"actor", "reason", "decision_id",
}, explanationColumns...)

// CommandsTable is the commands audit table with CommandColumns.
var CommandsTable = Table{Name: "commands", Columns: CommandColumns}

// CommandRow maps a control command to the values of CommandColumns; until
// is NULL when the command is open-ended.
func CommandRow(c *sgv1.ControlCommand) []any {
	s := c.GetScope()
	row := []any{
		s.GetTenant(), c.GetCommandId(), EnumWord(s.GetLevel()), s.GetTarget(), EnumWord(c.GetAction()), c.GetRule(),
		EnumWord(c.GetSeverity()),
		ts(c.GetAt()), optTS(c.GetUntil()), ts(c.GetIssuedAt()), c.GetCapRatio(), c.GetDailyCap(),
		c.GetActor(), c.GetReason(), c.GetDecisionId(),
	}
	return append(row, explanationValues(c.GetExplanation())...)
}

// DeadLetterColumns are the columns of dead_letters that DeadLetterRow
// fills. The Kafka coordinates are prefixed (partition and offset are
// keywords).
var DeadLetterColumns = []string{
	"tenant", "stage", "handler", "reason", "kafka_topic", "kafka_partition", "kafka_offset", "key", "value", "failed_at",
}

// DeadLettersTable is the dead_letters table with DeadLetterColumns.
var DeadLettersTable = Table{Name: "dead_letters", Columns: DeadLetterColumns}

// DeadLetterRow maps a dead letter to the values of DeadLetterColumns. Key
// and value keep their exact bytes (String columns are byte strings).
func DeadLetterRow(d *sgv1.DeadLetter) []any {
	return []any{
		d.GetTenant(), d.GetStage(), d.GetHandler(), d.GetReason(), d.GetTopic(), d.GetPartition(), d.GetOffset(),
		string(d.GetKey()), string(d.GetValue()), ts(d.GetFailedAt()),
	}
}
