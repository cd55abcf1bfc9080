package classify

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Account returns the recipient's account id: the registrable domain of the
// recipient domain ("mail.eu.acme.co.uk" → "acme.co.uk"), or "" for a
// consumer mailbox domain (gmail.com, hotmail.fr …), where the domain says
// nothing about the company. An address is accepted too; the part after the
// last "@" is used.
func Account(recipientDomain string) string {
	d := normDomain(recipientDomain)
	if d == "" || IsConsumerDomain(d) {
		return ""
	}
	if reg, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		if IsConsumerDomain(reg) {
			return ""
		}
		return reg
	}
	return d
}

// roleLocalParts are mailbox names that reach a function or a team rather
// than a person. Sending cold mail to them raises complaint risk (seed
// documents: "Known role accounts (info@, support@, admin@) unless
// explicitly part of ICP").
var roleLocalParts = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`
		info information hello hi hey contact contacts contactus contact-us enquiries enquiry inquiries inquiry
		support help helpdesk service services customerservice customer-service customercare care feedback
		admin administrator root sysadmin webmaster hostmaster postmaster abuse security noc it tech
		sales marketing press media pr news newsletter events partners partnerships bizdev business
		billing accounts accounting invoices invoice finance payments payable receivable
		office reception frontdesk team staff all everyone company general mail email
		noreply no-reply donotreply do-not-reply bounce bounces mailer-daemon notifications notification alerts
		hr jobs careers career recruiting recruitment talent hiring resumes cv
		legal compliance privacy gdpr dpo orders order shop store ops operations admissions
		membership members subscribe unsubscribe list lists test`) {
		roleLocalParts[w] = true
	}
}

// exactOnlyRoles are role words too short or common to decide as a prefix
// ("it.smith", "hi.kim" are people).
var exactOnlyRoles = map[string]bool{"hi": true, "hey": true, "it": true, "all": true, "mail": true, "email": true, "list": true, "test": true, "care": true, "team": true}

// IsRoleAccount reports whether addr's local part is a role mailbox
// (info@, support@, sales@, noreply@ …). Plus-tags and separators are
// ignored ("sales+eu@", "sales.team@" → sales), case-insensitively. A
// string without "@" is read as a bare local part.
func IsRoleAccount(addr string) bool {
	a := strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>"))
	local := a
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		local = a[:i]
	}
	if i := strings.IndexByte(local, '+'); i >= 0 {
		local = local[:i]
	}
	if local == "" {
		return false
	}
	if roleLocalParts[local] {
		return true
	}
	// "sales.team", "support_uk", "info-de": the first token decides.
	if i := strings.IndexAny(local, "._-"); i > 0 && roleLocalParts[local[:i]] && !exactOnlyRoles[local[:i]] {
		return true
	}
	return false
}
