package window

import (
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// t0 is a Tuesday, 00:30 UTC: half an hour into a calendar day, so the
// calendar-day windows differ from the rolling ones.
var t0 = time.Date(2026, 3, 10, 0, 30, 0, 0, time.UTC)

const (
	typSent        = sgv1.EventType_EVENT_TYPE_SENT
	typDelivered   = sgv1.EventType_EVENT_TYPE_DELIVERED
	typDeferred    = sgv1.EventType_EVENT_TYPE_DEFERRED
	typBounced     = sgv1.EventType_EVENT_TYPE_BOUNCED
	typComplained  = sgv1.EventType_EVENT_TYPE_COMPLAINED
	typUnsub       = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
	typOpened      = sgv1.EventType_EVENT_TYPE_OPENED
	typClicked     = sgv1.EventType_EVENT_TYPE_CLICKED
	typReplied     = sgv1.EventType_EVENT_TYPE_REPLIED
	typPlacement   = sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST
	typAuth        = sgv1.EventType_EVENT_TYPE_AUTH_CHECK
	typPostmaster  = sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS
	typRejected    = sgv1.EventType_EVENT_TYPE_REJECTED
	gmail          = sgv1.Provider_PROVIDER_GMAIL
	microsoft      = sgv1.Provider_PROVIDER_MICROSOFT
	yahoo          = sgv1.Provider_PROVIDER_YAHOO
	levelTenant    = sgv1.ScopeLevel_SCOPE_LEVEL_TENANT
	levelDomain    = sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN
	levelDomainPrv = sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER
)

var (
	tenantKey = ScopeKey{Tenant: "acme", Level: levelTenant, Target: "acme"}
	domainKey = ScopeKey{Tenant: "acme", Level: levelDomain, Target: "ex.com"}
)

var idSeq int

// ev builds an event of tenant acme from ann@ex.com to a gmail recipient in
// campaign c1; opts adjust it.
func ev(typ sgv1.EventType, at time.Time, opts ...func(*sgv1.Event)) *sgv1.Event {
	idSeq++
	e := &sgv1.Event{
		EventId:       fmt.Sprintf("e%d", idSeq),
		Tenant:        "acme",
		Type:          typ,
		OccurredAt:    timestamppb.New(at),
		Sender:        "ann@ex.com",
		SendingDomain: "ex.com",
		Provider:      gmail,
		Campaign:      "c1",
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func withProvider(p sgv1.Provider) func(*sgv1.Event) { return func(e *sgv1.Event) { e.Provider = p } }
func withID(id string) func(*sgv1.Event)             { return func(e *sgv1.Event) { e.EventId = id } }
func withBounce(c sgv1.BounceClass, code int32) func(*sgv1.Event) {
	return func(e *sgv1.Event) { e.Bounce = &sgv1.Bounce{Class: c, SmtpCode: code} }
}

func withReply(c sgv1.ReplyCategory) func(*sgv1.Event) {
	return func(e *sgv1.Event) { e.Reply = &sgv1.Reply{Category: c} }
}

func withPlacement(test string, p sgv1.Provider, f sgv1.PlacementFolder) func(*sgv1.Event) {
	return func(e *sgv1.Event) { e.Placement = &sgv1.Placement{TestId: test, Provider: p, Folder: f} }
}

func withAuth(a *sgv1.Auth) func(*sgv1.Event) { return func(e *sgv1.Event) { e.Auth = a } }

func withPostmaster(spam float64, rep sgv1.DomainReputation) func(*sgv1.Event) {
	return func(e *sgv1.Event) {
		e.Postmaster = &sgv1.Postmaster{SpamRate: spam, DomainReputation: rep, DeliveryErrorRate: spam / 2}
	}
}

// newAgg returns an aggregator whose clock stands at now.
func newAgg(now time.Time, lateness time.Duration) *Aggregator {
	return New(Config{Lateness: lateness, Now: func() time.Time { return now }})
}

func mustApply(t testing.TB, a *Aggregator, evs ...*sgv1.Event) {
	t.Helper()
	for _, e := range evs {
		if _, err := a.Apply(e); err != nil {
			t.Fatalf("apply %s %s at %s: %v", e.GetEventId(), e.GetType(), e.GetOccurredAt().AsTime(), err)
		}
	}
}

func metric(t testing.TB, s *sgv1.WindowSnapshot, name string) float64 {
	t.Helper()
	if s == nil {
		t.Fatalf("nil snapshot")
	}
	v, ok := s.GetMetrics()[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	return v
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func wantMetrics(t *testing.T, s *sgv1.WindowSnapshot, want map[string]float64) {
	t.Helper()
	for name, w := range want {
		if got := metric(t, s, name); !near(got, w) {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
}

func windowOf(s *sgv1.WindowSnapshot, name string) *sgv1.WindowCounts {
	for _, w := range s.GetWindows() {
		if w.GetWindow() == name {
			return w
		}
	}
	return nil
}
