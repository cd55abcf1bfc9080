package canonical

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Marshal encodes an event in the canonical JSON form on one line, fields in
// protobuf declaration order, unset and zero-valued scalars omitted (a set
// but empty nested message is written as {}). Decode(Marshal(e)) equals e.
// It returns a *FieldError for values the form cannot carry: an enum number
// the enum does not define, an invalid timestamp, a NaN or infinite number,
// a string that is not valid UTF-8. The error names the first such field in
// declaration order. Unknown fields of ev are not written.
func Marshal(ev *sgv1.Event) ([]byte, error) {
	buf, err := AppendMarshal(make([]byte, 0, 384), ev)
	if err != nil {
		return nil, err
	}
	return buf, nil
}

// AppendMarshal appends the bytes Marshal(ev) returns to buf and returns the
// extended slice, so that a caller encoding many events reuses one buffer.
// On error it returns buf (its length unchanged, though bytes past its length
// may have been overwritten) and the *FieldError Marshal returns.
//
// The encoder reads the sgv1 messages' fields directly rather than through
// protoreflect; TestAppendMarshalCoversSchema fails when the schema gains a
// field it does not write the way the reflective reference does.
func AppendMarshal(buf []byte, ev *sgv1.Event) ([]byte, error) {
	if ev == nil {
		return buf, fieldErr("", "nil event")
	}
	out, err := appendEvent(buf, ev)
	if err != nil {
		return buf, err
	}
	return out, nil
}

// appendEvent writes ev as an object. Like every append* function of this
// file it returns a *FieldError naming the field by its dotted path, built
// only then; its buffer is then to be dropped.
func appendEvent(b []byte, ev *sgv1.Event) ([]byte, error) {
	var err error
	b = append(b, '{')
	if ev.EventId != "" {
		if b, err = appendStringField(b, `"event_id":`, ev.EventId, "event_id"); err != nil {
			return b, err
		}
	}
	if ev.Tenant != "" {
		if b, err = appendStringField(b, `"tenant":`, ev.Tenant, "tenant"); err != nil {
			return b, err
		}
	}
	if ev.Type != 0 {
		if b, err = enumEventType.appendField(b, `"type":`, int32(ev.Type), "type"); err != nil {
			return b, err
		}
	}
	if ev.OccurredAt != nil {
		if b, err = appendTimestampField(b, `"occurred_at":`, ev.OccurredAt, "occurred_at"); err != nil {
			return b, err
		}
	}
	if ev.Sender != "" {
		if b, err = appendStringField(b, `"sender":`, ev.Sender, "sender"); err != nil {
			return b, err
		}
	}
	if ev.SendingDomain != "" {
		if b, err = appendStringField(b, `"sending_domain":`, ev.SendingDomain, "sending_domain"); err != nil {
			return b, err
		}
	}
	if ev.Recipient != "" {
		if b, err = appendStringField(b, `"recipient":`, ev.Recipient, "recipient"); err != nil {
			return b, err
		}
	}
	if ev.RecipientDomain != "" {
		if b, err = appendStringField(b, `"recipient_domain":`, ev.RecipientDomain, "recipient_domain"); err != nil {
			return b, err
		}
	}
	if ev.Provider != 0 {
		if b, err = enumProvider.appendField(b, `"provider":`, int32(ev.Provider), "provider"); err != nil {
			return b, err
		}
	}
	if ev.Account != "" {
		if b, err = appendStringField(b, `"account":`, ev.Account, "account"); err != nil {
			return b, err
		}
	}
	if ev.Campaign != "" {
		if b, err = appendStringField(b, `"campaign":`, ev.Campaign, "campaign"); err != nil {
			return b, err
		}
	}
	if ev.Step != "" {
		if b, err = appendStringField(b, `"step":`, ev.Step, "step"); err != nil {
			return b, err
		}
	}
	if ev.Variant != "" {
		if b, err = appendStringField(b, `"variant":`, ev.Variant, "variant"); err != nil {
			return b, err
		}
	}
	if ev.Segment != "" {
		if b, err = appendStringField(b, `"segment":`, ev.Segment, "segment"); err != nil {
			return b, err
		}
	}
	if ev.ListSource != "" {
		if b, err = appendStringField(b, `"list_source":`, ev.ListSource, "list_source"); err != nil {
			return b, err
		}
	}
	if ev.MessageId != "" {
		if b, err = appendStringField(b, `"message_id":`, ev.MessageId, "message_id"); err != nil {
			return b, err
		}
	}
	if ev.Bounce != nil {
		if b, err = appendBounce(appendKey(b, `"bounce":`), ev.Bounce); err != nil {
			return b, err
		}
	}
	if ev.Complaint != nil {
		if b, err = appendComplaint(appendKey(b, `"complaint":`), ev.Complaint); err != nil {
			return b, err
		}
	}
	if ev.Unsubscribe != nil {
		if b, err = appendUnsubscribe(appendKey(b, `"unsubscribe":`), ev.Unsubscribe); err != nil {
			return b, err
		}
	}
	if ev.Reply != nil {
		if b, err = appendReply(appendKey(b, `"reply":`), ev.Reply); err != nil {
			return b, err
		}
	}
	if ev.Placement != nil {
		if b, err = appendPlacement(appendKey(b, `"placement":`), ev.Placement); err != nil {
			return b, err
		}
	}
	if ev.Auth != nil {
		if b, err = appendAuth(appendKey(b, `"auth":`), ev.Auth); err != nil {
			return b, err
		}
	}
	if ev.Postmaster != nil {
		if b, err = appendPostmaster(appendKey(b, `"postmaster":`), ev.Postmaster); err != nil {
			return b, err
		}
	}
	if ev.Source != 0 {
		if b, err = enumSource.appendField(b, `"source":`, int32(ev.Source), "source"); err != nil {
			return b, err
		}
	}
	if ev.EnvelopeId != "" {
		if b, err = appendStringField(b, `"envelope_id":`, ev.EnvelopeId, "envelope_id"); err != nil {
			return b, err
		}
	}
	if ev.ReceivedAt != nil {
		if b, err = appendTimestampField(b, `"received_at":`, ev.ReceivedAt, "received_at"); err != nil {
			return b, err
		}
	}
	if ev.RoleAccount {
		b = append(appendKey(b, `"role_account":`), "true"...)
	}
	if ev.SourceEvent != "" {
		if b, err = appendStringField(b, `"source_event":`, ev.SourceEvent, "source_event"); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendBounce(b []byte, m *sgv1.Bounce) ([]byte, error) {
	var err error
	b = append(b, '{')
	if m.Class != 0 {
		if b, err = enumBounceClass.appendField(b, `"class":`, int32(m.Class), "bounce.class"); err != nil {
			return b, err
		}
	}
	if m.Category != 0 {
		if b, err = enumBounceCategory.appendField(b, `"category":`, int32(m.Category), "bounce.category"); err != nil {
			return b, err
		}
	}
	if m.SmtpCode != 0 {
		b = strconv.AppendInt(appendKey(b, `"smtp_code":`), int64(m.SmtpCode), 10)
	}
	if m.EnhancedCode != "" {
		if b, err = appendStringField(b, `"enhanced_code":`, m.EnhancedCode, "bounce.enhanced_code"); err != nil {
			return b, err
		}
	}
	if m.Diagnostic != "" {
		if b, err = appendStringField(b, `"diagnostic":`, m.Diagnostic, "bounce.diagnostic"); err != nil {
			return b, err
		}
	}
	if m.ReportingMta != "" {
		if b, err = appendStringField(b, `"reporting_mta":`, m.ReportingMta, "bounce.reporting_mta"); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendComplaint(b []byte, m *sgv1.Complaint) ([]byte, error) {
	var err error
	b = append(b, '{')
	if m.Source != 0 {
		if b, err = enumComplaintSource.appendField(b, `"source":`, int32(m.Source), "complaint.source"); err != nil {
			return b, err
		}
	}
	if m.FeedbackType != 0 {
		if b, err = enumFeedbackType.appendField(b, `"feedback_type":`, int32(m.FeedbackType), "complaint.feedback_type"); err != nil {
			return b, err
		}
	}
	if m.ReportedDomain != "" {
		if b, err = appendStringField(b, `"reported_domain":`, m.ReportedDomain, "complaint.reported_domain"); err != nil {
			return b, err
		}
	}
	if m.SourceIp != "" {
		if b, err = appendStringField(b, `"source_ip":`, m.SourceIp, "complaint.source_ip"); err != nil {
			return b, err
		}
	}
	if m.FeedbackProvider != "" {
		if b, err = appendStringField(b, `"feedback_provider":`, m.FeedbackProvider, "complaint.feedback_provider"); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendUnsubscribe(b []byte, m *sgv1.Unsubscribe) ([]byte, error) {
	var err error
	b = append(b, '{')
	if m.Method != 0 {
		if b, err = enumUnsubscribeMethod.appendField(b, `"method":`, int32(m.Method), "unsubscribe.method"); err != nil {
			return b, err
		}
	}
	if m.Scope != 0 {
		if b, err = enumUnsubscribeScope.appendField(b, `"scope":`, int32(m.Scope), "unsubscribe.scope"); err != nil {
			return b, err
		}
	}
	if m.Topic != "" {
		if b, err = appendStringField(b, `"topic":`, m.Topic, "unsubscribe.topic"); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendReply(b []byte, m *sgv1.Reply) ([]byte, error) {
	var err error
	b = append(b, '{')
	if m.Category != 0 {
		if b, err = enumReplyCategory.appendField(b, `"category":`, int32(m.Category), "reply.category"); err != nil {
			return b, err
		}
	}
	if m.Risk != 0 {
		if b, err = enumRisk.appendField(b, `"risk":`, int32(m.Risk), "reply.risk"); err != nil {
			return b, err
		}
	}
	if m.Text != "" {
		if b, err = appendStringField(b, `"text":`, m.Text, "reply.text"); err != nil {
			return b, err
		}
	}
	if m.Subject != "" {
		if b, err = appendStringField(b, `"subject":`, m.Subject, "reply.subject"); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendPlacement(b []byte, m *sgv1.Placement) ([]byte, error) {
	var err error
	b = append(b, '{')
	if m.Provider != 0 {
		if b, err = enumProvider.appendField(b, `"provider":`, int32(m.Provider), "placement.provider"); err != nil {
			return b, err
		}
	}
	if m.Folder != 0 {
		if b, err = enumPlacementFolder.appendField(b, `"folder":`, int32(m.Folder), "placement.folder"); err != nil {
			return b, err
		}
	}
	if m.Tool != "" {
		if b, err = appendStringField(b, `"tool":`, m.Tool, "placement.tool"); err != nil {
			return b, err
		}
	}
	if m.TestId != "" {
		if b, err = appendStringField(b, `"test_id":`, m.TestId, "placement.test_id"); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendAuth(b []byte, m *sgv1.Auth) ([]byte, error) {
	var err error
	b = append(b, '{')
	if m.Spf != 0 {
		if b, err = enumAuthResult.appendField(b, `"spf":`, int32(m.Spf), "auth.spf"); err != nil {
			return b, err
		}
	}
	if m.Dkim != 0 {
		if b, err = enumAuthResult.appendField(b, `"dkim":`, int32(m.Dkim), "auth.dkim"); err != nil {
			return b, err
		}
	}
	if m.DmarcPolicy != 0 {
		if b, err = enumDmarcPolicy.appendField(b, `"dmarc_policy":`, int32(m.DmarcPolicy), "auth.dmarc_policy"); err != nil {
			return b, err
		}
	}
	if m.Aligned {
		b = append(appendKey(b, `"aligned":`), "true"...)
	}
	if m.Tls {
		b = append(appendKey(b, `"tls":`), "true"...)
	}
	if m.Ptr {
		b = append(appendKey(b, `"ptr":`), "true"...)
	}
	return append(b, '}'), nil
}

func appendPostmaster(b []byte, m *sgv1.Postmaster) ([]byte, error) {
	var err error
	b = append(b, '{')
	if b, err = appendDoubleField(b, `"spam_rate":`, m.SpamRate, "postmaster.spam_rate"); err != nil {
		return b, err
	}
	if m.DomainReputation != 0 {
		if b, err = enumDomainReputation.appendField(b, `"domain_reputation":`, int32(m.DomainReputation),
			"postmaster.domain_reputation"); err != nil {
			return b, err
		}
	}
	fields := [...]struct {
		key, path string
		v         float64
	}{
		{`"delivery_error_rate":`, "postmaster.delivery_error_rate", m.DeliveryErrorRate},
		{`"spf_success_rate":`, "postmaster.spf_success_rate", m.SpfSuccessRate},
		{`"dkim_success_rate":`, "postmaster.dkim_success_rate", m.DkimSuccessRate},
		{`"dmarc_success_rate":`, "postmaster.dmarc_success_rate", m.DmarcSuccessRate},
		{`"inbound_encryption_rate":`, "postmaster.inbound_encryption_rate", m.InboundEncryptionRate},
	}
	for _, f := range fields {
		if b, err = appendDoubleField(b, f.key, f.v, f.path); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendKey writes key (the quoted name and the colon) after a comma unless
// it is the first member of its object: every value written ends in a byte
// other than '{', so a '{' before key means the object is still empty.
func appendKey(b []byte, key string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	return append(b, key...)
}

func appendStringField(b []byte, key, s, path string) ([]byte, error) {
	return appendString(appendKey(b, key), s, path)
}

// appendDoubleField writes a double field unless it is absent: protobuf
// reports a proto3 double as set when it is not +0 (so -0 is written).
func appendDoubleField(b []byte, key string, f float64, path string) ([]byte, error) {
	if f == 0 && !math.Signbit(f) {
		return b, nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fieldErr(path, "number %v cannot be represented in JSON", f)
	}
	return strconv.AppendFloat(appendKey(b, key), f, 'g', -1, 64), nil
}

// appendTimestampField writes ts as an RFC 3339 string in UTC with the
// fraction of time.RFC3339Nano (trailing zeros dropped, none when zero).
func appendTimestampField(b []byte, key string, ts *timestamppb.Timestamp, path string) ([]byte, error) {
	if err := ts.CheckValid(); err != nil {
		return b, fieldErr(path, "invalid timestamp: %v", err)
	}
	b = append(appendKey(b, key), '"')
	b = appendRFC3339NanoUTC(b, time.Unix(ts.GetSeconds(), int64(ts.GetNanos())).UTC())
	return append(b, '"'), nil
}

// appendRFC3339NanoUTC appends t.Format(time.RFC3339Nano) for a UTC time of
// the years 1 to 9999 (a valid Timestamp's range), without the layout
// interpretation of time.AppendFormat.
func appendRFC3339NanoUTC(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte // '.' and nine digits
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := len(frac)
		for frac[n-1] == '0' { // ns != 0: a digit other than '0' stops it
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// enumTable holds the quoted words of one enum type indexed by number, built
// once from wordsFor; an empty entry is a number the table does not hold.
type enumTable struct {
	ed     protoreflect.EnumDescriptor
	quoted []string
}

// The enums of the event's fields.
var (
	enumEventType         = newEnumTable(sgv1.EventType(0).Descriptor())
	enumProvider          = newEnumTable(sgv1.Provider(0).Descriptor())
	enumSource            = newEnumTable(sgv1.Source(0).Descriptor())
	enumBounceClass       = newEnumTable(sgv1.BounceClass(0).Descriptor())
	enumBounceCategory    = newEnumTable(sgv1.BounceCategory(0).Descriptor())
	enumComplaintSource   = newEnumTable(sgv1.ComplaintSource(0).Descriptor())
	enumFeedbackType      = newEnumTable(sgv1.FeedbackType(0).Descriptor())
	enumUnsubscribeMethod = newEnumTable(sgv1.UnsubscribeMethod(0).Descriptor())
	enumUnsubscribeScope  = newEnumTable(sgv1.UnsubscribeScope(0).Descriptor())
	enumReplyCategory     = newEnumTable(sgv1.ReplyCategory(0).Descriptor())
	enumRisk              = newEnumTable(sgv1.Risk(0).Descriptor())
	enumPlacementFolder   = newEnumTable(sgv1.PlacementFolder(0).Descriptor())
	enumAuthResult        = newEnumTable(sgv1.AuthResult(0).Descriptor())
	enumDmarcPolicy       = newEnumTable(sgv1.DmarcPolicy(0).Descriptor())
	enumDomainReputation  = newEnumTable(sgv1.DomainReputation(0).Descriptor())
)

// maxDenseEnum bounds the numbers an enumTable indexes; words of larger
// numbers stay out of the table and go through wordsFor.
const maxDenseEnum = 1024

func newEnumTable(ed protoreflect.EnumDescriptor) *enumTable {
	t := &enumTable{ed: ed}
	for n, w := range wordsFor(ed).toWord {
		q, err := appendString(nil, w, "")
		if n < 0 || n >= maxDenseEnum || err != nil {
			continue // left to appendRare (never for a word of protobuf identifier characters)
		}
		for int(n) >= len(t.quoted) {
			t.quoted = append(t.quoted, "")
		}
		t.quoted[n] = string(q)
	}
	return t
}

// appendField writes key and the word of enum number n, or returns the
// error of a number the enum does not define.
func (t *enumTable) appendField(b []byte, key string, n int32, path string) ([]byte, error) {
	b = appendKey(b, key)
	if n >= 0 && int(n) < len(t.quoted) && t.quoted[n] != "" {
		return append(b, t.quoted[n]...), nil
	}
	return t.appendRare(b, protoreflect.EnumNumber(n), path)
}

// appendRare is appendField for a number outside the table.
func (t *enumTable) appendRare(b []byte, n protoreflect.EnumNumber, path string) ([]byte, error) {
	if w, ok := wordsFor(t.ed).toWord[n]; ok {
		return appendString(b, w, path)
	}
	return b, fieldErr(path, "unknown %s value %d", t.ed.Name(), n)
}

const hexDigits = "0123456789abcdef"

// plainASCII[c] is true for the bytes a JSON string holds as they are.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string without HTML escaping; it returns
// an error when s is not valid UTF-8.
func appendString(buf []byte, s, path string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if !plainASCII[s[i]] {
			return appendEscaped(buf, s, path)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"'), nil
}

// appendEscaped is appendString for a string with bytes to escape or
// beyond ASCII.
func appendEscaped(buf []byte, s, path string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return buf, fieldErr(path, "string is not valid UTF-8")
	}
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"'), nil
}
