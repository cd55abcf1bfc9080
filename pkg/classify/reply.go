package classify

import (
	"regexp"
	"strings"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// ReplyVerdict is the category and risk of a reply, and the rule that
// decided ("reply:unsubscribe", "none").
type ReplyVerdict struct {
	Category sgv1.ReplyCategory
	Risk     sgv1.Risk
	Rule     string
}

// ReplyRule is one entry of the reply table.
type ReplyRule struct {
	// Name identifies the entry in ReplyVerdict.Rule as "reply:"+Name.
	Name string
	// Subject, when set, is matched against the subject only.
	Subject string
	// Body, when set, is matched against the reply's own text (quoted
	// history removed) and the subject.
	Body     string
	Category sgv1.ReplyCategory
	Reason   string

	subjRe, bodyRe *matcher
}

// ReplyRules is ordered: the first matching entry wins. The order encodes
// the policy:
//
//  1. automatic mail first (ooo, bounce_back): a human wrote nothing.
//  2. hostile and complaint before unsubscribe: "stop spamming me" is a
//     complaint threat, not a polite opt-out; both are high risk.
//  3. unsubscribe before the softer negatives.
//  4. not_now before not_a_fit: a negative with an explicit time qualifier
//     ("not interested right now", "maybe next quarter") leaves the door
//     open and must not count as a negative reply that pauses a campaign;
//     the prospect is re-contacted later, not suppressed.
//  5. not_a_fit before referral and interested, because "not interested"
//     contains "interested".
//  6. referral before interested: "let's talk, cc'ing Ann who owns this"
//     routes the thread to someone else.
var ReplyRules = []ReplyRule{
	{Name: "ooo-subject", Subject: `out of (the )?office|auto(matic|matisch)?[ -]?(reply|response|antwort)|autoreply|abwesenheit|absence|on vacation|on holiday|on leave|away from (the )?office|r[ée]ponse automatique`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_OOO, Reason: "auto-responder subject"},
	{Name: "ooo", Body: `out of (the )?office|i am (currently )?(away|out of)|i'm (currently )?(away|out of)|(on|taking) (annual|parental|maternity|paternity|sick|medical) leave|annual leave|on (vacation|holiday|leave|pto|sabbatical)|limited (access to|email access)|(will|i'll) (be )?(back|return(ing)?) (on|in|to the office)|returning (on|to the office)|back in the office|away until|this is an automatic(ally generated)? (reply|response|message)|auto-?reply`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_OOO, Reason: "out-of-office wording"},
	{Name: "bounce-back", Body: `delivery status notification|undeliverable|undelivered mail|delivery (has )?failed|mail delivery (failed|subsystem)|address not found|returned mail|failure notice|message (was )?not delivered|could not be delivered|couldn't be delivered|mailbox (is )?(full|unavailable)|user unknown|no longer (works|with the company|employed|at)|(has|have) left (the company|the organi[sz]ation|\w+)|this (email )?address is no longer (monitored|active|in use)`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_BOUNCE_BACK, Reason: "delivery failure or dead-address notice sent as a reply"},
	{Name: "hostile", Body: `\bf+u+c+k+|\bf\*+|\bfck|\bstfu\b|\bwtf\b|\bshit|\bbullshit|\bidiots?\b|\bmorons?\b|piss off|go to hell|screw you|get lost|\basshole|\bscum|\bscammers?\b`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE, Reason: "profanity or insults"},
	{Name: "complaint", Body: `\bspam(ming|med|mer|my)?\b|report(ed|ing)? (you|this|to)|mark(ed|ing)? (this |it |you )?as (spam|junk)|harass|\bgdpr\b|data protection|\blawyers?\b|\battorneys?\b|legal action|can-?spam|\bftc\b|illegal|unsolicited|how did you get (my|this)|where did you get (my|this)|who gave you (my|this)|never (signed|opted) up|did not (sign|opt) up|didn't (sign|opt) up|never gave you`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_COMPLAINT, Reason: "spam accusation, report threat, legal or data-protection language"},
	{Name: "unsubscribe", Body: `unsubscribe|remove me|remove (my (email|address|name)|us) from|take (me|us) off|stop (e-?mailing|sending|contacting|messaging|writing)|(do not|don't|dont) reach out|(do not|don't|dont|please don't|never) (e-?mail|contact|message|write to) (me|us)( again)?|opt (me )?out|opt-out|no more (e-?mails|messages)|(delete|erase) my (data|details|email|address)|off your (list|mailing list)`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE, Reason: "explicit request to stop contact"},
	{Name: "not-now", Body: `\bnot (right )?now\b|not at (this|the) (time|moment)|(right now|at the moment|at this time|for now)[^.!?\n]{0,40}\b(not|no)\b|\bnot\b[^.!?\n]{0,40}(right now|at the moment|at this (time|point|stage)|for now|this (quarter|year|month))|next (quarter|year|month|week|fiscal)|circle back|(reach|check) (back )?(out|in) (again )?(later|in|next|after)|later this year|(in|after) (a few|a couple of|\d+|two|three|six) (weeks|months)|maybe later|bad timing|not the right time|timing (is|isn't)|touch base (later|in|next)|follow up (later|in|next)|revisit (this|in|later|next)|(after|once) (the )?(holidays|summer|budget|q[1-4]|new year)|\bq[1-4]\b|no budget (right now|this)`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_NOT_NOW, Reason: "deferral with a time qualifier; the door is open"},
	{Name: "not-a-fit", Body: `not interested|no interest|not (a|the) (good |right )?fit|no need|don't need|do not need|we already (use|have|work)|already (using|have a|work with)|(we're|we are|i'm|i am) (all set|good|covered)|not relevant|no,? thanks|no thank you|not for us|pass on this|not looking|does not apply|doesn't apply|not a priority|not something we`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT, Reason: "polite no"},
	{Name: "referral", Body: `(the )?(right|best|better|correct) (person|contact|people)|reach out to|(contact|talk to|speak (to|with)|email|ping) (my colleague|our|the) |\b(cc|cc'ing|cc’ing|cc-ing|cc'd|cc’d|copying|looping in|looped in)\b|forward(ed|ing)? (this |it |your (email|note|message) )?to|handles (this|that|these)|(is|are) (responsible|in charge) (for|of)|owns (this|that)|who (handles|manages|owns|looks after)`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_REFERRAL, Reason: "points to someone else"},
	{Name: "interested", Body: `interested|interesting|let's (talk|chat|connect|meet|set|schedule|do it|find)|lets (talk|chat|connect)|book (a|some) (call|time|meeting|demo)|schedule (a|some) (call|time|meeting|demo)|set up (a|some) (call|time|meeting)|(send|share) (me |us )?(more|some) (info|information|details)|more (info|information|details)|tell me more|sounds (good|great|interesting)|\bcalendar\b|calendly|what times? (works|work|suits)|(my|our) availability|free (on|next|this)|happy to (chat|talk|meet|connect|hop)|\bdemo\b|\bpricing\b|how much|\byes\b`, Category: sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED, Reason: "asks for a conversation or information"},
}

func init() {
	for i := range ReplyRules {
		r := &ReplyRules[i]
		// Patterns are lower case and read lower-cased text.
		if r.Subject != "" {
			m := newMatcher(r.Subject)
			r.subjRe = &m
		}
		if r.Body != "" {
			m := newMatcher(r.Body)
			r.bodyRe = &m
		}
	}
}

// ReplyRisk is the reputational risk of a reply category: high for
// complaint and hostile, medium for unsubscribe and not_a_fit, low for the
// rest, unspecified for an unspecified category.
func ReplyRisk(c sgv1.ReplyCategory) sgv1.Risk {
	switch c {
	case sgv1.ReplyCategory_REPLY_CATEGORY_UNSPECIFIED:
		return sgv1.Risk_RISK_UNSPECIFIED
	case sgv1.ReplyCategory_REPLY_CATEGORY_COMPLAINT, sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE:
		return sgv1.Risk_RISK_HIGH
	case sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE, sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT:
		return sgv1.Risk_RISK_MEDIUM
	default:
		return sgv1.Risk_RISK_LOW
	}
}

var (
	replyPrefixRe = regexp.MustCompile(`(?i)^(re|aw|sv|vs|antw|antwort|r|rif|fw|fwd|wg|tr)\s*(\[\d+\])?\s*:`)
	quoteHeaderRe = regexp.MustCompile(`(?im)^[ \t]*(on .{0,200}wrote:|-{2,}\s*original message\s*-{2,}|_{5,}|from:\s.+|sent from my |le .{0,200}a écrit\s*:|am .{0,200}schrieb .{0,200}:)`)
)

// OwnText strips quoted history from a reply body: everything from the
// first "On … wrote:", "-----Original Message-----", Outlook "From:" block
// or mobile signature on, and every line that starts with ">". The original
// outbound message often carries words ("unsubscribe", "calendar") that
// must not classify the reply.
func OwnText(body string) string {
	if loc := quoteHeaderRe.FindStringIndex(body); loc != nil {
		body = body[:loc[0]]
	}
	var b strings.Builder
	for line := range strings.Lines(body) {
		if strings.HasPrefix(strings.TrimLeft(line, " \t"), ">") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// Reply classifies a reply by its subject and body with ReplyRules. A reply
// matching no rule gets REPLY_CATEGORY_UNSPECIFIED, risk unspecified and
// rule "none".
func Reply(subject, body string) ReplyVerdict {
	subject = strings.ToLower(strings.TrimSpace(subject))
	text := strings.ToLower(OwnText(body))
	// A "Re: …" subject is the sender's own subject line: it says nothing
	// about the reply, so body rules read it only when it is new.
	both := text
	if !replyPrefixRe.MatchString(subject) {
		both = subject + "\n" + text
	}
	for i := range ReplyRules {
		r := &ReplyRules[i]
		if r.subjRe != nil && r.subjRe.MatchString(subject) {
			return replyVerdict(r)
		}
		if r.bodyRe != nil && r.bodyRe.MatchString(both) {
			return replyVerdict(r)
		}
	}
	return ReplyVerdict{Rule: "none"}
}

func replyVerdict(r *ReplyRule) ReplyVerdict {
	return ReplyVerdict{Category: r.Category, Risk: ReplyRisk(r.Category), Rule: "reply:" + r.Name}
}
