package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/normalize"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// fakePublisher records what it acknowledged; fail makes it refuse.
type fakePublisher struct {
	mu   sync.Mutex
	recs []kafka.Record
	fail error
}

func (f *fakePublisher) Produce(_ context.Context, recs ...kafka.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.recs = append(f.recs, recs...)
	return nil
}

func newStage(t *testing.T, pub Publisher, cfg Config) *Stage {
	t.Helper()
	keys := auth.NewKeys()
	if err := keys.Parse("acme:k-acme,globex:k-globex"); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, keys, pub, nil, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const okEvent = `{"event_id":"e1","type":"delivered","occurred_at":"2026-11-20T10:00:00Z","sender":"ann@acme.io","recipient":"bob@example.com"}`

func TestEventsEndpoint(t *testing.T) {
	pub := &fakePublisher{}
	s := newStage(t, pub, Config{MaxBodyBytes: 4096, MaxEvents: 3})
	mux := http.NewServeMux()
	s.Routes(mux)
	do := func(key, ct, body string) (int, map[string]any, http.Header) {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return rec.Code, m, rec.Header()
	}
	for _, tc := range []struct {
		name, key, ct, body string
		code                int
		field               string
	}{
		{"accepted", "k-acme", "application/json", okEvent, 202, ""},
		{"ndjson", "k-acme", "application/x-ndjson", okEvent + "\n\n" + strings.Replace(okEvent, "e1", "e2", 1) + "\n", 202, ""},
		{"no credentials", "", "application/json", okEvent, 401, ""},
		{"unknown key", "nope", "application/json", okEvent, 401, ""},
		{"malformed", "k-acme", "application/json", `{"type":`, 400, ""},
		{"unknown field", "k-acme", "application/json", `{"type":"sent","occurred_at":"2026-11-20T10:00:00Z","recipient":"a@b.com","colour":"red"}`, 400, "colour"},
		{"wrong type", "k-acme", "application/json", `{"type":"sent","occurred_at":"2026-11-20T10:00:00Z","recipient":"a@b.com","bounce":{"smtp_code":"five"}}`, 400, "bounce.smtp_code"},
		{"bad timestamp", "k-acme", "application/json", `{"type":"sent","occurred_at":"yesterday","recipient":"a@b.com"}`, 400, "occurred_at"},
		{"empty", "k-acme", "application/json", "  ", 400, ""},
		{"other tenant", "k-acme", "application/json", `{"tenant":"globex","type":"sent","occurred_at":"2026-11-20T10:00:00Z","recipient":"a@b.com"}`, 403, "tenant"},
		{"too large", "k-acme", "application/json", `{"x":"` + strings.Repeat("a", 5000) + `"}`, 413, ""},
		{"too many events", "k-acme", "application/x-ndjson", strings.Repeat(okEvent+"\n", 4), 413, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := do(tc.key, tc.ct, tc.body)
			if code != tc.code {
				t.Fatalf("code = %d (%v), want %d", code, body, tc.code)
			}
			if code >= 400 && body["error"] == "" {
				t.Errorf("no error message: %v", body)
			}
			if tc.field != "" && body["field"] != tc.field {
				t.Errorf("field = %v, want %q", body["field"], tc.field)
			}
		})
	}
	// Accepted envelopes carry the key's tenant: the single event alone,
	// its exact bytes keyed by its id; the NDJSON lines' events together,
	// length-delimited protobuf keyed by the envelope id.
	if len(pub.recs) != 2 {
		t.Fatalf("published %d records, want 2", len(pub.recs))
	}
	env := &sgv1.RawEnvelope{}
	if err := proto.Unmarshal(pub.recs[0].Value, env); err != nil {
		t.Fatal(err)
	}
	if env.GetTenant() != "acme" || string(env.GetPayload()) != okEvent || string(pub.recs[0].Key) != "acme|e1" ||
		env.GetContentType() != "application/json" {
		t.Errorf("envelope tenant=%q payload=%q content-type=%q key=%q", env.GetTenant(), env.GetPayload(), env.GetContentType(), pub.recs[0].Key)
	}
	if err := proto.Unmarshal(pub.recs[1].Value, env); err != nil {
		t.Fatal(err)
	}
	if env.GetContentType() != canonical.DelimitedEventsContentType || env.GetSource() != sgv1.Source_SOURCE_GENERIC ||
		string(pub.recs[1].Key) != "acme|"+env.GetEnvelopeId() {
		t.Errorf("ndjson envelope content-type=%q source=%v key=%q", env.GetContentType(), env.GetSource(), pub.recs[1].Key)
	}
	got := splitDelimited(t, env.GetPayload())
	for i, line := range []string{okEvent, strings.Replace(okEvent, "e1", "e2", 1)} {
		want, err := canonical.Decode([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !proto.Equal(got[i], want) {
			t.Fatalf("ndjson envelope holds %v, want the events of the two lines", got)
		}
	}

	// Broker down: 503 with Retry-After, nothing claimed.
	pub.fail = errors.New("broker down")
	code, _, hdr := do("k-acme", "application/json", okEvent)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("broker down: %d retry-after=%q", code, hdr.Get("Retry-After"))
	}
}

func TestBusyIs429(t *testing.T) {
	block := make(chan struct{})
	pub := publisherFunc(func(context.Context, ...kafka.Record) error { <-block; return nil })
	s := newStage(t, pub, Config{MaxInFlight: 1})
	mux := http.NewServeMux()
	s.Routes(mux)
	send := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(okEvent))
		req.Header.Set("Authorization", "Bearer k-acme")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- send() }()
	for len(s.inflight) == 0 {
		// wait until the first request holds the only slot
	}
	if rec := send(); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("second request = %d, want 429 with Retry-After", rec.Code)
	}
	close(block)
	if rec := <-first; rec.Code != http.StatusAccepted {
		t.Fatalf("first request = %d", rec.Code)
	}
}

type publisherFunc func(context.Context, ...kafka.Record) error

func (f publisherFunc) Produce(ctx context.Context, r ...kafka.Record) error { return f(ctx, r...) }

func TestGRPCPublish(t *testing.T) {
	pub := &fakePublisher{}
	s := newStage(t, pub, Config{})
	g := &grpcServer{s: s}
	if _, err := g.Publish(context.Background(), &sgv1.PublishRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no key: %v", err)
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer k-globex"))
	ok := &sgv1.Event{EventId: "g1", Type: sgv1.EventType_EVENT_TYPE_SENT, OccurredAt: timestamppb.Now(), Sender: "a@globex.com", Recipient: "b@example.com"}
	resp, err := g.Publish(ctx, &sgv1.PublishRequest{Items: []*sgv1.PublishItem{
		{Item: &sgv1.PublishItem_Event{Event: ok}},
		{Item: &sgv1.PublishItem_Event{Event: &sgv1.Event{Type: sgv1.EventType_EVENT_TYPE_SENT}}},
		{Item: &sgv1.PublishItem_Raw{Raw: &sgv1.RawPayload{Source: sgv1.Source_SOURCE_SENDGRID, Payload: []byte(`[]`)}}},
		{},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []sgv1.ItemStatus{sgv1.ItemStatus_ITEM_STATUS_ACCEPTED, sgv1.ItemStatus_ITEM_STATUS_INVALID, sgv1.ItemStatus_ITEM_STATUS_ACCEPTED, sgv1.ItemStatus_ITEM_STATUS_INVALID}
	for i, r := range resp.GetResults() {
		if r.GetStatus() != want[i] || r.GetIndex() != int32(i) {
			t.Errorf("item %d: %v (%s), want %v", i, r.GetStatus(), r.GetError(), want[i])
		}
	}
	if resp.GetAccepted() != 2 || resp.GetRejected() != 2 || len(pub.recs) != 2 {
		t.Fatalf("accepted=%d rejected=%d published=%d", resp.GetAccepted(), resp.GetRejected(), len(pub.recs))
	}
	pub.fail = errors.New("down")
	resp, _ = g.Publish(ctx, &sgv1.PublishRequest{Items: []*sgv1.PublishItem{{Item: &sgv1.PublishItem_Event{Event: ok}}}})
	if r := resp.GetResults()[0]; r.GetStatus() != sgv1.ItemStatus_ITEM_STATUS_UNAVAILABLE || r.GetEnvelopeId() != "" {
		t.Fatalf("broker down: %v", r)
	}
}

// TestNDJSONEnvelopes: the events of NDJSON lines are published as
// length-delimited protobuf in envelopes of at most maxEventsEnvelope
// bytes, every line's event exactly once, in order; the answer counts the
// events and names every envelope.
func TestNDJSONEnvelopes(t *testing.T) {
	pub := &fakePublisher{}
	s := newStage(t, pub, Config{})
	mux := http.NewServeMux()
	s.Routes(mux)
	var lines []string
	for i := range 6000 {
		lines = append(lines, strings.Replace(okEvent, `"e1"`, fmt.Sprintf(`"e%d"`, i), 1))
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(strings.Join(lines, "\r\n")+"\n"))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer k-acme")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var body struct {
		Accepted    int      `json:"accepted"`
		EnvelopeIDs []string `json:"envelope_ids"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); rec.Code != http.StatusAccepted || err != nil {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if body.Accepted != len(lines) || len(body.EnvelopeIDs) != len(pub.recs) {
		t.Fatalf("accepted %d in %d envelope ids, want %d in %d", body.Accepted, len(body.EnvelopeIDs), len(lines), len(pub.recs))
	}
	var got []*sgv1.Event
	total := 0
	for i, r := range pub.recs {
		env := &sgv1.RawEnvelope{}
		if err := proto.Unmarshal(r.Value, env); err != nil {
			t.Fatal(err)
		}
		if len(env.GetPayload()) > maxEventsEnvelope || env.GetEnvelopeId() != body.EnvelopeIDs[i] ||
			env.GetContentType() != canonical.DelimitedEventsContentType {
			t.Fatalf("envelope %d: %d bytes, id %s, content type %q", i, len(env.GetPayload()), env.GetEnvelopeId(), env.GetContentType())
		}
		if i < len(pub.recs)-1 && len(env.GetPayload()) < maxEventsEnvelope-200 {
			t.Errorf("envelope %d sealed at %d bytes, far below the bound", i, len(env.GetPayload()))
		}
		total += len(env.GetPayload())
		got = append(got, splitDelimited(t, env.GetPayload())...)
	}
	if len(pub.recs) < 2 {
		t.Fatalf("%d envelope for %d bytes", len(pub.recs), total)
	}
	if len(got) != len(lines) {
		t.Fatalf("the envelopes hold %d events, %d lines were posted", len(got), len(lines))
	}
	for i, line := range lines {
		want, err := canonical.Decode([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got[i], want) {
			t.Fatalf("event %d = %v, want line %d's %v", i, got[i], i+1, want)
		}
	}
}

// splitDelimited decodes a canonical.DelimitedEventsContentType payload.
func splitDelimited(t testing.TB, payload []byte) []*sgv1.Event {
	t.Helper()
	var out []*sgv1.Event
	for len(payload) > 0 {
		msg, n := protowire.ConsumeBytes(payload)
		if n < 0 {
			t.Fatalf("truncated payload: %v", protowire.ParseError(n))
		}
		ev := &sgv1.Event{}
		if err := proto.Unmarshal(msg, ev); err != nil {
			t.Fatal(err)
		}
		out, payload = append(out, ev), payload[n:]
	}
	return out
}

// TestGRPCEventsTravelTogether: the canonical events of one publish call
// are published in one envelope of length-delimited protobuf events (the
// items point at it), which the normalizer splits back into exactly those
// events; a raw item keeps its own envelope.
func TestGRPCEventsTravelTogether(t *testing.T) {
	pub := &fakePublisher{}
	s := newStage(t, pub, Config{})
	g := &grpcServer{s: s}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer k-globex"))
	var items []*sgv1.PublishItem
	for i := range 5 {
		items = append(items, &sgv1.PublishItem{Item: &sgv1.PublishItem_Event{Event: &sgv1.Event{
			EventId: fmt.Sprintf("g%d", i), Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: timestamppb.Now(),
			Sender: "a@globex.com", Recipient: fmt.Sprintf("r%d@example.com", i)}}})
	}
	items = append(items, &sgv1.PublishItem{Item: &sgv1.PublishItem_Raw{Raw: &sgv1.RawPayload{Source: sgv1.Source_SOURCE_SENDGRID, Payload: []byte(`[]`)}}})
	resp, err := g.Publish(ctx, &sgv1.PublishRequest{Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAccepted() != 6 || len(pub.recs) != 2 {
		t.Fatalf("accepted %d in %d records, want 6 in 2", resp.GetAccepted(), len(pub.recs))
	}
	res := resp.GetResults()
	for i := 1; i < 5; i++ {
		if res[i].GetEnvelopeId() != res[0].GetEnvelopeId() {
			t.Fatalf("item %d in envelope %s, item 0 in %s", i, res[i].GetEnvelopeId(), res[0].GetEnvelopeId())
		}
	}
	if res[5].GetEnvelopeId() == res[0].GetEnvelopeId() {
		t.Fatal("the raw item shares the events' envelope")
	}
	env := &sgv1.RawEnvelope{}
	if err := proto.Unmarshal(pub.recs[1].Value, env); err != nil { // the events' envelope is sealed last
		t.Fatal(err)
	}
	if env.GetContentType() != canonical.DelimitedEventsContentType || env.GetEnvelopeId() != res[0].GetEnvelopeId() {
		t.Fatalf("events envelope %s of type %q", env.GetEnvelopeId(), env.GetContentType())
	}
	evs, err := normalize.Parse(env, normalize.Options{})
	if err != nil || len(evs) != 5 {
		t.Fatalf("normalized %d events: %v", len(evs), err)
	}
	for i, ev := range evs {
		if ev.GetEventId() != fmt.Sprintf("g%d", i) || ev.GetTenant() != "globex" {
			t.Fatalf("event %d: %s of %s", i, ev.GetEventId(), ev.GetTenant())
		}
	}
}
