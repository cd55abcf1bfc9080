package canonical

import (
	"math"
	"net/mail"
	"regexp"
	"strings"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// MinOccurredAt is the earliest event time Validate accepts.
var MinOccurredAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxFutureSkew is how far past "now" an event time may lie.
const MaxFutureSkew = 24 * time.Hour

var enhancedCodeRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// Validate is ValidateAt with the wall clock. Prefer ValidateAt wherever a
// clock is injected.
func Validate(ev *sgv1.Event) error { return ValidateAt(ev, time.Now()) }

// ValidateAt checks the minimum contract of an event accepted at the edge and
// returns a *FieldError naming the first offending field:
//   - type is set and defined;
//   - occurred_at is set and within [MinOccurredAt, now+MaxFutureSkew];
//   - postmaster_stats needs sending_domain; auth_check and placement_test
//     need sender or sending_domain; every other type needs recipient;
//   - sender and recipient, when present, are bare addresses (addr-spec)
//     that net/mail accepts; sending_domain and recipient_domain look like
//     domains;
//   - bounce.smtp_code, when set, is 200–599; bounce.enhanced_code, when set,
//     is class.subject.detail with class 2, 4 or 5;
//   - postmaster rates are fractions in [0, 1].
//
// Tenant is not checked: at the edge it comes from the credentials.
func ValidateAt(ev *sgv1.Event, now time.Time) error {
	if ev == nil {
		return fieldErr("", "nil event")
	}
	if ev.GetType() == sgv1.EventType_EVENT_TYPE_UNSPECIFIED {
		return fieldErr("type", "required")
	}
	if TypeWord(ev.GetType()) == "" {
		return fieldErr("type", "unknown event type %d", ev.GetType())
	}
	if ev.GetOccurredAt() == nil {
		return fieldErr("occurred_at", "required")
	}
	if err := ev.GetOccurredAt().CheckValid(); err != nil {
		return fieldErr("occurred_at", "invalid timestamp")
	}
	at := ev.GetOccurredAt().AsTime()
	if at.Before(MinOccurredAt) {
		return fieldErr("occurred_at", "%s is before %s", at.Format(time.RFC3339), MinOccurredAt.Format(time.RFC3339))
	}
	if limit := now.Add(MaxFutureSkew); at.After(limit) {
		return fieldErr("occurred_at", "%s is more than %s in the future", at.Format(time.RFC3339), MaxFutureSkew)
	}

	switch ev.GetType() {
	case sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS:
		if ev.GetSendingDomain() == "" {
			return fieldErr("sending_domain", "required for postmaster_stats")
		}
	case sgv1.EventType_EVENT_TYPE_AUTH_CHECK, sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST:
		if ev.GetSender() == "" && ev.GetSendingDomain() == "" {
			return fieldErr("sender", "sender or sending_domain required for %s", TypeWord(ev.GetType()))
		}
	default:
		if ev.GetRecipient() == "" {
			return fieldErr("recipient", "required for %s", TypeWord(ev.GetType()))
		}
	}

	if err := checkEnums(ev); err != nil {
		return err
	}
	if err := checkAddress("sender", ev.GetSender()); err != nil {
		return err
	}
	if err := checkAddress("recipient", ev.GetRecipient()); err != nil {
		return err
	}
	if err := checkDomain("sending_domain", ev.GetSendingDomain()); err != nil {
		return err
	}
	if err := checkDomain("recipient_domain", ev.GetRecipientDomain()); err != nil {
		return err
	}
	if b := ev.GetBounce(); b != nil {
		if c := b.GetSmtpCode(); c != 0 && (c < 200 || c > 599) {
			return fieldErr("bounce.smtp_code", "%d is not an SMTP reply code", c)
		}
		if c := b.GetEnhancedCode(); c != "" && !enhancedCodeRE.MatchString(c) {
			return fieldErr("bounce.enhanced_code", "%q is not an RFC 3463 status code", c)
		}
	}
	if p := ev.GetPostmaster(); p != nil {
		rates := []struct {
			name string
			v    float64
		}{
			{"spam_rate", p.GetSpamRate()},
			{"delivery_error_rate", p.GetDeliveryErrorRate()},
			{"spf_success_rate", p.GetSpfSuccessRate()},
			{"dkim_success_rate", p.GetDkimSuccessRate()},
			{"dmarc_success_rate", p.GetDmarcSuccessRate()},
			{"inbound_encryption_rate", p.GetInboundEncryptionRate()},
		}
		for _, r := range rates {
			if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
				return fieldErr("postmaster."+r.name, "%v is not a fraction in [0, 1]", r.v)
			}
		}
	}
	return nil
}

// ValidAddress reports whether s is a bare mailbox address (local@domain,
// no display name or angle brackets) that net/mail accepts.
func ValidAddress(s string) bool { return checkAddress("", s) == nil }

func checkAddress(field, s string) error {
	if s == "" {
		return nil
	}
	if notInAddress.any(s) {
		return fieldErr(field, "%q is not a bare email address", s)
	}
	if at, ok := plainAddress(s); ok {
		// What net/mail accepts as exactly this address, without its
		// allocations: the usual case.
		if checkDomain(field, s[at+1:]) != nil {
			return fieldErr(field, "%q is not a valid email address", s)
		}
		return nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" {
		return fieldErr(field, "%q is not a valid email address", s)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || checkDomain(field, a.Address[at+1:]) != nil {
		return fieldErr(field, "%q is not a valid email address", s)
	}
	return nil
}

// checkDomain accepts host names and address literals loosely: non-empty
// dot-separated labels without whitespace, '@' or angle brackets.
func checkDomain(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 255 || notInDomain.any(s) || strings.HasPrefix(s, ".") ||
		strings.Contains(s, "..") {
		return fieldErr(field, "%q is not a domain", s)
	}
	return nil
}

// plainAddress reports whether s is local@domain with both parts ASCII
// dot-atoms (RFC 5322 atext, no leading, trailing or double dot), and
// where its '@' is. net/mail.ParseAddress accepts every such s as the
// address s with no display name; anything else is left to it.
func plainAddress(s string) (at int, ok bool) {
	at = strings.IndexByte(s, '@')
	if at <= 0 || !dotAtom(s[:at]) || !dotAtom(s[at+1:]) {
		return 0, false
	}
	return at, true
}

// dotAtom reports whether s is an ASCII RFC 5322 dot-atom.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i+1] == '.' { // s does not end with '.'
				return false
			}
		case c <= ' ' || c >= 0x7f:
			return false
		case strings.IndexByte("()<>[]:;@\\,\"", c) >= 0:
			return false
		}
	}
	return true
}

// byteSet is a set of bytes: strings.ContainsAny without building the set
// on every call.
type byteSet [256]bool

func newByteSet(chars string) *byteSet {
	var set byteSet
	for i := 0; i < len(chars); i++ {
		set[chars[i]] = true
	}
	return &set
}

// any reports whether s holds a byte of the set.
func (set *byteSet) any(s string) bool {
	for i := 0; i < len(s); i++ {
		if set[s[i]] {
			return true
		}
	}
	return false
}

var (
	notInAddress = newByteSet("<> \t\r\n")
	notInDomain  = newByteSet("@<> \t\r\n,;")
)

// checkEnums rejects enum values this build does not know (a protobuf
// event may carry any number): no stage can act on them, and Marshal
// cannot write them. Zero (unspecified) is always known.
func checkEnums(ev *sgv1.Event) error {
	for _, e := range [...]struct {
		path  string
		v     int32
		names map[int32]string
	}{
		{"provider", int32(ev.GetProvider()), sgv1.Provider_name},
		{"source", int32(ev.GetSource()), sgv1.Source_name},
		{"bounce.class", int32(ev.GetBounce().GetClass()), sgv1.BounceClass_name},
		{"bounce.category", int32(ev.GetBounce().GetCategory()), sgv1.BounceCategory_name},
		{"complaint.source", int32(ev.GetComplaint().GetSource()), sgv1.ComplaintSource_name},
		{"complaint.feedback_type", int32(ev.GetComplaint().GetFeedbackType()), sgv1.FeedbackType_name},
		{"unsubscribe.method", int32(ev.GetUnsubscribe().GetMethod()), sgv1.UnsubscribeMethod_name},
		{"unsubscribe.scope", int32(ev.GetUnsubscribe().GetScope()), sgv1.UnsubscribeScope_name},
		{"reply.category", int32(ev.GetReply().GetCategory()), sgv1.ReplyCategory_name},
		{"reply.risk", int32(ev.GetReply().GetRisk()), sgv1.Risk_name},
		{"placement.provider", int32(ev.GetPlacement().GetProvider()), sgv1.Provider_name},
		{"placement.folder", int32(ev.GetPlacement().GetFolder()), sgv1.PlacementFolder_name},
		{"auth.spf", int32(ev.GetAuth().GetSpf()), sgv1.AuthResult_name},
		{"auth.dkim", int32(ev.GetAuth().GetDkim()), sgv1.AuthResult_name},
		{"auth.dmarc_policy", int32(ev.GetAuth().GetDmarcPolicy()), sgv1.DmarcPolicy_name},
		{"postmaster.domain_reputation", int32(ev.GetPostmaster().GetDomainReputation()), sgv1.DomainReputation_name},
	} {
		if e.v != 0 {
			if _, ok := e.names[e.v]; !ok {
				return fieldErr(e.path, "unknown value %d", e.v)
			}
		}
	}
	return nil
}
