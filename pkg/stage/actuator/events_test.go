package actuator_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/stage/actuator/actuatortest"
	"github.com/sendguard/sendguard/pkg/stage/normalizer"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// recorder is a Publisher that keeps what it is given.
type recorder struct{ records []kafka.Record }

func (r *recorder) Produce(_ context.Context, rs ...kafka.Record) error {
	r.records = append(r.records, rs...)
	return nil
}

// eventsStage is a stage on a clock at t0 publishing to a recorder, with
// its metrics on reg.
func eventsStage(t *testing.T, mod func(*enforce.Config)) (*actuator.Stage, *recorder, *prometheus.Registry) {
	t.Helper()
	cfg := enforce.DefaultConfig()
	cfg.Clock = func() time.Time { return t0 }
	if mod != nil {
		mod(&cfg)
	}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	s, err := actuator.New(enforce.New(cfg), rec, nil, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	s.SetClock(cfg.Clock)
	return s, rec, reg
}

// eventsFreshness reads sendguard_actuator_newest_event_time_seconds{input="events"}.
func eventsFreshness(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sendguard_actuator_newest_event_time_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "input" && lp.GetValue() == "events" {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatal("events freshness gauge not exposed")
	return 0
}

// record is ev as the normalizer writes it (headers from
// normalizer.EventHeaders), or, with headers false, as written before the
// headers existed.
func record(t *testing.T, ev *sgv1.Event, headers bool) msg {
	t.Helper()
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := msg{value: b}
	if headers {
		m.headers = normalizer.EventHeaders(ev)
	}
	return m
}

func suppressed(s *actuator.Stage, tenant, rcpt string) bool {
	r := s.State().Check(tenant, &sgv1.CheckRequest{Sender: "ann@acme.io", Recipient: rcpt, DryRun: true}, t0)
	return r.GetVerdict() == sgv1.Verdict_VERDICT_DENY
}

// publishedSuppressions are the suppress commands flushed to the control
// topic, by id.
func publishedSuppressions(t *testing.T, rec *recorder) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range rec.records {
		if r.Topic != topics.Control {
			continue
		}
		c := &sgv1.ControlCommand{}
		if err := proto.Unmarshal(r.Value, c); err != nil {
			t.Fatal(err)
		}
		if c.GetAction() == sgv1.Action_ACTION_SUPPRESS {
			out[c.GetCommandId()] = true
		}
	}
	return out
}

// TestEventsHandlerSkipsWithoutDecoding: a record whose type header says
// it cannot enforce is not decoded (an undecodable value is not
// dead-lettered) and still moves the freshness gauge from its time header;
// without the type header, or with a word this version does not know, the
// same value is decoded and dead-lettered as before.
func TestEventsHandlerSkipsWithoutDecoding(t *testing.T) {
	garbage := []byte{0xff, 0xff, 0xff, 0xff}
	at := t0.Add(-90 * time.Second)
	ms := " " + strconv.FormatInt(at.UnixMilli(), 10)
	dayAhead := " " + strconv.FormatInt(t0.Add(24*time.Hour).UnixMilli(), 10)
	hdr := func(v string) map[string][]byte { return map[string][]byte{kafka.HeaderEvent: []byte(v)} }
	tests := []struct {
		name       string
		headers    map[string][]byte
		wantDecode bool    // the garbage is decoded: a permanent error
		wantFresh  float64 // the events gauge afterwards
	}{
		{"delivered with time: skipped", hdr("delivered" + ms), false, float64(at.Unix())},
		{"sent with time: skipped", hdr("sent" + ms), false, float64(at.Unix())},
		{"opened without time: skipped, gauge unmoved", hdr("opened"), false, 0},
		{"clicked with a bad time: skipped, gauge unmoved", hdr("clicked soon"), false, 0},
		{"deferred with an empty time: skipped, gauge unmoved", hdr("deferred "), false, 0},
		{"rejected a day ahead: skipped, gauge unmoved", hdr("rejected" + dayAhead), false, 0},
		{"no headers: decoded", nil, true, 0},
		{"tenant header only: decoded", map[string][]byte{kafka.HeaderTenant: []byte("default")}, true, 0},
		{"unknown type word: decoded", hdr("teleported" + ms), true, 0},
		{"protobuf name instead of the word: decoded", hdr("EVENT_TYPE_DELIVERED" + ms), true, 0},
		{"empty header: decoded", hdr(""), true, 0},
		{"time only: decoded", hdr(ms), true, 0},
		{"enforcing type: decoded", hdr("complained" + ms), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, reg := eventsStage(t, nil)
			err := s.EventsHandler().Handle(context.Background(), msg{value: garbage, headers: tt.headers})
			if tt.wantDecode && !kafka.IsPermanent(err) {
				t.Fatalf("Handle = %v, want a permanent decode error (dead letter)", err)
			}
			if !tt.wantDecode && err != nil {
				t.Fatalf("Handle = %v, want the record skipped without decoding", err)
			}
			if got := eventsFreshness(t, reg); got != tt.wantFresh {
				t.Errorf("events freshness = %v, want %v", got, tt.wantFresh)
			}
		})
	}
}

// TestEventsHandlerEnforces: hard bounces, complaints, unsubscribes and
// do-not-contact replies suppress with the normalizer's headers and without
// any header (records written before them); with the headers, a delivered
// event is skipped and an undecodable record of an enforcing type still
// dead-letters.
func TestEventsHandlerEnforces(t *testing.T) {
	at := timestamppb.New(t0.Add(-time.Minute))
	events := []struct {
		ev      *sgv1.Event
		wantIDs []string
	}{
		{&sgv1.Event{EventId: "hb", Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_BOUNCED, OccurredAt: at,
			Sender: "ann@acme.io", Recipient: "gone@example.com",
			Bounce: &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, Category: sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX, SmtpCode: 550}},
			[]string{"ev:hb:suppress:recipient:gone@example.com"}},
		{&sgv1.Event{EventId: "cp", Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_COMPLAINED, OccurredAt: at,
			Sender: "ann@acme.io", Recipient: "angry@bigco.com", Account: "bigco.com",
			Complaint: &sgv1.Complaint{FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE}},
			[]string{"ev:cp:suppress:recipient:angry@bigco.com", "ev:cp:suppress:account:bigco.com"}},
		{&sgv1.Event{EventId: "un", Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, OccurredAt: at,
			Sender: "ann@acme.io", Recipient: "bye@example.org"},
			[]string{"ev:un:suppress:recipient:bye@example.org"}},
		{&sgv1.Event{EventId: "rp", Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_REPLIED, OccurredAt: at,
			Sender: "ann@acme.io", Recipient: "stop@example.net", Reply: &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE}},
			[]string{"ev:rp:suppress:recipient:stop@example.net"}},
		{&sgv1.Event{EventId: "dl", Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: at,
			Sender: "ann@acme.io", Recipient: "fine@example.com"}, nil},
	}
	for _, headers := range []bool{true, false} {
		name := "normalizer headers"
		if !headers {
			name = "no headers"
		}
		t.Run(name, func(t *testing.T) {
			s, rec, reg := eventsStage(t, nil)
			h := s.EventsHandler()
			for _, e := range events {
				if err := h.Handle(context.Background(), record(t, e.ev, headers)); err != nil {
					t.Fatalf("Handle(%s): %v", e.ev.GetEventId(), err)
				}
			}
			if err := h.(kafka.Flusher).Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := publishedSuppressions(t, rec)
			for _, e := range events {
				for _, id := range e.wantIDs {
					if !got[id] {
						t.Errorf("suppression %s not published (got %v)", id, got)
					}
				}
				if wantDeny := len(e.wantIDs) > 0; suppressed(s, "default", e.ev.GetRecipient()) != wantDeny {
					t.Errorf("%s: recipient %s suppressed = %v, want %v", e.ev.GetEventId(), e.ev.GetRecipient(), !wantDeny, wantDeny)
				}
			}
			if len(got) != 5 {
				t.Errorf("published suppressions %v, want the 5 expected", got)
			}
			if want := float64(t0.Add(-time.Minute).Unix()); eventsFreshness(t, reg) != want {
				t.Errorf("events freshness = %v, want %v", eventsFreshness(t, reg), want)
			}
		})
	}
}

// TestEventsHandlerTrustsTheTypeHeader documents a producer bug's effect: a
// complaint whose type header says "delivered" is skipped, so it suppresses
// nobody (windows and rules, which decode every event, still count it). A
// producer must set the headers with normalizer.EventHeaders or not at all.
func TestEventsHandlerTrustsTheTypeHeader(t *testing.T) {
	s, rec, reg := eventsStage(t, nil)
	complaint := &sgv1.Event{EventId: "cp", Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_COMPLAINED,
		OccurredAt: timestamppb.New(t0.Add(-time.Minute)), Sender: "ann@acme.io", Recipient: "angry@bigco.com",
		Complaint: &sgv1.Complaint{FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE}}
	m := record(t, complaint, true)
	m.headers[kafka.HeaderEvent] = []byte("delivered " + strconv.FormatInt(t0.Add(-time.Minute).UnixMilli(), 10))
	h := s.EventsHandler()
	if err := h.Handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := h.(kafka.Flusher).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if suppressed(s, "default", "angry@bigco.com") || len(rec.records) != 0 {
		t.Errorf("a complaint labelled delivered was enforced (records %d); the header is trusted", len(rec.records))
	}
	if want := float64(t0.Add(-time.Minute).Unix()); eventsFreshness(t, reg) != want {
		t.Errorf("events freshness = %v, want %v from the time header", eventsFreshness(t, reg), want)
	}
}

// TestEventsHandlerRoleAccounts: with role-account suppression on, any
// event can suppress, so records are decoded whatever their type header.
func TestEventsHandlerRoleAccounts(t *testing.T) {
	s, _, _ := eventsStage(t, func(c *enforce.Config) { c.SuppressRoleAccounts = true })
	ev := &sgv1.Event{EventId: "dl", Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_DELIVERED,
		OccurredAt: timestamppb.New(t0.Add(-time.Minute)), Sender: "ann@acme.io", Recipient: "info@bigco.com", RoleAccount: true}
	h := s.EventsHandler()
	if err := h.Handle(context.Background(), record(t, ev, true)); err != nil {
		t.Fatal(err)
	}
	if err := h.(kafka.Flusher).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Status("default", sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, "info@bigco.com")
	if len(st) != 1 || st[0].GetCommand().GetReason() != enforce.ReasonRoleAccount {
		t.Errorf("status of info@bigco.com = %v, want a role-account suppression", st)
	}
}

// TestEventsHeadersOverTheBroker: the headers survive the broker (kafka-go
// producer and reader): a skippable record with an undecodable value is
// skipped, and hard bounces with and without headers suppress.
func TestEventsHeadersOverTheBroker(t *testing.T) {
	srv := actuatortest.Start(t, actuatortest.Options{Clock: func() time.Time { return t0 }})
	bounce := func(id, rcpt string) *sgv1.Event {
		return &sgv1.Event{EventId: id, Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_BOUNCED,
			OccurredAt: timestamppb.New(t0.Add(-time.Minute)), Sender: "ann@acme.io", Recipient: rcpt,
			Bounce: &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, Category: sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX}}
	}
	withHeaders, without := bounce("b1", "one@example.com"), bounce("b2", "two@example.com")
	v1, err := proto.Marshal(withHeaders)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := proto.Marshal(without)
	if err != nil {
		t.Fatal(err)
	}
	skip := normalizer.EventHeaders(&sgv1.Event{Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: timestamppb.New(t0)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Producer.Produce(ctx,
		kafka.Record{Topic: topics.Events, Key: []byte("default|x"), Value: []byte{0xff, 0xff}, Headers: skip},
		kafka.Record{Topic: topics.Events, Key: []byte("default|b1"), Value: v1, Headers: normalizer.EventHeaders(withHeaders)},
		kafka.Record{Topic: topics.Events, Key: []byte("default|b2"), Value: v2},
	)
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Stage.EventsHandler()
	n := 0
	err = kafka.ReadAll(ctx, srv.Brokers, topics.Events, func(m kafka.Message) error {
		n++
		return h.Handle(ctx, m)
	})
	if err != nil {
		t.Fatalf("handle records read from the broker: %v", err)
	}
	if err := h.(kafka.Flusher).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("read %d records, want 3", n)
	}
	for _, rcpt := range []string{"one@example.com", "two@example.com"} {
		if !suppressed(srv.Stage, "default", rcpt) {
			t.Errorf("%s not suppressed", rcpt)
		}
	}
}
