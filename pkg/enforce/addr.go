package enforce

import (
	"strings"

	"github.com/sendguard/sendguard/pkg/classify"
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

// domainInfo is what Check derives from a recipient domain.
type domainInfo struct {
	provider string // provider word
	account  string // "" for consumer mailbox domains
}

// maxDomainCache bounds the recipient-domain cache; past it, domains are
// classified on every check instead of cached.
const maxDomainCache = 1 << 18

// recipientDomain returns the provider word and account of a recipient
// domain, as pkg/classify derives them for events (so a suppression keyed by
// an event's account matches the check), through a bounded cache.
func (s *State) recipientDomain(domain string) domainInfo {
	if v, ok := s.domains.Load(domain); ok {
		return v.(domainInfo)
	}
	di := domainInfo{provider: providerWord(classify.Provider(domain)), account: classify.Account(domain)}
	if s.domainCount.Load() < maxDomainCache {
		if _, loaded := s.domains.LoadOrStore(domain, di); !loaded {
			s.domainCount.Add(1)
		}
	}
	return di
}

// accountOf returns the account (company) of a recipient domain, "" for a
// consumer mailbox domain.
func accountOf(domain string) string { return classify.Account(domain) }

// isRoleAddress reports whether addr is a role mailbox (info@, sales@ …).
func isRoleAddress(addr string) bool { return classify.IsRoleAccount(addr) }

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
