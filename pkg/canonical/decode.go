package canonical

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Decode parses one canonical event in its JSON form. The input must be a
// single JSON object (surrounding whitespace allowed). Every error is a
// *FieldError; its Field is "" when the input is not well-formed JSON or not
// an object. A JSON null value leaves its field unset. Decode does not
// validate the event's content; see Validate.
//
// The event never refers to data. Its strings share one allocation (the
// first 256 bytes of them; any further string has its own), rather than
// one each, so holding one of them holds the others' bytes.
//
// Decode sets the sgv1 fields directly rather than through protoreflect;
// TestDecodeCoversSchema fails when the schema gains a field it does not
// read the way the reflective reference (decode_reference_test.go) does.
func Decode(data []byte) (*sgv1.Event, error) {
	l := lexer{data: data}
	if c := l.peek(); c != '{' {
		if c == 0 {
			return nil, l.syntax("")
		}
		return nil, fieldErr("", "expected a JSON object, got %s", l.kind())
	}
	l.pos++
	a := &eventAlloc{}
	if err := decodeMembers(&l, eventFields{a}, ""); err != nil {
		return nil, err
	}
	if !l.eof() {
		return nil, fieldErr("", "unexpected data after the JSON object")
	}
	l.setKept()
	return &a.ev, nil
}

// eventAlloc is an event and the Timestamp of its occurred_at, which every
// event of the pipeline has, allocated together: one allocation fewer.
type eventAlloc struct {
	ev         sgv1.Event
	occurredAt timestamppb.Timestamp
}

// DecodeNDJSON parses newline-delimited canonical events. Blank lines (only
// whitespace) are skipped. An error names its line: it is a *LineError
// wrapping the line's *FieldError. More than max events (max > 0) yields an
// error wrapping ErrTooManyEvents; max <= 0 means no limit.
func DecodeNDJSON(data []byte, max int) ([]*sgv1.Event, error) {
	var out []*sgv1.Event
	line := 0
	for len(data) > 0 {
		line++
		var cur []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			cur, data = data[:i], data[i+1:]
		} else {
			cur, data = data, nil
		}
		cur = bytes.TrimSpace(cur)
		if len(cur) == 0 {
			continue
		}
		if max > 0 && len(out) >= max {
			return nil, &LineError{Line: line, Err: fmt.Errorf("%w: more than %d", ErrTooManyEvents, max)}
		}
		ev, err := Decode(cur)
		if err != nil {
			return nil, &LineError{Line: line, Err: err}
		}
		out = append(out, ev)
	}
	return out, nil
}

// message is one canonical message being decoded: decodeMembers looks its
// fields up by key and has it read their values, through memberField and
// memberValue.
type message interface {
	// field returns the number of the field named key (1 to 63) and its
	// dotted path, or 0 when the message has no such field.
	field(key []byte) (num int, path string)
	// value reads the value of field num, whose first byte c (after white
	// space) is neither null's nor one that cannot start a JSON value, and
	// sets the field (a string field once the whole event is read:
	// lexer.keep). Errors are *FieldErrors naming path.
	value(l *lexer, num int, c byte, path string) error
}

// decodeMembers reads the members of an object whose '{' was consumed, and
// the closing '}', into m; path is the object's own dotted path. A key m
// does not know, a key seen twice, or a value of the wrong JSON type is an
// error naming the member's path; null leaves a field unset.
func decodeMembers(l *lexer, m message, path string) error {
	if l.peek() == '}' {
		l.pos++
		return nil
	}
	var seen uint64 // bit n: field number n was read
	for {
		if c := l.peek(); c != '"' {
			if isValueStart(c) {
				return fieldErr(path, "expected a field name, got %s", l.kind())
			}
			return l.syntax(path)
		}
		key, err := l.readStringBytes(path)
		if err != nil {
			return err
		}
		num, p := memberField(m, key)
		if l.peek() != ':' {
			if num == 0 {
				p = joinPath(path, string(key))
			}
			return l.syntax(p)
		}
		l.pos++
		if num == 0 {
			return fieldErr(joinPath(path, string(key)), "unknown field")
		}
		if seen&(1<<num) != 0 {
			return fieldErr(p, "duplicate field")
		}
		seen |= 1 << num
		switch c := l.peek(); {
		case c == 'n':
			if err := l.readLiteral("null", p); err != nil { // null: leave unset
				return err
			}
		case !isValueStart(c):
			return l.syntax(p)
		default:
			if err := memberValue(l, m, num, c, p); err != nil {
				return err
			}
		}
		switch l.peek() {
		case ',':
			l.pos++
		case '}':
			l.pos++
			return nil
		default:
			return l.syntax(path)
		}
	}
}

// memberField is m.field(key) called without an interface call.
func memberField(m message, key []byte) (int, string) {
	switch m := m.(type) {
	case eventFields:
		return m.field(key)
	case bounceFields:
		return m.field(key)
	case complaintFields:
		return m.field(key)
	case unsubscribeFields:
		return m.field(key)
	case replyFields:
		return m.field(key)
	case placementFields:
		return m.field(key)
	case authFields:
		return m.field(key)
	case postmasterFields:
		return m.field(key)
	}
	return 0, "" // every message type is a case above
}

// memberValue is m.value(l, num, c, path) called without an interface
// call, through which the lexer would escape to the heap.
func memberValue(l *lexer, m message, num int, c byte, path string) error {
	switch m := m.(type) {
	case eventFields:
		return m.value(l, num, c, path)
	case bounceFields:
		return m.value(l, num, c, path)
	case complaintFields:
		return m.value(l, num, c, path)
	case unsubscribeFields:
		return m.value(l, num, c, path)
	case replyFields:
		return m.value(l, num, c, path)
	case placementFields:
		return m.value(l, num, c, path)
	case authFields:
		return m.value(l, num, c, path)
	case postmasterFields:
		return m.value(l, num, c, path)
	}
	return fieldErr(path, "no decoder for %T", m) // every message type is a case above
}

// nested reads the object of a nested message field, after checking that
// its value is one.
func nested(l *lexer, m message, c byte, path string) error {
	if c != '{' {
		return fieldErr(path, "expected an object, got %s", l.kind())
	}
	l.pos++
	return decodeMembers(l, m, path)
}

// eventFields decodes an sgv1.Event.
type eventFields struct{ a *eventAlloc }

func (eventFields) field(key []byte) (int, string) {
	switch string(key) {
	case "event_id":
		return 1, "event_id"
	case "tenant":
		return 2, "tenant"
	case "type":
		return 3, "type"
	case "occurred_at":
		return 4, "occurred_at"
	case "sender":
		return 5, "sender"
	case "sending_domain":
		return 6, "sending_domain"
	case "recipient":
		return 7, "recipient"
	case "recipient_domain":
		return 8, "recipient_domain"
	case "provider":
		return 9, "provider"
	case "account":
		return 10, "account"
	case "campaign":
		return 11, "campaign"
	case "step":
		return 12, "step"
	case "variant":
		return 13, "variant"
	case "segment":
		return 14, "segment"
	case "list_source":
		return 15, "list_source"
	case "message_id":
		return 16, "message_id"
	case "bounce":
		return 17, "bounce"
	case "complaint":
		return 18, "complaint"
	case "unsubscribe":
		return 19, "unsubscribe"
	case "reply":
		return 20, "reply"
	case "placement":
		return 21, "placement"
	case "auth":
		return 22, "auth"
	case "postmaster":
		return 23, "postmaster"
	case "source":
		return 24, "source"
	case "envelope_id":
		return 25, "envelope_id"
	case "received_at":
		return 26, "received_at"
	case "role_account":
		return 27, "role_account"
	case "source_event":
		return 28, "source_event"
	}
	return 0, ""
}

func (f eventFields) value(l *lexer, num int, c byte, p string) error {
	m := &f.a.ev
	var err error
	switch num {
	case 1:
		err = stringValue(l, c, p, &m.EventId)
	case 2:
		err = stringValue(l, c, p, &m.Tenant)
	case 3:
		var n int32
		n, err = enumValue(l, c, decEventType, p)
		m.Type = sgv1.EventType(n)
	case 4:
		m.OccurredAt, err = timestampValue(l, c, p, &f.a.occurredAt)
	case 5:
		err = stringValue(l, c, p, &m.Sender)
	case 6:
		err = stringValue(l, c, p, &m.SendingDomain)
	case 7:
		err = stringValue(l, c, p, &m.Recipient)
	case 8:
		err = stringValue(l, c, p, &m.RecipientDomain)
	case 9:
		var n int32
		n, err = enumValue(l, c, decProvider, p)
		m.Provider = sgv1.Provider(n)
	case 10:
		err = stringValue(l, c, p, &m.Account)
	case 11:
		err = stringValue(l, c, p, &m.Campaign)
	case 12:
		err = stringValue(l, c, p, &m.Step)
	case 13:
		err = stringValue(l, c, p, &m.Variant)
	case 14:
		err = stringValue(l, c, p, &m.Segment)
	case 15:
		err = stringValue(l, c, p, &m.ListSource)
	case 16:
		err = stringValue(l, c, p, &m.MessageId)
	case 17:
		m.Bounce = &sgv1.Bounce{}
		err = nested(l, bounceFields{m.Bounce}, c, p)
	case 18:
		m.Complaint = &sgv1.Complaint{}
		err = nested(l, complaintFields{m.Complaint}, c, p)
	case 19:
		m.Unsubscribe = &sgv1.Unsubscribe{}
		err = nested(l, unsubscribeFields{m.Unsubscribe}, c, p)
	case 20:
		m.Reply = &sgv1.Reply{}
		err = nested(l, replyFields{m.Reply}, c, p)
	case 21:
		m.Placement = &sgv1.Placement{}
		err = nested(l, placementFields{m.Placement}, c, p)
	case 22:
		m.Auth = &sgv1.Auth{}
		err = nested(l, authFields{m.Auth}, c, p)
	case 23:
		m.Postmaster = &sgv1.Postmaster{}
		err = nested(l, postmasterFields{m.Postmaster}, c, p)
	case 24:
		var n int32
		n, err = enumValue(l, c, decSource, p)
		m.Source = sgv1.Source(n)
	case 25:
		err = stringValue(l, c, p, &m.EnvelopeId)
	case 26:
		m.ReceivedAt, err = timestampValue(l, c, p, nil)
	case 27:
		m.RoleAccount, err = boolValue(l, c, p)
	case 28:
		err = stringValue(l, c, p, &m.SourceEvent)
	}
	return err
}

// bounceFields decodes an sgv1.Bounce.
type bounceFields struct{ m *sgv1.Bounce }

func (bounceFields) field(key []byte) (int, string) {
	switch string(key) {
	case "class":
		return 1, "bounce.class"
	case "category":
		return 2, "bounce.category"
	case "smtp_code":
		return 3, "bounce.smtp_code"
	case "enhanced_code":
		return 4, "bounce.enhanced_code"
	case "diagnostic":
		return 5, "bounce.diagnostic"
	case "reporting_mta":
		return 6, "bounce.reporting_mta"
	}
	return 0, ""
}

func (f bounceFields) value(l *lexer, num int, c byte, p string) error {
	m := f.m
	var err error
	var n int32
	switch num {
	case 1:
		n, err = enumValue(l, c, decBounceClass, p)
		m.Class = sgv1.BounceClass(n)
	case 2:
		n, err = enumValue(l, c, decBounceCategory, p)
		m.Category = sgv1.BounceCategory(n)
	case 3:
		m.SmtpCode, err = int32Value(l, c, p)
	case 4:
		err = stringValue(l, c, p, &m.EnhancedCode)
	case 5:
		err = stringValue(l, c, p, &m.Diagnostic)
	case 6:
		err = stringValue(l, c, p, &m.ReportingMta)
	}
	return err
}

// complaintFields decodes an sgv1.Complaint.
type complaintFields struct{ m *sgv1.Complaint }

func (complaintFields) field(key []byte) (int, string) {
	switch string(key) {
	case "source":
		return 1, "complaint.source"
	case "feedback_type":
		return 2, "complaint.feedback_type"
	case "reported_domain":
		return 3, "complaint.reported_domain"
	case "source_ip":
		return 4, "complaint.source_ip"
	case "feedback_provider":
		return 5, "complaint.feedback_provider"
	}
	return 0, ""
}

func (f complaintFields) value(l *lexer, num int, c byte, p string) error {
	m := f.m
	var err error
	var n int32
	switch num {
	case 1:
		n, err = enumValue(l, c, decComplaintSource, p)
		m.Source = sgv1.ComplaintSource(n)
	case 2:
		n, err = enumValue(l, c, decFeedbackType, p)
		m.FeedbackType = sgv1.FeedbackType(n)
	case 3:
		err = stringValue(l, c, p, &m.ReportedDomain)
	case 4:
		err = stringValue(l, c, p, &m.SourceIp)
	case 5:
		err = stringValue(l, c, p, &m.FeedbackProvider)
	}
	return err
}

// unsubscribeFields decodes an sgv1.Unsubscribe.
type unsubscribeFields struct{ m *sgv1.Unsubscribe }

func (unsubscribeFields) field(key []byte) (int, string) {
	switch string(key) {
	case "method":
		return 1, "unsubscribe.method"
	case "scope":
		return 2, "unsubscribe.scope"
	case "topic":
		return 3, "unsubscribe.topic"
	}
	return 0, ""
}

func (f unsubscribeFields) value(l *lexer, num int, c byte, p string) error {
	m := f.m
	var err error
	var n int32
	switch num {
	case 1:
		n, err = enumValue(l, c, decUnsubscribeMethod, p)
		m.Method = sgv1.UnsubscribeMethod(n)
	case 2:
		n, err = enumValue(l, c, decUnsubscribeScope, p)
		m.Scope = sgv1.UnsubscribeScope(n)
	case 3:
		err = stringValue(l, c, p, &m.Topic)
	}
	return err
}

// replyFields decodes an sgv1.Reply.
type replyFields struct{ m *sgv1.Reply }

func (replyFields) field(key []byte) (int, string) {
	switch string(key) {
	case "category":
		return 1, "reply.category"
	case "risk":
		return 2, "reply.risk"
	case "text":
		return 3, "reply.text"
	case "subject":
		return 4, "reply.subject"
	}
	return 0, ""
}

func (f replyFields) value(l *lexer, num int, c byte, p string) error {
	m := f.m
	var err error
	var n int32
	switch num {
	case 1:
		n, err = enumValue(l, c, decReplyCategory, p)
		m.Category = sgv1.ReplyCategory(n)
	case 2:
		n, err = enumValue(l, c, decRisk, p)
		m.Risk = sgv1.Risk(n)
	case 3:
		err = stringValue(l, c, p, &m.Text)
	case 4:
		err = stringValue(l, c, p, &m.Subject)
	}
	return err
}

// placementFields decodes an sgv1.Placement.
type placementFields struct{ m *sgv1.Placement }

func (placementFields) field(key []byte) (int, string) {
	switch string(key) {
	case "provider":
		return 1, "placement.provider"
	case "folder":
		return 2, "placement.folder"
	case "tool":
		return 3, "placement.tool"
	case "test_id":
		return 4, "placement.test_id"
	}
	return 0, ""
}

func (f placementFields) value(l *lexer, num int, c byte, p string) error {
	m := f.m
	var err error
	var n int32
	switch num {
	case 1:
		n, err = enumValue(l, c, decProvider, p)
		m.Provider = sgv1.Provider(n)
	case 2:
		n, err = enumValue(l, c, decPlacementFolder, p)
		m.Folder = sgv1.PlacementFolder(n)
	case 3:
		err = stringValue(l, c, p, &m.Tool)
	case 4:
		err = stringValue(l, c, p, &m.TestId)
	}
	return err
}

// authFields decodes an sgv1.Auth.
type authFields struct{ m *sgv1.Auth }

func (authFields) field(key []byte) (int, string) {
	switch string(key) {
	case "spf":
		return 1, "auth.spf"
	case "dkim":
		return 2, "auth.dkim"
	case "dmarc_policy":
		return 3, "auth.dmarc_policy"
	case "aligned":
		return 4, "auth.aligned"
	case "tls":
		return 5, "auth.tls"
	case "ptr":
		return 6, "auth.ptr"
	}
	return 0, ""
}

func (f authFields) value(l *lexer, num int, c byte, p string) error {
	m := f.m
	var err error
	var n int32
	switch num {
	case 1:
		n, err = enumValue(l, c, decAuthResult, p)
		m.Spf = sgv1.AuthResult(n)
	case 2:
		n, err = enumValue(l, c, decAuthResult, p)
		m.Dkim = sgv1.AuthResult(n)
	case 3:
		n, err = enumValue(l, c, decDmarcPolicy, p)
		m.DmarcPolicy = sgv1.DmarcPolicy(n)
	case 4:
		m.Aligned, err = boolValue(l, c, p)
	case 5:
		m.Tls, err = boolValue(l, c, p)
	case 6:
		m.Ptr, err = boolValue(l, c, p)
	}
	return err
}

// postmasterFields decodes an sgv1.Postmaster.
type postmasterFields struct{ m *sgv1.Postmaster }

func (postmasterFields) field(key []byte) (int, string) {
	switch string(key) {
	case "spam_rate":
		return 1, "postmaster.spam_rate"
	case "domain_reputation":
		return 2, "postmaster.domain_reputation"
	case "delivery_error_rate":
		return 3, "postmaster.delivery_error_rate"
	case "spf_success_rate":
		return 4, "postmaster.spf_success_rate"
	case "dkim_success_rate":
		return 5, "postmaster.dkim_success_rate"
	case "dmarc_success_rate":
		return 6, "postmaster.dmarc_success_rate"
	case "inbound_encryption_rate":
		return 7, "postmaster.inbound_encryption_rate"
	}
	return 0, ""
}

func (f postmasterFields) value(l *lexer, num int, c byte, p string) error {
	m := f.m
	var err error
	switch num {
	case 1:
		m.SpamRate, err = doubleValue(l, c, p)
	case 2:
		var n int32
		n, err = enumValue(l, c, decDomainReputation, p)
		m.DomainReputation = sgv1.DomainReputation(n)
	case 3:
		m.DeliveryErrorRate, err = doubleValue(l, c, p)
	case 4:
		m.SpfSuccessRate, err = doubleValue(l, c, p)
	case 5:
		m.DkimSuccessRate, err = doubleValue(l, c, p)
	case 6:
		m.DmarcSuccessRate, err = doubleValue(l, c, p)
	case 7:
		m.InboundEncryptionRate, err = doubleValue(l, c, p)
	}
	return err
}

// stringValue reads a string field's value into *dst, set when Decode
// succeeds (lexer.keep).
func stringValue(l *lexer, c byte, path string, dst *string) error {
	if c != '"' {
		return fieldErr(path, "expected a string, got %s", l.kind())
	}
	b, err := l.readStringBytes(path)
	if err != nil {
		return err
	}
	l.keep(b, dst)
	return nil
}

// boolValue reads a bool field's value.
func boolValue(l *lexer, c byte, path string) (bool, error) {
	switch c {
	case 't':
		return true, l.readLiteral("true", path)
	case 'f':
		return false, l.readLiteral("false", path)
	}
	return false, fieldErr(path, "expected true or false, got %s", l.kind())
}

// int32Value reads an int32 field's value: an integer in the int32 range.
func int32Value(l *lexer, c byte, path string) (int32, error) {
	if c != '-' && (c < '0' || c > '9') {
		return 0, fieldErr(path, "expected an integer, got %s", l.kind())
	}
	n, err := l.readNumberBytes(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(n), 10, 32)
	if err != nil {
		return 0, fieldErr(path, "expected a 32-bit integer, got %s", n)
	}
	return int32(v), nil
}

// doubleValue reads a double field's value: a finite number (one beyond
// the float64 range is an error).
func doubleValue(l *lexer, c byte, path string) (float64, error) {
	if c != '-' && (c < '0' || c > '9') {
		return 0, fieldErr(path, "expected a number, got %s", l.kind())
	}
	n, err := l.readNumberBytes(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fieldErr(path, "number %s out of range", n)
	}
	return v, nil
}

// timestampValue reads a timestamp field's value: an RFC 3339 string. It
// returns slot, set, when it is not nil and the text has the common form.
func timestampValue(l *lexer, c byte, path string, slot *timestamppb.Timestamp) (*timestamppb.Timestamp, error) {
	if c != '"' {
		return nil, fieldErr(path, "expected an RFC 3339 timestamp string, got %s", l.kind())
	}
	b, err := l.readStringBytes(path)
	if err != nil {
		return nil, err
	}
	if sec, nsec, ok := parseRFC3339(b); ok && minTimestamp <= sec && sec <= maxTimestamp {
		if slot == nil {
			return &timestamppb.Timestamp{Seconds: sec, Nanos: nsec}, nil
		}
		slot.Seconds, slot.Nanos = sec, nsec
		return slot, nil
	}
	ts, err := parseTimestamp(string(b)) // other forms time.Parse takes, and every error
	if err != nil {
		return nil, fieldErr(path, "%v", err)
	}
	return ts, nil
}

// enumDecoder reads the words of one enum type.
type enumDecoder struct {
	ed       protoreflect.EnumDescriptor
	fromText map[string]protoreflect.EnumNumber
}

func newEnumDecoder(ed protoreflect.EnumDescriptor) *enumDecoder {
	return &enumDecoder{ed: ed, fromText: wordsFor(ed).fromText}
}

// The enums of the event's fields.
var (
	decEventType         = newEnumDecoder(sgv1.EventType(0).Descriptor())
	decProvider          = newEnumDecoder(sgv1.Provider(0).Descriptor())
	decSource            = newEnumDecoder(sgv1.Source(0).Descriptor())
	decBounceClass       = newEnumDecoder(sgv1.BounceClass(0).Descriptor())
	decBounceCategory    = newEnumDecoder(sgv1.BounceCategory(0).Descriptor())
	decComplaintSource   = newEnumDecoder(sgv1.ComplaintSource(0).Descriptor())
	decFeedbackType      = newEnumDecoder(sgv1.FeedbackType(0).Descriptor())
	decUnsubscribeMethod = newEnumDecoder(sgv1.UnsubscribeMethod(0).Descriptor())
	decUnsubscribeScope  = newEnumDecoder(sgv1.UnsubscribeScope(0).Descriptor())
	decReplyCategory     = newEnumDecoder(sgv1.ReplyCategory(0).Descriptor())
	decRisk              = newEnumDecoder(sgv1.Risk(0).Descriptor())
	decPlacementFolder   = newEnumDecoder(sgv1.PlacementFolder(0).Descriptor())
	decAuthResult        = newEnumDecoder(sgv1.AuthResult(0).Descriptor())
	decDmarcPolicy       = newEnumDecoder(sgv1.DmarcPolicy(0).Descriptor())
	decDomainReputation  = newEnumDecoder(sgv1.DomainReputation(0).Descriptor())
)

// enumValue reads an enum field's value: a word or protobuf value name of
// the enum (ParseWord's rules).
func enumValue(l *lexer, c byte, e *enumDecoder, path string) (int32, error) {
	if c != '"' {
		return 0, fieldErr(path, "expected a string, got %s", l.kind())
	}
	word, err := l.readStringBytes(path)
	if err != nil {
		return 0, err
	}
	if n, ok := e.fromText[string(word)]; ok && len(word) > 0 { // the usual case: a lower-case word
		return int32(n), nil
	}
	n, err := ParseWord(e.ed, string(word))
	if err != nil {
		return 0, fieldErr(path, "%v", err)
	}
	return int32(n), nil
}

// parseTimestamp parses an RFC 3339 time (fractional seconds allowed) into a
// Timestamp within the protobuf range (years 1–9999).
func parseTimestamp(s string) (*timestamppb.Timestamp, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("not an RFC 3339 timestamp: %q", s)
	}
	ts := timestamppb.New(t)
	if err := ts.CheckValid(); err != nil {
		return nil, fmt.Errorf("timestamp %q out of range", s)
	}
	return ts, nil
}

// The range of a valid Timestamp's seconds: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59Z.
const (
	minTimestamp = -62135596800
	maxTimestamp = 253402300799
)

// parseRFC3339 reads the form of RFC 3339 that time.Parse reads without
// its general layout parser ("2006-01-02T15:04:05", an optional '.' and
// digits, then "Z" or "±hh:mm"), with the same checks (a day within its
// month, hours to 23, minutes and seconds to 59, fraction digits past the
// ninth dropped), into unix seconds and nanoseconds. ok is false for any
// other text; time.Parse then decides. TestParseRFC3339 and
// FuzzDecodeMatchesReference check it against time.Parse.
func parseRFC3339(s []byte) (sec int64, nsec int32, ok bool) {
	if len(s) < len("2006-01-02T15:04:05") {
		return 0, 0, false
	}
	ok = true
	num := func(b []byte, lo, hi int) int {
		x := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				ok = false
				return lo
			}
			x = x*10 + int(c-'0')
		}
		if x < lo || x > hi {
			ok = false
			return lo
		}
		return x
	}
	year := num(s[0:4], 0, 9999)
	month := num(s[5:7], 1, 12)
	day := num(s[8:10], 1, daysIn(month, year))
	hour := num(s[11:13], 0, 23)
	minute := num(s[14:16], 0, 59)
	second := num(s[17:19], 0, 59)
	if !ok || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, 0, false
	}
	s = s[19:]
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		n := 1
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			if n <= 9 {
				nsec = nsec*10 + int32(s[n]-'0')
			}
			n++
		}
		for i := n; i <= 9; i++ {
			nsec *= 10
		}
		s = s[n:]
	}
	offset := 0
	if len(s) != 1 || s[0] != 'Z' {
		if len(s) != len("-07:00") {
			return 0, 0, false
		}
		hh := num(s[1:3], 0, 23)
		mm := num(s[4:6], 0, 59)
		if !ok || (s[0] != '-' && s[0] != '+') || s[3] != ':' {
			return 0, 0, false
		}
		offset = (hh*60 + mm) * 60
		if s[0] == '-' {
			offset = -offset
		}
	}
	days := daysFromCivil(year, month, day)
	return days*86400 + int64(hour*3600+minute*60+second-offset), nsec, true
}

// daysIn returns the number of days of month (1–12) in year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date of a year from 0 on.
func daysFromCivil(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := (y + 400) / 400 // y >= -1: shifted so that the division floors
	era--
	yoe := y - era*400                     // [0, 399]
	mp := int64((month + 9) % 12)          // March = 0
	doy := (153*mp+2)/5 + int64(day) - 1   // [0, 365]
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return era*146097 + doe - 719468
}

// isValueStart reports whether c can begin a JSON value.
func isValueStart(c byte) bool {
	switch {
	case c == '{', c == '[', c == '"', c == 't', c == 'f', c == 'n', c == '-':
		return true
	}
	return '0' <= c && c <= '9'
}
