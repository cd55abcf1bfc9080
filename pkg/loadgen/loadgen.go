// Package loadgen generates realistic, deterministic delivery-signal traffic
// for load tests and benchmarks: many tenants, Zipf-distributed sending
// domains and senders, a recipient provider mix, a per-message lifecycle
// (sent → delivered | bounced | deferred, then opened, clicked, replied,
// unsubscribed or complained at configurable rates), and anomalies injected
// on chosen scopes from a chosen instant.
//
// A Generator is pure: it reads no clock and no global randomness. The same
// Config (Seed included) yields the same events, ids and times, byte for
// byte. Event time is virtual: new messages are sent at MessagesPerSecond of
// event time from Start, and their follow-ups come later in the stream, so
// Next returns events in non-decreasing event-time order.
package loadgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// ProviderShare is the share of recipients at one mailbox provider.
type ProviderShare struct {
	Provider sgv1.Provider
	Share    float64
}

// DefaultProviders is a B2B/B2C outreach mix: Gmail 40%, Microsoft 25%,
// Yahoo 10%, Apple 7%, other (company domains) 18%.
var DefaultProviders = []ProviderShare{
	{sgv1.Provider_PROVIDER_GMAIL, 0.40},
	{sgv1.Provider_PROVIDER_MICROSOFT, 0.25},
	{sgv1.Provider_PROVIDER_YAHOO, 0.10},
	{sgv1.Provider_PROVIDER_APPLE, 0.07},
	{sgv1.Provider_PROVIDER_OTHER, 0.18},
}

// Rates are per-message outcome probabilities.
type Rates struct {
	// Bounce is the share of sent messages that bounce; HardShare of those
	// are hard bounces.
	Bounce, HardShare float64
	// Defer is the share of sent messages deferred once before delivery.
	Defer float64
	// Open, Click, Reply, Unsubscribe and Complaint are shares of delivered
	// messages. Click applies to opened messages only.
	Open, Click, Reply, Unsubscribe, Complaint float64
}

// DefaultRates are a healthy sender's: 2% bounces (60% hard), 3% deferred,
// 35% opens, 10% of opens clicked, 2% replies, 0.3% unsubscribes and 0.05%
// complaints.
var DefaultRates = Rates{Bounce: 0.02, HardShare: 0.6, Defer: 0.03, Open: 0.35, Click: 0.10, Reply: 0.02, Unsubscribe: 0.003, Complaint: 0.0005}

// Anomaly overrides rates for messages of one scope sent in [Start,
// Start+Duration) (open-ended when Duration is 0).
type Anomaly struct {
	// Tenant limits the anomaly to one tenant; empty matches every tenant.
	Tenant string
	// Level is domain, sender, campaign or provider; Target is the sending
	// domain, the sender address, the campaign id or the provider word
	// (gmail, microsoft, yahoo, apple, other).
	Level, Target string
	Start         time.Time
	Duration      time.Duration
	// Each rate that is > 0 replaces the base rate; 0 keeps it.
	Rates Rates
}

// Config configures a Generator. Zero values take the documented defaults.
type Config struct {
	Seed uint64
	// Start is the event time of the first message (default 2026-01-01).
	Start time.Time
	// MessagesPerSecond is the event-time rate of new messages (default 1000).
	MessagesPerSecond float64
	// Tenants are the tenants' names (default ["default"]).
	Tenants []string
	// OmitTenant leaves Event.tenant empty (ingest takes it from the key).
	OmitTenant bool
	// Domains and SendersPerDomain size each tenant's sending identities
	// (defaults 50 and 20); Campaigns per tenant (default 30).
	Domains, SendersPerDomain, Campaigns int
	// Recipients is the size of each provider's recipient pool (default 1e6).
	Recipients int
	// ZipfS is the Zipf exponent of tenants, domains, senders and campaigns
	// (default 1.2; must be > 1).
	ZipfS     float64
	Providers []ProviderShare
	// Rates; the zero value means DefaultRates.
	Rates     Rates
	Anomalies []Anomaly
	// MaxDelay bounds a follow-up's delay after its message was sent
	// (default 10s).
	// Pending follow-ups cost memory: about MessagesPerSecond × MaxDelay.
	MaxDelay time.Duration
	// IDPrefix starts every event id (default "lg"); ids are IDPrefix-N with
	// N counting from 0, so a run with a fresh prefix has fresh ids.
	IDPrefix string
}

func (c *Config) defaults() error {
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.MessagesPerSecond <= 0 {
		c.MessagesPerSecond = 1000
	}
	if len(c.Tenants) == 0 {
		c.Tenants = []string{"default"}
	}
	if c.Domains <= 0 {
		c.Domains = 50
	}
	if c.SendersPerDomain <= 0 {
		c.SendersPerDomain = 20
	}
	if c.Campaigns <= 0 {
		c.Campaigns = 30
	}
	if c.Recipients <= 0 {
		c.Recipients = 1_000_000
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.2
	}
	if c.ZipfS <= 1 || math.IsNaN(c.ZipfS) {
		return fmt.Errorf("loadgen: ZipfS %v must be > 1", c.ZipfS)
	}
	if len(c.Providers) == 0 {
		c.Providers = DefaultProviders
	}
	if c.Rates == (Rates{}) {
		c.Rates = DefaultRates
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 10 * time.Second
	}
	if c.IDPrefix == "" {
		c.IDPrefix = "lg"
	}
	var total float64
	for _, p := range c.Providers {
		if p.Share < 0 || p.Provider == sgv1.Provider_PROVIDER_UNSPECIFIED {
			return errors.New("loadgen: provider shares must be >= 0 and name a provider")
		}
		total += p.Share
	}
	if total <= 0 {
		return errors.New("loadgen: provider shares sum to 0")
	}
	for _, r := range append([]Rates{c.Rates}, ratesOf(c.Anomalies)...) {
		for _, v := range []float64{r.Bounce, r.HardShare, r.Defer, r.Open, r.Click, r.Reply, r.Unsubscribe, r.Complaint} {
			if v < 0 || v > 1 || math.IsNaN(v) {
				return fmt.Errorf("loadgen: rate %v outside [0,1]", v)
			}
		}
	}
	for _, a := range c.Anomalies {
		switch a.Level {
		case "domain", "sender", "campaign", "provider":
		default:
			return fmt.Errorf("loadgen: anomaly level %q (want domain, sender, campaign or provider)", a.Level)
		}
	}
	return nil
}

func ratesOf(as []Anomaly) []Rates {
	out := make([]Rates, len(as))
	for i, a := range as {
		out[i] = a.Rates
	}
	return out
}

// Generator produces events. It is not safe for concurrent use.
type Generator struct {
	cfg     Config
	rng     *rand.Rand
	tenants *rand.Zipf
	domains *rand.Zipf
	senders *rand.Zipf
	camps   *rand.Zipf
	provCum []float64

	sendEvery time.Duration
	nextSend  time.Time
	msgs      uint64
	seq       uint64
	ord       uint64
	pending   pendingHeap
}

// New returns a generator for cfg.
func New(cfg Config) (*Generator, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	cfg.Providers = append([]ProviderShare(nil), cfg.Providers...)
	cfg.Tenants = append([]string(nil), cfg.Tenants...)
	cfg.Anomalies = append([]Anomaly(nil), cfg.Anomalies...)
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &Generator{
		cfg: cfg, rng: rng,
		tenants:   rand.NewZipf(rng, cfg.ZipfS, 1, uint64(len(cfg.Tenants)-1)),
		domains:   rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.Domains-1)),
		senders:   rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.SendersPerDomain-1)),
		camps:     rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.Campaigns-1)),
		sendEvery: time.Duration(float64(time.Second) / cfg.MessagesPerSecond),
		nextSend:  cfg.Start.UTC(),
	}
	var total float64
	for _, p := range cfg.Providers {
		total += p.Share
	}
	var cum float64
	for _, p := range cfg.Providers {
		cum += p.Share / total
		g.provCum = append(g.provCum, cum)
	}
	return g, nil
}

// Domain returns the name of tenant's sending domain of Zipf rank rank (0
// is the busiest).
func Domain(tenant string, rank int) string {
	return "mail" + strconv.Itoa(rank) + "." + label(tenant) + ".example"
}

// Sender returns the address of the sender of rank rank at domain.
func Sender(domain string, rank int) string { return "rep" + strconv.Itoa(rank) + "@" + domain }

// label turns a tenant name into a DNS label.
func label(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "t"
	}
	return out
}

// message is what follow-ups of one sent message share.
type message struct {
	tenant, sender, domain, recipient, campaign, variant string
	messageID                                            string
	provider                                             sgv1.Provider
	sentAt                                               time.Time
}

// kind is a follow-up's event.
type kind uint8

const (
	kDelivered kind = iota
	kDeferred
	kHardBounce
	kSoftBounce
	kOpened
	kClicked
	kReplied
	kUnsubscribed
	kComplained
)

type pending struct {
	at  time.Time
	ns  int64  // at in unix nanoseconds: the heap's order
	ord uint64 // tie-break: scheduling order, for determinism
	k   kind
	m   *message
}

// pendingHeap is a binary min-heap of follow-ups by (at, ord), typed so
// a push or pop neither boxes the entry nor compares time.Time values
// (container/heap did both: a third of the generator's time). ord is
// unique, so the order of pops is the same whatever the heap's layout.
type pendingHeap []pending

func (h pendingHeap) less(i, j int) bool {
	if h[i].ns != h[j].ns {
		return h[i].ns < h[j].ns
	}
	return h[i].ord < h[j].ord
}

func (h *pendingHeap) push(p pending) {
	*h = append(*h, p)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

// pop removes and returns the first follow-up; the heap must not be empty.
func (h *pendingHeap) pop() pending {
	s := *h
	top, n := s[0], len(s)-1
	s[0], s[n] = s[n], pending{} // the vacated slot drops its message
	s = s[:n]
	for i := 0; ; {
		m := 2*i + 1
		if m >= n {
			break
		}
		if r := m + 1; r < n && s.less(r, m) {
			m = r
		}
		if !s.less(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// Next returns the next event in event-time order. It never returns nil.
func (g *Generator) Next() *sgv1.Event {
	if len(g.pending) > 0 && !g.pending[0].at.After(g.nextSend) {
		p := g.pending.pop()
		return g.followUp(p)
	}
	return g.send()
}

// Clock returns the event time of the next new message.
func (g *Generator) Clock() time.Time { return g.nextSend }

// Pending returns how many follow-ups are scheduled.
func (g *Generator) Pending() int { return len(g.pending) }

// Emitted returns how many events Next has returned.
func (g *Generator) Emitted() uint64 { return g.seq }

func (g *Generator) provider() sgv1.Provider {
	u := g.rng.Float64()
	for i, c := range g.provCum {
		if u < c {
			return g.cfg.Providers[i].Provider
		}
	}
	return g.cfg.Providers[len(g.cfg.Providers)-1].Provider
}

var consumerDomains = map[sgv1.Provider][]string{
	sgv1.Provider_PROVIDER_GMAIL:     {"gmail.com", "googlemail.com"},
	sgv1.Provider_PROVIDER_MICROSOFT: {"outlook.com", "hotmail.com", "live.com"},
	sgv1.Provider_PROVIDER_YAHOO:     {"yahoo.com", "aol.com"},
	sgv1.Provider_PROVIDER_APPLE:     {"icloud.com", "me.com"},
}

// recipient draws a recipient at provider p: consumer mailboxes for the big
// four, company domains (Zipf, 2,000 companies) for "other".
func (g *Generator) recipient(p sgv1.Provider) string {
	user := "u" + strconv.Itoa(g.rng.IntN(g.cfg.Recipients))
	if ds, ok := consumerDomains[p]; ok {
		return user + "@" + ds[g.rng.IntN(len(ds))]
	}
	return user + "@corp" + strconv.Itoa(g.rng.IntN(2000)) + ".example"
}

// Pick returns a sender and recipient drawn from the same distributions as
// the events (for permission-check load); it advances the generator's
// randomness but not its clock.
func (g *Generator) Pick() (sender, recipient, campaign string) {
	t := g.cfg.Tenants[g.tenants.Uint64()]
	d := Domain(t, int(g.domains.Uint64()))
	return Sender(d, int(g.senders.Uint64())), g.recipient(g.provider()), "c" + strconv.Itoa(int(g.camps.Uint64()))
}

func (g *Generator) send() *sgv1.Event {
	at := g.nextSend
	g.msgs++
	g.nextSend = g.cfg.Start.UTC().Add(time.Duration(float64(g.msgs) * float64(g.sendEvery)))
	t := g.cfg.Tenants[g.tenants.Uint64()]
	d := Domain(t, int(g.domains.Uint64()))
	prov := g.provider()
	camp := int(g.camps.Uint64())
	m := &message{
		tenant: t, domain: d, sender: Sender(d, int(g.senders.Uint64())),
		recipient: g.recipient(prov), provider: prov,
		campaign: "c" + strconv.Itoa(camp), variant: string(rune('a' + g.rng.IntN(2))),
		sentAt: at,
	}
	m.messageID = "<" + strconv.FormatUint(g.msgs, 36) + "." + strconv.FormatUint(g.rng.Uint64()>>20, 36) + "@" + d + ">"
	g.schedule(m, g.rates(m))
	return g.event(m, sgv1.EventType_EVENT_TYPE_SENT, at)
}

// rates applies the anomalies matching m.
func (g *Generator) rates(m *message) Rates {
	r := g.cfg.Rates
	for _, a := range g.cfg.Anomalies {
		if a.Tenant != "" && a.Tenant != m.tenant {
			continue
		}
		if m.sentAt.Before(a.Start) || (a.Duration > 0 && !m.sentAt.Before(a.Start.Add(a.Duration))) {
			continue
		}
		var v string
		switch a.Level {
		case "domain":
			v = m.domain
		case "sender":
			v = m.sender
		case "campaign":
			v = m.campaign
		case "provider":
			v = providerWord(m.provider)
		}
		if v != a.Target {
			continue
		}
		over := func(dst *float64, v float64) {
			if v > 0 {
				*dst = v
			}
		}
		over(&r.Bounce, a.Rates.Bounce)
		over(&r.HardShare, a.Rates.HardShare)
		over(&r.Defer, a.Rates.Defer)
		over(&r.Open, a.Rates.Open)
		over(&r.Click, a.Rates.Click)
		over(&r.Reply, a.Rates.Reply)
		over(&r.Unsubscribe, a.Rates.Unsubscribe)
		over(&r.Complaint, a.Rates.Complaint)
	}
	return r
}

func providerWord(p sgv1.Provider) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROVIDER_"))
}

// delay draws a follow-up delay in [min, MaxDelay] with an exponential tail
// of mean scale (both clamped to MaxDelay).
func (g *Generator) delay(minD, scale time.Duration) time.Duration {
	maxD := g.cfg.MaxDelay
	minD, scale = min(minD, maxD), min(scale, maxD)
	d := minD + time.Duration(g.rng.ExpFloat64()*float64(scale))
	return min(d, maxD)
}

// push schedules a follow-up, at most MaxDelay after its message was sent;
// among follow-ups at the same instant, the first scheduled comes first.
func (g *Generator) push(m *message, k kind, at time.Time) {
	if limit := m.sentAt.Add(g.cfg.MaxDelay); at.After(limit) {
		at = limit
	}
	g.ord++
	g.pending.push(pending{at: at, ns: at.UnixNano(), ord: g.ord, k: k, m: m})
}

// schedule draws the message's lifecycle and queues its follow-ups.
func (g *Generator) schedule(m *message, r Rates) {
	t := m.sentAt
	u := g.rng.Float64()
	switch {
	case u < r.Bounce:
		k := kSoftBounce
		if g.rng.Float64() < r.HardShare {
			k = kHardBounce
		}
		g.push(m, k, t.Add(g.delay(200*time.Millisecond, 2*time.Second)))
		return
	case u < r.Bounce+r.Defer:
		t = t.Add(g.delay(200*time.Millisecond, time.Second))
		g.push(m, kDeferred, t)
	}
	t = t.Add(g.delay(100*time.Millisecond, time.Second))
	g.push(m, kDelivered, t)
	if g.rng.Float64() < r.Open {
		open := t.Add(g.delay(time.Second, 5*time.Second))
		g.push(m, kOpened, open)
		if g.rng.Float64() < r.Click {
			g.push(m, kClicked, open.Add(g.delay(0, 2*time.Second)))
		}
	}
	if g.rng.Float64() < r.Reply {
		g.push(m, kReplied, t.Add(g.delay(2*time.Second, 5*time.Second)))
	}
	if g.rng.Float64() < r.Unsubscribe {
		g.push(m, kUnsubscribed, t.Add(g.delay(time.Second, 5*time.Second)))
	}
	if g.rng.Float64() < r.Complaint {
		g.push(m, kComplained, t.Add(g.delay(time.Second, 5*time.Second)))
	}
}

func (g *Generator) event(m *message, typ sgv1.EventType, at time.Time) *sgv1.Event {
	id := g.cfg.IDPrefix + "-" + strconv.FormatUint(g.seq, 10)
	g.seq++
	ev := &sgv1.Event{
		EventId: id, Type: typ, OccurredAt: timestamppb.New(at),
		Sender: m.sender, Recipient: m.recipient, Campaign: m.campaign, Variant: m.variant,
		MessageId: m.messageID,
	}
	if !g.cfg.OmitTenant {
		ev.Tenant = m.tenant
	}
	return ev
}

func (g *Generator) followUp(p pending) *sgv1.Event {
	m := p.m
	switch p.k {
	case kDelivered:
		return g.event(m, sgv1.EventType_EVENT_TYPE_DELIVERED, p.at)
	case kDeferred:
		ev := g.event(m, sgv1.EventType_EVENT_TYPE_DEFERRED, p.at)
		ev.Bounce = g.bounce(deferrals[m.provider])
		return ev
	case kHardBounce:
		ev := g.event(m, sgv1.EventType_EVENT_TYPE_BOUNCED, p.at)
		ev.Bounce = g.bounce(hardBounces[m.provider])
		return ev
	case kSoftBounce:
		ev := g.event(m, sgv1.EventType_EVENT_TYPE_BOUNCED, p.at)
		ev.Bounce = g.bounce(softBounces)
		return ev
	case kOpened:
		return g.event(m, sgv1.EventType_EVENT_TYPE_OPENED, p.at)
	case kClicked:
		return g.event(m, sgv1.EventType_EVENT_TYPE_CLICKED, p.at)
	case kReplied:
		ev := g.event(m, sgv1.EventType_EVENT_TYPE_REPLIED, p.at)
		rc := replies[g.rng.IntN(len(replies))]
		ev.Reply = &sgv1.Reply{Category: rc.cat, Risk: rc.risk}
		return ev
	case kUnsubscribed:
		ev := g.event(m, sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, p.at)
		ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
		if g.rng.IntN(4) == 0 {
			ev.Unsubscribe.Method = sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_LINK
		}
		return ev
	default: // kComplained
		ev := g.event(m, sgv1.EventType_EVENT_TYPE_COMPLAINED, p.at)
		ev.Complaint = &sgv1.Complaint{Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL, FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE}
		if m.provider == sgv1.Provider_PROVIDER_GMAIL {
			ev.Complaint.Source = sgv1.ComplaintSource_COMPLAINT_SOURCE_ESP // Gmail has no per-message FBL
		}
		return ev
	}
}

// bounceCode is one realistic SMTP answer.
type bounceCode struct {
	class    sgv1.BounceClass
	cat      sgv1.BounceCategory
	smtp     int32
	enhanced string
	diag     string
}

func (g *Generator) bounce(codes []bounceCode) *sgv1.Bounce {
	c := codes[g.rng.IntN(len(codes))]
	return &sgv1.Bounce{Class: c.class, Category: c.cat, SmtpCode: c.smtp, EnhancedCode: c.enhanced, Diagnostic: c.diag}
}

const (
	hard = sgv1.BounceClass_BOUNCE_CLASS_HARD
	soft = sgv1.BounceClass_BOUNCE_CLASS_SOFT
)

var hardBounces = map[sgv1.Provider][]bounceCode{
	sgv1.Provider_PROVIDER_GMAIL: {
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX, 550, "5.1.1", "550-5.1.1 The email account that you tried to reach does not exist."},
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_AUTH_FAILURE, 550, "5.7.26", "550-5.7.26 Unauthenticated email from this domain is not accepted due to its DMARC policy."},
	},
	sgv1.Provider_PROVIDER_MICROSOFT: {
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX, 550, "5.5.0", "550 5.5.0 Requested action not taken: mailbox unavailable"},
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_SPAM_BLOCK, 550, "5.7.1", "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. (S3140)"},
	},
	sgv1.Provider_PROVIDER_YAHOO: {
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX, 554, "5.1.1", "554 delivery error: dd This user doesn't have a yahoo.com account"},
	},
	sgv1.Provider_PROVIDER_APPLE: {
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX, 550, "5.1.1", "550 5.1.1 <user@icloud.com>: user does not exist"},
	},
	sgv1.Provider_PROVIDER_OTHER: {
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX, 550, "5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"},
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_DNS, 550, "5.1.2", "550 5.1.2 Host unknown (Name server: corp.example: host not found)"},
		{hard, sgv1.BounceCategory_BOUNCE_CATEGORY_POLICY_BLOCK, 550, "5.7.1", "550 5.7.1 Service unavailable; client host blocked using Spamhaus"},
	},
}

var softBounces = []bounceCode{
	{soft, sgv1.BounceCategory_BOUNCE_CATEGORY_MAILBOX_FULL, 452, "4.2.2", "452 4.2.2 The email account that you tried to reach is over quota."},
	{soft, sgv1.BounceCategory_BOUNCE_CATEGORY_MAILBOX_FULL, 552, "5.2.2", "552 5.2.2 Mailbox full"},
	{soft, sgv1.BounceCategory_BOUNCE_CATEGORY_OTHER, 451, "4.3.0", "451 4.3.0 Temporary server error. Please try again later"},
}

var deferrals = map[sgv1.Provider][]bounceCode{
	sgv1.Provider_PROVIDER_GMAIL:     {{soft, sgv1.BounceCategory_BOUNCE_CATEGORY_RATE_LIMITED, 421, "4.7.28", "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP address."}},
	sgv1.Provider_PROVIDER_MICROSOFT: {{soft, sgv1.BounceCategory_BOUNCE_CATEGORY_RATE_LIMITED, 451, "4.7.650", "451 4.7.650 The mail server [192.0.2.10] has been temporarily rate limited due to IP reputation."}},
	sgv1.Provider_PROVIDER_YAHOO:     {{soft, sgv1.BounceCategory_BOUNCE_CATEGORY_RATE_LIMITED, 421, "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints"}},
	sgv1.Provider_PROVIDER_APPLE:     {{soft, sgv1.BounceCategory_BOUNCE_CATEGORY_OTHER, 450, "4.2.1", "450 4.2.1 Too many messages, try again later"}},
	sgv1.Provider_PROVIDER_OTHER:     {{soft, sgv1.BounceCategory_BOUNCE_CATEGORY_OTHER, 451, "4.7.1", "451 4.7.1 Greylisted, please try again later"}},
}

var replies = []struct {
	cat  sgv1.ReplyCategory
	risk sgv1.Risk
}{
	{sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED, sgv1.Risk_RISK_LOW},
	{sgv1.ReplyCategory_REPLY_CATEGORY_NOT_NOW, sgv1.Risk_RISK_LOW},
	{sgv1.ReplyCategory_REPLY_CATEGORY_OOO, sgv1.Risk_RISK_LOW},
	{sgv1.ReplyCategory_REPLY_CATEGORY_OOO, sgv1.Risk_RISK_LOW},
	{sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT, sgv1.Risk_RISK_MEDIUM},
	{sgv1.ReplyCategory_REPLY_CATEGORY_REFERRAL, sgv1.Risk_RISK_LOW},
	{sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE, sgv1.Risk_RISK_MEDIUM},
	{sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE, sgv1.Risk_RISK_HIGH},
}

// DomainSpike returns the events of a complaint spike on a fresh sending
// domain at event time at: warm-up sent+delivered pairs for delivered
// recipients, then complaints complaints (from the first recipients), ids
// idPrefix-w-N and idPrefix-c-N. With delivered ≥ 500 and complaints ≥ 2 the
// default rule pack pauses the domain (complaint rate ≥ 0.2% on a sample of
// 500). tenant may be empty (taken from the API key).
func DomainSpike(tenant, domain string, at time.Time, delivered, complaints int, idPrefix string) (warmup, spike []*sgv1.Event) {
	ts := timestamppb.New(at)
	sender := Sender(domain, 0)
	rcpt := func(i int) string { return "s" + strconv.Itoa(i) + "@corp" + strconv.Itoa(i%97) + ".example" }
	for i := range delivered {
		for j, typ := range []sgv1.EventType{sgv1.EventType_EVENT_TYPE_SENT, sgv1.EventType_EVENT_TYPE_DELIVERED} {
			warmup = append(warmup, &sgv1.Event{
				EventId: idPrefix + "-w-" + strconv.Itoa(2*i+j), Tenant: tenant, Type: typ, OccurredAt: ts,
				Sender: sender, Recipient: rcpt(i), Campaign: "spike",
			})
		}
	}
	for i := range complaints {
		spike = append(spike, &sgv1.Event{
			EventId: idPrefix + "-c-" + strconv.Itoa(i), Tenant: tenant, Type: sgv1.EventType_EVENT_TYPE_COMPLAINED, OccurredAt: ts,
			Sender: sender, Recipient: rcpt(i), Campaign: "spike",
			Complaint: &sgv1.Complaint{Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL, FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE},
		})
	}
	return warmup, spike
}
