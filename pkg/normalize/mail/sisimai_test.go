package mail

import (
	"path/filepath"
	"testing"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// sisimaiReasons are the bounce reasons sisimai's own public test tables
// (rb-sisimai test/public/*.rb, BSD-2-Clause) expect for the sisimai
// samples in shared/samples/dsn. They are an independent reference: this
// package's expectations were reviewed by hand, sisimai's by its authors.
var sisimaiReasons = map[string]string{
	"sisimai_lhost-activehunter-02.eml":    "filtered",
	"sisimai_lhost-amavis-03.eml":          "notcompliantrfc",
	"sisimai_lhost-amazonses-03.eml":       "mailboxfull",
	"sisimai_lhost-amazonses-05.eml":       "userunknown",
	"sisimai_lhost-amazonses-17.eml":       "expired",
	"sisimai_lhost-amazonses-21.eml":       "norelaying",
	"sisimai_lhost-amazonworkmail-01.eml":  "userunknown",
	"sisimai_lhost-amazonworkmail-03.eml":  "systemerror",
	"sisimai_lhost-apachejames-01.eml":     "filtered",
	"sisimai_lhost-barracuda-01.eml":       "spamdetected",
	"sisimai_lhost-bigfoot-02.eml":         "userunknown",
	"sisimai_lhost-biglobe-01.eml":         "mailboxfull",
	"sisimai_lhost-courier-01.eml":         "userunknown",
	"sisimai_lhost-courier-04.eml":         "hostunknown",
	"sisimai_lhost-domino-02.eml":          "userunknown",
	"sisimai_lhost-dragonfly-05.eml":       "authfailure",
	"sisimai_lhost-dragonfly-07.eml":       "contenterror",
	"sisimai_lhost-dragonfly-25.eml":       "virusdetected",
	"sisimai_lhost-dragonfly-26.eml":       "userunknown",
	"sisimai_lhost-einsundeins-02.eml":     "mesgtoobig",
	"sisimai_lhost-exchange2003-01.eml":    "userunknown",
	"sisimai_lhost-exchange2003-04.eml":    "filtered",
	"sisimai_lhost-exchange2007-03.eml":    "mesgtoobig",
	"sisimai_lhost-exchange2007-04.eml":    "securityerror",
	"sisimai_lhost-exchange2007-07.eml":    "userunknown",
	"sisimai_lhost-exim-08.eml":            "expired",
	"sisimai_lhost-exim-37.eml":            "hostunknown",
	"sisimai_lhost-exim-46.eml":            "blocked",
	"sisimai_lhost-exim-52.eml":            "syntaxerror",
	"sisimai_lhost-exim-53.eml":            "mailererror",
	"sisimai_lhost-exim-58.eml":            "emailtoolarge",
	"sisimai_lhost-exim-60.eml":            "mailboxfull",
	"sisimai_lhost-exim-61.eml":            "userunknown",
	"sisimai_lhost-ezweb-03.eml":           "suspend",
	"sisimai_lhost-fml-03.eml":             "notcompliantrfc",
	"sisimai_lhost-gmail-06.eml":           "mailboxfull",
	"sisimai_lhost-gmail-07.eml":           "failedstarttls",
	"sisimai_lhost-gmail-08.eml":           "expired",
	"sisimai_lhost-gmail-18.eml":           "userunknown",
	"sisimai_lhost-gmx-01.eml":             "mailboxfull",
	"sisimai_lhost-googlegroups-02.eml":    "rejected",
	"sisimai_lhost-googleworkspace-01.eml": "rejected",
	"sisimai_lhost-imailserver-06.eml":     "spamdetected",
	"sisimai_lhost-kddi-01.eml":            "mailboxfull",
	"sisimai_lhost-mailfoundry-02.eml":     "mailboxfull",
	"sisimai_lhost-mailru-04.eml":          "userunknown",
	"sisimai_lhost-mailru-05.eml":          "notaccept",
	"sisimai_lhost-mcafee-01.eml":          "filtered",
	"sisimai_lhost-messagingserver-01.eml": "userunknown",
	"sisimai_lhost-messagingserver-10.eml": "notaccept",
	"sisimai_lhost-mfilter-04.eml":         "rejected",
	"sisimai_lhost-mxlogic-03.eml":         "filtered",
	"sisimai_lhost-notes-02.eml":           "userunknown",
	"sisimai_lhost-opensmtpd-01.eml":       "userunknown",
	"sisimai_lhost-opensmtpd-13.eml":       "badreputation",
	"sisimai_lhost-outlook-08.eml":         "userunknown",
	"sisimai_lhost-outlook-09.eml":         "requireptr",
	"sisimai_lhost-postfix-06.eml":         "hostunknown",
	"sisimai_lhost-postfix-14.eml":         "userunknown",
	"sisimai_lhost-postfix-15.eml":         "expired",
	"sisimai_lhost-postfix-38.eml":         "blocked",
	"sisimai_lhost-postfix-45.eml":         "mailboxfull",
	"sisimai_lhost-postfix-53.eml":         "syntaxerror",
	"sisimai_lhost-postfix-59.eml":         "speeding",
	"sisimai_lhost-postfix-64.eml":         "undefined",
	"sisimai_lhost-powermta-01.eml":        "userunknown",
	"sisimai_lhost-qmail-04.eml":           "blocked",
	"sisimai_lhost-qmail-06.eml":           "mailboxfull",
	"sisimai_lhost-qmail-13.eml":           "hostunknown",
	"sisimai_lhost-qmail-16.eml":           "userunknown",
	"sisimai_lhost-qmail-19.eml":           "badreputation",
	"sisimai_lhost-receivingses-01.eml":    "userunknown",
	"sisimai_lhost-receivingses-05.eml":    "emailtoolarge",
	"sisimai_lhost-sendgrid-03.eml":        "expired",
	"sisimai_lhost-sendmail-14.eml":        "userunknown",
	"sisimai_lhost-sendmail-15.eml":        "hostunknown",
	"sisimai_lhost-sendmail-21.eml":        "blocked",
	"sisimai_lhost-sendmail-39.eml":        "systemfull",
	"sisimai_lhost-sendmail-44.eml":        "contenterror",
	"sisimai_lhost-sendmail-54.eml":        "expired",
	"sisimai_lhost-surfcontrol-03.eml":     "systemerror",
	"sisimai_lhost-v5sendmail-06.eml":      "norelaying",
	"sisimai_lhost-verizon-01.eml":         "userunknown",
	"sisimai_lhost-x1-01.eml":              "filtered",
	"sisimai_lhost-x2-04.eml":              "mailboxfull",
	"sisimai_lhost-x3-05.eml":              "undefined",
	"sisimai_lhost-x4-01.eml":              "mailboxfull",
	"sisimai_lhost-x5-01.eml":              "userunknown",
	"sisimai_lhost-x6-01.eml":              "networkerror",
	"sisimai_lhost-yahoo-09.eml":           "notaccept",
	"sisimai_lhost-yahoo-10.eml":           "userunknown",
	"sisimai_lhost-yahoo-13.eml":           "systemerror",
	"sisimai_lhost-yandex-03.eml":          "expired",
	"sisimai_lhost-zoho-03.eml":            "filtered",
	"sisimai_rfc3464-06.eml":               "userunknown",
	"sisimai_rfc3464-07.eml":               "expired",
	"sisimai_rfc3464-08.eml":               "spamdetected",
	"sisimai_rfc3464-09.eml":               "mailboxfull",
	"sisimai_rfc3464-28.eml":               "delivered",
	"sisimai_rfc3464-29.eml":               "syntaxerror",
	"sisimai_rfc3834-01.eml":               "vacation",
	"sisimai_rfc3834-05.eml":               "vacation",
	"sisimai_rhost-aol-04.eml":             "userunknown",
	"sisimai_rhost-aol-06.eml":             "notaccept",
	"sisimai_rhost-apple-01.eml":           "hasmoved",
	"sisimai_rhost-cox-01.eml":             "blocked",
	"sisimai_rhost-facebook-03.eml":        "filtered",
	"sisimai_rhost-franceptt-02.eml":       "userunknown",
	"sisimai_rhost-franceptt-08.eml":       "systemerror",
	"sisimai_rhost-godaddy-03.eml":         "ratelimited",
	"sisimai_rhost-google-02.eml":          "userunknown",
	"sisimai_rhost-gsuite-02.eml":          "userunknown",
	"sisimai_rhost-gsuite-03.eml":          "notaccept",
	"sisimai_rhost-iua-01.eml":             "suspend",
	"sisimai_rhost-kddi-01.eml":            "filtered",
	"sisimai_rhost-messagelabs-01.eml":     "securityerror",
	"sisimai_rhost-microsoft-02.eml":       "userunknown",
	"sisimai_rhost-microsoft-05.eml":       "badreputation",
	"sisimai_rhost-mimecast-02.eml":        "spamdetected",
	"sisimai_rhost-nttdocomo-03.eml":       "rejected",
	"sisimai_rhost-outlook-03.eml":         "hostunknown",
	"sisimai_rhost-spectrum-01.eml":        "ratelimited",
	"sisimai_rhost-tencent-01.eml":         "ratelimited",
	"sisimai_rhost-yahooinc-01.eml":        "policyviolation",
	"sisimai_rhost-yahooinc-03.eml":        "userunknown",
}

// sisimaiCategories maps a sisimai reason to the categories that agree
// with it in Sendguard's taxonomy ("filtered" is sisimai's word for a
// refusal that is often an unknown user, so either reading agrees).
var sisimaiCategories = map[string][]string{
	"authfailure":     {"auth_failure"},
	"badreputation":   {"policy_block", "spam_block"},
	"blocked":         {"policy_block", "spam_block"},
	"contenterror":    {"content"},
	"emailtoolarge":   {"content"},
	"expired":         {"dns", "other"},
	"failedstarttls":  {"other", "policy_block"},
	"filtered":        {"invalid_mailbox", "policy_block"},
	"hasmoved":        {"invalid_mailbox"},
	"hostunknown":     {"dns"},
	"mailboxfull":     {"mailbox_full"},
	"mailererror":     {"other"},
	"mesgtoobig":      {"content"},
	"networkerror":    {"dns", "other"},
	"norelaying":      {"policy_block"},
	"notaccept":       {"dns"},
	"notcompliantrfc": {"content"},
	"onhold":          {"other"},
	"policyviolation": {"policy_block", "spam_block"},
	"ratelimited":     {"rate_limited"},
	"rejected":        {"policy_block"},
	"requireptr":      {"auth_failure"},
	"securityerror":   {"auth_failure", "policy_block"},
	"spamdetected":    {"content", "spam_block"},
	"speeding":        {"rate_limited"},
	"suspend":         {"invalid_mailbox"},
	"syntaxerror":     {"invalid_mailbox", "other"},
	"systemerror":     {"other"},
	"systemfull":      {"mailbox_full", "other"},
	"toomanyconn":     {"rate_limited"},
	"undefined":       {"other"},
	"userunknown":     {"invalid_mailbox"},
	"virusdetected":   {"content"},
}

// minSisimaiAgreement is the measured agreement; a change that lowers it
// is a regression (raise it when the tables improve).
const minSisimaiAgreement = 114

// TestSisimaiAgreement cross-checks categories against sisimai.
func TestSisimaiAgreement(t *testing.T) {
	agree, total := 0, 0
	for file, reason := range sisimaiReasons {
		env := envelope(t, sgv1.Source_SOURCE_DSN, filepath.Join(samplesDir, "dsn", file))
		evs, err := ParseDSN(env, Options{})
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		ev := evs[0]
		total++
		ok := false
		switch reason {
		case "delivered":
			ok = ev.GetType() == sgv1.EventType_EVENT_TYPE_DELIVERED
		case "vacation":
			ok = ev.GetType() == sgv1.EventType_EVENT_TYPE_REPLIED
		default:
			got := canonical.BounceCategoryWord(ev.GetBounce().GetCategory())
			for _, c := range sisimaiCategories[reason] {
				ok = ok || c == got
			}
			if !ok {
				t.Logf("%s: sisimai %s, here %s (%q)", file, reason, got, ev.GetBounce().GetDiagnostic())
			}
		}
		if ok {
			agree++
		}
	}
	t.Logf("category agreement with sisimai: %d/%d", agree, total)
	if agree < minSisimaiAgreement {
		t.Errorf("agreement %d/%d below %d", agree, total, minSisimaiAgreement)
	}
}
