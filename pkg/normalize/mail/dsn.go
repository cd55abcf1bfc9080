package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/classify"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// dsnRecipient is one recipient's outcome, from a delivery-status block or
// from bounce text.
type dsnRecipient struct {
	recipient   string
	action      string // failed, delayed, delivered, relayed, expanded
	status      string // RFC 3463 code from Status:
	diagnostic  string
	remoteMTA   string
	lastAttempt time.Time
	fromText    bool
}

// ParseDSN turns a delivery status notification into one event per
// recipient:
//
//   - Action failed → bounced; delayed → deferred; delivered, relayed and
//     expanded → delivered (a DSN is the receiving side's own proof of
//     delivery, and success DSNs are rare enough that emitting them costs
//     nothing while dropping them would hide the only delivery signal a
//     non-ESP sender gets). A block without Action takes it from Status
//     (5 failed, 4 delayed, 2 delivered).
//   - bounce.class and category come from classify.Bounce over the
//     diagnostic, Status and SMTP code; enhanced_code is Status unless that
//     is absent or X.0.0 and the diagnostic carries a more specific code of
//     the same class.
//   - When there is no message/delivery-status part, the plain-text bounce
//     formats of Postfix, Exim, qmail, Sendmail, Exchange, Lotus Notes,
//     Gmail, Yahoo and others are read with the patterns in text.go.
//   - An RFC 3834 auto-reply (Auto-Submitted: auto-replied, vacation
//     notices) is not a bounce: it becomes a replied event with reply
//     category ooo, so that it is counted as such rather than rejected.
//
// Attribution (message_id, sender, campaign, variant, step) comes from the
// original message part (message/rfc822 or text/rfc822-headers) or a header
// block quoted in the bounce text. Events are enriched by classify.Enrich;
// event_id is canonical.EventID("dsn", message-id, recipient, type), with a
// payload digest in place of a missing Message-ID. Errors are *ParseError.
func ParseDSN(env *sgv1.RawEnvelope, opts Options) ([]*sgv1.Event, error) {
	return parseDSN(env, opts.withDefaults(), 0)
}

// isReport reports whether h is the header of a delivery-status report.
func isReport(h *textproto.Header) bool {
	if h == nil {
		return false
	}
	ct := strings.ToLower(h.Get("Content-Type"))
	return strings.Contains(ct, "multipart/report") && strings.Contains(ct, "delivery-status")
}

func parseDSN(env *sgv1.RawEnvelope, opts Options, depth int) ([]*sgv1.Event, error) {
	raw := env.GetPayload()
	if len(raw) == 0 {
		return nil, &ParseError{Format: "dsn", Reason: "empty payload"}
	}
	if len(raw) > opts.MaxBytes {
		return nil, &ParseError{Format: "dsn", Reason: "payload larger than the limit"}
	}
	pm, err := readMessage(raw)
	if err != nil {
		return nil, &ParseError{Format: "dsn", Reason: "not an RFC 5322 message", Err: err}
	}
	sum := sha256.Sum256(raw)
	payloadKey := hex.EncodeToString(sum[:12])

	var rcpts []dsnRecipient
	var reportingMTA string
	var arrival time.Time
	for _, rep := range pm.reports {
		msgFields, blocks := parseStatusBlocks(rep)
		if msgFields != nil {
			if reportingMTA == "" {
				reportingMTA = stripType(msgFields.Get("Reporting-Mta"))
			}
			if arrival.IsZero() {
				arrival = headerDate(msgFields.Get("Arrival-Date"))
			}
		}
		for _, b := range blocks {
			rcpts = append(rcpts, recipientFromBlock(b))
		}
	}
	// A delivery-status part without usable recipients falls through to the
	// text patterns, which often still find them.
	if !hasRecipients(rcpts) {
		if isAutoReply(pm) {
			return autoReplyEvents(env, pm, opts, payloadKey)
		}
		if depth == 0 && isReport(pm.original) {
			// A bounce of a bounce: the returned message is itself a DSN
			// (a notification that could not be delivered to its sender).
			inner := proto.CloneOf(env)
			inner.Payload = pm.origRaw
			if evs, err := parseDSN(inner, opts, depth+1); err == nil {
				return evs, nil
			}
		}
		rcpts = textRecipients(pm)
	}

	fillDiagnosticsFromText(pm, rcpts)

	orig := pm.origHeaders()
	attr := attributionFrom(orig, opts)
	if attr.sender == "" {
		// The bounce is addressed to the envelope sender.
		attr.sender = firstAddress(pm.header.Get("To"))
	}
	bounceDate := headerDate(pm.header.Get("Date"))
	fillMissingRecipient(rcpts, attr.to)
	senderDomains := []string{domainPart(attr.sender), domainPart(firstAddress(pm.header.Get("To")))}
	if orig != nil {
		senderDomains = append(senderDomains, domainPart(firstAddress(orig.Get("Return-Path"))))
	}
	if !hasRecipients(rcpts) {
		if len(pm.reports) > 0 {
			return nil, &ParseError{Format: "dsn", Reason: "delivery-status part names no recipient"}
		}
		return nil, &ParseError{Format: "dsn", Reason: "no delivery-status part and no recognisable bounce text"}
	}

	events := make([]*sgv1.Event, 0, len(rcpts))
	seen := map[string]bool{}
	for _, r := range rcpts {
		if r.recipient == "" {
			continue
		}
		typ := actionType(r)
		key := r.recipient + "|" + typ.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		ev := base(env, typ)
		ev.Recipient = r.recipient
		ev.SourceEvent = "dsn:" + r.action
		if typ == sgv1.EventType_EVENT_TYPE_BOUNCED || typ == sgv1.EventType_EVENT_TYPE_DEFERRED {
			ev.Bounce = bounceFor(r, reportingMTA)
			senderSideRefusal(ev.Bounce, senderDomains, r.recipient)
		}
		when := r.lastAttempt
		if when.IsZero() {
			when = bounceDate
		}
		finish(ev, attr, when, env, "dsn", payloadKey)
		events = append(events, ev)
	}
	if len(events) == 0 {
		return nil, &ParseError{Format: "dsn", Reason: "no recipient address could be read"}
	}
	return events, nil
}

// fillDiagnosticsFromText gives delivery-status recipients without a
// Diagnostic-Code the diagnostic the human-readable part has for them
// (Sendmail's transcript, Gmail's "Technical details").
func fillDiagnosticsFromText(pm *parsedMessage, rcpts []dsnRecipient) {
	missing := false
	for _, r := range rcpts {
		if r.diagnostic == "" && !r.fromText {
			missing = true
		}
	}
	if !missing {
		return
	}
	texts := textRecipients(pm)
	for i := range rcpts {
		if rcpts[i].diagnostic != "" || rcpts[i].fromText {
			continue
		}
		for _, t := range texts {
			if (t.recipient == rcpts[i].recipient || len(texts) == 1) && hasEvidence(t.diagnostic) {
				rcpts[i].diagnostic = t.diagnostic
				break
			}
		}
	}
}

func hasRecipients(rs []dsnRecipient) bool {
	for _, r := range rs {
		if r.recipient != "" {
			return true
		}
	}
	return false
}

// fillMissingRecipient gives a lone recipient-less outcome the original To.
func fillMissingRecipient(rs []dsnRecipient, to string) {
	if len(rs) == 1 && rs[0].recipient == "" && to != "" {
		rs[0].recipient = to
	}
}

// parseStatusBlocks splits a delivery-status body into the per-message
// block and the per-recipient blocks (RFC 3464 section 2.1). A block is a
// per-recipient one when it names a recipient or an Action.
func parseStatusBlocks(body []byte) (*textproto.Header, []*textproto.Header) {
	body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
	var msg *textproto.Header
	var rcpts []*textproto.Header
	for _, blk := range splitBlocks(body) {
		h, _, ok := readHeaderBlock(blk)
		if !ok {
			continue
		}
		isRcpt := h.Has("Final-Recipient") || h.Has("Original-Recipient") || h.Has("X-Actual-Recipient") || h.Has("Action")
		if msg == nil && (!isRcpt || h.Has("Reporting-Mta")) {
			msg = h
		}
		if isRcpt {
			rcpts = append(rcpts, h)
		}
	}
	return msg, rcpts
}

// splitBlocks splits on blank (or whitespace-only) lines.
func splitBlocks(b []byte) [][]byte {
	var out [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, line...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func recipientFromBlock(h *textproto.Header) dsnRecipient {
	r := dsnRecipient{
		action:      strings.ToLower(strings.TrimSpace(firstWord(h.Get("Action")))),
		status:      classify.ParseEnhancedCode(" " + h.Get("Status") + " "),
		diagnostic:  cleanDiagnostic(decodeEscaped(stripType(joinValues(h.Values("Diagnostic-Code"))))),
		remoteMTA:   stripType(h.Get("Remote-Mta")),
		lastAttempt: headerDate(h.Get("Last-Attempt-Date")),
	}
	for _, k := range []string{"Final-Recipient", "Original-Recipient", "X-Actual-Recipient"} {
		if a := addressIn(stripType(h.Get(k))); a != "" {
			r.recipient = a
			break
		}
	}
	if r.diagnostic == "" {
		// Some MTAs (Exchange, Domino) only give a status text.
		r.diagnostic = cleanDiagnostic(h.Get("X-Display-Name"))
	}
	return r
}

func joinValues(vs []string) string { return strings.Join(vs, " ") }

// decodeEscaped decodes ISO-2022-JP escape sequences that Japanese MTAs
// (Domino, Notes) put raw into delivery-status fields, which have no
// charset of their own. Other text is returned unchanged.
func decodeEscaped(s string) string {
	if !strings.Contains(s, "\x1b$B") && !strings.Contains(s, "\x1b$@") {
		return s
	}
	r, err := charset.Reader("iso-2022-jp", strings.NewReader(s))
	if err != nil {
		return s
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPartBytes))
	if err != nil {
		return s
	}
	return string(b)
}

func firstWord(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t;("); i > 0 {
		return s[:i]
	}
	return s
}

// stripType drops an RFC 3464 type prefix ("rfc822;", "smtp;", "dns;").
func stripType(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ';'); i >= 0 && i < 20 && !strings.ContainsAny(v[:i], " @<") {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// cleanDiagnostic collapses folding whitespace.
func cleanDiagnostic(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// addressIn returns the first address in s, lower-cased.
func addressIn(s string) string {
	if m := addrRe.FindString(s); m != "" {
		return strings.ToLower(strings.Trim(m, ".<>"))
	}
	return ""
}

// actionType maps the DSN action (or, without one, the status class) to an
// event type.
func actionType(r dsnRecipient) sgv1.EventType {
	switch r.action {
	case "failed":
		return sgv1.EventType_EVENT_TYPE_BOUNCED
	case "delayed":
		return sgv1.EventType_EVENT_TYPE_DEFERRED
	case "delivered", "relayed", "expanded":
		return sgv1.EventType_EVENT_TYPE_DELIVERED
	}
	code := r.status
	if code == "" {
		code = classify.ParseEnhancedCode(r.diagnostic)
	}
	if code != "" {
		switch code[0] {
		case '2':
			return sgv1.EventType_EVENT_TYPE_DELIVERED
		case '4':
			if r.action == "" && !r.fromText {
				return sgv1.EventType_EVENT_TYPE_DEFERRED
			}
		}
	}
	return sgv1.EventType_EVENT_TYPE_BOUNCED
}

// bounceFor classifies one recipient's failure.
func bounceFor(r dsnRecipient, reportingMTA string) *sgv1.Bounce {
	diagCode := classify.ParseEnhancedCode(r.diagnostic)
	enh := r.status
	if enh == "" || (strings.HasSuffix(enh, ".0.0") && diagCode != "" && diagCode[0] == enh[0] && !strings.HasSuffix(diagCode, ".0.0")) {
		enh = diagCode
	}
	if enh == "" {
		enh = r.status
	}
	smtp := classify.ParseSMTPCode(r.diagnostic)
	v := classify.Bounce(classify.BounceInput{SMTPCode: smtp, EnhancedCode: enh, Diagnostic: r.diagnostic})
	mta := reportingMTA
	if mta == "" {
		mta = r.remoteMTA
	}
	return &sgv1.Bounce{
		Class:        v.Class,
		Category:     v.Category,
		SmtpCode:     int32(smtp),
		EnhancedCode: enh,
		Diagnostic:   truncate(r.diagnostic, 1000),
		ReportingMta: mta,
	}
}

// senderSideRefusal re-reads an invalid_mailbox or dns verdict whose
// diagnostic names a sender-side domain (From, envelope sender) as a bare
// host name and not the recipient's domain ("553 neko.example.com does not
// exist" after end of data): the receiver refused the sender's domain,
// which says nothing about the list, so the category becomes policy_block.
func senderSideRefusal(b *sgv1.Bounce, senderDomains []string, recipient string) {
	if b == nil || (b.Category != sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX && b.Category != sgv1.BounceCategory_BOUNCE_CATEGORY_DNS) {
		return
	}
	rd := domainPart(recipient)
	diag := strings.ToLower(b.Diagnostic)
	if rd == "" || strings.Contains(diag, rd) {
		return
	}
	for _, sd := range senderDomains {
		if sd == "" || sd == rd {
			continue
		}
		for i := strings.Index(diag, sd); i >= 0; {
			if i == 0 || (diag[i-1] != '@' && diag[i-1] != '.' && diag[i-1] != '-') {
				b.Category = sgv1.BounceCategory_BOUNCE_CATEGORY_POLICY_BLOCK
				return
			}
			j := strings.Index(diag[i+1:], sd)
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
}

func domainPart(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}
