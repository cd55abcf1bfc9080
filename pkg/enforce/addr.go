package enforce

import (
	"strings"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// levelWords are the ARCHITECTURE.md words of the scope levels, indexed by
// the enum number.
var levelWords = [...]string{
	sgv1.ScopeLevel_SCOPE_LEVEL_UNSPECIFIED:     "",
	sgv1.ScopeLevel_SCOPE_LEVEL_TENANT:          "tenant",
	sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN:          "domain",
	sgv1.ScopeLevel_SCOPE_LEVEL_SENDER:          "sender",
	sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN:        "campaign",
	sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT:         "variant",
	sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER:        "provider",
	sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT:         "account",
	sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT:       "recipient",
	sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER: "domain_provider",
	sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT:         "segment",
	sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE:     "list_source",
}

const numLevels = len(levelWords)

// LevelWord returns the ARCHITECTURE.md word of a scope level ("domain",
// "domain_provider" …), or "" for an unknown level.
func LevelWord(l sgv1.ScopeLevel) string {
	if l < 0 || int(l) >= numLevels {
		return ""
	}
	return levelWords[l]
}

var actionWords = [...]string{
	sgv1.Action_ACTION_UNSPECIFIED: "",
	sgv1.Action_ACTION_PAUSE:       "pause",
	sgv1.Action_ACTION_RESUME:      "resume",
	sgv1.Action_ACTION_THROTTLE:    "throttle",
	sgv1.Action_ACTION_SUPPRESS:    "suppress",
	sgv1.Action_ACTION_UNSUPPRESS:  "unsuppress",
	sgv1.Action_ACTION_ALERT:       "alert",
}

// ActionWord returns the ARCHITECTURE.md word of an action ("pause" …), or
// "" for an unknown action.
func ActionWord(a sgv1.Action) string {
	if a < 0 || int(a) >= len(actionWords) {
		return ""
	}
	return actionWords[a]
}

// domainOf returns the part after the last '@' of an address, or "" when the
// address has none.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 || i == len(addr)-1 {
		return ""
	}
	return addr[i+1:]
}

// localPart returns the part before the last '@' of an address.
func localPart(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr
	}
	return addr[:i]
}

// consumerDomains maps the common consumer mailbox domains to their provider.
// A domain listed here is never an account (company) domain.
var consumerDomains = map[string]sgv1.Provider{
	"gmail.com": sgv1.Provider_PROVIDER_GMAIL, "googlemail.com": sgv1.Provider_PROVIDER_GMAIL,
	"outlook.com": sgv1.Provider_PROVIDER_MICROSOFT, "hotmail.com": sgv1.Provider_PROVIDER_MICROSOFT,
	"live.com": sgv1.Provider_PROVIDER_MICROSOFT, "msn.com": sgv1.Provider_PROVIDER_MICROSOFT,
	"hotmail.co.uk": sgv1.Provider_PROVIDER_MICROSOFT, "hotmail.fr": sgv1.Provider_PROVIDER_MICROSOFT,
	"outlook.fr": sgv1.Provider_PROVIDER_MICROSOFT, "live.co.uk": sgv1.Provider_PROVIDER_MICROSOFT,
	"outlook.de": sgv1.Provider_PROVIDER_MICROSOFT, "hotmail.de": sgv1.Provider_PROVIDER_MICROSOFT,
	"yahoo.com": sgv1.Provider_PROVIDER_YAHOO, "yahoo.co.uk": sgv1.Provider_PROVIDER_YAHOO,
	"yahoo.fr": sgv1.Provider_PROVIDER_YAHOO, "yahoo.de": sgv1.Provider_PROVIDER_YAHOO,
	"ymail.com": sgv1.Provider_PROVIDER_YAHOO, "rocketmail.com": sgv1.Provider_PROVIDER_YAHOO,
	"aol.com":    sgv1.Provider_PROVIDER_YAHOO,
	"icloud.com": sgv1.Provider_PROVIDER_APPLE, "me.com": sgv1.Provider_PROVIDER_APPLE,
	"mac.com": sgv1.Provider_PROVIDER_APPLE,
	"gmx.com": sgv1.Provider_PROVIDER_OTHER, "gmx.de": sgv1.Provider_PROVIDER_OTHER,
	"gmx.net": sgv1.Provider_PROVIDER_OTHER, "web.de": sgv1.Provider_PROVIDER_OTHER,
	"mail.com": sgv1.Provider_PROVIDER_OTHER, "proton.me": sgv1.Provider_PROVIDER_OTHER,
	"protonmail.com": sgv1.Provider_PROVIDER_OTHER, "yandex.ru": sgv1.Provider_PROVIDER_OTHER,
	"yandex.com": sgv1.Provider_PROVIDER_OTHER, "mail.ru": sgv1.Provider_PROVIDER_OTHER,
	"qq.com": sgv1.Provider_PROVIDER_OTHER, "163.com": sgv1.Provider_PROVIDER_OTHER,
	"126.com": sgv1.Provider_PROVIDER_OTHER, "zoho.com": sgv1.Provider_PROVIDER_OTHER,
	"fastmail.com": sgv1.Provider_PROVIDER_OTHER, "hey.com": sgv1.Provider_PROVIDER_OTHER,
	"comcast.net": sgv1.Provider_PROVIDER_OTHER, "att.net": sgv1.Provider_PROVIDER_OTHER,
	"verizon.net": sgv1.Provider_PROVIDER_OTHER, "t-online.de": sgv1.Provider_PROVIDER_OTHER,
	"orange.fr": sgv1.Provider_PROVIDER_OTHER, "free.fr": sgv1.Provider_PROVIDER_OTHER,
	"libero.it": sgv1.Provider_PROVIDER_OTHER, "seznam.cz": sgv1.Provider_PROVIDER_OTHER,
	"naver.com": sgv1.Provider_PROVIDER_OTHER,
}

// providerOf returns the mailbox provider of a recipient domain: the consumer
// domains above, PROVIDER_OTHER for any other domain (a company domain's
// hosting is not knowable without DNS), PROVIDER_UNSPECIFIED for "".
func providerOf(domain string) sgv1.Provider {
	if domain == "" {
		return sgv1.Provider_PROVIDER_UNSPECIFIED
	}
	if p, ok := consumerDomains[domain]; ok {
		return p
	}
	return sgv1.Provider_PROVIDER_OTHER
}

var providerWords = [...]string{
	sgv1.Provider_PROVIDER_UNSPECIFIED: "",
	sgv1.Provider_PROVIDER_GMAIL:       "gmail",
	sgv1.Provider_PROVIDER_MICROSOFT:   "microsoft",
	sgv1.Provider_PROVIDER_YAHOO:       "yahoo",
	sgv1.Provider_PROVIDER_APPLE:       "apple",
	sgv1.Provider_PROVIDER_OTHER:       "other",
}

func providerWord(p sgv1.Provider) string {
	if p < 0 || int(p) >= len(providerWords) {
		return ""
	}
	return providerWords[p]
}

// accountOf returns the account (company) of a recipient domain: the domain
// itself unless it is a consumer mailbox domain, in which case "".
func accountOf(domain string) string {
	if _, ok := consumerDomains[domain]; ok {
		return ""
	}
	return domain
}

// roleLocalParts are mailbox names of shared role accounts.
var roleLocalParts = map[string]bool{
	"info": true, "support": true, "admin": true, "sales": true, "contact": true,
	"hello": true, "office": true, "help": true, "billing": true, "marketing": true,
	"team": true, "jobs": true, "careers": true, "hr": true, "postmaster": true,
	"abuse": true, "noreply": true, "no-reply": true, "webmaster": true, "press": true,
	"media": true, "enquiries": true, "inquiries": true, "feedback": true,
	"service": true, "accounts": true, "finance": true, "legal": true, "privacy": true,
}

// isRoleAddress reports whether addr's local part names a role account.
func isRoleAddress(addr string) bool {
	return roleLocalParts[localPart(addr)]
}

// normTarget canonicalises a scope target: addresses, domains and providers
// are case-insensitive; campaign, variant, segment and list source ids are
// kept as given.
func normTarget(l sgv1.ScopeLevel, target string) string {
	target = strings.TrimSpace(target)
	switch l {
	case sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT,
		sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT, sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE,
		sgv1.ScopeLevel_SCOPE_LEVEL_TENANT:
		return target
	default:
		return strings.ToLower(target)
	}
}
