package classify

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestProvider(t *testing.T) {
	cases := []struct {
		domain string
		want   sgv1.Provider
	}{
		{"gmail.com", provGmail},
		{"GoogleMail.com", provGmail},
		{"outlook.com", provMicrosoft},
		{"hotmail.co.uk", provMicrosoft},
		{"hotmail.fr", provMicrosoft},
		{"live.com.au", provMicrosoft},
		{"msn.com", provMicrosoft},
		{"yahoo.com", provYahoo},
		{"yahoo.co.jp", provYahoo},
		{"ymail.com", provYahoo},
		{"aol.com", provYahoo},
		{"icloud.com", provApple},
		{"me.com", provApple},
		{"mac.com", provApple},
		{"gmx.de", provOther},
		{"acme.com", provOther},
		{"yahoo.acme.com", provOther}, // a label, not a public suffix, follows
		{"mail.google.com.evil.example", provOther},
		{"", sgv1.Provider_PROVIDER_UNSPECIFIED},
		{"user@ICLOUD.com", provApple},
	}
	for _, c := range cases {
		t.Run(c.domain, func(t *testing.T) {
			if got := Provider(c.domain); got != c.want {
				t.Errorf("Provider(%q) = %v, want %v", c.domain, got, c.want)
			}
		})
	}
}

func TestProviderForMX(t *testing.T) {
	cases := map[string]sgv1.Provider{
		"aspmx.l.google.com.":                     provGmail,
		"alt1.aspmx.l.google.com":                 provGmail,
		"aspmx2.googlemail.com":                   provGmail,
		"acme-com.mail.protection.outlook.com":    provMicrosoft,
		"mta5.am0.yahoodns.net":                   provYahoo,
		"mx01.mail.icloud.com":                    provApple,
		"mx.acme.com":                             provOther,
		"google.com.mx.evil.example":              provOther,
		"acme-com01c.mail.protection.outlook.com": provMicrosoft,
	}
	for host, want := range cases {
		if got := ProviderForMX(host); got != want {
			t.Errorf("ProviderForMX(%q) = %v, want %v", host, got, want)
		}
	}
}

type fakeMX struct {
	mu      sync.Mutex
	records map[string][]*net.MX
	calls   map[string]int
	err     error
	block   bool
}

func (f *fakeMX) LookupMX(ctx context.Context, domain string) ([]*net.MX, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[domain]++
	block, err, recs := f.block, f.err, f.records[domain]
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return recs, err
}

func (f *fakeMX) count(d string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[d]
}

func TestProviderResolver(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	mx := &fakeMX{records: map[string][]*net.MX{
		"acme.com":   {{Host: "alt1.aspmx.l.google.com.", Pref: 5}, {Host: "aspmx.l.google.com.", Pref: 1}},
		"globex.com": {{Host: "globex-com.mail.protection.outlook.com.", Pref: 0}},
		"initech.io": {{Host: "mx.initech.io.", Pref: 10}},
	}}
	r := NewProviderResolver(ProviderResolverConfig{Resolver: mx, TTL: time.Hour, MaxEntries: 2, Now: clock})
	ctx := context.Background()

	cases := []struct {
		domain string
		want   sgv1.Provider
	}{
		{"acme.com", provGmail},
		{"globex.com", provMicrosoft},
		{"gmail.com", provGmail}, // static list, no lookup
		{"initech.io", provOther},
	}
	for _, c := range cases {
		got, err := r.Provider(ctx, c.domain)
		if err != nil || got != c.want {
			t.Errorf("Provider(%q) = %v, %v; want %v", c.domain, got, err, c.want)
		}
	}
	if mx.count("gmail.com") != 0 {
		t.Error("consumer domain was looked up")
	}
	if r.Len() > 2 {
		t.Errorf("cache holds %d entries, bound is 2", r.Len())
	}
	// Cached within TTL.
	_, _ = r.Provider(ctx, "initech.io")
	if mx.count("initech.io") != 1 {
		t.Errorf("initech.io looked up %d times within TTL", mx.count("initech.io"))
	}
	// Expired after TTL.
	now = now.Add(2 * time.Hour)
	_, _ = r.Provider(ctx, "initech.io")
	if mx.count("initech.io") != 2 {
		t.Errorf("initech.io looked up %d times after TTL", mx.count("initech.io"))
	}
}

func TestProviderResolverFailures(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mx := &fakeMX{err: errors.New("servfail")}
	r := NewProviderResolver(ProviderResolverConfig{Resolver: mx, NegativeTTL: time.Minute, Now: func() time.Time { return now }})
	p, err := r.Provider(context.Background(), "broken.example")
	if err == nil || p != provOther {
		t.Fatalf("Provider = %v, %v; want other and an error", p, err)
	}
	_, _ = r.Provider(context.Background(), "broken.example")
	if mx.count("broken.example") != 1 {
		t.Error("failure not cached for NegativeTTL")
	}

	slow := &fakeMX{block: true}
	r = NewProviderResolver(ProviderResolverConfig{Resolver: slow, Timeout: 20 * time.Millisecond})
	start := time.Now()
	if _, err := r.Provider(context.Background(), "slow.example"); err == nil {
		t.Error("no error from a lookup that timed out")
	}
	if time.Since(start) > time.Second {
		t.Error("timeout not applied")
	}
}

func TestProviderResolverEnrich(t *testing.T) {
	mx := &fakeMX{records: map[string][]*net.MX{"acme.com": {{Host: "aspmx.l.google.com.", Pref: 1}}}}
	r := NewProviderResolver(ProviderResolverConfig{Resolver: MXResolverFunc(mx.LookupMX)})
	ev := &sgv1.Event{Type: sgv1.EventType_EVENT_TYPE_BOUNCED, Recipient: "Ann@Acme.com"}
	if err := r.Enrich(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetProvider() != provGmail || ev.GetRecipientDomain() != "acme.com" {
		t.Errorf("provider %v domain %q", ev.GetProvider(), ev.GetRecipientDomain())
	}
}

func TestAccount(t *testing.T) {
	cases := map[string]string{
		"acme.com":           "acme.com",
		"mail.eu.acme.co.uk": "acme.co.uk",
		"ann@Sales.Acme.com": "acme.com",
		"gmail.com":          "",
		"hotmail.co.uk":      "",
		"yahoo.co.jp":        "",
		"":                   "",
		"localhost":          "localhost",
	}
	for in, want := range cases {
		if got := Account(in); got != want {
			t.Errorf("Account(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsRoleAccount(t *testing.T) {
	cases := map[string]bool{
		"info@acme.com":        true,
		"Support@acme.com":     true,
		"sales+eu@acme.com":    true,
		"sales.team@acme.com":  true,
		"no-reply@acme.com":    true,
		"noreply@acme.com":     true,
		"postmaster@acme.com":  true,
		"hr@acme.com":          true,
		"jobs@acme.com":        true,
		"hello@acme.com":       true,
		"office@acme.com":      true,
		"billing@acme.com":     true,
		"team@acme.com":        true,
		"ann@acme.com":         false,
		"it.smith@acme.com":    false,
		"hi.kim@acme.com":      false,
		"john.sales@acme.com":  false,
		"informatics@acme.com": false,
		"":                     false,
	}
	for in, want := range cases {
		if got := IsRoleAccount(in); got != want {
			t.Errorf("IsRoleAccount(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestReply(t *testing.T) {
	const (
		ooo      = sgv1.ReplyCategory_REPLY_CATEGORY_OOO
		bounce   = sgv1.ReplyCategory_REPLY_CATEGORY_BOUNCE_BACK
		unsub    = sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE
		compl    = sgv1.ReplyCategory_REPLY_CATEGORY_COMPLAINT
		hostile  = sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE
		notFit   = sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT
		notNow   = sgv1.ReplyCategory_REPLY_CATEGORY_NOT_NOW
		referral = sgv1.ReplyCategory_REPLY_CATEGORY_REFERRAL
		interest = sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED
		none     = sgv1.ReplyCategory_REPLY_CATEGORY_UNSPECIFIED
	)
	cases := []struct {
		name, subject, body string
		want                sgv1.ReplyCategory
		risk                sgv1.Risk
	}{
		{"ooo subject", "Automatic reply: Quick question", "Thanks for your email.", ooo, sgv1.Risk_RISK_LOW},
		{"ooo body", "Re: Quick question", "I am currently out of the office with limited access to email and will be back on Monday 12th.", ooo, sgv1.Risk_RISK_LOW},
		{"annual leave", "Re: intro", "Hi, I'm on annual leave until 3 March. For urgent matters contact my colleague.", ooo, sgv1.Risk_RISK_LOW},
		{"bounce back", "Undeliverable: intro", "Delivery has failed to these recipients or groups: ann@acme.com", bounce, sgv1.Risk_RISK_LOW},
		{"left company", "Re: intro", "Ann no longer works at Acme. This mailbox is not monitored.", bounce, sgv1.Risk_RISK_LOW},
		{"unsubscribe", "Re: intro", "Please remove me from your list.", unsub, sgv1.Risk_RISK_MEDIUM},
		{"stop emailing", "Re: intro", "Stop emailing me.", unsub, sgv1.Risk_RISK_MEDIUM},
		{"take me off", "Re: follow up", "take me off whatever list this is, thanks", unsub, sgv1.Risk_RISK_MEDIUM},
		{"spam accusation", "Re: intro", "This is spam. How did you get my email address?", compl, sgv1.Risk_RISK_HIGH},
		{"stop spamming", "Re: intro", "Stop spamming me or I will report you.", compl, sgv1.Risk_RISK_HIGH},
		{"gdpr", "Re: intro", "Under GDPR I request you delete my data.", compl, sgv1.Risk_RISK_HIGH},
		{"lawyer", "Re: intro", "My lawyer will be in touch.", compl, sgv1.Risk_RISK_HIGH},
		{"hostile", "Re: intro", "f*** off", hostile, sgv1.Risk_RISK_HIGH},
		{"hostile word", "Re: intro", "What kind of idiot sends this?", hostile, sgv1.Risk_RISK_HIGH},
		{"not interested", "Re: intro", "Not interested, thanks.", notFit, sgv1.Risk_RISK_MEDIUM},
		{"already use", "Re: intro", "We already use HubSpot for this.", notFit, sgv1.Risk_RISK_MEDIUM},
		{"no need", "Re: intro", "No need for this at our company.", notFit, sgv1.Risk_RISK_MEDIUM},
		// A negative with an explicit time qualifier leaves the door open:
		// not_now, so it neither suppresses nor counts as a negative reply.
		{"not interested right now", "Re: intro", "Not interested right now.", notNow, sgv1.Risk_RISK_LOW},
		{"next quarter", "Re: intro", "Can you reach out next quarter? Budget is frozen.", notNow, sgv1.Risk_RISK_LOW},
		{"circle back", "Re: intro", "Let's circle back in a few months.", notNow, sgv1.Risk_RISK_LOW},
		{"later this year", "Re: intro", "Maybe later this year.", notNow, sgv1.Risk_RISK_LOW},
		{"referral", "Re: intro", "I'm not the right person, you should reach out to Ann Smith, she runs procurement.", referral, sgv1.Risk_RISK_LOW},
		{"cc", "Re: intro", "Cc'ing my colleague Bob who handles this.", referral, sgv1.Risk_RISK_LOW},
		{"interested", "Re: intro", "Sounds interesting, can you send more info?", interest, sgv1.Risk_RISK_LOW},
		{"book a call", "Re: intro", "Happy to chat. Here's my calendar link.", interest, sgv1.Risk_RISK_LOW},
		{"lets talk", "Re: intro", "Yes, let's talk Thursday.", interest, sgv1.Risk_RISK_LOW},
		{"quoted history ignored", "Re: intro", "Thanks!\n\nOn Tue, Mar 3, 2026 at 10:00 AM Bob <bob@send.example> wrote:\n> Book a call here. To unsubscribe click here.", none, sgv1.Risk_RISK_UNSPECIFIED},
		{"quoted lines ignored", "Re: intro", "ok\n> unsubscribe link below", none, sgv1.Risk_RISK_UNSPECIFIED},
		{"re subject ignored", "Re: Interested in a demo?", "Thanks.", none, sgv1.Risk_RISK_UNSPECIFIED},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Reply(c.subject, c.body)
			if v.Category != c.want || v.Risk != c.risk {
				t.Errorf("Reply = %v/%v by %s, want %v/%v", v.Category, v.Risk, v.Rule, c.want, c.risk)
			}
		})
	}
}

func TestEnrich(t *testing.T) {
	ev := &sgv1.Event{
		Type:      sgv1.EventType_EVENT_TYPE_REPLIED,
		Sender:    " <Bob@Send.Example.COM> ",
		Recipient: "Info@Acme.Example.co.uk",
		Reply:     &sgv1.Reply{Text: "Please remove me from your list."},
	}
	Enrich(ev)
	want := &sgv1.Event{
		Type:            sgv1.EventType_EVENT_TYPE_REPLIED,
		Sender:          "bob@send.example.com",
		SendingDomain:   "send.example.com",
		Recipient:       "info@acme.example.co.uk",
		RecipientDomain: "acme.example.co.uk",
		Provider:        provOther,
		Account:         "example.co.uk",
		RoleAccount:     true,
		Reply:           &sgv1.Reply{Text: "Please remove me from your list.", Category: sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE, Risk: sgv1.Risk_RISK_MEDIUM},
	}
	if !proto.Equal(ev, want) {
		t.Errorf("Enrich:\n got %v\nwant %v", ev, want)
	}
	again := proto.CloneOf(ev)
	Enrich(again)
	if !proto.Equal(again, ev) {
		t.Errorf("Enrich not idempotent:\n %v\n %v", again, ev)
	}

	// Given values are kept.
	kept := &sgv1.Event{Recipient: "ann@gmail.com", Provider: provApple, Account: "Acme", RecipientDomain: "GMAIL.com",
		Type: sgv1.EventType_EVENT_TYPE_REPLIED, Reply: &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE}}
	Enrich(kept)
	if kept.GetProvider() != provApple || kept.GetAccount() != "acme" || kept.GetRecipientDomain() != "gmail.com" || kept.GetReply().GetRisk() != sgv1.Risk_RISK_HIGH {
		t.Errorf("Enrich overwrote given values: %v", kept)
	}
	consumer := &sgv1.Event{Recipient: "ann@gmail.com"}
	Enrich(consumer)
	if consumer.GetAccount() != "" || consumer.GetProvider() != provGmail {
		t.Errorf("consumer: %v", consumer)
	}
	Enrich(nil)
}

func BenchmarkReply(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Reply("Re: intro", "Thanks for reaching out. We already use a vendor for this, so not a fit for us right now.\n\nOn Tue, Bob wrote:\n> hello")
	}
}
