// Package classify holds the pure, table-driven classifiers of the
// normalizer: bounce class and category, recipient provider and account,
// role accounts and reply categories. Nothing here touches the network
// except ProviderResolver, which is off unless a caller builds one.
//
// # Bounce policy
//
// The class answers one question: will retrying this message to this
// recipient, unchanged, succeed later? Hard means no, soft means maybe.
// The category says why, and decides what the signal counts against:
//
//   - invalid_mailbox and dns (hard) measure list quality: the address or
//     its domain does not exist. They feed hard_bounce rates and recipient
//     suppression.
//   - spam_block, policy_block, auth_failure and content measure the
//     sender's reputation and set-up, not the list. A 5xx spam block is hard
//     class (the same message will be refused again) but must not be read as
//     a bad address: rules should throttle or pause the sender or domain, not
//     suppress the recipient.
//   - mailbox_full and rate_limited are always soft: the mailbox exists and
//     the refusal is temporary by nature, whatever the reply code says.
//   - other is everything the evidence does not pin down.
//
// Evidence is trusted in this order: provider diagnostic text (most
// specific), the RFC 3463 enhanced status code, the ESP's own classification
// when it names a specific reason, the basic SMTP reply code, then the ESP's
// generic class. The first source that decides wins; Rule names it.
package classify

import (
	"regexp"
	"strconv"
	"strings"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Short aliases keep the tables readable.
const (
	hard = sgv1.BounceClass_BOUNCE_CLASS_HARD
	soft = sgv1.BounceClass_BOUNCE_CLASS_SOFT
	// byCode means: take the class from the enhanced or SMTP code (4 soft,
	// 5 hard), else from the ESP, else the rule's fallback.
	byCode = sgv1.BounceClass_BOUNCE_CLASS_UNSPECIFIED

	catInvalid = sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX
	catFull    = sgv1.BounceCategory_BOUNCE_CATEGORY_MAILBOX_FULL
	catDNS     = sgv1.BounceCategory_BOUNCE_CATEGORY_DNS
	catPolicy  = sgv1.BounceCategory_BOUNCE_CATEGORY_POLICY_BLOCK
	catSpam    = sgv1.BounceCategory_BOUNCE_CATEGORY_SPAM_BLOCK
	catRate    = sgv1.BounceCategory_BOUNCE_CATEGORY_RATE_LIMITED
	catAuth    = sgv1.BounceCategory_BOUNCE_CATEGORY_AUTH_FAILURE
	catContent = sgv1.BounceCategory_BOUNCE_CATEGORY_CONTENT
	catOther   = sgv1.BounceCategory_BOUNCE_CATEGORY_OTHER
)

// BounceInput is everything known about one failed (or delayed) delivery.
// Every field is optional; ESP is the source name ("ses", "sparkpost",
// "postmark", "mailgun", "sendgrid") and ESPType/ESPSubType are that ESP's
// own classification words (SES bounceType/bounceSubType, SparkPost
// bounce_class number, Postmark Type, Mailgun severity/reason, SendGrid
// type/bounce_classification).
type BounceInput struct {
	SMTPCode     int
	EnhancedCode string
	Diagnostic   string
	ESP          string
	ESPType      string
	ESPSubType   string
}

// BounceVerdict is the class and category of a bounce, and the table entry
// that decided it ("diag:gmail-no-such-user", "enhanced:X.2.2",
// "esp:ses:Transient/MailboxFull", "smtp:421", "default").
type BounceVerdict struct {
	Class    sgv1.BounceClass
	Category sgv1.BounceCategory
	Rule     string
}

// DiagnosticRule is one entry of the diagnostic-text table.
type DiagnosticRule struct {
	// Name identifies the entry in BounceVerdict.Rule as "diag:"+Name.
	Name string
	// Pattern is a lower-case regular expression, matched against the
	// lower-cased diagnostic (so effectively case-insensitive).
	Pattern string
	// Class is fixed when set; byCode derives it from the codes.
	Class sgv1.BounceClass
	// Fallback is the class when Class is byCode and no code is known.
	Fallback sgv1.BounceClass
	Category sgv1.BounceCategory
	// Reason documents the entry (provider documentation or observed text).
	Reason string
	// Generic entries match vague wording ("refused", "policy"); a specific
	// enhanced status code outranks them.
	Generic bool

	re matcher
}

// DiagnosticRules is ordered: the first match wins, so provider-specific
// entries come before generic wording. Add entries here; each needs a case
// in bounce_test.go.
var DiagnosticRules = []DiagnosticRule{
	// --- Authentication (before spam and policy: these texts often also say "blocked").
	{Name: "gmail-auth", Pattern: `5\.7\.2[67]\b.*(unauthenticated|authentication|dmarc|spf|dkim)|(does not|doesn't) meet the required authentication level|not pass authentication checks|fails? to pass authentication`, Class: byCode, Fallback: hard, Category: catAuth, Reason: "Gmail 5.7.26/5.7.27 and Microsoft 5.7.515: message fails SPF/DKIM/DMARC requirements"},
	{Name: "dmarc", Pattern: `\bdmarc\b.*(fail|reject|policy)|(fail|reject|policy).*\bdmarc\b|5\.7\.509`, Class: byCode, Fallback: hard, Category: catAuth, Reason: "receiver enforced the sender domain's DMARC policy (Microsoft 5.7.509, Yahoo, generic)"},
	{Name: "yahoo-unauthenticated", Pattern: `sender is unauthenticated|requires all senders to authenticate|not authenticated.*(spf|dkim)`, Class: byCode, Fallback: hard, Category: catAuth, Reason: "Yahoo/AOL 5.7.9: senders must authenticate with SPF or DKIM"},
	{Name: "spf-fail", Pattern: `\bspf\b.*(fail|check|not (permit|authoriz|designat)|softfail|hardfail)|(fail|failed|violat).*\bspf\b|not (a )?permitted sender|5\.7\.2[34]\b`, Class: byCode, Fallback: hard, Category: catAuth, Reason: "SPF check failed (RFC 7372 X.7.23/X.7.24 wording)"},
	{Name: "dkim-fail", Pattern: `\bdkim\b.*(fail|invalid|missing|required|not valid|non-valid)|(fail|invalid|non-valid).*\bdkim\b|5\.7\.2[012]\b`, Class: byCode, Fallback: hard, Category: catAuth, Reason: "DKIM signature missing or invalid (RFC 7372 X.7.20-X.7.22)"},
	{Name: "ptr-missing", Pattern: `reverse dns|\bptr\b|rdns|reverse (lookup|hostname)|no reverse|5\.7\.25\b|mismatches client ip`, Class: byCode, Fallback: hard, Category: catAuth, Reason: "sending IP lacks a matching PTR record (X.7.25, Gmail 5.7.25, many RBL-style checks)"},

	{Name: "gmail-format", Pattern: `not rfc ?5322 compliant|multiple (subject|from|to|date|message-id) headers|5\.7\.1 .*messages? (is|are) not rfc`, Class: byCode, Fallback: hard, Category: catContent, Reason: "Gmail 550-5.7.1 'not RFC 5322 compliant': malformed message, not reputation"},

	// --- Provider-specific reputation and spam blocks.
	{Name: "gmail-unsolicited", Pattern: `likely unsolicited mail|unusual rate of unsolicited|low reputation of the sending (domain|ip)|very low reputation|this message (has been|was) blocked because its content presents a potential security issue`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Gmail 550-5.7.1 / 421-4.7.28: spam or low reputation"},
	{Name: "gmail-rate", Pattern: `receiving mail (at a rate|too quickly)|unusual rate of mail|exceeded (its|the) (daily )?(rate|sending) limit|4\.7\.28\b`, Class: soft, Category: catRate, Reason: "Gmail 4.2.1/4.7.28: the recipient or sender exceeds a rate limit"},
	{Name: "microsoft-blocklist", Pattern: `\(s3150\)|\(s3140\)|\(s3114\)|on our block list|banned sending ip|5\.7\.(60[6-9]|6[1-4][0-9])\b|5\.7\.708\b|traffic not accepted from this ip`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Outlook.com/Office 365 S3150/S3140 and 5.7.606-649/5.7.708: sending IP on Microsoft's block list"},
	{Name: "reputation-deferral", Pattern: `\[tss0[1-9]\]|deferred due to (unexpected volume or )?user complaints|rate limited due to ip reputation|due to (poor|low|bad) (ip |sender )?reputation`, Class: soft, Category: catSpam, Reason: "Yahoo/AOL [TSS04] and Office 365 4.7.650 'rate limited due to IP reputation': a throttle driven by reputation; soft, but it counts against reputation, not volume"},
	{Name: "microsoft-rate", Pattern: `4\.7\.65[0-2]\b|temporarily rate limited|rate limited due to ip reputation|exceeded the maximum number of connections|4\.7\.500\b`, Class: soft, Category: catRate, Reason: "Office 365 4.7.650/4.7.500: temporary rate limit due to IP reputation; 4.7.651/4.7.652: too many connections from the sending IP (a per-IP connection/rate limit)"},
	{Name: "microsoft-recipient", Pattern: `resolver\.adr\.(recipnotfound|recipientnotfound|exrecipnotfound)|recipient address rejected: access denied|5\.4\.1 .*access denied`, Class: byCode, Fallback: hard, Category: catInvalid, Reason: "Office 365 RESOLVER.ADR.RecipNotFound / 5.4.1 directory-based edge blocking: recipient not found"},
	{Name: "microsoft-size", Pattern: `resolver\.rst\.recipsizelimit|recipsizelimit`, Class: byCode, Fallback: hard, Category: catContent, Reason: "Exchange RecipSizeLimit: message too large for the recipient"},
	{Name: "yahoo-deferred", Pattern: `\[ts0[1-4]\]|temporarily deferred due to (unexpected volume|user complaints)|messages? from .* temporarily deferred`, Class: soft, Category: catRate, Reason: "Yahoo/AOL 421 4.7.0 [TS01]-[TS04]: deferral for volume or complaints; retrying later may succeed"},
	{Name: "yahoo-blocked", Pattern: `\[bl2[0-3]\]|\[gl01\]|\[ph01\]|not accepted for policy reasons|5\.7\.9 message not accepted`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Yahoo/AOL [BL21]/[BL22]/[BL23] (Spamhaus-listed IP), [PH01] and 5.7.9 policy: reputation-based refusal"},
	{Name: "yahoo-no-user", Pattern: `doesn't have a (yahoo|ymail|aol|rocketmail)[a-z.]* account|this user doesn't have|dd this user`, Class: byCode, Fallback: hard, Category: catInvalid, Reason: "Yahoo 554 delivery error: dd This user doesn't have a yahoo.com account"},
	{Name: "apple-policy", Pattern: `\[cs0[0-9]\]|\[hm0[0-9]\]|rejected due to local policy|icloud.*(blocked|reject)`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "iCloud [CS01]/[HM08] 'Message rejected due to local policy': spam filtering"},
	{Name: "proofpoint", Pattern: `proofpoint\.com|blocked - see https?://`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Proofpoint 'Blocked - see ipcheck.proofpoint.com': IP reputation block"},
	{Name: "mimecast-invalid", Pattern: `invalid recipient - https?://.*mimecast|mimecast.*(invalid recipient|user unknown)`, Class: byCode, Fallback: hard, Category: catInvalid, Reason: "Mimecast '550 Invalid Recipient'"},
	{Name: "mimecast-policy", Pattern: `mimecast|envelope blocked|anti-spoofing policy|administrative prohibition`, Class: byCode, Fallback: hard, Category: catPolicy, Reason: "Mimecast envelope/anti-spoofing/administrative blocks are per-customer policy"},
	{Name: "barracuda", Pattern: `barracuda`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Barracuda Reputation Block List"},
	{Name: "ironport", Pattern: `senderbase|talos|ironport|rejected for policy reasons|your access to submit messages to this e-mail system has been rejected`, Class: byCode, Fallback: hard, Category: catPolicy, Reason: "Cisco IronPort/Talos reputation and HAT policy rejects"},
	{Name: "zoho", Pattern: `zoho.*(security polic|spam)|rejected due to security policies`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Zoho 554 5.7.1 'Email rejected due to security policies'"},
	{Name: "google-groups", Pattern: `may not have permission to post|group you tried to contact|not have permission to post messages to the group|you're sending this from a different address or alias`, Class: byCode, Fallback: hard, Category: catPolicy, Reason: "Google Groups / Workspace refuse the sender (not a member, alias not allowed); the group may well exist"},
	{Name: "yandex-spam", Pattern: `suspicion of spam|message rejected under suspicion`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Yandex 554 5.7.1 'Message rejected under suspicion of SPAM'"},
	{Name: "gmx-policy", Pattern: `reject due to policy restrictions|sender address has null mx|\(mx[a-z0-9-]*\) .*policy|gmx|web\.de`, Class: byCode, Fallback: hard, Category: catPolicy, Reason: "GMX/web.de 554 'Reject due to policy restrictions'"},
	{Name: "orange-rate", Pattern: `ofr00[0-9]_[0-9]+|service refus[ée], veuillez essayer plus tard`, Class: soft, Category: catRate, Reason: "Orange OFR004/OFR005 codes and 'too many connections': throttling"},
	{Name: "orange-block", Pattern: `ofr_[0-9]+|ofr[0-9]{3}_[0-9]+`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Orange OFR_xxx reputation blocks"},
	{Name: "comcast-rate", Pattern: `\brl0{3,}[0-9]+\b|comcast.*rate limit`, Class: soft, Category: catRate, Reason: "Comcast RL000xxx: rate limit"},
	{Name: "comcast-block", Pattern: `\bbl0{3,}[0-9]+\b|comcast block for spam|comcast.*(blocked|reputation)`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "Comcast BL000xxx: blocked for spam/reputation"},
	{Name: "comcast-not-customer", Pattern: `not our customer`, Class: byCode, Fallback: hard, Category: catInvalid, Reason: "Comcast 550 5.1.1 'Not our Customer'"},

	// --- Public blocklists (RBL/DNSBL).
	{Name: "rbl", Pattern: `spamhaus|spamcop|sorbs|\bbarracudacentral|uceprotect|\brbl\b|dnsbl|\bsbl\b|\bxbl\b|\bpbl\b|blocked using|listed (at|on|in|by)|is (black|block)listed|blacklist|blocklist|block list|black list|ip (address )?(is )?(black|block)listed|bad reputation|poor reputation|ip reputation|sender reputation|low reputation`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "sending IP or domain on a public or private blocklist, or refused for reputation"},

	// --- Mailbox full (always soft: the mailbox exists).
	{Name: "mailbox-full", Pattern: `mailbox (is )?full|mailbox.*(over|exceeded).*(quota|size|limit)|over ?quota|quota (exceeded|full)|exceeded (the )?(storage|quota)|insufficient (disk )?(space|storage)|out of storage|storage (allocation|space)|user has exceeded|mail ?box size limit|mailfolder is full|inbox is full|account is full|full mailbox|not enough (space|storage)|mailbox has exceeded`, Class: soft, Category: catFull, Reason: "recipient's mailbox is full; temporary by nature (RFC 3463 X.2.2)"},

	// --- Refusals aimed at the sender, not the recipient (before the
	// recipient wording: "550 5.1.0 <sender> sender rejected").
	{Name: "sender-rejected", Pattern: `sender (address )?(rejected|refused|denied|blocked|verify failed)|sender verification failed|recipient preferences|client host rejected|helo command rejected|smtp auth(entication)? (is )?required|turn on smtp authentication|authentication required`, Class: byCode, Fallback: hard, Category: catPolicy, Reason: "the receiver refuses the sender, its host or its setup (Postfix reject_* restrictions, Cox/Spectrum 'sender rejected', Facebook recipient preferences)"},

	// --- DNS and routing.
	{Name: "null-mx", Pattern: `null mx|doesn't receive email|does not receive email|no smtp service|host/domain does not accept mail|does not accept mail`, Class: hard, Category: catDNS, Reason: "the domain publishes a null MX (RFC 7505) or no mail service: permanent whatever the code"},
	{Name: "dns", Pattern: `host (or domain name )?not found|name service error|domain (name )?not found|no mx|mx (record|lookup)|null mx|unrouteable (mail )?domain|domain (does not exist|doesn't exist|not exist)|no such domain|nxdomain|dns (error|failure|lookup)|host unknown|unknown host|bad destination system address|no route to host|unable to route|name or service not known|domain (is )?not (valid|resolvable|configured)|could not resolve|no valid (mx|hosts)`, Class: byCode, Fallback: hard, Category: catDNS, Reason: "destination domain does not resolve or has no mail service (X.1.2, X.1.10, X.4.4)"},
	{Name: "unreachable", Pattern: `connection (timed out|refused|reset)|timed out|no answer from host|network is unreachable|(domain|host|server) (is )?(not reachable|unreachable)|all hosts have been failing|could not connect|unable to connect|connect to .* failed`, Class: byCode, Fallback: soft, Category: catDNS, Reason: "destination host cannot be reached right now; routing, not the recipient; soft unless a 5xx code says otherwise"},

	// --- Invalid mailbox.
	{Name: "jp-no-such-user", Pattern: `ディレクトリ[^。]{0,30}(ありません|見つかりません)|ユーザ[ー]?[^。]{0,60}(見つかりません|存在しません)|存在しない(ユーザ|アドレス|メールアドレス)|宛先不明`, Class: byCode, Fallback: hard, Category: catInvalid, Reason: "Japanese MTAs (Lotus Notes/Domino, carriers): the user is not in the directory / does not exist"},
	{Name: "disabled-account", Pattern: `account (has been |is )?(disabled|deactivated|suspended|inactive|expired|locked)|mailbox (is )?(disabled|inactive|deactivated|suspended)|(disabled|inactive|deactivated|suspended|expired) (account|mailbox|user)|no longer (active|available|in use|valid|on server)|mailbox (is )?frozen|user (account )?(is )?(inactive|disabled)|account that you tried to reach is (disabled|inactive)`, Class: byCode, Fallback: hard, Category: catInvalid, Reason: "mailbox closed or disabled (X.2.1); the address is dead for list purposes"},
	{Name: "no-such-user", Pattern: `user unknown|unknown user|no such (user|mailbox|recipient|address|account)|(user|mailbox|recipient|address|account) (does not|doesn't|did not) exist|does not exist|(recipient|user|mailbox|address) (not found|unknown|invalid|not exist)|invalid (recipient|mailbox|address|user)|unknown (recipient|mailbox|address|local.?part)|recipient (address )?rejected: (user unknown|undeliverable address|unknown user|no such user|invalid recipient)|mailbox (unavailable|not available|not found)|address (not valid|unknown)|malformed address|bad address syntax|syntax error in (the )?(recipient|address|mailbox)|not a valid (mailbox|recipient|user)|bad destination mailbox|unrouteable address|unroutable address|no mailbox|is not a known user|user (is )?not (found|listed|local)|addressee unknown|couldn't be found|could not be found|not listed in|no account by that name|recipient not found|unknown or illegal alias|the email account that you tried to reach does not exist|nosuchuser|user_unknown|invalid-recipient|unknown address|no valid recipients?|name is not recognized|recipient not recognized|not a known (user|recipient)`, Class: byCode, Fallback: hard, Category: catInvalid, Reason: "recipient address does not exist (X.1.1 wording of Postfix, Exim, Sendmail, qmail, Exchange, Gmail …)"},

	// --- Rate limiting and greylisting (always soft).
	{Name: "greylist", Pattern: `gr[ae]ylist|greylisted|try again later|please (try|retry) (again )?later|temporarily (deferred|rejected|unavailable)|deferred for|too many (connections|messages|recipients|concurrent)|rate limit|rate-limit|throttl|exceeded the rate|sending rate|connection rate|too fast|slow down|come back later|resources temporarily|frequency limit`, Class: soft, Category: catRate, Reason: "greylisting or throttling (X.4.5, 4.7.x, 421); always retried"},

	// --- Relaying and generic policy.
	{Name: "relay-denied", Pattern: `relay(ing)? (access )?(denied|not permitted|prohibited|disallowed)|not permitted to relay|we do not relay|unable to relay|relay not permitted|relaying denied|relay access denied`, Class: byCode, Fallback: hard, Category: catPolicy, Reason: "receiver refuses to relay for this domain: configuration or policy, not the recipient"},

	// --- Content.
	{Name: "virus", Pattern: `virus|malware|infected|phishing`, Class: byCode, Fallback: hard, Category: catContent, Reason: "message content flagged as malicious"},
	{Name: "size", Pattern: `message (is )?too (large|big)|message size|size limit|exceeds (the )?(maximum|size)|too large|message length exceeds|maximum message size`, Class: byCode, Fallback: hard, Category: catContent, Reason: "message exceeds a size limit (X.2.3, X.3.4)"},
	{Name: "content", Pattern: `content (rejected|filter|policy|error)|message content (rejected|not accepted|blocked)|(prohibited|banned|blocked|forbidden|dangerous|executable|unsafe|illegal) (attachment|file|content)|attachment (type |extension )?(not allowed|blocked|rejected|prohibited|forbidden)|(rejected|blocked) (due to|because of) (its )?content|bad content|not rfc ?(2822|5322)? ?compliant|headers? (are )?not rfc|mime (error|violation|format)|media error|headers too large|line (limit|length) exceeded|line too long|duplicated? message-id`, Class: byCode, Fallback: hard, Category: catContent, Reason: "content, attachment or format refused"},

	// --- Generic spam wording (after content so attachment/virus texts stay content).
	{Name: "spam", Pattern: `\bspam\b|unsolicited|junk mail|bulk mail|\bubm\b|\buce\b|spam score|considered as spam|identified as spam|detected as spam|classified as spam`, Class: byCode, Fallback: hard, Category: catSpam, Reason: "message or sender judged as spam"},

	// --- Generic policy wording last.
	{Name: "policy", Pattern: `polic(y|ies)|not authori[sz]ed|access denied|administratively denied|prohibited|blocked|denied|refused|rejected by (recipient|the recipient|server)|not accepted|sender (address )?rejected|client host rejected|helo command rejected|sender verify failed|mail from .* rejected|forbidden`, Class: byCode, Fallback: hard, Category: catPolicy, Reason: "receiver policy refusal that names no more specific cause", Generic: true},
}

// EnhancedRule maps an RFC 3463 subject.detail ("1.1" of "5.1.1") to a
// category. Class is fixed when set, else it is the code's first digit.
type EnhancedRule struct {
	Code     string
	Class    sgv1.BounceClass
	Category sgv1.BounceCategory
	Reason   string
}

// EnhancedRules follows RFC 3463 and its updates (RFC 4468, 4954, 5248,
// 7372, 7505, 8098, 8689 and the IANA registry).
var EnhancedRules = []EnhancedRule{
	{"1.0", byCode, catInvalid, "other address status"},
	{"1.1", byCode, catInvalid, "bad destination mailbox address"},
	{"1.2", byCode, catDNS, "bad destination system address (domain does not exist)"},
	{"1.3", byCode, catInvalid, "bad destination mailbox address syntax"},
	{"1.4", byCode, catInvalid, "destination mailbox address ambiguous"},
	{"1.5", byCode, catOther, "destination address valid"},
	{"1.6", byCode, catInvalid, "destination mailbox has moved, no forwarding address"},
	{"1.7", byCode, catPolicy, "bad sender's mailbox address syntax"},
	{"1.8", byCode, catPolicy, "bad sender's system address"},
	{"1.9", byCode, catOther, "message relayed to non-compliant mailer"},
	{"1.10", byCode, catDNS, "recipient address has null MX (RFC 7505)"},
	{"2.0", byCode, catOther, "other or undefined mailbox status"},
	{"2.1", byCode, catInvalid, "mailbox disabled, not accepting messages"},
	{"2.2", soft, catFull, "mailbox full: always soft"},
	{"2.3", byCode, catContent, "message length exceeds administrative limit"},
	{"2.4", byCode, catOther, "mailing list expansion problem"},
	{"3.0", byCode, catOther, "other or undefined mail system status"},
	{"3.1", soft, catFull, "mail system full: always soft"},
	{"3.2", soft, catOther, "system not accepting network messages"},
	{"3.3", byCode, catContent, "system not capable of selected features"},
	{"3.4", byCode, catContent, "message too big for system"},
	{"3.5", byCode, catOther, "system incorrectly configured"},
	{"3.6", byCode, catOther, "requested priority was changed"},
	{"4.0", byCode, catOther, "other or undefined network or routing status"},
	{"4.1", byCode, catDNS, "no answer from host"},
	{"4.2", byCode, catOther, "bad connection"},
	{"4.3", byCode, catDNS, "directory (DNS) server failure"},
	{"4.4", byCode, catDNS, "unable to route"},
	{"4.5", soft, catRate, "mail system congestion"},
	{"4.6", byCode, catOther, "routing loop detected"},
	{"4.7", byCode, catOther, "delivery time expired"},
	{"5.0", byCode, catOther, "other or undefined protocol status"},
	{"5.1", byCode, catOther, "invalid command"},
	{"5.2", byCode, catOther, "syntax error"},
	{"5.3", soft, catRate, "too many recipients"},
	{"5.4", byCode, catOther, "invalid command arguments"},
	{"5.5", byCode, catOther, "wrong protocol version"},
	{"5.6", byCode, catOther, "authentication exchange line too long"},
	{"6.0", byCode, catContent, "other or undefined media error"},
	{"6.1", byCode, catContent, "media not supported"},
	{"6.2", byCode, catContent, "conversion required and prohibited"},
	{"6.3", byCode, catContent, "conversion required but not supported"},
	{"6.4", byCode, catContent, "conversion with loss performed"},
	{"6.5", byCode, catContent, "conversion failed"},
	{"6.6", byCode, catContent, "message content not available"},
	{"6.7", byCode, catContent, "non-ASCII addresses not permitted"},
	{"6.8", byCode, catContent, "UTF-8 string reply required"},
	{"6.9", byCode, catContent, "UTF-8 header message cannot be transferred"},
	{"7.0", byCode, catPolicy, "other or undefined security status"},
	{"7.1", byCode, catPolicy, "delivery not authorized, message refused"},
	{"7.2", byCode, catPolicy, "mailing list expansion prohibited"},
	{"7.3", byCode, catOther, "security conversion required but not possible"},
	{"7.4", byCode, catPolicy, "security features not supported"},
	{"7.5", byCode, catAuth, "cryptographic failure"},
	{"7.6", byCode, catOther, "cryptographic algorithm not supported"},
	{"7.7", byCode, catContent, "message integrity failure"},
	{"7.8", byCode, catAuth, "authentication credentials invalid"},
	{"7.9", byCode, catAuth, "authentication mechanism is too weak"},
	{"7.10", byCode, catPolicy, "encryption needed"},
	{"7.11", byCode, catPolicy, "encryption required for requested authentication mechanism"},
	{"7.12", byCode, catAuth, "a password transition is needed"},
	{"7.13", byCode, catInvalid, "user account disabled"},
	{"7.14", byCode, catPolicy, "trust relationship required"},
	{"7.15", soft, catRate, "priority level is too low"},
	{"7.16", byCode, catContent, "message is too big for the specified priority"},
	{"7.17", byCode, catInvalid, "mailbox owner has changed"},
	{"7.18", byCode, catInvalid, "domain owner has changed"},
	{"7.19", byCode, catOther, "RRVS test cannot be completed"},
	{"7.20", byCode, catAuth, "no passing DKIM signature found"},
	{"7.21", byCode, catAuth, "no acceptable DKIM signature found"},
	{"7.22", byCode, catAuth, "no valid author-matched DKIM signature found"},
	{"7.23", byCode, catAuth, "SPF validation failed"},
	{"7.24", byCode, catAuth, "SPF validation error"},
	{"7.25", byCode, catAuth, "reverse DNS validation failed"},
	{"7.26", byCode, catAuth, "multiple authentication checks failed (Gmail: DMARC/SPF/DKIM)"},
	{"7.27", byCode, catPolicy, "sender address has null MX"},
	{"7.28", soft, catRate, "mail flood detected"},
	{"7.29", byCode, catAuth, "ARC validation failure"},
	{"7.30", byCode, catPolicy, "REQUIRETLS support required"},
}

// BasicRule maps a basic SMTP reply code to a verdict.
type BasicRule struct {
	Code     int
	Class    sgv1.BounceClass
	Category sgv1.BounceCategory
	Reason   string
}

// BasicRules (RFC 5321 section 4.2). Codes not listed fall back to their
// first digit: 4xx soft other, 5xx hard other.
var BasicRules = []BasicRule{
	{421, soft, catRate, "service not available, closing channel: in practice throttling"},
	{450, soft, catOther, "mailbox unavailable (busy, greylisted or temporarily blocked)"},
	{451, soft, catOther, "local error in processing"},
	{452, soft, catFull, "insufficient system storage"},
	{550, hard, catOther, "mailbox unavailable: user unknown and policy refusals share it, so no category without text"},
	{551, hard, catInvalid, "user not local"},
	{552, soft, catFull, "exceeded storage allocation"},
	{553, hard, catInvalid, "mailbox name not allowed (syntax)"},
	{554, hard, catOther, "transaction failed"},
}

// espRule is one ESP classification: ESP, type and subtype ("" matches any).
type espRule struct {
	ESP, Type, SubType string
	Class              sgv1.BounceClass
	Category           sgv1.BounceCategory
	// Specific is true when the ESP names a reason, which then outranks the
	// basic SMTP code; generic class-only entries rank below it.
	Specific bool
	Reason   string
}

// ESPRules holds the ESPs' own classifications. Lookup is case-insensitive
// on all three keys; the most specific matching entry (type and subtype
// first) wins.
var ESPRules = []espRule{
	// Amazon SES bounceType/bounceSubType.
	{"ses", "permanent", "noemail", hard, catInvalid, true, "SES: the address does not exist"},
	{"ses", "permanent", "suppressed", hard, catInvalid, true, "SES: on the SES global suppression list after recent hard bounces"},
	{"ses", "permanent", "onaccountsuppressionlist", hard, catInvalid, true, "SES: on the account-level suppression list"},
	{"ses", "permanent", "general", hard, catOther, false, "SES: permanent, reason not given"},
	{"ses", "transient", "mailboxfull", soft, catFull, true, "SES: mailbox full"},
	{"ses", "transient", "messagetoolarge", soft, catContent, true, "SES: message too large"},
	{"ses", "transient", "contentrejected", soft, catContent, true, "SES: content rejected"},
	{"ses", "transient", "attachmentrejected", soft, catContent, true, "SES: attachment rejected"},
	{"ses", "transient", "general", soft, catOther, false, "SES: transient, reason not given"},
	{"ses", "undetermined", "", soft, catOther, false, "SES: bounce could not be classified"},
	{"ses", "permanent", "", hard, catOther, false, "SES: permanent"},
	{"ses", "transient", "", soft, catOther, false, "SES: transient"},

	// SparkPost bounce_class (Momentum bounce classification codes).
	{"sparkpost", "1", "", soft, catOther, false, "SparkPost 1 Undetermined"},
	{"sparkpost", "10", "", hard, catInvalid, true, "SparkPost 10 Invalid Recipient"},
	{"sparkpost", "20", "", soft, catOther, false, "SparkPost 20 Soft Bounce"},
	{"sparkpost", "21", "", soft, catDNS, true, "SparkPost 21 DNS Failure"},
	{"sparkpost", "22", "", soft, catFull, true, "SparkPost 22 Mailbox Full"},
	{"sparkpost", "23", "", soft, catContent, true, "SparkPost 23 Too Large"},
	{"sparkpost", "24", "", soft, catOther, true, "SparkPost 24 Timeout"},
	{"sparkpost", "25", "", hard, catPolicy, true, "SparkPost 25 Admin Failure (sender policy or suppression)"},
	{"sparkpost", "26", "", hard, catPolicy, true, "SparkPost 26 Smart Send Suppression"},
	{"sparkpost", "30", "", hard, catInvalid, true, "SparkPost 30 Generic Bounce: No RCPT"},
	{"sparkpost", "40", "", soft, catOther, false, "SparkPost 40 Generic Bounce"},
	{"sparkpost", "50", "", hard, catPolicy, true, "SparkPost 50 Mail Block"},
	{"sparkpost", "51", "", hard, catSpam, true, "SparkPost 51 Spam Block"},
	{"sparkpost", "52", "", hard, catContent, true, "SparkPost 52 Spam Content"},
	{"sparkpost", "53", "", hard, catContent, true, "SparkPost 53 Prohibited Attachment"},
	{"sparkpost", "54", "", hard, catPolicy, true, "SparkPost 54 Relaying Denied"},
	{"sparkpost", "60", "", soft, catOther, true, "SparkPost 60 Auto-Reply"},
	{"sparkpost", "70", "", soft, catOther, true, "SparkPost 70 Transient Failure"},
	{"sparkpost", "80", "", soft, catOther, true, "SparkPost 80 Subscribe"},
	{"sparkpost", "90", "", hard, catOther, true, "SparkPost 90 Unsubscribe"},
	{"sparkpost", "100", "", soft, catOther, true, "SparkPost 100 Challenge-Response"},

	// Postmark bounce Type.
	{"postmark", "hardbounce", "", hard, catInvalid, true, "Postmark HardBounce: the address does not exist"},
	{"postmark", "badEmailaddress", "", hard, catInvalid, true, "Postmark BadEmailAddress"},
	{"postmark", "softbounce", "", soft, catOther, false, "Postmark SoftBounce"},
	{"postmark", "transient", "", soft, catOther, false, "Postmark Transient"},
	{"postmark", "dnserror", "", soft, catDNS, true, "Postmark DnsError"},
	{"postmark", "spamnotification", "", soft, catSpam, true, "Postmark SpamNotification: receiver flagged the message as spam"},
	{"postmark", "spamcomplaint", "", hard, catSpam, true, "Postmark SpamComplaint"},
	{"postmark", "autoresponder", "", soft, catOther, true, "Postmark AutoResponder"},
	{"postmark", "blocked", "", hard, catPolicy, true, "Postmark Blocked: ISP blocked the message"},
	{"postmark", "manuallydeactivated", "", hard, catOther, true, "Postmark ManuallyDeactivated"},
	{"postmark", "unsubscribe", "", hard, catOther, true, "Postmark Unsubscribe"},
	{"postmark", "subscribe", "", soft, catOther, true, "Postmark Subscribe"},
	{"postmark", "virusnotification", "", soft, catContent, true, "Postmark VirusNotification"},
	{"postmark", "challengeverification", "", soft, catOther, true, "Postmark ChallengeVerification"},
	{"postmark", "contentrelated", "", hard, catContent, true, "Postmark ContentRelated"},
	{"postmark", "dmarcpolicy", "", hard, catAuth, true, "Postmark DMARCPolicy"},
	{"postmark", "templaterenderingfailed", "", hard, catContent, true, "Postmark TemplateRenderingFailed"},
	{"postmark", "addresschange", "", soft, catOther, true, "Postmark AddressChange"},
	{"postmark", "smtpapierror", "", soft, catOther, true, "Postmark SMTPApiError"},
	{"postmark", "inbounderror", "", soft, catOther, true, "Postmark InboundError"},
	{"postmark", "openrelaytest", "", soft, catOther, true, "Postmark OpenRelayTest"},
	{"postmark", "unknown", "", soft, catOther, false, "Postmark Unknown"},

	// Mailgun severity + reason.
	{"mailgun", "permanent", "suppress-bounce", hard, catInvalid, true, "Mailgun: address on the bounce suppression list"},
	{"mailgun", "permanent", "suppress-complaint", hard, catPolicy, true, "Mailgun: address on the complaint suppression list"},
	{"mailgun", "permanent", "suppress-unsubscribe", hard, catPolicy, true, "Mailgun: address on the unsubscribe suppression list"},
	{"mailgun", "permanent", "espblock", hard, catPolicy, true, "Mailgun: blocked by the ESP"},
	{"mailgun", "permanent", "old", hard, catOther, true, "Mailgun: gave up retrying an old message"},
	{"mailgun", "temporary", "old", soft, catOther, true, "Mailgun: message too old"},
	{"mailgun", "temporary", "greylisted", soft, catRate, true, "Mailgun: greylisted"},
	{"mailgun", "permanent", "bounce", hard, catOther, false, "Mailgun: permanent bounce"},
	{"mailgun", "permanent", "generic", hard, catOther, false, "Mailgun: permanent, generic"},
	{"mailgun", "temporary", "", soft, catOther, false, "Mailgun: temporary failure"},
	{"mailgun", "permanent", "", hard, catOther, false, "Mailgun: permanent failure"},

	// SendGrid type + bounce_classification.
	{"sendgrid", "", "invalid address", byCode, catInvalid, true, "SendGrid Invalid Address"},
	{"sendgrid", "", "mailbox unavailable", byCode, catInvalid, true, "SendGrid Mailbox Unavailable (inactive or disabled mailbox)"},
	{"sendgrid", "", "technical", byCode, catOther, true, "SendGrid Technical"},
	{"sendgrid", "", "content", byCode, catContent, true, "SendGrid Content"},
	{"sendgrid", "", "reputation", byCode, catSpam, true, "SendGrid Reputation"},
	{"sendgrid", "", "frequency or volume", soft, catRate, true, "SendGrid Frequency or Volume"},
	{"sendgrid", "", "unclassified", byCode, catOther, false, "SendGrid Unclassified"},
	{"sendgrid", "bounce", "", hard, catOther, false, "SendGrid bounce (permanent)"},
	{"sendgrid", "blocked", "", soft, catOther, false, "SendGrid blocked (temporary refusal)"},
	{"sendgrid", "deferred", "", soft, catOther, false, "SendGrid deferred"},
	{"sendgrid", "dropped", "", hard, catPolicy, false, "SendGrid dropped"},
}

// sendgridTypeClass gives the class of SendGrid bounce types, which the
// classification entries above defer to.
var sendgridTypeClass = map[string]sgv1.BounceClass{"bounce": hard, "blocked": soft, "deferred": soft, "dropped": hard}

var (
	enhancedIndex = map[string]EnhancedRule{}
	basicIndex    = map[int]BasicRule{}
	enhancedRe    = regexp.MustCompile(`(?:^|[^0-9.])([245])\.([0-9]{1,3})\.([0-9]{1,3})(?:[^0-9.]|$)`)
	smtpCodeRe    = regexp.MustCompile(`(?:^|[^0-9.#])([245][0-9][0-9])(?:[ \-]|$)`)
)

func init() {
	for i := range DiagnosticRules {
		// Patterns are written in lower case and matched against the
		// lower-cased diagnostic: much faster than (?i) folding.
		DiagnosticRules[i].re = newMatcher(DiagnosticRules[i].Pattern)
	}
	for _, r := range EnhancedRules {
		enhancedIndex[r.Code] = r
	}
	for _, r := range BasicRules {
		basicIndex[r.Code] = r
	}
}

// ParseEnhancedCode returns the first RFC 3463 status code ("5.1.1") in s,
// or "".
func ParseEnhancedCode(s string) string {
	m := enhancedRe.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1] + "." + trimZeros(m[2]) + "." + trimZeros(m[3])
}

// ParseSMTPCode returns the first basic SMTP reply code (200..599) that
// starts a reply line in s, or 0.
func ParseSMTPCode(s string) int {
	m := smtpCodeRe.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func trimZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

// maxDiagnostic bounds how much diagnostic text the patterns read.
const maxDiagnostic = 2000

// Bounce classifies one bounce or deferral. It never fails: with no evidence
// at all it answers soft/other under rule "default", so nothing is
// suppressed without evidence.
func Bounce(in BounceInput) BounceVerdict {
	diag := strings.TrimSpace(in.Diagnostic)
	enh := ParseEnhancedCode(" " + in.EnhancedCode + " ")
	if enh == "" {
		enh = ParseEnhancedCode(diag)
	}
	code := in.SMTPCode
	if code < 200 || code > 599 {
		code = ParseSMTPCode(diag)
	}
	esp, espOK := espVerdict(in)

	// The class digit: the enhanced code's, unless it is the unspecific
	// X.0.0 and the basic reply code says otherwise (Postfix reports 4.0.0
	// for a final "554 Blocked").
	digit := byte(0)
	switch {
	case enh != "" && strings.HasSuffix(enh, ".0.0") && code >= 400 && code < 600:
		digit = byte('0' + code/100)
	case enh != "":
		digit = enh[0]
	case code >= 400 && code < 600:
		digit = byte('0' + code/100)
	}
	codeClass := sgv1.BounceClass_BOUNCE_CLASS_UNSPECIFIED
	switch digit {
	case '4':
		codeClass = soft
	case '5':
		codeClass = hard
	}
	resolve := func(fixed, fallback sgv1.BounceClass) sgv1.BounceClass {
		switch {
		case fixed != byCode:
			return fixed
		case codeClass != byCode:
			return codeClass
		case espOK && esp.Class != byCode:
			return esp.Class
		case fallback != byCode:
			return fallback
		}
		return hard
	}

	var generic *DiagnosticRule
	if diag != "" {
		lower := strings.ToLower(diag)
		if len(lower) > maxDiagnostic {
			lower = lower[:maxDiagnostic]
		}
		for i := range DiagnosticRules {
			r := &DiagnosticRules[i]
			if r.re.MatchString(lower) {
				if r.Generic {
					generic = r
					break
				}
				return BounceVerdict{Class: resolve(r.Class, r.Fallback), Category: r.Category, Rule: "diag:" + r.Name}
			}
		}
	}
	if enh != "" {
		if sd := enh[2:]; sd != "0.0" {
			if r, ok := enhancedIndex[sd]; ok {
				return BounceVerdict{Class: resolve(r.Class, hard), Category: r.Category, Rule: "enhanced:X." + sd}
			}
		}
	}
	if generic != nil {
		return BounceVerdict{Class: resolve(generic.Class, generic.Fallback), Category: generic.Category, Rule: "diag:" + generic.Name}
	}
	if espOK && esp.Specific {
		return BounceVerdict{Class: resolve(esp.Class, esp.Class), Category: esp.Category, Rule: esp.rule}
	}
	if code != 0 {
		if r, ok := basicIndex[code]; ok {
			cl := r.Class
			// A 5xx enhanced code may say soft for a 4xx basic code and vice
			// versa; the enhanced class digit is more specific.
			if codeClass != byCode && r.Category != catFull && r.Category != catRate {
				cl = codeClass
			}
			return BounceVerdict{Class: cl, Category: r.Category, Rule: "smtp:" + strconv.Itoa(code)}
		}
	}
	if espOK {
		return BounceVerdict{Class: resolve(esp.Class, esp.Class), Category: esp.Category, Rule: esp.rule}
	}
	if codeClass != byCode {
		rule := "smtp:" + strconv.Itoa(code/100) + "xx"
		if enh != "" {
			rule = "enhanced:" + enh[:1] + ".X.X"
		}
		return BounceVerdict{Class: codeClass, Category: catOther, Rule: rule}
	}
	return BounceVerdict{Class: soft, Category: catOther, Rule: "default"}
}

type espMatch struct {
	espRule
	rule string
}

func espVerdict(in BounceInput) (espMatch, bool) {
	e := strings.ToLower(strings.TrimSpace(in.ESP))
	if e == "" {
		return espMatch{}, false
	}
	t := strings.ToLower(strings.TrimSpace(in.ESPType))
	st := strings.ToLower(strings.TrimSpace(in.ESPSubType))
	best, bestScore := -1, -1
	for i, r := range ESPRules {
		if r.ESP != e {
			continue
		}
		rt, rst := strings.ToLower(r.Type), r.SubType
		if (rt != "" && rt != t) || (rst != "" && rst != st) {
			continue
		}
		score := 0
		if rt != "" {
			score++
		}
		if rst != "" {
			score += 2
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return espMatch{}, false
	}
	r := ESPRules[best]
	if r.Class == byCode && e == "sendgrid" {
		if c, ok := sendgridTypeClass[t]; ok {
			r.Class = c
		}
	}
	return espMatch{espRule: r, rule: "esp:" + e + ":" + in.ESPType + "/" + in.ESPSubType}, true
}
