package window

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// ScopeKey identifies one scope: a tenant, a level and the level's target.
// It is comparable and is the key of the aggregator's state.
type ScopeKey struct {
	Tenant string
	Level  sgv1.ScopeLevel
	Target string
}

// KeyOf returns the key of a protobuf scope.
func KeyOf(s *sgv1.Scope) ScopeKey {
	return ScopeKey{Tenant: s.GetTenant(), Level: s.GetLevel(), Target: s.GetTarget()}
}

// Scope returns the key as a protobuf scope.
func (k ScopeKey) Scope() *sgv1.Scope {
	return &sgv1.Scope{Tenant: k.Tenant, Level: k.Level, Target: k.Target}
}

// String renders the key as "tenant/level/target" with tenant and target
// path-escaped, e.g. "acme/domain_provider/example.com%7Cgmail". It is the
// record key the service uses on the compacted checkpoint topic; ParseScopeKey
// inverts it.
func (k ScopeKey) String() string {
	return url.PathEscape(k.Tenant) + "/" + LevelWord(k.Level) + "/" + url.PathEscape(k.Target)
}

// ParseScopeKey parses the form written by ScopeKey.String.
func ParseScopeKey(s string) (ScopeKey, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return ScopeKey{}, fmt.Errorf("parse scope key %q: want tenant/level/target", s)
	}
	tenant, err := url.PathUnescape(parts[0])
	if err != nil {
		return ScopeKey{}, fmt.Errorf("parse scope key tenant: %w", err)
	}
	target, err := url.PathUnescape(parts[2])
	if err != nil {
		return ScopeKey{}, fmt.Errorf("parse scope key target: %w", err)
	}
	lv, ok := sgv1.ScopeLevel_value["SCOPE_LEVEL_"+strings.ToUpper(parts[1])]
	if !ok || lv == 0 {
		return ScopeKey{}, fmt.Errorf("parse scope key %q: unknown level %q", s, parts[1])
	}
	return ScopeKey{Tenant: tenant, Level: sgv1.ScopeLevel(lv), Target: target}, nil
}

// LevelWord is the short lower-case word of a scope level ("domain",
// "domain_provider", …).
func LevelWord(l sgv1.ScopeLevel) string {
	if w := canonical.LevelWord(l); w != "" {
		return w
	}
	return strings.ToLower(strings.TrimPrefix(l.String(), "SCOPE_LEVEL_"))
}

// ProviderWord is the short lower-case word of a provider ("gmail", …);
// "unspecified" for the zero value.
func ProviderWord(p sgv1.Provider) string {
	if w := canonical.ProviderWord(p); w != "" {
		return w
	}
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROVIDER_"))
}

// Scopes returns every scope ev counts in, in a fixed order: tenant, domain
// (sending_domain, else the domain part of sender), sender, campaign, variant
// (target "campaign/variant", so variants of different campaigns never merge),
// provider (the recipient provider; for placement tests without one, the seed's
// provider), domain_provider (target "domain|provider"), account, segment and
// list_source. A level whose id is empty (or provider unspecified) is skipped.
//
// Postmaster stats describe a sending domain at Gmail, so a postmaster_stats
// event counts only on the domain scope and on domain_provider "domain|gmail".
// A nil event or one without a tenant has no scopes.
func Scopes(ev *sgv1.Event) []*sgv1.Scope {
	keys := scopeKeys(ev, nil)
	out := make([]*sgv1.Scope, len(keys))
	for i, k := range keys {
		out[i] = k.Scope()
	}
	return out
}

// scopeKeys appends the scope keys of ev to dst (see Scopes).
func scopeKeys(ev *sgv1.Event, dst []ScopeKey) []ScopeKey {
	tenant := ev.GetTenant()
	if tenant == "" {
		return dst
	}
	add := func(level sgv1.ScopeLevel, target string) {
		if target != "" {
			dst = append(dst, ScopeKey{Tenant: tenant, Level: level, Target: target})
		}
	}
	domain := sendingDomain(ev)
	if ev.GetType() == sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS {
		if domain != "" {
			add(sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, domain)
			add(sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, domain+"|"+ProviderWord(sgv1.Provider_PROVIDER_GMAIL))
		}
		return dst
	}
	add(sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, tenant)
	add(sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, domain)
	add(sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, ev.GetSender())
	add(sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, ev.GetCampaign())
	if v := ev.GetVariant(); v != "" {
		add(sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, ev.GetCampaign()+"/"+v)
	}
	prov := eventProvider(ev)
	if prov != sgv1.Provider_PROVIDER_UNSPECIFIED {
		pw := ProviderWord(prov)
		add(sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER, pw)
		if domain != "" {
			add(sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, domain+"|"+pw)
		}
	}
	add(sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, ev.GetAccount())
	add(sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT, ev.GetSegment())
	add(sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE, ev.GetListSource())
	return dst
}

func sendingDomain(ev *sgv1.Event) string {
	if d := ev.GetSendingDomain(); d != "" {
		return d
	}
	s := ev.GetSender()
	if i := strings.LastIndexByte(s, '@'); i >= 0 && i+1 < len(s) {
		return strings.ToLower(s[i+1:])
	}
	return ""
}

func eventProvider(ev *sgv1.Event) sgv1.Provider {
	p := ev.GetProvider()
	if p == sgv1.Provider_PROVIDER_UNSPECIFIED && ev.GetType() == sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST {
		p = ev.GetPlacement().GetProvider()
	}
	if _, ok := sgv1.Provider_name[int32(p)]; !ok {
		return sgv1.Provider_PROVIDER_OTHER
	}
	return p
}
