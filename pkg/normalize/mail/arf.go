package mail

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"github.com/emersion/go-message/textproto"
	"google.golang.org/protobuf/proto"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var feedbackTypes = map[string]sgv1.FeedbackType{
	"abuse":        sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE,
	"complaint":    sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE,
	"fraud":        sgv1.FeedbackType_FEEDBACK_TYPE_FRAUD,
	"phishing":     sgv1.FeedbackType_FEEDBACK_TYPE_FRAUD,
	"other":        sgv1.FeedbackType_FEEDBACK_TYPE_OTHER,
	"not-spam":     sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM,
	"auth-failure": sgv1.FeedbackType_FEEDBACK_TYPE_AUTH_FAILURE,
	"dkim":         sgv1.FeedbackType_FEEDBACK_TYPE_AUTH_FAILURE, // pre-RFC 6591 drafts
	"virus":        sgv1.FeedbackType_FEEDBACK_TYPE_VIRUS,
}

var (
	// complaintSubjectRe recognises FBL reports without a
	// message/feedback-report part (Hotmail JMRP "complaint about message
	// from", AOL/Yahoo "Abuse Report", "Email Feedback Report").
	complaintSubjectRe = regexp.MustCompile(`(?i)complaint about message|abuse report|feedback report|spam report|fbl|scomp|user complaint`)
	authResultRe       = regexp.MustCompile(`(?i)\b(spf|dkim|dmarc)\s*=\s*([a-z]+)`)
)

// ParseARF turns a feedback report into events, one per reported recipient.
//
//   - Feedback-Type abuse, fraud, virus, other and not-spam give a
//     complained event with complaint.source fbl and the feedback type
//     (not-spam is kept as such so windows can tell it apart; it is a
//     complained event because the proto has no better home for it).
//   - Feedback-Type auth-failure (RFC 6591) gives an auth_check event with
//     spf/dkim set from Auth-Failure and the report's
//     Authentication-Results, plus the complaint block for provenance. It is
//     not a complained event: no user complained, and counting receiver
//     authentication reports as complaints would inflate the complaint
//     rate, the most sensitive stop rule, for a DNS set-up problem.
//   - Recipient: Original-Rcpt-To (one event each), else Removal-Recipient,
//     else X-HmXmrOriginalRecipient or To of the original message.
//     Sender: the original From, else Original-Mail-From.
//   - Non-standard FBLs without a message/feedback-report part are accepted
//     when a message/rfc822 part is attached and the report's subject or
//     sender says it is a complaint (Hotmail/Outlook JMRP "complaint about
//     message from …", Yahoo, AOL): a complained event, feedback type abuse.
//   - Feedback-Type opt-out (pre-RFC drafts) with Removal-Recipient gives
//     an unsubscribed event, method manual, scope global.
//   - Apple Mail's "unsubscribe" message (X-Apple-Unsubscribe: true, sent
//     to a mailto: List-Unsubscribe) gives an unsubscribed event, method
//     one_click (a client button driven by the List-Unsubscribe header),
//     scope global; the recipient is the report's From.
//
// occurred_at is Arrival-Date (or Received-Date) of the report, else its
// Date header, else the envelope's received_at. Errors are *ParseError.
func ParseARF(env *sgv1.RawEnvelope, opts Options) ([]*sgv1.Event, error) {
	opts = opts.withDefaults()
	raw := env.GetPayload()
	if len(raw) == 0 {
		return nil, &ParseError{Format: "arf", Reason: "empty payload"}
	}
	if len(raw) > opts.MaxBytes {
		return nil, &ParseError{Format: "arf", Reason: "payload larger than the limit"}
	}
	pm, err := readMessage(raw)
	if err != nil {
		return nil, &ParseError{Format: "arf", Reason: "not an RFC 5322 message", Err: err}
	}
	sum := sha256.Sum256(raw)
	payloadKey := hex.EncodeToString(sum[:12])

	if strings.EqualFold(strings.TrimSpace(pm.header.Get("X-Apple-Unsubscribe")), "true") {
		return appleUnsubscribe(env, pm, opts, payloadKey)
	}

	var fb *textproto.Header
	for _, part := range pm.feedback {
		if h, _, ok := readHeaderBlock(part); ok {
			fb = h
			break
		}
	}
	orig := pm.origHeaders()
	if fb == nil {
		subj, _ := pm.header.Text("Subject")
		from := strings.ToLower(pm.header.Get("From"))
		jmrp := orig != nil && orig.Has("X-Hmxmroriginalrecipient")
		if orig == nil || !(jmrp || complaintSubjectRe.MatchString(subj) || strings.Contains(from, "feedback") || strings.Contains(from, "abuse") || strings.Contains(from, "fbl")) {
			return nil, &ParseError{Format: "arf", Reason: "no message/feedback-report part and no recognisable complaint"}
		}
		empty := textproto.Header{}
		fb = &empty
		fb.Set("Feedback-Type", "abuse")
	}

	ftWord := strings.ToLower(firstWord(fb.Get("Feedback-Type")))
	ft, ok := feedbackTypes[ftWord]
	if !ok {
		ft = sgv1.FeedbackType_FEEDBACK_TYPE_OTHER
	}

	attr := attributionFrom(orig, opts)
	if attr.sender == "" {
		attr.sender = firstAddress(fb.Get("Original-Mail-From"))
	}

	var rcpts []string
	for _, v := range fb.Values("Original-Rcpt-To") {
		for _, a := range addrRe.FindAllString(v, -1) {
			rcpts = appendUnique(rcpts, strings.ToLower(a))
		}
	}
	if len(rcpts) == 0 {
		for _, v := range fb.Values("Removal-Recipient") {
			if a := addressIn(v); a != "" {
				rcpts = appendUnique(rcpts, a)
			}
		}
	}
	if len(rcpts) == 0 && orig != nil {
		if a := addressIn(orig.Get("X-Hmxmroriginalrecipient")); a != "" {
			rcpts = append(rcpts, a)
		} else if attr.to != "" {
			rcpts = append(rcpts, attr.to)
		}
	}

	occurred := headerDate(fb.Get("Arrival-Date"))
	if occurred.IsZero() {
		occurred = headerDate(fb.Get("Received-Date"))
	}
	if occurred.IsZero() {
		occurred = headerDate(pm.header.Get("Date"))
	}

	provider := strings.TrimSpace(fb.Get("User-Agent"))
	if provider == "" {
		if a := firstAddress(pm.header.Get("From")); a != "" {
			provider = a[strings.LastIndexByte(a, '@')+1:]
		}
	}
	complaint := &sgv1.Complaint{
		Source:           sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL,
		FeedbackType:     ft,
		ReportedDomain:   strings.ToLower(strings.TrimSpace(firstWord(fb.Get("Reported-Domain")))),
		SourceIp:         firstWord(fb.Get("Source-Ip")),
		FeedbackProvider: truncate(provider, 200),
	}

	if ftWord == "opt-out" || ftWord == "opt-out-list" || ftWord == "unsubscribe" {
		// Pre-RFC ARF drafts: the provider forwards its user's request to
		// stop mail (Removal-Recipient). It is an unsubscribe, not a
		// complaint; method manual because it came out of band.
		if len(rcpts) == 0 {
			return nil, &ParseError{Format: "arf", Reason: "opt-out report names no recipient"}
		}
		events := make([]*sgv1.Event, 0, len(rcpts))
		for _, r := range rcpts {
			ev := base(env, sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED)
			ev.Recipient = r
			ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_MANUAL, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
			ev.SourceEvent = "arf:" + ftWord
			finish(ev, attr, occurred, env, "arf", payloadKey)
			events = append(events, ev)
		}
		return events, nil
	}
	if ft == sgv1.FeedbackType_FEEDBACK_TYPE_AUTH_FAILURE {
		ev := base(env, sgv1.EventType_EVENT_TYPE_AUTH_CHECK)
		if len(rcpts) > 0 {
			ev.Recipient = rcpts[0]
		}
		ev.Complaint = complaint
		ev.Auth = authFromReport(fb)
		ev.SourceEvent = "arf:" + ftWord
		if attr.sender == "" && complaint.ReportedDomain == "" {
			return nil, &ParseError{Format: "arf", Reason: "auth-failure report names neither sender nor reported domain"}
		}
		if attr.sender == "" {
			ev.SendingDomain = complaint.ReportedDomain
		}
		finish(ev, attr, occurred, env, "arf", payloadKey)
		return []*sgv1.Event{ev}, nil
	}

	if len(rcpts) == 0 {
		return nil, &ParseError{Format: "arf", Reason: "feedback report names no recipient (no Original-Rcpt-To and no original To)"}
	}
	events := make([]*sgv1.Event, 0, len(rcpts))
	for _, r := range rcpts {
		ev := base(env, sgv1.EventType_EVENT_TYPE_COMPLAINED)
		ev.Recipient = r
		ev.Complaint = proto.CloneOf(complaint)
		ev.SourceEvent = "arf:" + ftWord
		finish(ev, attr, occurred, env, "arf", payloadKey)
		events = append(events, ev)
	}
	return events, nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// authFromReport reads RFC 6591 Auth-Failure and Authentication-Results.
func authFromReport(fb *textproto.Header) *sgv1.Auth {
	a := &sgv1.Auth{}
	set := func(dst *sgv1.AuthResult, word string) {
		switch strings.ToLower(word) {
		case "pass":
			*dst = sgv1.AuthResult_AUTH_RESULT_PASS
		case "fail", "softfail", "permerror", "hardfail":
			*dst = sgv1.AuthResult_AUTH_RESULT_FAIL
		case "none", "neutral":
			*dst = sgv1.AuthResult_AUTH_RESULT_NONE
		}
	}
	dmarcFail := false
	for _, m := range authResultRe.FindAllStringSubmatch(strings.Join(fb.Values("Authentication-Results"), " "), -1) {
		switch strings.ToLower(m[1]) {
		case "spf":
			set(&a.Spf, m[2])
		case "dkim":
			set(&a.Dkim, m[2])
		case "dmarc":
			dmarcFail = strings.EqualFold(m[2], "fail")
		}
	}
	switch strings.ToLower(firstWord(fb.Get("Auth-Failure"))) {
	case "bodyhash", "signature", "revoked", "adsp":
		a.Dkim = sgv1.AuthResult_AUTH_RESULT_FAIL
	case "spf":
		a.Spf = sgv1.AuthResult_AUTH_RESULT_FAIL
	case "dmarc":
		dmarcFail = true
	}
	// DMARC passes only with an aligned pass; a DMARC failure report says
	// neither aligned.
	a.Aligned = !dmarcFail && (a.Spf == sgv1.AuthResult_AUTH_RESULT_PASS || a.Dkim == sgv1.AuthResult_AUTH_RESULT_PASS) && strings.Contains(strings.ToLower(strings.Join(fb.Values("Authentication-Results"), " ")), "dmarc=pass")
	return a
}

// appleUnsubscribe handles Apple Mail's mailto unsubscribe message.
func appleUnsubscribe(env *sgv1.RawEnvelope, pm *parsedMessage, opts Options, payloadKey string) ([]*sgv1.Event, error) {
	from := firstAddress(pm.header.Get("From"))
	if from == "" {
		return nil, &ParseError{Format: "arf", Reason: "unsubscribe message without a From address"}
	}
	ev := base(env, sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED)
	ev.Recipient = from
	ev.SourceEvent = "apple-unsubscribe"
	ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
	attr := attributionFrom(pm.origHeaders(), opts)
	attr.messageID = cleanMessageID(pm.header.Get("In-Reply-To"))
	// The unsubscribe goes to the list's opt-out address; its domain is the
	// sending side's.
	if attr.sender == "" {
		if to := firstAddress(pm.header.Get("To")); to != "" {
			ev.SendingDomain = strings.ToLower(to[strings.LastIndexByte(to, '@')+1:])
		}
	}
	if attr.messageID == "" {
		// The unsubscribe message has its own Message-ID; it identifies
		// this event (not the original message), so only use it for the id.
		payloadKey = cleanMessageID(pm.header.Get("Message-Id")) + "|" + payloadKey
	}
	finish(ev, attr, headerDate(pm.header.Get("Date")), env, "arf", payloadKey)
	return []*sgv1.Event{ev}, nil
}
