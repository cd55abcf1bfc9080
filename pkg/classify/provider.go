package classify

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

const (
	provGmail     = sgv1.Provider_PROVIDER_GMAIL
	provMicrosoft = sgv1.Provider_PROVIDER_MICROSOFT
	provYahoo     = sgv1.Provider_PROVIDER_YAHOO
	provApple     = sgv1.Provider_PROVIDER_APPLE
	provOther     = sgv1.Provider_PROVIDER_OTHER
)

// consumerDomains maps consumer mailbox domains to their provider. Entries
// ending in "." match every public suffix ("hotmail." matches hotmail.com,
// hotmail.co.uk, hotmail.fr …). Consumer domains with provider other are
// listed so that Account treats them as personal mailboxes.
var consumerDomains = map[string]sgv1.Provider{
	"gmail.com": provGmail, "googlemail.com": provGmail,

	"outlook.": provMicrosoft, "hotmail.": provMicrosoft, "live.": provMicrosoft,
	"msn.com": provMicrosoft, "windowslive.com": provMicrosoft, "passport.com": provMicrosoft,

	"yahoo.": provYahoo, "ymail.com": provYahoo, "rocketmail.com": provYahoo,
	"aol.": provYahoo, "aim.com": provYahoo, "verizon.net": provYahoo,
	"frontier.com": provYahoo, "sbcglobal.net": provYahoo, "att.net": provYahoo,
	"bellsouth.net": provYahoo, "love.com": provYahoo, "ygm.com": provYahoo,
	"games.com": provYahoo, "wow.com": provYahoo, "netscape.net": provYahoo,

	"icloud.com": provApple, "me.com": provApple, "mac.com": provApple,

	"protonmail.com": provOther, "proton.me": provOther, "pm.me": provOther,
	"gmx.": provOther, "web.de": provOther, "mail.com": provOther,
	"zoho.com": provOther, "zohomail.com": provOther,
	"yandex.": provOther, "ya.ru": provOther, "mail.ru": provOther,
	"inbox.ru": provOther, "list.ru": provOther, "bk.ru": provOther,
	"orange.fr": provOther, "wanadoo.fr": provOther, "free.fr": provOther,
	"laposte.net": provOther, "sfr.fr": provOther,
	"comcast.net": provOther, "cox.net": provOther, "charter.net": provOther,
	"earthlink.net": provOther, "optonline.net": provOther,
	"t-online.de": provOther, "freenet.de": provOther,
	"libero.it": provOther, "virgilio.it": provOther, "tiscali.it": provOther,
	"btinternet.com": provOther, "sky.com": provOther, "virginmedia.com": provOther,
	"qq.com": provOther, "163.com": provOther, "126.com": provOther,
	"naver.com": provOther, "daum.net": provOther,
	"seznam.cz": provOther, "wp.pl": provOther, "o2.pl": provOther, "interia.pl": provOther,
	"rediffmail.com": provOther, "fastmail.com": provOther, "hey.com": provOther,
	"tutanota.com": provOther, "tuta.io": provOther, "hushmail.com": provOther,
	"bigpond.com": provOther, "shaw.ca": provOther, "rogers.com": provOther,
	"uol.com.br": provOther, "bol.com.br": provOther, "terra.com.br": provOther,
	"docomo.ne.jp": provOther, "ezweb.ne.jp": provOther, "softbank.ne.jp": provOther,
}

// consumerLookup reports the provider of a consumer domain and whether it is
// one. It tries the exact domain, then "label." for the registrable label so
// that "hotmail.co.uk" matches "hotmail.".
func consumerLookup(domain string) (sgv1.Provider, bool) {
	d := normDomain(domain)
	if d == "" {
		return sgv1.Provider_PROVIDER_UNSPECIFIED, false
	}
	if p, ok := consumerDomains[d]; ok {
		return p, true
	}
	if i := strings.IndexByte(d, '.'); i > 0 {
		label := d[:i+1]
		if p, ok := consumerDomains[label]; ok {
			// Only a public suffix may follow: "hotmail.co.uk" yes,
			// "yahoo.example.com" no.
			if suffix, _ := publicsuffix.PublicSuffix(d); suffix == d[i+1:] {
				return p, true
			}
		}
	}
	return sgv1.Provider_PROVIDER_UNSPECIFIED, false
}

// Provider returns the mailbox provider of a recipient domain from the
// curated list of consumer domains: gmail, microsoft, yahoo (Yahoo and AOL
// and their partner domains), apple, else other. It never touches the
// network; ProviderResolver adds MX-based detection for business domains.
// An empty domain gives PROVIDER_UNSPECIFIED.
func Provider(domain string) sgv1.Provider {
	if normDomain(domain) == "" {
		return sgv1.Provider_PROVIDER_UNSPECIFIED
	}
	if p, ok := consumerLookup(domain); ok {
		return p
	}
	return provOther
}

// IsConsumerDomain reports whether domain is a consumer mailbox domain
// (gmail.com, hotmail.fr, gmx.de …) rather than a company domain.
func IsConsumerDomain(domain string) bool {
	_, ok := consumerLookup(domain)
	return ok
}

// mxRules maps MX host suffixes to providers. A host matches when it equals
// the suffix or ends with "."+suffix.
var mxRules = []struct {
	suffix   string
	provider sgv1.Provider
}{
	{"google.com", provGmail},     // aspmx.l.google.com, alt1.aspmx.l.google.com, smtp.google.com
	{"googlemail.com", provGmail}, // aspmx2.googlemail.com
	{"mail.protection.outlook.com", provMicrosoft},
	{"outlook.com", provMicrosoft}, // legacy Outlook.com MX
	{"hotmail.com", provMicrosoft},
	{"olc.protection.outlook.com", provMicrosoft},
	{"yahoodns.net", provYahoo}, // mta5.am0.yahoodns.net
	{"yahoo.com", provYahoo},
	{"aol.com", provYahoo},
	{"mail.icloud.com", provApple}, // mx01.mail.icloud.com
	{"icloud.com", provApple},
	{"me.com", provApple},
}

// ProviderForMX returns the provider implied by one MX host name, or
// PROVIDER_OTHER.
func ProviderForMX(host string) sgv1.Provider {
	h := normDomain(host)
	for _, r := range mxRules {
		if h == r.suffix || strings.HasSuffix(h, "."+r.suffix) {
			return r.provider
		}
	}
	return provOther
}

// MXResolver looks up the MX hosts of a domain. net.Resolver.LookupMX has
// this shape once wrapped; tests inject a map.
type MXResolver interface {
	LookupMX(ctx context.Context, domain string) ([]*net.MX, error)
}

// MXResolverFunc adapts a function to MXResolver.
type MXResolverFunc func(ctx context.Context, domain string) ([]*net.MX, error)

// LookupMX calls f.
func (f MXResolverFunc) LookupMX(ctx context.Context, domain string) ([]*net.MX, error) {
	return f(ctx, domain)
}

var _ MXResolver = (*net.Resolver)(nil)

// ProviderResolverConfig configures a ProviderResolver. Zero values take the
// defaults noted on each field.
type ProviderResolverConfig struct {
	// Resolver does the MX lookups; default net.DefaultResolver.
	Resolver MXResolver
	// Timeout bounds one lookup; default 2s.
	Timeout time.Duration
	// TTL is how long an answer (or a failure, for NegativeTTL) is cached;
	// default 6h.
	TTL time.Duration
	// NegativeTTL caches lookup failures; default 5m.
	NegativeTTL time.Duration
	// MaxEntries bounds the cache; default 10000. When full, expired entries
	// are dropped first, then an arbitrary entry.
	MaxEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// ProviderResolver resolves the provider of business domains by their MX
// records (Google Workspace → gmail, Microsoft 365 → microsoft, …), with a
// bounded TTL cache. It is safe for concurrent use. It is off unless a
// service builds one: Provider and Enrich never use the network.
type ProviderResolver struct {
	cfg   ProviderResolverConfig
	mu    sync.Mutex
	cache map[string]cacheEntry
}

type cacheEntry struct {
	provider sgv1.Provider
	expires  time.Time
}

// NewProviderResolver builds a resolver with cfg's defaults filled in.
func NewProviderResolver(cfg ProviderResolverConfig) *ProviderResolver {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 6 * time.Hour
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = 5 * time.Minute
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &ProviderResolver{cfg: cfg, cache: make(map[string]cacheEntry)}
}

// Provider returns the provider of domain: the static list first, then the
// cached or looked-up MX hosts (lowest preference first). A failed lookup
// gives PROVIDER_OTHER and the error; the failure is cached for NegativeTTL
// so that a dead resolver does not slow every event.
func (r *ProviderResolver) Provider(ctx context.Context, domain string) (sgv1.Provider, error) {
	d := normDomain(domain)
	if d == "" {
		return sgv1.Provider_PROVIDER_UNSPECIFIED, nil
	}
	if p, ok := consumerLookup(d); ok {
		return p, nil
	}
	now := r.cfg.Now()
	r.mu.Lock()
	if e, ok := r.cache[d]; ok && now.Before(e.expires) {
		r.mu.Unlock()
		return e.provider, nil
	}
	r.mu.Unlock()

	lctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	mxs, err := r.cfg.Resolver.LookupMX(lctx, d)
	p, ttl := provOther, r.cfg.TTL
	if err != nil {
		ttl = r.cfg.NegativeTTL
	} else {
		best := -1
		for i, mx := range mxs {
			if mx == nil {
				continue
			}
			if best < 0 || mx.Pref < mxs[best].Pref {
				best = i
			}
		}
		if best >= 0 {
			p = ProviderForMX(mxs[best].Host)
		}
	}
	r.store(d, cacheEntry{provider: p, expires: now.Add(ttl)}, now)
	if err != nil {
		return p, err
	}
	return p, nil
}

func (r *ProviderResolver) store(d string, e cacheEntry, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cache[d]; !ok && len(r.cache) >= r.cfg.MaxEntries {
		for k, v := range r.cache {
			if !now.Before(v.expires) {
				delete(r.cache, k)
			}
		}
		for k := range r.cache {
			if len(r.cache) < r.cfg.MaxEntries {
				break
			}
			delete(r.cache, k)
		}
	}
	r.cache[d] = e
}

// Len returns the number of cached domains.
func (r *ProviderResolver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}

// Enrich sets ev.Provider from the MX records of ev's recipient domain when
// the static list says other or nothing; it runs Enrich first. A lookup
// error leaves the provider as the static list set it and is returned.
func (r *ProviderResolver) Enrich(ctx context.Context, ev *sgv1.Event) error {
	if ev == nil {
		return nil
	}
	Enrich(ev)
	if ev.GetRecipientDomain() == "" {
		return nil
	}
	if ev.Provider != provOther && ev.Provider != sgv1.Provider_PROVIDER_UNSPECIFIED {
		return nil
	}
	p, err := r.Provider(ctx, ev.GetRecipientDomain())
	if err != nil {
		return err
	}
	ev.Provider = p
	return nil
}

// normDomain lower-cases and trims a domain, dropping a trailing dot and
// anything up to an "@".
func normDomain(d string) string {
	d = strings.TrimSpace(d)
	if i := strings.LastIndexByte(d, '@'); i >= 0 {
		d = d[i+1:]
	}
	d = strings.Trim(d, "<>[] \t")
	d = strings.TrimSuffix(d, ".")
	return strings.ToLower(d)
}
