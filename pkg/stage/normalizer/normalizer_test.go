package normalizer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/classify"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink records what the stage publishes (the next stage's interface).
type sink struct {
	mu      sync.Mutex
	records []kafka.Record
}

func (s *sink) Produce(_ context.Context, rs ...kafka.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, rs...)
	return nil
}

// msg is a consumed record.
type msg struct {
	value   []byte
	headers map[string][]byte
}

func (m msg) Topic() string             { return topics.Raw }
func (m msg) Partition() int            { return 0 }
func (m msg) Offset() int64             { return 0 }
func (m msg) Key() []byte               { return nil }
func (m msg) Value() []byte             { return m.value }
func (m msg) Time() time.Time           { return time.Time{} }
func (m msg) Header(name string) []byte { return m.headers[name] }

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func envelope(t *testing.T, src sgv1.Source, payload string) msg {
	t.Helper()
	b, err := proto.Marshal(&sgv1.RawEnvelope{EnvelopeId: "env-1", Tenant: "acme", Source: src,
		ReceivedAt: timestamppb.New(testNow), Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return msg{value: b}
}

func newStage(t *testing.T, opts normalize.Options, reg prometheus.Registerer, o ...Option) (*Stage, *sink) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	out := &sink{}
	s, err := New(out, opts, reg, o...)
	if err != nil {
		t.Fatal(err)
	}
	return s, out
}

func decode(t *testing.T, rs []kafka.Record) []*sgv1.Event {
	t.Helper()
	var evs []*sgv1.Event
	for _, r := range rs {
		ev := &sgv1.Event{}
		if err := proto.Unmarshal(r.Value, ev); err != nil {
			t.Fatal(err)
		}
		if r.Topic != topics.Events || string(r.Key) != string(topics.Key(ev.GetTenant(), ev.GetEventId())) {
			t.Errorf("record %s/%q, want %s keyed tenant|event_id", r.Topic, r.Key, topics.Events)
		}
		// The headers name the tenant, the type and the event time, so
		// consumers can skip the record without decoding it.
		if got := string(r.Headers[kafka.HeaderTenant]); got != ev.GetTenant() {
			t.Errorf("tenant header %q, want %q", got, ev.GetTenant())
		}
		want := canonical.TypeWord(ev.GetType()) + " " + strconv.FormatInt(ev.GetOccurredAt().AsTime().UnixMilli(), 10)
		if got := string(r.Headers[kafka.HeaderEvent]); got != want {
			t.Errorf("event header %q, want %q", got, want)
		}
		evs = append(evs, ev)
	}
	return evs
}

const twoDelivered = `[
 {"email":"a@acme-corp.io","timestamp":1795262400,"event":"delivered","sg_event_id":"e1","sg_message_id":"m1"},
 {"email":"b@gmail.com","timestamp":1795262400,"event":"delivered","sg_event_id":"e2","sg_message_id":"m2"}]`

func TestHandle(t *testing.T) {
	tests := []struct {
		name        string
		src         sgv1.Source
		payload     string
		raw         []byte // overrides the envelope
		wantEvents  int
		wantHandler string // "" when the envelope parses
		wantReason  string
	}{
		{name: "good batch", src: sgv1.Source_SOURCE_SENDGRID, payload: twoDelivered, wantEvents: 2},
		{name: "batch with one bad item publishes the good one", src: sgv1.Source_SOURCE_SENDGRID,
			payload:    `[{"email":"a@acme-corp.io","timestamp":1795262400,"event":"delivered","sg_event_id":"e1"},{"email":"b@x.io","timestamp":1795262400,"event":"teleported","sg_event_id":"e2"}]`,
			wantEvents: 1, wantHandler: "sendgrid", wantReason: "1 item(s) rejected"},
		{name: "unparsable payload", src: sgv1.Source_SOURCE_SES, payload: "not json", wantHandler: "ses"},
		{name: "not an envelope", raw: []byte{0xff, 0xff, 0xff}, wantHandler: "envelope", wantReason: "decode raw envelope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, out := newStage(t, normalize.Options{}, nil)
			m := envelope(t, tt.src, tt.payload)
			if tt.raw != nil {
				m = msg{value: tt.raw}
			}
			err := s.Handle(context.Background(), m)
			var pe *kafka.PermanentError
			switch {
			case tt.wantHandler == "" && err != nil:
				t.Fatalf("Handle: %v", err)
			case tt.wantHandler != "" && !errors.As(err, &pe):
				t.Fatalf("Handle = %v, want a permanent error (dead letter)", err)
			case tt.wantHandler != "" && (pe.Handler != tt.wantHandler || !strings.Contains(err.Error(), tt.wantReason)):
				t.Errorf("dead letter handler %q reason %q, want %q containing %q", pe.Handler, err, tt.wantHandler, tt.wantReason)
			}
			if len(out.records) != 0 {
				t.Fatal("published before Flush")
			}
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			evs := decode(t, out.records)
			if len(evs) != tt.wantEvents {
				t.Fatalf("%d events, want %d", len(evs), tt.wantEvents)
			}
			for _, ev := range evs {
				if ev.GetTenant() != "acme" {
					t.Errorf("tenant %q, want the envelope's", ev.GetTenant())
				}
			}
		})
	}
}

// TestEventHeaders: the event header is the type's word and occurred_at in
// unix milliseconds, the word alone without occurred_at, and absent for a
// type this version does not define.
func TestEventHeaders(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123_456_789, time.UTC)
	tests := []struct {
		name string
		ev   *sgv1.Event
		want string // "" = no header
	}{
		{"bounced", &sgv1.Event{Tenant: "acme", Type: sgv1.EventType_EVENT_TYPE_BOUNCED, OccurredAt: timestamppb.New(at)},
			"bounced 1795341600123"},
		{"delivered", &sgv1.Event{Tenant: "acme", Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: timestamppb.New(at)},
			"delivered 1795341600123"},
		{"postmaster stats", &sgv1.Event{Tenant: "acme", Type: sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS, OccurredAt: timestamppb.New(at)},
			"postmaster_stats 1795341600123"},
		{"before the epoch", &sgv1.Event{Tenant: "acme", Type: sgv1.EventType_EVENT_TYPE_SENT, OccurredAt: timestamppb.New(time.UnixMilli(-1500))},
			"sent -1500"},
		{"no occurred_at", &sgv1.Event{Tenant: "acme", Type: sgv1.EventType_EVENT_TYPE_OPENED}, "opened"},
		{"undefined type", &sgv1.Event{Tenant: "acme", Type: 99, OccurredAt: timestamppb.New(at)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := EventHeaders(tt.ev)
			if got := string(h[kafka.HeaderTenant]); got != "acme" {
				t.Errorf("tenant header %q, want acme", got)
			}
			v, ok := h[kafka.HeaderEvent]
			if tt.want == "" && ok {
				t.Errorf("event header %q, want none", v)
			}
			if tt.want != "" && string(v) != tt.want {
				t.Errorf("event header %q, want %q", v, tt.want)
			}
		})
	}
}

// TestRedriveAfterFix: an envelope dead-lettered by a stage with a bug (here
// a limit too low) parses once re-driven to the fixed stage, and re-driving
// it twice publishes the same event ids (so downstream dedup counts once).
func TestRedriveAfterFix(t *testing.T) {
	reg := prometheus.NewRegistry()
	broken, out := newStage(t, normalize.Options{MaxEvents: 1}, nil)
	m := envelope(t, sgv1.Source_SOURCE_SENDGRID, twoDelivered)
	if err := broken.Handle(context.Background(), m); !kafka.IsPermanent(err) || !strings.Contains(err.Error(), "more than 1 events") {
		t.Fatalf("broken stage: %v, want a dead letter", err)
	}
	if err := broken.Flush(context.Background()); err != nil || len(out.records) != 0 {
		t.Fatalf("broken stage published %d records (%v)", len(out.records), err)
	}

	fixed, out := newStage(t, normalize.Options{}, reg)
	redriven := msg{value: m.value, headers: map[string][]byte{HeaderRedrivenFrom: []byte("sg.dlq.v1/0@7")}}
	for range 2 {
		if err := fixed.Handle(context.Background(), redriven); err != nil {
			t.Fatalf("fixed stage: %v", err)
		}
	}
	if err := fixed.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := decode(t, out.records)
	ids := map[string]int{}
	for _, ev := range evs {
		ids[ev.GetEventId()]++
	}
	if len(evs) != 4 || len(ids) != 2 {
		t.Fatalf("two re-drives: %d events with %d distinct ids (%v), want 4 with 2", len(evs), len(ids), ids)
	}
	if got := testutil.ToFloat64(fixed.redriven); got != 2 {
		t.Errorf("redriven counter = %v, want 2", got)
	}
}

// fakeMX answers from a map and counts lookups per domain.
type fakeMX struct {
	mu    sync.Mutex
	hosts map[string]string
	calls map[string]int
}

func (f *fakeMX) LookupMX(_ context.Context, domain string) ([]*net.MX, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[domain]++
	h, ok := f.hosts[domain]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: domain, IsNotFound: true}
	}
	return []*net.MX{{Host: "backup.example.net.", Pref: 20}, {Host: h, Pref: 10}}, nil
}

func TestMXEnrichment(t *testing.T) {
	payload := `[
 {"email":"a@workspace.io","timestamp":1795262400,"event":"delivered","sg_event_id":"e1"},
 {"email":"b@workspace.io","timestamp":1795262400,"event":"delivered","sg_event_id":"e2"},
 {"email":"c@m365.example","timestamp":1795262400,"event":"delivered","sg_event_id":"e3"},
 {"email":"d@selfhosted.example","timestamp":1795262400,"event":"delivered","sg_event_id":"e4"},
 {"email":"e@nxdomain.example","timestamp":1795262400,"event":"delivered","sg_event_id":"e5"},
 {"email":"f@gmail.com","timestamp":1795262400,"event":"delivered","sg_event_id":"e6"}]`
	want := map[string]sgv1.Provider{
		"a@workspace.io":       sgv1.Provider_PROVIDER_GMAIL,
		"b@workspace.io":       sgv1.Provider_PROVIDER_GMAIL,
		"c@m365.example":       sgv1.Provider_PROVIDER_MICROSOFT,
		"d@selfhosted.example": sgv1.Provider_PROVIDER_OTHER,
		"e@nxdomain.example":   sgv1.Provider_PROVIDER_OTHER, // lookup failed: stays other
		"f@gmail.com":          sgv1.Provider_PROVIDER_GMAIL, // static list, no lookup
	}
	mx := &fakeMX{calls: map[string]int{}, hosts: map[string]string{
		"workspace.io":        "aspmx.l.google.com.",
		"m365.example":        "m365-example.mail.protection.outlook.com.",
		"selfhosted.example":  "mx.selfhosted.example.",
		"never-asked.example": "aspmx.l.google.com.",
	}}
	resolver := classify.NewProviderResolver(classify.ProviderResolverConfig{Resolver: mx, Now: func() time.Time { return testNow }})
	run := func(o ...Option) (*Stage, []*sgv1.Event) {
		s, out := newStage(t, normalize.Options{}, nil, o...)
		err := s.Handle(context.Background(), envelope(t, sgv1.Source_SOURCE_SENDGRID, payload))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s, decode(t, out.records)
	}
	_, plain := run()
	s, enriched := run(WithProviderResolver(resolver))
	if len(enriched) != len(want) || len(plain) != len(want) {
		t.Fatalf("%d/%d events, want %d", len(plain), len(enriched), len(want))
	}
	for i, ev := range enriched {
		t.Run(ev.GetRecipient(), func(t *testing.T) {
			if ev.GetProvider() != want[ev.GetRecipient()] {
				t.Errorf("provider %v, want %v", ev.GetProvider(), want[ev.GetRecipient()])
			}
			if ev.GetEventId() != plain[i].GetEventId() {
				t.Errorf("event id %q changed by enrichment (was %q)", ev.GetEventId(), plain[i].GetEventId())
			}
			if strings.HasSuffix(ev.GetRecipient(), "@gmail.com") {
				return
			}
			if p := plain[i].GetProvider(); p != sgv1.Provider_PROVIDER_OTHER {
				t.Errorf("without MX lookups provider = %v, want other", p)
			}
		})
	}
	wantCalls := map[string]int{"workspace.io": 1, "m365.example": 1, "selfhosted.example": 1, "nxdomain.example": 1}
	for d, n := range wantCalls {
		if mx.calls[d] != n {
			t.Errorf("lookups of %s = %d, want %d (cached after the first)", d, mx.calls[d], n)
		}
	}
	if len(mx.calls) != len(wantCalls) {
		t.Errorf("lookups %v: consumer domains must not be looked up", mx.calls)
	}
	for result, n := range map[string]float64{"gmail": 2, "microsoft": 1, "other": 1, "error": 1} {
		if got := testutil.ToFloat64(s.lookups.WithLabelValues(result)); got != n {
			t.Errorf("enrichments{result=%s} = %v, want %v", result, got, n)
		}
	}
}

// TestLargeEnvelopeEncodesEachEventApart: the events of one envelope are
// encoded into shared buffers; each record's value is exactly its event's
// encoding (what proto.Marshal writes), with no room to grow into its
// neighbour's bytes, across buffer boundaries.
func TestLargeEnvelopeEncodesEachEventApart(t *testing.T) {
	const n = 3000 // about 300 KB of encodings: several 64 KB buffers
	var payload strings.Builder
	payload.WriteByte('[')
	for i := range n {
		if i > 0 {
			payload.WriteByte(',')
		}
		fmt.Fprintf(&payload, `{"email":"r%d@acme-corp.io","timestamp":1795262400,"event":"delivered","sg_event_id":"e%d","sg_message_id":"m%d"}`, i, i, i)
	}
	payload.WriteByte(']')
	s, out := newStage(t, normalize.Options{}, nil)
	if err := s.Handle(context.Background(), envelope(t, sgv1.Source_SOURCE_SENDGRID, payload.String())); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := decode(t, out.records)
	if len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	ids := map[string]bool{}
	for i, r := range out.records {
		want, err := proto.Marshal(evs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Value, want) || cap(r.Value) != len(r.Value) {
			t.Fatalf("record %d: value of %d bytes (cap %d), want its event's %d-byte encoding", i, len(r.Value), cap(r.Value), len(want))
		}
		ids[evs[i].GetEventId()] = true
	}
	if len(ids) != n {
		t.Fatalf("%d distinct events, want %d", len(ids), n)
	}
}

// gatedSink is a publisher whose writes of urgent events (complaints) fail
// while failUrgent is positive, counting down, and record the rest.
type gatedSink struct {
	mu         sync.Mutex
	failUrgent int
	calls      [][]string // event types of each acknowledged write
}

func (g *gatedSink) Produce(_ context.Context, rs ...kafka.Record) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var types []string
	for _, r := range rs {
		typ, _, _ := strings.Cut(string(r.Headers[kafka.HeaderEvent]), " ")
		types = append(types, typ)
	}
	if g.failUrgent > 0 && slices.Contains(types, "complained") {
		g.failUrgent--
		return errors.New("broker unavailable")
	}
	g.calls = append(g.calls, types)
	return nil
}

func (g *gatedSink) written() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

// TestUrgentEventsDoNotWaitForTheFlush: Handle starts writing an
// envelope's complaint at once, apart from its deliveries, which wait for
// the flush; the flush returns only once the complaint is acknowledged, and
// writes it again when its first write failed, so each event is written
// once it is acknowledged, never lost.
func TestUrgentEventsDoNotWaitForTheFlush(t *testing.T) {
	const batch = `[
 {"email":"a@acme-corp.io","timestamp":1795262400,"event":"delivered","sg_event_id":"e1","sg_message_id":"m1"},
 {"email":"b@gmail.com","timestamp":1795262400,"event":"spamreport","sg_event_id":"e2","sg_message_id":"m2"},
 {"email":"c@gmail.com","timestamp":1795262400,"event":"delivered","sg_event_id":"e3","sg_message_id":"m3"}]`
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		failUrgent int
		want       [][]string
	}{
		{name: "written at once", want: [][]string{{"complained"}, {"delivered", "delivered"}}},
		{name: "failed write landed by the flush", failUrgent: 1, want: [][]string{{"complained"}, {"delivered", "delivered"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &gatedSink{failUrgent: tc.failUrgent}
			s, err := New(out, normalize.Options{Now: func() time.Time { return testNow }}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Handle(ctx, envelope(t, sgv1.Source_SOURCE_SENDGRID, batch)); err != nil {
				t.Fatal(err)
			}
			if tc.failUrgent == 0 {
				// The complaint is written before any flush.
				for deadline := time.Now().Add(5 * time.Second); len(out.written()) == 0; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the complaint was not written before the flush")
					}
				}
			}
			flush, err := s.Detach(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := out.written(); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("writes %v, want %v", got, tc.want)
			}
			// A second flush has nothing left to write.
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := out.written(); len(got) != len(tc.want) {
				t.Fatalf("after another flush: writes %v, want %v", got, tc.want)
			}
		})
	}
}
