package mail

import (
	"html"
	"regexp"
	"strings"

	"github.com/sendguard/sendguard/pkg/classify"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Plain-text bounces. Without a message/delivery-status part, the bounce
// text is read in four steps, each a documented pattern list below:
//
//  1. The text is cut at the first originalMarker line: what follows is the
//     returned message (its headers give attribution), not the report.
//  2. Recipients: the Exim X-Failed-Recipients header when present; else
//     the addresses after the first recipientIntro phrase ("The following
//     address(es) failed:", qmail's "to the following addresses", Exchange's
//     "Delivery has failed to these recipients or groups:", Gmail's
//     "Delivery to the following recipient failed permanently:", Yahoo's
//     "unable to deliver your message to the following address" …); else
//     every address in the text. Addresses of the bounce's own From, To,
//     Reply-To, of the original sender, postmaster/mailer-daemon, and
//     addresses on header-like label lines ("From:", "To:", "Message-ID:")
//     are never recipients.
//  3. Diagnostic: from the recipient's first mention to the next
//     recipient's (at most 12 lines), starting at the first line carrying
//     an SMTP reply code, an enhanced status code or a "said:" clause when
//     there is one; else the whole window. Without any, the first such line
//     of the whole text.
//  4. Action: delayed when delayedRe matches the report text (Gmail
//     "Delivery to the following recipient has been delayed", Postfix and
//     Exim warnings, "will be retried"), failed otherwise.

var (
	addrRe = regexp.MustCompile(`[A-Za-z0-9!#$%&'*+/=?^_{|}~.\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+`)

	originalMarkerRe = regexp.MustCompile(`^[ \t>]*(?:[-=_*]{2,}[ \t]*)?(?:(?:included|attached|enclosed|below|here) is )?(?:this is a copy of the message|below this line is a copy of the message|original message|(?:a )?copy of (?:the|your) (?:original )?message|original message (?:headers|follows)|undelivered message (?:headers )?follows|returned message|(?:the )?headers? of the original message|header of the original message|unsent message (?:below|follows)|message header follows|the original message headers|original message headers|start of returned message|returned mail follows|------ ?the body of the message|message headers follow|(?:original|returned|undelivered|attached) (?:message|mail)(?: headers?)? (?:as follows|follows|below)|copy of the (?:original )?message header)`)

	recipientIntroRe = regexp.MustCompile(`(following address(?:es|\(es\))? failed|following recipients?(?: \(s\))?|following addresses|to the following addresses|following address|did not reach the following recipient|delivery has failed to these recipients|couldn't be delivered to|could not be delivered to|was not delivered to|wasn't delivered to|unable to deliver (?:your )?message to|fatal errors|could not deliver (?:mail|the message|your message) to|message to the following|delivery to the following|not delivered to the following|undeliverable to|has been delayed|recipient(?:s)? (?:address(?:es)? )?(?:rejected|failed|unknown)|failed recipient|unknown recipient|recipient:|address(?:es)? failed)`)

	codeLineRe = regexp.MustCompile(`(?:^|[^0-9.])(?:[245][0-9]{2}[ \-]+[0-9A-Za-z#<\[]|[245]\.[0-9]{1,3}\.[0-9]{1,3}\b)|said:|said\)|reason:|remote server returned|error was|the error that|diagnostic`)

	delayedRe = regexp.MustCompile(`has been delayed|delivery (?:is |has been )?delayed|delayed mail|warning message only|(?:will|shall) (?:continue to )?(?:retry|try again|be retried)|message will be retried|not yet been delivered|still (?:undelivered|trying)|do not need to resend|delivery status notification \(delay\)|mail delivery delayed|temporarily (?:unable|deferred)`)

	labelLineRe = regexp.MustCompile(`^[ \t>]*(?:from|to|cc|reply-to|sender|return-path|message-id|in-reply-to|references|subject|sent|date|received|x-[a-z0-9-]+|envelope-from|delivered-to|final-recipient|original-recipient|reporting-mta|remote-mta|received-from-mta|status|action|arrival-date|last-attempt-date|will-retry-until)\s*:`)

	htmlTagRe = regexp.MustCompile(`(?s)<(?:script|style)[^>]*>.*?</(?:script|style)>|<br\s*/?>|</?(?:p|div|tr|li|h[1-6])[^>]*>|<[^>]+>`)

	notRecipientLocal = map[string]bool{"mailer-daemon": true, "postmaster": true, "mailerdaemon": true, "mail-daemon": true}
)

// splitOriginal cuts t at the first original-message marker line. Only
// lines that mention a message, mail, header or body are tried.
func splitOriginal(t string) (before, after string, ok bool) {
	low := asciiLower(t)
	off := 0
	for line := range strings.Lines(low) {
		if (strings.Contains(line, "message") || strings.Contains(line, "mail") || strings.Contains(line, "header") || strings.Contains(line, "body")) &&
			originalMarkerRe.MatchString(line) {
			return t[:off], t[off+len(line):], true
		}
		off += len(line)
	}
	return t, "", false
}

// stripHTML turns an HTML part into text lines.
func stripHTML(s string) string {
	s = htmlTagRe.ReplaceAllStringFunc(s, func(tag string) string {
		l := strings.ToLower(tag)
		if strings.HasPrefix(l, "<br") || strings.HasPrefix(l, "</p") || strings.HasPrefix(l, "</div") || strings.HasPrefix(l, "</tr") || strings.HasPrefix(l, "</li") || strings.HasPrefix(l, "<p") || strings.HasPrefix(l, "<div") {
			return "\n"
		}
		return ""
	})
	return html.UnescapeString(s)
}

// asciiLower lower-cases ASCII letters only, so byte offsets stay valid
// between s and the result (the scanning regexps are lower case).
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// reportText is the human-readable report: text parts cut at the original
// message marker.
func (pm *parsedMessage) reportText() string {
	if pm.report != nil {
		return *pm.report
	}
	r := pm.buildReport()
	pm.report = &r
	return r
}

func (pm *parsedMessage) buildReport() string {
	var b strings.Builder
	for _, t := range pm.allTexts() {
		before, _, _ := splitOriginal(t)
		b.WriteString(strings.ReplaceAll(before, "\r\n", "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

// excludedAddresses are never recipients of a text bounce.
func (pm *parsedMessage) excludedAddresses() map[string]bool {
	ex := map[string]bool{}
	for _, k := range []string{"From", "To", "Reply-To", "Sender", "Return-Path"} {
		for _, a := range addrRe.FindAllString(pm.header.Get(k), -1) {
			ex[strings.ToLower(a)] = true
		}
	}
	if h := pm.origHeaders(); h != nil {
		for _, k := range []string{"From", "Return-Path", "Sender", "Reply-To"} {
			for _, a := range addrRe.FindAllString(h.Get(k), -1) {
				ex[strings.ToLower(a)] = true
			}
		}
	}
	return ex
}

// textRecipients extracts recipients and diagnostics from bounce text.
func textRecipients(pm *parsedMessage) []dsnRecipient {
	text := pm.reportText()
	if strings.TrimSpace(text) == "" {
		return nil
	}
	low := asciiLower(text)
	action := "failed"
	if delayedRe.MatchString(low) {
		action = "delayed"
	}
	exclude := pm.excludedAddresses()
	origTo := map[string]bool{}
	if h := pm.origHeaders(); h != nil {
		for _, k := range []string{"To", "Cc"} {
			for _, a := range addrRe.FindAllString(h.Get(k), -1) {
				origTo[strings.ToLower(a)] = true
			}
		}
	}
	isCandidate := func(a string) bool {
		a = strings.ToLower(strings.Trim(a, ".<>"))
		if origTo[a] {
			return true
		}
		if exclude[a] {
			return false
		}
		local := a
		if i := strings.IndexByte(a, '@'); i >= 0 {
			local = a[:i]
		}
		return !notRecipientLocal[local]
	}

	lines := strings.Split(text, "\n")
	lowLines := strings.Split(low, "\n")
	// Offsets of lines, to map regex positions to lines.
	lineOf := func(off int) int {
		n := 0
		for i, l := range lines {
			n += len(l) + 1
			if off < n {
				return i
			}
		}
		return len(lines) - 1
	}
	startLine := 0
	if loc := recipientIntroRe.FindStringIndex(low); loc != nil {
		startLine = lineOf(loc[0])
	}

	type mention struct {
		addr string
		line int
	}
	var order []mention
	seen := map[string]bool{}
	// X-Failed-Recipients (Exim) is authoritative when present.
	var failed []string
	for _, a := range addrRe.FindAllString(pm.header.Get("X-Failed-Recipients"), -1) {
		failed = append(failed, strings.ToLower(a))
	}
	collect := func(from int) {
		for i := from; i < len(lines); i++ {
			l := lines[i]
			if strings.IndexByte(l, '@') < 0 || isLabelLine(lowLines[i]) {
				continue
			}
			// One recipient per line: further addresses on the same line
			// are the diagnostic's ("<a>: 550 <a>… user unknown", "may
			// not follow <b>").
			for _, a := range addrRe.FindAllString(l, -1) {
				a = strings.ToLower(strings.Trim(a, ".-"))
				if seen[a] || !isCandidate(a) || strings.Contains(lowLines[i], "message-id") {
					continue
				}
				if len(failed) > 0 && !contains(failed, a) {
					continue
				}
				seen[a] = true
				order = append(order, mention{a, i})
				break
			}
		}
	}
	collect(startLine)
	if len(order) == 0 && startLine > 0 {
		collect(0)
	}
	if len(order) == 0 && len(failed) > 0 {
		for _, a := range failed {
			order = append(order, mention{a, -1})
		}
	}
	globalDiag := firstCodeWindow(lines, lowLines, 0, len(lines))
	var out []dsnRecipient
	if len(order) == 0 {
		// No address in the text at all: one outcome for the original To.
		if globalDiag == "" {
			globalDiag = windowText(lines, startLine, min(len(lines), startLine+6))
		}
		if globalDiag == "" {
			return nil
		}
		return []dsnRecipient{{action: action, diagnostic: globalDiag, fromText: true}}
	}
	for k, m := range order {
		diag := ""
		if m.line >= 0 {
			end := len(lines)
			for _, n := range order[k+1:] {
				if n.line > m.line {
					end = n.line
					break
				}
			}
			end = min(end, m.line+12)
			diag = firstCodeWindow(lines, lowLines, m.line, end)
			if diag == "" {
				diag = windowText(lines, m.line, end)
				if !hasEvidence(diag) {
					// Some MTAs put the reason above the address
					// (ezweb: "The user(s) account is disabled." then
					// "<addr>").
					prevEnd := 0
					if k > 0 {
						prevEnd = order[k-1].line + 1
					}
					if before := windowText(lines, max(prevEnd, m.line-3), m.line); hasEvidence(before) {
						diag = before
					} else if globalDiag != "" {
						diag = globalDiag
					}
				}
			}
		} else {
			diag = globalDiag
			if diag == "" {
				diag = windowText(lines, startLine, min(len(lines), startLine+8))
			}
		}
		out = append(out, dsnRecipient{recipient: m.addr, action: action, diagnostic: diag, fromText: true})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hasEvidence reports whether a text window carries a code or a phrase the
// bounce classifier knows.
func hasEvidence(s string) bool {
	if codeLineRe.MatchString(asciiLower(s)) {
		return true
	}
	return classify.Bounce(classify.BounceInput{Diagnostic: s}).Rule != "default"
}

// isLabelLine reports whether a lower-cased line is a header-like label
// line ("from: …", "final-recipient: …").
func isLabelLine(l string) bool {
	return strings.IndexByte(l, ':') >= 0 && labelLineRe.MatchString(l)
}

// firstCodeWindow returns up to four lines of lines[from:to] starting at
// the first line with a reply code, status code or "said:" clause.
func firstCodeWindow(lines, low []string, from, to int) string {
	for i := from; i < to && i < len(lines); i++ {
		if codeLineRe.MatchString(low[i]) && !isLabelLine(low[i]) {
			return windowText(lines, i, min(to, i+4))
		}
	}
	return ""
}

// windowText joins non-empty lines of lines[from:to] into one diagnostic.
func windowText(lines []string, from, to int) string {
	var parts []string
	for i := max(from, 0); i < to && i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		parts = append(parts, l)
	}
	return truncate(cleanDiagnostic(strings.Join(parts, " ")), 1000)
}

// bounceFromRe matches the senders and subjects of bounces, so that an
// Auto-Submitted bounce is not mistaken for a vacation notice.
var (
	bounceFromRe    = regexp.MustCompile(`(?i)mailer-daemon|postmaster|mail delivery|mail ?administrator|mailadmin|bounce`)
	bounceSubjectRe = regexp.MustCompile(`(?i)undeliver|undelivered|delivery (status|failure|notification|has failed|failed|problem|report)|returned mail|failure notice|mail delivery|could not be delivered|non[- ]?delivery|delayed mail|warning: could not send|rejected|bounce`)
)

// isAutoReply reports whether the message is an RFC 3834 automatic
// response (vacation, out of office) rather than a bounce.
func isAutoReply(pm *parsedMessage) bool {
	h := pm.header
	auto := strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))), "auto-replied") ||
		h.Has("X-Autoreply") || h.Has("X-Autorespond") ||
		strings.EqualFold(strings.TrimSpace(h.Get("Precedence")), "auto_reply")
	if !auto {
		return false
	}
	subj, _ := h.Text("Subject")
	if bounceFromRe.MatchString(h.Get("From")) || bounceSubjectRe.MatchString(subj) {
		return false
	}
	return len(pm.reports) == 0
}

// autoReplyEvents turns an automatic response into one replied event from
// the responder. The category is what classify.Reply reads when that is
// ooo or bounce_back, else ooo: an automatic response is by definition not
// a human answer.
func autoReplyEvents(env *sgv1.RawEnvelope, pm *parsedMessage, opts Options, payloadKey string) ([]*sgv1.Event, error) {
	from := firstAddress(pm.header.Get("From"))
	if from == "" {
		return nil, &ParseError{Format: "dsn", Reason: "automatic reply without a From address"}
	}
	subj, _ := pm.header.Text("Subject")
	body := strings.Join(pm.allTexts(), "\n")
	v := classify.Reply(subj, body)
	cat := v.Category
	if cat != sgv1.ReplyCategory_REPLY_CATEGORY_OOO && cat != sgv1.ReplyCategory_REPLY_CATEGORY_BOUNCE_BACK {
		cat = sgv1.ReplyCategory_REPLY_CATEGORY_OOO
	}
	ev := base(env, sgv1.EventType_EVENT_TYPE_REPLIED)
	ev.Recipient = from
	ev.SourceEvent = "auto-replied"
	ev.Reply = &sgv1.Reply{Category: cat, Risk: classify.ReplyRisk(cat), Subject: truncate(subj, 300), Text: truncate(strings.TrimSpace(body), 2000)}
	attr := attributionFrom(pm.origHeaders(), opts)
	if attr.sender == "" {
		attr.sender = firstAddress(pm.header.Get("To"))
	}
	if attr.messageID == "" {
		attr.messageID = cleanMessageID(pm.header.Get("In-Reply-To"))
	}
	finish(ev, attr, headerDate(pm.header.Get("Date")), env, "dsn", payloadKey)
	return []*sgv1.Event{ev}, nil
}
