package loadgen

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/classify"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func generate(t *testing.T, cfg Config, n int) []*sgv1.Event {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*sgv1.Event, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

func ndjson(t *testing.T, evs []*sgv1.Event) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range evs {
		line, err := canonical.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal %s: %v", ev.GetEventId(), err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestSameSeedSameEvents(t *testing.T) {
	cfg := Config{Seed: 42, Start: t0, Tenants: []string{"acme", "globex", "initech"}}
	a := ndjson(t, generate(t, cfg, 20000))
	b := ndjson(t, generate(t, cfg, 20000))
	if !bytes.Equal(a, b) {
		t.Fatal("two generators with the same config produced different events")
	}
	cfg.Seed = 43
	if c := ndjson(t, generate(t, cfg, 20000)); bytes.Equal(a, c) {
		t.Fatal("seeds 42 and 43 produced the same events")
	}
}

func TestEventsAreValidOrderedAndUnique(t *testing.T) {
	evs := generate(t, Config{Seed: 1, Start: t0, Tenants: []string{"a", "b"}, MessagesPerSecond: 5000}, 50000)
	ids := map[string]bool{}
	var last time.Time
	for i, ev := range evs {
		if err := canonical.ValidateAt(ev, t0.Add(time.Hour)); err != nil {
			t.Fatalf("event %d invalid: %v", i, err)
		}
		line, err := canonical.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := canonical.Decode(line)
		if err != nil {
			t.Fatalf("event %d does not decode: %v\n%s", i, err, line)
		}
		if back.GetEventId() != ev.GetEventId() || back.GetType() != ev.GetType() {
			t.Fatalf("round trip changed event %d", i)
		}
		if ids[ev.GetEventId()] {
			t.Fatalf("duplicate id %s", ev.GetEventId())
		}
		ids[ev.GetEventId()] = true
		at := ev.GetOccurredAt().AsTime()
		if at.Before(last) {
			t.Fatalf("event %d at %s before the previous one at %s", i, at, last)
		}
		last = at
	}
}

// TestLifecycle checks each message's events make one story: one send, then
// delivered or bounced (never both), engagement only after delivery, a
// click only after an open.
func TestLifecycle(t *testing.T) {
	evs := generate(t, Config{Seed: 7, Start: t0, Rates: Rates{Bounce: 0.1, HardShare: 0.5, Defer: 0.1, Open: 0.5, Click: 0.3, Reply: 0.1, Unsubscribe: 0.05, Complaint: 0.05}}, 100000)
	type story struct{ types map[sgv1.EventType]int }
	stories := map[string]*story{}
	for _, ev := range evs {
		s := stories[ev.GetMessageId()]
		if s == nil {
			s = &story{types: map[sgv1.EventType]int{}}
			stories[ev.GetMessageId()] = s
		}
		if ev.GetType() != sgv1.EventType_EVENT_TYPE_SENT && s.types[sgv1.EventType_EVENT_TYPE_SENT] == 0 {
			t.Fatalf("%s before its message was sent", ev.GetType())
		}
		switch ev.GetType() {
		case sgv1.EventType_EVENT_TYPE_OPENED, sgv1.EventType_EVENT_TYPE_REPLIED, sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, sgv1.EventType_EVENT_TYPE_COMPLAINED:
			if s.types[sgv1.EventType_EVENT_TYPE_DELIVERED] == 0 {
				t.Fatalf("%s of an undelivered message", ev.GetType())
			}
		case sgv1.EventType_EVENT_TYPE_CLICKED:
			if s.types[sgv1.EventType_EVENT_TYPE_OPENED] == 0 {
				t.Fatal("click before open")
			}
		case sgv1.EventType_EVENT_TYPE_BOUNCED, sgv1.EventType_EVENT_TYPE_DEFERRED:
			b := ev.GetBounce()
			if b.GetSmtpCode() < 400 || b.GetEnhancedCode() == "" || b.GetDiagnostic() == "" {
				t.Fatalf("bounce without codes: %v", b)
			}
			if ev.GetType() == sgv1.EventType_EVENT_TYPE_BOUNCED && b.GetClass() == sgv1.BounceClass_BOUNCE_CLASS_HARD && b.GetSmtpCode() < 500 {
				t.Fatalf("hard bounce with a 4xx code: %v", b)
			}
		}
		s.types[ev.GetType()]++
	}
	for id, s := range stories {
		if s.types[sgv1.EventType_EVENT_TYPE_SENT] != 1 || s.types[sgv1.EventType_EVENT_TYPE_DELIVERED]+s.types[sgv1.EventType_EVENT_TYPE_BOUNCED] > 1 {
			t.Fatalf("message %s: %v", id, s.types)
		}
	}
}

func TestDistributions(t *testing.T) {
	rates := Rates{Bounce: 0.04, HardShare: 0.5, Defer: 0.05, Open: 0.3, Click: 0.2, Reply: 0.02, Unsubscribe: 0.01, Complaint: 0.002}
	const maxDelay = 2 * time.Second
	evs := generate(t, Config{Seed: 3, Start: t0, Domains: 50, Rates: rates, MessagesPerSecond: 10000, MaxDelay: maxDelay}, 250000)
	// Only messages whose whole lifecycle is in the sample count.
	cutoff := evs[len(evs)-1].GetOccurredAt().AsTime().Add(-maxDelay - time.Millisecond)
	complete := map[string]bool{}
	count := map[sgv1.EventType]float64{}
	prov := map[sgv1.Provider]float64{}
	domains := map[string]float64{}
	var hard float64
	for _, ev := range evs {
		if ev.GetType() == sgv1.EventType_EVENT_TYPE_SENT {
			complete[ev.GetMessageId()] = ev.GetOccurredAt().AsTime().Before(cutoff)
		}
		if !complete[ev.GetMessageId()] {
			continue
		}
		count[ev.GetType()]++
		if ev.GetType() == sgv1.EventType_EVENT_TYPE_SENT {
			p := classify.Provider(ev.GetRecipient()[strings.IndexByte(ev.GetRecipient(), '@')+1:])
			prov[p]++
			domains[ev.GetSender()[strings.IndexByte(ev.GetSender(), '@')+1:]]++
		}
		if ev.GetBounce().GetClass() == sgv1.BounceClass_BOUNCE_CLASS_HARD && ev.GetType() == sgv1.EventType_EVENT_TYPE_BOUNCED {
			hard++
		}
	}
	sent, delivered := count[sgv1.EventType_EVENT_TYPE_SENT], count[sgv1.EventType_EVENT_TYPE_DELIVERED]
	near := func(name string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.4f, want %.4f ± %.4f", name, got, want, tol)
		}
	}
	near("bounce rate", count[sgv1.EventType_EVENT_TYPE_BOUNCED]/sent, rates.Bounce, 0.005)
	near("hard share", hard/count[sgv1.EventType_EVENT_TYPE_BOUNCED], rates.HardShare, 0.04)
	near("open rate", count[sgv1.EventType_EVENT_TYPE_OPENED]/delivered, rates.Open, 0.01)
	near("click of opens", count[sgv1.EventType_EVENT_TYPE_CLICKED]/count[sgv1.EventType_EVENT_TYPE_OPENED], rates.Click, 0.01)
	near("unsubscribe rate", count[sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED]/delivered, rates.Unsubscribe, 0.002)
	near("complaint rate", count[sgv1.EventType_EVENT_TYPE_COMPLAINED]/delivered, rates.Complaint, 0.0007)
	for _, p := range DefaultProviders {
		near("share of "+p.Provider.String(), prov[p.Provider]/sent, p.Share, 0.01)
	}
	// Zipf: P(rank k) ∝ (1+k)^-1.2 over 50 domains.
	var h float64
	for k := range 50 {
		h += math.Pow(float64(1+k), -1.2)
	}
	for _, k := range []int{0, 1, 9} {
		near("share of domain rank "+Domain("default", k), domains[Domain("default", k)]/sent, math.Pow(float64(1+k), -1.2)/h, 0.01)
	}
}

func TestAnomalyStartsAtItsInstant(t *testing.T) {
	spikeAt := t0.Add(15 * time.Second)
	target := Domain("default", 0)
	evs := generate(t, Config{Seed: 9, Start: t0, MessagesPerSecond: 5000, MaxDelay: time.Second,
		Anomalies: []Anomaly{{Level: "domain", Target: target, Start: spikeAt, Rates: Rates{Complaint: 0.05}}}}, 300000)
	type tally struct{ delivered, complaints float64 }
	var before, after, others tally
	sentAt := map[string]time.Time{}
	for _, ev := range evs {
		switch ev.GetType() {
		case sgv1.EventType_EVENT_TYPE_SENT:
			sentAt[ev.GetMessageId()] = ev.GetOccurredAt().AsTime()
			continue
		case sgv1.EventType_EVENT_TYPE_DELIVERED, sgv1.EventType_EVENT_TYPE_COMPLAINED:
		default:
			continue
		}
		tl := &others
		if strings.HasSuffix(ev.GetSender(), "@"+target) {
			tl = &before
			if !sentAt[ev.GetMessageId()].Before(spikeAt) {
				tl = &after
			}
		}
		if ev.GetType() == sgv1.EventType_EVENT_TYPE_DELIVERED {
			tl.delivered++
		} else {
			tl.complaints++
		}
	}
	rate := func(x tally) float64 { return x.complaints / x.delivered }
	if before.delivered < 5000 || after.delivered < 5000 {
		t.Fatalf("too few deliveries to judge: before %v after %v", before.delivered, after.delivered)
	}
	if r := rate(before); r > 0.002 {
		t.Errorf("complaint rate on %s before the spike = %.4f, want the base 0.0005", target, r)
	}
	if r := rate(after); math.Abs(r-0.05) > 0.008 {
		t.Errorf("complaint rate on %s after the spike = %.4f, want 0.05", target, r)
	}
	if r := rate(others); r > 0.002 {
		t.Errorf("complaint rate elsewhere = %.4f, want the base 0.0005", r)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"zipf exponent", Config{ZipfS: 1}, "ZipfS"},
		{"rate above 1", Config{Rates: Rates{Bounce: 1.5}}, "outside"},
		{"anomaly level", Config{Anomalies: []Anomaly{{Level: "galaxy"}}}, "anomaly level"},
		{"provider shares", Config{Providers: []ProviderShare{{sgv1.Provider_PROVIDER_GMAIL, 0}}}, "sum to 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDomainSpike(t *testing.T) {
	w, s := DomainSpike("acme", "spike.example", t0, 600, 6, "x")
	if len(w) != 1200 || len(s) != 6 {
		t.Fatalf("warm-up %d, spike %d; want 1200 and 6", len(w), len(s))
	}
	ids := map[string]bool{}
	for _, ev := range append(w, s...) {
		if err := canonical.ValidateAt(ev, t0); err != nil {
			t.Fatal(err)
		}
		if ids[ev.GetEventId()] || ev.GetTenant() != "acme" || !strings.HasSuffix(ev.GetSender(), "@spike.example") {
			t.Fatalf("bad spike event %v", ev)
		}
		ids[ev.GetEventId()] = true
	}
}
