// Package mail turns raw RFC 5322 messages into canonical events: ARF
// feedback reports (RFC 5965, and the non-standard FBL forms Hotmail JMRP,
// Yahoo and AOL send) with ParseARF, and delivery status notifications
// (RFC 3464, and the plain-text bounces Postfix, Exim, qmail, Exchange,
// Gmail, Yahoo and others really send) with ParseDSN.
//
// MIME structure, transfer encodings, charsets and header folding are
// handled by github.com/emersion/go-message; this package only interprets
// the parts. Classification of bounces is classify.Bounce; every event goes
// through classify.Enrich. Parsing is pure: no network, no clock.
package mail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers decoders for non-UTF-8 parts (ISO-2022-JP, Windows-125x …)
	"github.com/emersion/go-message/textproto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/classify"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Options configures attribution from the original message's headers.
type Options struct {
	// CampaignHeaders are tried in order; the first present names the
	// campaign. Default DefaultCampaignHeaders.
	CampaignHeaders []string
	// VariantHeaders are tried in order for the copy variant. Default
	// DefaultVariantHeaders.
	VariantHeaders []string
	// StepHeaders are tried in order for the sequence step. Default
	// DefaultStepHeaders.
	StepHeaders []string
	// MaxBytes bounds the payload; larger payloads are a ParseError.
	// Default 10 MiB.
	MaxBytes int
}

// Default attribution headers. Sendguard's own X-Sendguard-* come first;
// the others are what common ESPs and sending tools set.
var (
	DefaultCampaignHeaders = []string{"X-Sendguard-Campaign", "X-Campaign-ID", "X-Campaign", "X-Campaign-Name", "X-Mailgun-Campaign-Id", "X-Mailgun-Tag", "X-SES-CONFIGURATION-SET", "X-SMTPAPI-Category", "X-Mailer-Campaign", "X-Sequence-ID"}
	DefaultVariantHeaders  = []string{"X-Sendguard-Variant", "X-Variant-ID", "X-Variant", "X-Template-ID", "X-Copy-Variant"}
	DefaultStepHeaders     = []string{"X-Sendguard-Step", "X-Step-ID", "X-Sequence-Step", "X-Step"}
)

func (o Options) withDefaults() Options {
	if o.CampaignHeaders == nil {
		o.CampaignHeaders = DefaultCampaignHeaders
	}
	if o.VariantHeaders == nil {
		o.VariantHeaders = DefaultVariantHeaders
	}
	if o.StepHeaders == nil {
		o.StepHeaders = DefaultStepHeaders
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 10 << 20
	}
	return o
}

// ParseError is a permanent parse failure: the payload is not a report this
// package can read, and retrying will not change that. Format is "arf" or
// "dsn"; Reason says what was missing or wrong.
type ParseError struct {
	Format string
	Reason string
	Err    error
}

func (e *ParseError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("parse %s: %s: %v", e.Format, e.Reason, e.Err)
	}
	return fmt.Sprintf("parse %s: %s", e.Format, e.Reason)
}

// Unwrap returns the underlying error, if any.
func (e *ParseError) Unwrap() error { return e.Err }

// Permanent reports true: a ParseError never heals by retrying.
func (e *ParseError) Permanent() bool { return true }

// maxDepth bounds MIME nesting (multipart inside message/rfc822 …).
const maxDepth = 8

// maxPartBytes bounds what is read of one leaf part.
const maxPartBytes = 2 << 20

// parsedMessage is what the walk collects from one message.
type parsedMessage struct {
	header       message.Header
	reports      [][]byte // message/delivery-status bodies
	feedback     [][]byte // message/feedback-report bodies
	original     *textproto.Header
	origRaw      []byte   // the whole first message/rfc822 part
	texts        []string // text/plain parts, decoded
	report       *string  // reportText, once computed
	htmls        []string // text/html parts, raw (stripped when used)
	htmlStripped bool
}

// readMessage parses raw with go-message and collects its parts.
func readMessage(raw []byte) (*parsedMessage, error) {
	// An mbox "From sender date" separator line is not a header field.
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && ent == nil {
		return nil, err
	}
	pm := &parsedMessage{header: ent.Header}
	pm.walk(ent, 0)
	if len(pm.texts)+len(pm.htmls)+len(pm.reports)+len(pm.feedback) == 0 {
		// Broken MIME (a boundary that does not match the header, an
		// unfolded parameter line): go-message gave up on the parts, so
		// split the body at boundary-like lines and read each chunk.
		pm.lenientParts(raw)
	}
	return pm, nil
}

var boundaryLineRe = regexp.MustCompile(`(?m)^--[^\s]{4,}[ \t]*\r?$`)

// lenientParts splits the body of raw at lines that look like MIME
// boundaries ("--" and a token) and dispatches each chunk by its own
// Content-Type, as walk does for well-formed messages. A chunk without a
// header block is text.
func (pm *parsedMessage) lenientParts(raw []byte) {
	body := raw
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		body = raw[i+2:]
	}
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 && i+4 < len(raw) && len(raw)-(i+4) > len(body) {
		body = raw[i+4:]
	}
	locs := boundaryLineRe.FindAllIndex(body, -1)
	if len(locs) == 0 {
		pm.texts = append(pm.texts, string(body))
		return
	}
	var chunks [][]byte
	prev := 0
	for _, l := range locs {
		chunks = append(chunks, body[prev:l[0]])
		prev = l[1]
	}
	chunks = append(chunks, body[prev:])
	for i, c := range chunks {
		if i == 0 {
			continue // preamble
		}
		t := bytes.TrimLeft(c, "\r\n")
		mt := "text/plain"
		content := c
		if h, rest, ok := readHeaderBlock(t); ok && (h.Has("Content-Type") || h.Has("Content-Transfer-Encoding") || h.Has("Content-Description") || h.Has("Content-Disposition")) {
			if v := strings.ToLower(h.Get("Content-Type")); v != "" {
				mt = strings.TrimSpace(strings.SplitN(v, ";", 2)[0])
			}
			content = rest
		}
		switch mt {
		case "message/delivery-status", "message/global-delivery-status":
			pm.reports = append(pm.reports, content)
		case "message/feedback-report":
			pm.feedback = append(pm.feedback, content)
		case "message/rfc822", "message/global", "text/rfc822-headers", "text/rfc822-header", "message/rfc822-headers", "message/global-headers":
			if pm.original == nil {
				if h, _, ok := readHeaderBlock(content); ok {
					pm.original, pm.origRaw = h, content
				}
			}
		case "text/html":
			pm.htmls = append(pm.htmls, string(content))
		default:
			if strings.HasPrefix(mt, "text/") && len(bytes.TrimSpace(content)) > 0 {
				pm.texts = append(pm.texts, string(content))
			}
		}
	}
	if len(pm.texts)+len(pm.htmls)+len(pm.reports)+len(pm.feedback) == 0 {
		pm.texts = append(pm.texts, string(body))
	}
}

func (pm *parsedMessage) walk(e *message.Entity, depth int) {
	if depth > maxDepth {
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) || (err != nil && p == nil) {
				return
			}
			pm.walk(p, depth+1)
		}
	}
	mt, _, _ := e.Header.ContentType()
	if mt == "" {
		mt = "text/plain"
	}
	body, _ := io.ReadAll(io.LimitReader(e.Body, maxPartBytes))
	switch mt {
	case "message/delivery-status", "message/global-delivery-status":
		pm.reports = append(pm.reports, body)
	case "message/feedback-report":
		pm.feedback = append(pm.feedback, body)
	case "message/rfc822", "message/global", "text/rfc822-headers", "text/rfc822-header", "message/rfc822-headers", "message/global-headers", "message/partial":
		if pm.original == nil {
			if h, _, ok := readHeaderBlock(body); ok {
				pm.original, pm.origRaw = h, body
			}
		}
	case "text/plain":
		pm.texts = append(pm.texts, string(body))
		// A DSN sent without a multipart Content-Type (old Sendmail) still
		// carries its delivery-status block as text.
		if len(pm.reports) == 0 {
			if rep := embeddedStatus(body); rep != nil {
				pm.reports = append(pm.reports, rep)
			}
		}
	case "text/html":
		pm.htmls = append(pm.htmls, string(body))
	}
}

var embeddedStatusRe = regexp.MustCompile(`(?im)^content-type:[ \t]*message/(?:global-)?delivery-status[^\n]*\n(?:[ \t]*\S[^\n]*\n)*[ \t]*\r?\n`)

// embeddedStatus returns the delivery-status block quoted in a text body
// after its own "Content-Type: message/delivery-status" line, up to the
// next boundary line, or nil.
func embeddedStatus(body []byte) []byte {
	loc := embeddedStatusRe.FindIndex(body)
	if loc == nil {
		return nil
	}
	rest := body[loc[1]:]
	if i := bytes.Index(rest, []byte("\n--")); i >= 0 {
		rest = rest[:i+1]
	}
	return rest
}

// readHeaderBlock parses a header block at the start of b with go-message's
// textproto reader. Leading blank lines are skipped. It reports false when
// no header field could be read.
func readHeaderBlock(b []byte) (*textproto.Header, []byte, bool) {
	b = bytes.TrimLeft(b, "\r\n \t")
	br := bufio.NewReader(bytes.NewReader(b))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		// Tolerate a malformed line: parse what precedes it.
		if i := firstBadHeaderLine(b); i > 0 {
			br = bufio.NewReader(bytes.NewReader(append(append([]byte{}, b[:i]...), '\r', '\n', '\r', '\n')))
			if h2, err2 := textproto.ReadHeader(br); err2 == nil && h2.Len() > 0 {
				return &h2, b[i:], true
			}
		}
		return nil, nil, false
	}
	if h.Len() == 0 {
		return nil, nil, false
	}
	rest, _ := io.ReadAll(io.LimitReader(br, maxPartBytes))
	return &h, rest, true
}

// firstBadHeaderLine returns the offset of the first line that is neither a
// header field, a continuation nor blank, or -1.
func firstBadHeaderLine(b []byte) int {
	off := 0
	for len(b) > 0 {
		line := b
		n := len(b)
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, n = b[:i], i+1
		}
		t := bytes.TrimRight(line, "\r")
		if len(t) == 0 {
			return off
		}
		if t[0] != ' ' && t[0] != '\t' {
			c := bytes.IndexByte(t, ':')
			if c <= 0 || bytes.ContainsAny(t[:c], " \t") {
				return off
			}
		}
		off += n
		b = b[n:]
	}
	return -1
}

// origHeaders gives the original message's headers: the attached part, or
// a header block embedded in the bounce text after a "copy of the message"
// marker.
func (pm *parsedMessage) origHeaders() *textproto.Header {
	if pm.original != nil {
		return pm.original
	}
	for _, t := range pm.allTexts() {
		if _, after, ok := splitOriginal(t); ok {
			if h, _, ok := readHeaderBlock([]byte(dedent(after))); ok {
				pm.original = h
				return h
			}
		}
	}
	return nil
}

// dedent removes the indentation of a quoted header block (the first
// non-empty line's leading spaces) and a leading mbox "From " line.
func dedent(s string) string {
	s = strings.TrimLeft(s, "\r\n")
	indent := len(s) - len(strings.TrimLeft(s, " "))
	var b strings.Builder
	first := true
	for line := range strings.Lines(s) {
		if indent > 0 && strings.HasPrefix(line, strings.Repeat(" ", indent)) {
			line = line[indent:]
		}
		if first && strings.HasPrefix(line, "From ") {
			first = false
			continue
		}
		first = false
		b.WriteString(line)
	}
	return b.String()
}

// allTexts returns the text/plain parts, or the HTML parts as text when
// there is no plain part.
func (pm *parsedMessage) allTexts() []string {
	if len(pm.texts) > 0 {
		return pm.texts
	}
	if len(pm.htmls) > 0 && !pm.htmlStripped {
		for i, h := range pm.htmls {
			pm.htmls[i] = stripHTML(h)
		}
		pm.htmlStripped = true
	}
	return pm.htmls
}

// attribution is what the original message tells about the sending side.
type attribution struct {
	messageID, sender, to, campaign, variant, step string
	date                                           time.Time
}

func attributionFrom(h *textproto.Header, opts Options) attribution {
	var a attribution
	if h == nil {
		return a
	}
	a.messageID = cleanMessageID(h.Get("Message-Id"))
	a.sender = firstAddress(h.Get("From"))
	if a.sender == "" {
		a.sender = firstAddress(h.Get("Return-Path"))
	}
	a.to = firstAddress(h.Get("To"))
	if d := h.Get("Date"); d != "" {
		if t, err := mail.ParseDate(d); err == nil {
			a.date = t
		}
	}
	a.campaign = firstHeader(h, opts.CampaignHeaders)
	a.variant = firstHeader(h, opts.VariantHeaders)
	a.step = firstHeader(h, opts.StepHeaders)
	return a
}

func firstHeader(h *textproto.Header, names []string) string {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v
		}
	}
	return ""
}

// cleanMessageID returns a Message-ID without angle brackets or spaces.
func cleanMessageID(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	return strings.TrimSpace(s)
}

// firstAddress returns the first mailbox address in an address-list header
// value, lower-cased, or "" when there is none. Malformed lists fall back to
// the first thing that looks like local@domain.
func firstAddress(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
		return strings.ToLower(list[0].Address)
	}
	if m := addrRe.FindString(v); m != "" {
		return strings.ToLower(m)
	}
	return ""
}

// base builds an event with the envelope's lineage fields.
func base(env *sgv1.RawEnvelope, typ sgv1.EventType) *sgv1.Event {
	return &sgv1.Event{
		Tenant:     env.GetTenant(),
		Type:       typ,
		Source:     env.GetSource(),
		EnvelopeId: env.GetEnvelopeId(),
		ReceivedAt: env.GetReceivedAt(),
	}
}

// finish sets attribution, time, id and derived fields.
func finish(ev *sgv1.Event, a attribution, occurred time.Time, env *sgv1.RawEnvelope, source string, payloadKey string) {
	if ev.Sender == "" {
		ev.Sender = a.sender
	}
	ev.MessageId = a.messageID
	ev.Campaign = a.campaign
	ev.Variant = a.variant
	ev.Step = a.step
	switch {
	case !occurred.IsZero():
		ev.OccurredAt = timestamppb.New(occurred.UTC())
	case env.GetReceivedAt() != nil:
		ev.OccurredAt = env.GetReceivedAt()
	}
	classify.Enrich(ev)
	idKey := ev.MessageId
	if idKey == "" {
		idKey = "payload:" + payloadKey
	}
	ev.EventId = canonical.EventID(source, idKey, ev.Recipient, canonical.TypeWord(ev.Type))
}

// headerDate parses a date header value, or returns zero.
func headerDate(v string) time.Time {
	if v = strings.TrimSpace(v); v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	// Some MTAs add a trailing comment or use odd spacing.
	if i := strings.IndexByte(v, '('); i > 0 {
		if t, err := mail.ParseDate(strings.TrimSpace(v[:i])); err == nil {
			return t
		}
	}
	return time.Time{}
}
