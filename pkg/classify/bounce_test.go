package classify

import (
	"strconv"
	"strings"
	"testing"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// diagCases holds at least one real-world diagnostic per DiagnosticRules
// entry (TestDiagnosticRulesCovered enforces it). Texts are as providers
// send them.
var diagCases = []struct {
	rule  string
	diag  string
	class sgv1.BounceClass
	cat   sgv1.BounceCategory
}{
	{"gmail-auth", "550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked.", hard, catAuth},
	{"gmail-auth", "550 5.7.515 Access denied, sending domain example.com doesn't meet the required authentication level.", hard, catAuth},
	{"dmarc", "550 5.7.509 Access denied, sending domain example.com does not pass DMARC verification and has a DMARC policy of reject.", hard, catAuth},
	{"yahoo-unauthenticated", "550 5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo requires all senders to authenticate with either SPF or DKIM.", hard, catAuth},
	{"spf-fail", "550 SPF check failed for 192.0.2.1", hard, catAuth},
	{"dkim-fail", "554-Reject due to non-valid DKIM signature", hard, catAuth},
	{"ptr-missing", "554 5.7.1 [C14] Missing reverse DNS for 203.0.113.2", hard, catAuth},
	{"ptr-missing", "550 domain [example.com] mismatches client ip 192.0.2.225.", hard, catAuth},
	{"gmail-format", "550-5.7.1 This message is not RFC 5322 compliant. There are multiple Subject headers.", hard, catContent},
	{"gmail-unsolicited", "550-5.7.1 Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.", hard, catSpam},
	{"gmail-rate", "450-4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", soft, catRate},
	{"microsoft-blocklist", "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).", hard, catSpam},
	{"microsoft-rate", "451 4.7.652 The mail server [192.0.2.1] has exceeded the maximum number of connections.", soft, catRate},
	{"reputation-deferral", "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.", soft, catSpam},
	{"reputation-deferral", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints", soft, catSpam},
	{"microsoft-rate", "452 4.7.500 Server busy. Please try again later from [192.0.2.1]", soft, catRate},
	{"google-groups", "We're writing to let you know that the group you tried to contact (sales) may not exist, or you may not have permission to post messages to the group.", hard, catPolicy},
	{"jp-no-such-user", "ユーザーNeko (kijitora@example.co.jp) は Domino ディレクトリには見つかりません。", hard, catInvalid},
	{"microsoft-recipient", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", hard, catInvalid},
	{"microsoft-recipient", "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", hard, catInvalid},
	{"microsoft-size", "552 5.3.4 RESOLVER.RST.RecipSizeLimit; message too large for this recipient", hard, catContent},
	{"yahoo-deferred", "421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred due to excessive volume", soft, catRate},
	{"yahoo-blocked", "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in Spamhaus's list", hard, catSpam},
	{"yahoo-no-user", "554 delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0]", hard, catInvalid},
	{"apple-policy", "554 5.7.1 [CS01] Message rejected due to local policy.", hard, catSpam},
	{"proofpoint", "554 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.1", hard, catSpam},
	{"mimecast-invalid", "550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550", hard, catInvalid},
	{"mimecast-policy", "550 Administrative prohibition - envelope blocked - https://community.mimecast.com/docs/DOC-1369#550", hard, catPolicy},
	{"barracuda", "554 Service unavailable; Client host [192.0.2.1] blocked using Barracuda Reputation", hard, catSpam},
	{"ironport", "554 5.7.1 Mail from 192.0.2.1 rejected for policy reasons", hard, catPolicy},
	{"zoho", "554 5.7.1 Email rejected due to security policies - https://www.zoho.com/mail/help/", hard, catSpam},
	{"yandex-spam", "554 5.7.1 Message rejected under suspicion of SPAM", hard, catSpam},
	{"gmx-policy", "554-gmx.net (mxgmx001) Nemesis ESMTP Service not available 554-Reject due to policy restrictions.", hard, catPolicy},
	{"orange-rate", "421 mwinf5c10 ME Service refuse. Veuillez essayer plus tard. Service refused, please try later. OFR004_104 [104]", soft, catRate},
	{"orange-block", "550 5.7.1 Service unavailable; client [192.0.2.1] blocked: OFR_506", hard, catSpam},
	{"comcast-rate", "421 4.7.0 (RL000001) Too many connections from same IP", soft, catRate},
	{"comcast-block", "554 resimta-ch2-18v.sys.comcast.net comcast 192.0.2.1 Comcast block for spam. See BL000000", hard, catSpam},
	{"comcast-not-customer", "550 5.1.1 <x@comcast.net> Not our Customer", hard, catInvalid},
	{"rbl", "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", hard, catSpam},
	{"rbl", "550 Your IP 192.0.2.1 is blacklisted", hard, catSpam},
	{"mailbox-full", "552 5.2.2 The email account that you tried to reach is over quota.", soft, catFull},
	{"mailbox-full", "550 mailbox full", soft, catFull},
	{"sender-rejected", "550 5.7.1 <bounce@example.org>: Sender address rejected: Access denied", hard, catPolicy},
	{"null-mx", "556 5.1.10 Recipient address has null MX", hard, catDNS},
	{"null-mx", "451 4.0.0 The domain example.org doesn't receive email according to the administrator", hard, catDNS},
	{"dns", "Host or domain name not found. Name service error for name=example.invalid type=A: Host not found", hard, catDNS},
	{"unreachable", "connect to mx.example.org[192.0.2.1]:25: Connection timed out", soft, catDNS},
	{"unreachable", "554 5.4.7 delivery expired (connection refused)", hard, catDNS},
	{"disabled-account", "550 5.2.1 The email account that you tried to reach is disabled.", hard, catInvalid},
	{"no-such-user", "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown in local recipient table", hard, catInvalid},
	{"no-such-user", "550-5.1.1 The email account that you tried to reach does not exist.", hard, catInvalid},
	{"no-such-user", "The recipient name is not recognized", hard, catInvalid},
	{"greylist", "450 4.7.1 <x@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/", soft, catRate},
	{"relay-denied", "554 5.7.1 <x@example.org>: Relay access denied", hard, catPolicy},
	{"virus", "554 5.7.0 Reject, message contains a virus (Eicar-Test-Signature)", hard, catContent},
	{"size", "552 5.3.4 Message size exceeds fixed limit", hard, catContent},
	{"content", "550 5.7.1 Message content rejected, UBE, id=00000-22-225", hard, catContent},
	{"content", "Duplicated Message-ID in <list@example.co.jp>.", hard, catContent},
	{"spam", "554 5.7.0 Reject, id=20025-09 - SPAM", hard, catSpam},
	{"policy", "550 Message refused", hard, catPolicy},
	{"policy", "451 Temporarily blocked", soft, catPolicy},
}

func TestDiagnosticRules(t *testing.T) {
	for _, c := range diagCases {
		t.Run(c.rule+"/"+c.diag[:min(len(c.diag), 40)], func(t *testing.T) {
			v := Bounce(BounceInput{Diagnostic: c.diag})
			if v.Rule != "diag:"+c.rule || v.Class != c.class || v.Category != c.cat {
				t.Errorf("Bounce = %v/%v by %s, want %v/%v by diag:%s", v.Class, v.Category, v.Rule, c.class, c.cat, c.rule)
			}
		})
	}
}

func TestDiagnosticRulesCovered(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range diagCases {
		seen[c.rule] = true
	}
	for _, r := range DiagnosticRules {
		if r.Reason == "" {
			t.Errorf("rule %s has no reason", r.Name)
		}
		if !seen[r.Name] {
			t.Errorf("rule %s has no test case in diagCases", r.Name)
		}
		if r.Pattern != strings.ToLower(r.Pattern) && !strings.Contains(r.Pattern, `\b`) {
			t.Errorf("rule %s: patterns must be lower case", r.Name)
		}
	}
}

func TestEnhancedRules(t *testing.T) {
	for _, r := range EnhancedRules {
		for _, cls := range []string{"4", "5"} {
			code := cls + "." + r.Code
			t.Run(code, func(t *testing.T) {
				v := Bounce(BounceInput{EnhancedCode: code})
				want := r.Class
				if want == byCode {
					want = map[string]sgv1.BounceClass{"4": soft, "5": hard}[cls]
				}
				if v.Rule != "enhanced:X."+r.Code || v.Class != want || v.Category != r.Category {
					t.Errorf("Bounce(%s) = %v/%v by %s, want %v/%v", code, v.Class, v.Category, v.Rule, want, r.Category)
				}
			})
		}
	}
}

func TestBasicRules(t *testing.T) {
	for _, r := range BasicRules {
		t.Run(strconv.Itoa(r.Code), func(t *testing.T) {
			v := Bounce(BounceInput{SMTPCode: r.Code})
			if v.Rule != "smtp:"+strconv.Itoa(r.Code) || v.Class != r.Class || v.Category != r.Category {
				t.Errorf("Bounce(%d) = %v/%v by %s, want %v/%v", r.Code, v.Class, v.Category, v.Rule, r.Class, r.Category)
			}
		})
	}
}

func TestESPRules(t *testing.T) {
	cases := []struct {
		esp, typ, sub string
		class         sgv1.BounceClass
		cat           sgv1.BounceCategory
	}{
		{"ses", "Permanent", "General", hard, catOther},
		{"ses", "Permanent", "NoEmail", hard, catInvalid},
		{"ses", "Permanent", "Suppressed", hard, catInvalid},
		{"ses", "Permanent", "OnAccountSuppressionList", hard, catInvalid},
		{"ses", "Transient", "General", soft, catOther},
		{"ses", "Transient", "MailboxFull", soft, catFull},
		{"ses", "Transient", "MessageTooLarge", soft, catContent},
		{"ses", "Transient", "ContentRejected", soft, catContent},
		{"ses", "Transient", "AttachmentRejected", soft, catContent},
		{"ses", "Undetermined", "Undetermined", soft, catOther},
		{"sparkpost", "10", "", hard, catInvalid},
		{"sparkpost", "21", "", soft, catDNS},
		{"sparkpost", "22", "", soft, catFull},
		{"sparkpost", "25", "", hard, catPolicy},
		{"sparkpost", "30", "", hard, catInvalid},
		{"sparkpost", "50", "", hard, catPolicy},
		{"sparkpost", "51", "", hard, catSpam},
		{"sparkpost", "52", "", hard, catContent},
		{"sparkpost", "53", "", hard, catContent},
		{"sparkpost", "54", "", hard, catPolicy},
		{"sparkpost", "70", "", soft, catOther},
		{"sparkpost", "100", "", soft, catOther},
		{"postmark", "HardBounce", "", hard, catInvalid},
		{"postmark", "SoftBounce", "", soft, catOther},
		{"postmark", "Transient", "", soft, catOther},
		{"postmark", "DnsError", "", soft, catDNS},
		{"postmark", "SpamNotification", "", soft, catSpam},
		{"postmark", "SpamComplaint", "", hard, catSpam},
		{"postmark", "AutoResponder", "", soft, catOther},
		{"postmark", "Blocked", "", hard, catPolicy},
		{"postmark", "BadEmailAddress", "", hard, catInvalid},
		{"postmark", "ManuallyDeactivated", "", hard, catOther},
		{"postmark", "DMARCPolicy", "", hard, catAuth},
		{"mailgun", "permanent", "bounce", hard, catOther},
		{"mailgun", "permanent", "suppress-bounce", hard, catInvalid},
		{"mailgun", "permanent", "suppress-complaint", hard, catPolicy},
		{"mailgun", "permanent", "espblock", hard, catPolicy},
		{"mailgun", "temporary", "greylisted", soft, catRate},
		{"mailgun", "temporary", "generic", soft, catOther},
		{"mailgun", "permanent", "old", hard, catOther},
		{"sendgrid", "bounce", "Invalid Address", hard, catInvalid},
		{"sendgrid", "blocked", "Reputation", soft, catSpam},
		{"sendgrid", "bounce", "Technical", hard, catOther},
		{"sendgrid", "blocked", "Content", soft, catContent},
		{"sendgrid", "blocked", "Frequency or Volume", soft, catRate},
		{"sendgrid", "bounce", "Mailbox Unavailable", hard, catInvalid},
		{"sendgrid", "bounce", "Unclassified", hard, catOther},
	}
	for _, c := range cases {
		t.Run(c.esp+"/"+c.typ+"/"+c.sub, func(t *testing.T) {
			v := Bounce(BounceInput{ESP: c.esp, ESPType: c.typ, ESPSubType: c.sub})
			if !strings.HasPrefix(v.Rule, "esp:"+c.esp+":") || v.Class != c.class || v.Category != c.cat {
				t.Errorf("Bounce = %v/%v by %s, want %v/%v", v.Class, v.Category, v.Rule, c.class, c.cat)
			}
		})
	}
}

// TestBouncePrecedence pins the order of trust between evidence sources.
func TestBouncePrecedence(t *testing.T) {
	cases := []struct {
		name  string
		in    BounceInput
		rule  string
		class sgv1.BounceClass
		cat   sgv1.BounceCategory
	}{
		{"diagnostic beats ESP class", BounceInput{Diagnostic: "550 5.1.1 user unknown", ESP: "ses", ESPType: "Transient", ESPSubType: "General"}, "diag:no-such-user", hard, catInvalid},
		{"mailbox full is soft even on 5xx", BounceInput{SMTPCode: 552, EnhancedCode: "5.2.2", Diagnostic: "552 5.2.2 mailbox full"}, "diag:mailbox-full", soft, catFull},
		{"enhanced code beats basic code", BounceInput{SMTPCode: 550, EnhancedCode: "5.7.26"}, "enhanced:X.7.26", hard, catAuth},
		{"ESP reason beats basic code", BounceInput{SMTPCode: 550, ESP: "ses", ESPType: "Transient", ESPSubType: "MailboxFull"}, "esp:ses:Transient/MailboxFull", soft, catFull},
		{"basic code beats ESP generic class", BounceInput{SMTPCode: 421, ESP: "ses", ESPType: "Permanent", ESPSubType: "General"}, "smtp:421", soft, catRate},
		{"specific enhanced code beats generic wording", BounceInput{Diagnostic: "554 5.4.6 Hop count exceeded - possible mail loop, refused"}, "enhanced:X.4.6", hard, catOther},
		{"X.0.0 status takes the class of the reply code", BounceInput{SMTPCode: 554, EnhancedCode: "4.0.0"}, "smtp:554", hard, catOther},
		{"codes parsed from the diagnostic", BounceInput{Diagnostic: "host mx.example.org said: 452 4.2.2 over quota"}, "diag:mailbox-full", soft, catFull},
		{"ESP class when no codes", BounceInput{Diagnostic: "something odd happened", ESP: "mailgun", ESPType: "permanent", ESPSubType: "bounce"}, "esp:mailgun:permanent/bounce", hard, catOther},
		{"4xx without text", BounceInput{SMTPCode: 499}, "smtp:4xx", soft, catOther},
		{"no evidence", BounceInput{}, "default", soft, catOther},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Bounce(c.in)
			if v.Rule != c.rule || v.Class != c.class || v.Category != c.cat {
				t.Errorf("Bounce = %v/%v by %s, want %v/%v by %s", v.Class, v.Category, v.Rule, c.class, c.cat, c.rule)
			}
		})
	}
}

func TestParseCodes(t *testing.T) {
	cases := []struct {
		in   string
		enh  string
		smtp int
	}{
		{"550 5.1.1 <a@b.c>: user unknown", "5.1.1", 550},
		{"550-5.7.26 unauthenticated", "5.7.26", 550},
		{"smtp; 450 450 4.2.2 mailbox full", "4.2.2", 450},
		{"Sorry, I couldn't find any host named x. (#5.1.2)", "5.1.2", 0},
		{"connect to 192.0.2.1:25: timed out", "", 0},
		{"5.1.10 null MX", "5.1.10", 0},
		{"Thu, 29 Apr 2010 23:34:45 +0900", "", 0},
	}
	for _, c := range cases {
		if got := ParseEnhancedCode(c.in); got != c.enh {
			t.Errorf("ParseEnhancedCode(%q) = %q, want %q", c.in, got, c.enh)
		}
		if got := ParseSMTPCode(c.in); got != c.smtp {
			t.Errorf("ParseSMTPCode(%q) = %d, want %d", c.in, got, c.smtp)
		}
	}
}

func TestRequiredLiteralsSound(t *testing.T) {
	// The prefilter must never reject a text the regexp matches.
	for _, c := range diagCases {
		lower := strings.ToLower(c.diag)
		for _, r := range DiagnosticRules {
			if r.re.re.MatchString(lower) != r.re.MatchString(lower) {
				t.Errorf("prefilter of %s disagrees with its regexp on %q", r.Name, c.diag)
			}
		}
	}
}

func BenchmarkBounce(b *testing.B) {
	in := BounceInput{Diagnostic: "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. Learn more at https://support.google.com/mail/?p=NoSuchUser - gsmtp"}
	for i := 0; i < b.N; i++ {
		Bounce(in)
	}
}
