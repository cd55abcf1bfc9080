package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/loadgen"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/stage/normalizer"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// rawMsg is a record of the raw topic as the normalizer consumes it.
type rawMsg struct{ rec kafka.Record }

func (m rawMsg) Topic() string             { return topics.Raw }
func (m rawMsg) Partition() int            { return 0 }
func (m rawMsg) Offset() int64             { return 0 }
func (m rawMsg) Key() []byte               { return m.rec.Key }
func (m rawMsg) Value() []byte             { return m.rec.Value }
func (m rawMsg) Time() time.Time           { return time.Time{} }
func (m rawMsg) Header(name string) []byte { return m.rec.Headers[name] }

// recordSink keeps what it is given; reset empties it.
type recordSink struct {
	mu   sync.Mutex
	recs []kafka.Record
}

func (s *recordSink) Produce(_ context.Context, recs ...kafka.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *recordSink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = s.recs[:0]
}

// loadgenLines returns n seeded loadgen events (every type it generates:
// sent, delivered, deferred, bounced, opened, clicked, replied,
// unsubscribed, complained) as canonical JSON lines; with omitTenant the
// lines carry no tenant (ingest takes it from the key).
func loadgenLines(tb testing.TB, seed uint64, n int, omitTenant bool) [][]byte {
	tb.Helper()
	g, err := loadgen.New(loadgen.Config{Seed: seed, Tenants: []string{"acme"}, OmitTenant: omitTenant,
		Start: testNow.Add(-time.Hour), MessagesPerSecond: 200,
		Rates: loadgen.Rates{Bounce: 0.1, HardShare: 0.5, Defer: 0.1, Open: 0.4, Click: 0.3, Reply: 0.1, Unsubscribe: 0.05, Complaint: 0.05}})
	if err != nil {
		tb.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		line, err := canonical.Marshal(g.Next())
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = line
	}
	return out
}

// edgeLines are canonical JSON lines the generator never writes: every
// event type and sub-message, every field set, optional fields absent (no
// event id, sender, tenant), unicode (escaped, raw, surrogate pairs, a lone
// surrogate, an invalid UTF-8 byte, U+2028, NUL), protobuf enum names and
// upper case, nulls, empty sub-messages, bounces and replies left to the
// classifiers, explicit false and -0, the oldest and the latest event times
// allowed, white space inside a line, a tenant equal to the key's, and two
// identical lines without an id.
var edgeLines = []string{
	`{"event_id":"all-1","tenant":"acme","type":"bounced","occurred_at":"2026-11-22T10:00:00.123456789+02:00","sender":"Ann.Smith@Acme.IO","sending_domain":"Acme.IO","recipient":"Bob@Example.com","recipient_domain":"example.com","provider":"other","account":"Example","campaign":"c-\u00fc","step":"2","variant":"v1","segment":"smb","list_source":"apollo","message_id":"<m1@acme.io>","bounce":{"class":"hard","category":"invalid_mailbox","smtp_code":550,"enhanced_code":"5.1.1","diagnostic":"550 5.1.1 user unknown","reporting_mta":"mx.example.com"},"complaint":{"source":"fbl","feedback_type":"abuse","reported_domain":"acme.io","source_ip":"192.0.2.1","feedback_provider":"yahoo"},"unsubscribe":{"method":"one_click","scope":"topic","topic":"news"},"reply":{"category":"not_now","risk":"low","text":"later","subject":"Re: hi"},"placement":{"provider":"gmail","folder":"promotions","tool":"glockapps","test_id":"t1"},"auth":{"spf":"pass","dkim":"fail","dmarc_policy":"quarantine","aligned":true,"tls":true,"ptr":true},"postmaster":{"spam_rate":0.003,"domain_reputation":"medium","delivery_error_rate":0.01,"spf_success_rate":1,"dkim_success_rate":0.99,"dmarc_success_rate":0.98,"inbound_encryption_rate":1},"source":"ses","envelope_id":"client-env","received_at":"2026-11-22T11:00:00Z","role_account":true,"source_event":"Bounce"}`,
	`{"type":"complained","occurred_at":"2026-11-22T09:00:00Z","sender":"ann@acme.io","recipient":"postmaster@corp.example","campaign":"c2","bounce":{"smtp_code":550},"complaint":{"source":"esp","feedback_type":"not_spam"},"unsubscribe":{"method":"link","scope":"brand"},"reply":{"text":"please remove me"},"placement":{"folder":"missing"},"auth":{"dmarc_policy":"reject"},"postmaster":{"domain_reputation":"high"},"role_account":false}`,
	`{"type":"sent","occurred_at":"2026-11-22T10:00:00Z","recipient":"a@b.io"}`,
	`{"event_id":"uni-\u00fc-\ud83d\ude00","type":"replied","occurred_at":"2026-11-22T10:00:00Z","sender":"ann@acme.io","recipient":"bob@example.com","campaign":"Kampagne \u00fc\u00e9 \ud83d\ude00","variant":"日本語 😀","reply":{"text":"Gern, n\u00e4chste Woche \u2028 \u0000 end","subject":"Re: \ud800 lone"},"bounce":{"diagnostic":"bad ` + "\xff" + ` byte \/ \n \t"}}`,
	`{"type":"EVENT_TYPE_COMPLAINED","occurred_at":"2026-11-22T10:00:00Z","recipient":"x@yahoo.com","complaint":{"source":"COMPLAINT_SOURCE_FBL","feedback_type":"Abuse"}}`,
	`{"type":"bounced","occurred_at":"2026-11-22T10:00:00Z","sender":"ann@acme.io","recipient":"full@gmail.com","bounce":{"smtp_code":452,"diagnostic":"452 4.2.2 mailbox full"}}`,
	`{"type":"bounced","occurred_at":"2026-11-22T10:00:00Z","recipient":"gone@outlook.com","bounce":{"enhanced_code":"5.1.1"}}`,
	`{"event_id":"empty-subs","type":"unsubscribed","occurred_at":"2026-11-22T10:00:00Z","recipient":"u@gmail.com","unsubscribe":{},"bounce":{},"placement":{}}`,
	`{"event_id":null,"type":"opened","occurred_at":"2026-11-22T10:00:00Z","recipient":"x@gmail.com","campaign":null,"bounce":null,"tenant":null}`,
	`{"type":"placement_test","occurred_at":"2026-11-22T10:00:00Z","sender":"ann@acme.io","placement":{"provider":"microsoft","folder":"spam","tool":"gmass"}}`,
	`{"type":"auth_check","occurred_at":"2026-11-22T10:00:00Z","sending_domain":"acme.io","auth":{"spf":"none","dkim":"pass","dmarc_policy":"missing","aligned":false,"tls":false}}`,
	`{"type":"postmaster_stats","occurred_at":"2026-11-21T00:00:00Z","sending_domain":"acme.io","postmaster":{"spam_rate":-0,"domain_reputation":"bad","delivery_error_rate":1e-3,"dkim_success_rate":0.5E0}}`,
	`{"type":"rejected","occurred_at":"2000-01-01T00:00:00Z","recipient":"r@yahoo.com","bounce":{"class":"soft","smtp_code":554,"enhanced_code":"5.7.1"}}`,
	`{"event_id":"edge-future","type":"deferred","occurred_at":"2026-11-23T11:59:59.999999999Z","recipient":"later@icloud.com","bounce":{"class":"soft","category":"rate_limited","smtp_code":421}}`,
	" \t{ \"type\" : \"clicked\" ,\t\"occurred_at\":\"2026-11-22T10:00:00-05:30\" , \"recipient\":\"c@icloud.com\" }\t ",
	`{"event_id":"same-tenant","tenant":"acme","type":"delivered","occurred_at":"2026-11-22T10:00:00Z","sender":"ann@acme.io","recipient":"d@corp.example","account":" Big Corp "}`,
	`{"type":"delivered","occurred_at":"2026-11-22T10:00:00Z","sender":"ann@acme.io","recipient":"twice@gmail.com"}`,
	`{"type":"delivered","occurred_at":"2026-11-22T10:00:00Z","sender":"ann@acme.io","recipient":"twice@gmail.com"}`,
}

// postNDJSON posts lines as one NDJSON request with A's key.
func postNDJSON(h http.Handler, lines [][]byte, sep string) (int, string) {
	rec := request{path: "/v1/events", contentType: "application/x-ndjson", bearer: "k-acme",
		body: append(bytes.Join(lines, []byte(sep)), sep...)}.do(h)
	return rec.Code, rec.Body.String()
}

// benchBodies returns count NDJSON bodies of benchBatch loadgen events.
func benchBodies(b *testing.B, count int) [][]byte {
	lines := loadgenLines(b, 7, count*benchBatch, true)
	bodies := make([][]byte, count)
	for i := range bodies {
		bodies[i] = append(bytes.Join(lines[i*benchBatch:(i+1)*benchBatch], []byte("\n")), '\n')
	}
	return bodies
}

// reportPerEvent reports ns, allocations and bytes per event since m0.
func reportPerEvent(b *testing.B, events int, m0 *runtime.MemStats) {
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(events), "B/event")
}

// BenchmarkNDJSONIngestNormalize measures the per-event cost of canonical
// NDJSON through the ingest HTTP handler (decode, validate, envelopes;
// the broker replaced by a sink) and the normalizer stage (envelope in,
// sg.events.v1 records out), in requests of benchBatch loadgen events.
// "ingest" and "normalizer" time each side alone, "both" the two in turn.
//
//	cd pkg && go test -run XXX -bench NDJSONIngestNormalize -benchtime 200x ./stage/ingest/
func BenchmarkNDJSONIngestNormalize(b *testing.B) {
	bodies := benchBodies(b, 16)
	raw := &recordSink{}
	s, err := New(Config{TenantRate: -1, Now: func() time.Time { return testNow }}, testKeys(b), raw, nil, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	out := &recordSink{}
	norm, err := normalizer.New(out, normalize.Options{Now: func() time.Time { return testNow }}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ingest := func(body []byte) {
		rec := request{path: "/v1/events", contentType: "application/x-ndjson", bearer: "k-acme", body: body}.do(mux)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("ingest: %d %s", rec.Code, rec.Body)
		}
	}
	normalizeAll := func(recs []kafka.Record) {
		for _, r := range recs {
			if err := norm.Handle(ctx, rawMsg{r}); err != nil {
				b.Fatalf("normalize: %v", err)
			}
		}
		if err := norm.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if len(out.recs) != benchBatch {
			b.Fatalf("%d events out of %d", len(out.recs), benchBatch)
		}
		out.reset()
	}
	run := func(name string, step func(i int), extra func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			var m0 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			b.ResetTimer()
			for i := range b.N {
				step(i)
			}
			b.StopTimer()
			reportPerEvent(b, b.N*benchBatch, &m0)
			if extra != nil {
				extra(b)
			}
		})
	}
	// The normalizer alone consumes what ingest wrote for each body.
	written := make([][]kafka.Record, len(bodies))
	for i, body := range bodies {
		ingest(body)
		written[i] = append([]kafka.Record(nil), raw.recs...)
		raw.reset()
	}
	// What one event costs on the wire: the request body, and the records
	// of sg.raw.v1.
	sizes := func(b *testing.B) {
		var in, out int
		for i := range bodies {
			in += len(bodies[i])
			for _, r := range written[i] {
				out += len(r.Value)
			}
		}
		events := float64(len(bodies) * benchBatch)
		b.ReportMetric(float64(in)/events, "body-B/event")
		b.ReportMetric(float64(out)/events, "raw-B/event")
	}
	run("ingest", func(i int) { ingest(bodies[i%len(bodies)]); raw.reset() }, sizes)
	run("normalizer", func(i int) { normalizeAll(written[i%len(written)]) }, nil)
	run("both", func(i int) {
		ingest(bodies[i%len(bodies)])
		normalizeAll(raw.recs)
		raw.reset()
	}, nil)
}

// legacyEnvelope is env as ingest wrote it before NDJSON events travelled
// as protobuf: the same envelope, holding the JSON lines of its events,
// newline separated, as application/x-ndjson.
func legacyEnvelope(env *sgv1.RawEnvelope, lines [][]byte) *sgv1.RawEnvelope {
	old := proto.Clone(env).(*sgv1.RawEnvelope)
	old.ContentType = "application/x-ndjson"
	old.Payload = bytes.Join(lines, []byte("\n"))
	return old
}

// normalizeRecords runs the raw records through a normalizer stage whose
// clock is now and returns the sg.events.v1 records and each Handle error.
func normalizeRecords(t testing.TB, recs []kafka.Record, now time.Time) ([]kafka.Record, []error) {
	t.Helper()
	out := &recordSink{}
	st, err := normalizer.New(out, normalize.Options{Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	for _, r := range recs {
		errs = append(errs, st.Handle(context.Background(), rawMsg{r}))
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out.recs, errs
}

// bothForms posts lines as NDJSON and returns the raw records ingest
// wrote (events as length-delimited protobuf), the same envelopes in the
// former NDJSON form, and the lines in the order the envelopes hold them.
func bothForms(t *testing.T, h http.Handler, pub *recordSink, lines [][]byte, sep string) (current, legacy []kafka.Record) {
	t.Helper()
	pub.reset()
	code, body := postNDJSON(h, lines, sep)
	var res struct {
		Accepted    int      `json:"accepted"`
		EnvelopeIDs []string `json:"envelope_ids"`
	}
	if err := json.Unmarshal([]byte(body), &res); code != http.StatusAccepted || err != nil {
		t.Fatalf("%d %s", code, body)
	}
	if res.Accepted != len(lines) || len(res.EnvelopeIDs) != len(pub.recs) {
		t.Fatalf("accepted %d in %v; %d lines in %d records", res.Accepted, res.EnvelopeIDs, len(lines), len(pub.recs))
	}
	for i, r := range pub.recs {
		env, err := decodeEnvelope(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if env.GetEnvelopeId() != res.EnvelopeIDs[i] || !env.GetReceivedAt().AsTime().Equal(testNow) ||
			string(r.Key) != "acme|"+env.GetEnvelopeId() || string(r.Headers[kafka.HeaderTenant]) != "acme" || r.Topic != topics.Raw {
			t.Fatalf("record %d: key %q headers %v envelope %v", i, r.Key, r.Headers, env)
		}
	}
	return formsOf(t, pub.recs, lines)
}

// formsOf returns the raw records ingest wrote for lines and the same
// envelopes in the former form (the JSON lines as NDJSON).
func formsOf(t testing.TB, recs []kafka.Record, lines [][]byte) (current, legacy []kafka.Record) {
	t.Helper()
	next := 0
	for i, r := range recs {
		env, err := decodeEnvelope(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if env.GetContentType() == "application/x-ndjson" {
			// An oversized event whose protobuf form outgrows its line
			// keeps the former form.
			if next >= len(lines) {
				t.Fatalf("more events than the %d lines", len(lines))
			}
			ev, err := canonical.Decode(env.GetPayload())
			if err != nil || env.GetSource() != sgv1.Source_SOURCE_GENERIC || env.GetTenant() != "acme" || !bytes.Equal(env.GetPayload(), lines[next]) ||
				proto.Size(ev) <= max(maxEventsEnvelope, len(lines[next])) {
				t.Fatalf("record %d: NDJSON envelope of %d bytes, not line %d alone, too large as protobuf", i, len(env.GetPayload()), next+1)
			}
			next++
			current, legacy = append(current, r), append(legacy, r)
			continue
		}
		if env.GetContentType() != canonical.DelimitedEventsContentType || env.GetSource() != sgv1.Source_SOURCE_GENERIC ||
			env.GetTenant() != "acme" {
			t.Fatalf("record %d: envelope %v", i, env)
		}
		n := len(splitDelimited(t, env.GetPayload()))
		if next+n > len(lines) {
			t.Fatalf("more events than the %d lines", len(lines))
		}
		if n > 1 && len(env.GetPayload()) > maxEventsEnvelope {
			t.Fatalf("envelope %d: %d events in %d bytes", i, n, len(env.GetPayload()))
		}
		old, err := proto.Marshal(legacyEnvelope(env, lines[next:next+n]))
		if err != nil {
			t.Fatal(err)
		}
		next += n
		current = append(current, r)
		legacy = append(legacy, kafka.Record{Topic: r.Topic, Key: r.Key, Value: old, Headers: r.Headers})
	}
	if next != len(lines) {
		t.Fatalf("the envelopes hold %d events, %d lines were posted", next, len(lines))
	}
	return current, legacy
}

// TestNDJSONEventsEquivalence posts a varied corpus (seeded loadgen events
// of every type it generates, with and without tenant, and edgeLines) as
// NDJSON, and normalizes what ingest wrote (protobuf events) and the same
// envelopes in the former form (the JSON lines): the records on
// sg.events.v1 must be identical (topic, key, headers, proto.Equal events),
// and follow the rules: one event per line in order, the key's tenant, the
// envelope's id, source and received_at, the line's event id or, without
// one, the id derived from the line's content.
func TestNDJSONEventsEquivalence(t *testing.T) {
	pub := &recordSink{}
	_, h := newServer(t, pub, Config{TenantRate: -1}, nil)
	var edges [][]byte
	for _, l := range edgeLines {
		edges = append(edges, []byte(l))
	}
	mixed := append(loadgenLines(t, 3, 2500, true), loadgenLines(t, 4, 500, false)...)
	for i, e := range edges {
		at := (i + 1) * len(mixed) / (len(edges) + 1)
		mixed = append(mixed[:at], append([][]byte{e}, mixed[at:]...)...)
	}
	requests := []struct {
		name     string
		lines    [][]byte
		sep      string
		jsonEnvs int // envelopes left in the former form
	}{
		{"loadgen and edge cases over several envelopes", mixed, "\n", 0},
		{"edge cases, CRLF and blank lines", edges, "\r\n\r\n", 0},
		{"one line", edges[:1], "\n", 0},
		{"an oversized line of invalid UTF-8 stays JSON", [][]byte{edges[0], []byte(`{"type":"sent","occurred_at":"2026-11-22T10:00:00Z","recipient":"a@b.io","campaign":"` +
			strings.Repeat("\xff", maxEventsEnvelope/2) + `"}`), edges[2]}, "\n", 1},
	}
	for _, rq := range requests {
		t.Run(rq.name, func(t *testing.T) {
			current, legacy := bothForms(t, h, pub, rq.lines, rq.sep)
			jsonEnvs := 0
			for _, r := range current {
				if env, _ := decodeEnvelope(r.Value); env.GetContentType() == "application/x-ndjson" {
					jsonEnvs++
				}
			}
			if jsonEnvs != rq.jsonEnvs {
				t.Fatalf("%d envelopes in the former form, want %d", jsonEnvs, rq.jsonEnvs)
			}
			if rq.name == requests[0].name && len(current) < 2 {
				t.Fatalf("%d envelope: the corpus should span several", len(current))
			}
			// The normalizer runs a minute after ingest accepted.
			later := testNow.Add(time.Minute)
			got, gotErrs := normalizeRecords(t, current, later)
			want, wantErrs := normalizeRecords(t, legacy, later)
			for i := range gotErrs {
				if gotErrs[i] != nil || wantErrs[i] != nil {
					t.Fatalf("envelope %d: %v (former form: %v)", i, gotErrs[i], wantErrs[i])
				}
			}
			if len(got) != len(rq.lines) || len(want) != len(rq.lines) {
				t.Fatalf("%d events, former form %d, for %d lines", len(got), len(want), len(rq.lines))
			}
			envOf := map[string]bool{}
			for _, r := range current {
				env, _ := decodeEnvelope(r.Value)
				envOf[env.GetEnvelopeId()] = true
			}
			wantIDs := lineIDs(t, rq.lines)
			// The normalizer writes urgent events (complaints, …) ahead of
			// the others: compare line by line.
			got, want = inLineOrder(t, got, wantIDs), inLineOrder(t, want, wantIDs)
			for i := range got {
				g, w := decodeEvent(t, got[i]), decodeEvent(t, want[i])
				if got[i].Topic != topics.Events || got[i].Topic != want[i].Topic || !bytes.Equal(got[i].Key, want[i].Key) ||
					!reflect.DeepEqual(got[i].Headers, want[i].Headers) {
					t.Errorf("line %d: record %s %q %v, former form %s %q %v", i+1, got[i].Topic, got[i].Key, got[i].Headers, want[i].Topic, want[i].Key, want[i].Headers)
				}
				if !proto.Equal(g, w) {
					t.Errorf("line %d: event differs from the former form's\n got  %v\n want %v", i+1, g, w)
				}
				wantID := wantIDs[i]
				if g.GetEventId() != wantID || g.GetTenant() != "acme" || !envOf[g.GetEnvelopeId()] ||
					g.GetSource() != sgv1.Source_SOURCE_GENERIC || !g.GetReceivedAt().AsTime().Equal(testNow) ||
					string(got[i].Key) != "acme|"+wantID {
					t.Errorf("line %d: id %q (want %q), tenant %q, envelope %q, source %v, received_at %v",
						i+1, g.GetEventId(), wantID, g.GetTenant(), g.GetEnvelopeId(), g.GetSource(), g.GetReceivedAt().AsTime())
				}
			}
		})
	}
}

// lineIDs returns the event id of each NDJSON line: its event_id, or the
// generic source's id of its content when it has none.
func lineIDs(t testing.TB, lines [][]byte) []string {
	t.Helper()
	ids := make([]string, len(lines))
	for i, l := range lines {
		line, err := canonical.Decode(l)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = line.GetEventId()
		if ids[i] == "" {
			line.Tenant, line.EnvelopeId, line.ReceivedAt, line.Source = "", "", nil, 0
			js, err := canonical.Marshal(line)
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = canonical.EventID("generic", string(js))
		}
	}
	return ids
}

// inLineOrder returns recs, events of the lines with ids, in the order of
// the lines (lines with the same id in the order the records came).
func inLineOrder(t testing.TB, recs []kafka.Record, ids []string) []kafka.Record {
	t.Helper()
	at := map[string][]int{}
	for i, id := range ids {
		at[id] = append(at[id], i)
	}
	out := make([]kafka.Record, len(ids))
	for _, r := range recs {
		id := decodeEvent(t, r).GetEventId()
		if len(at[id]) == 0 {
			t.Fatalf("event %q is of no line, or of more lines than there are", id)
		}
		out[at[id][0]], at[id] = r, at[id][1:]
	}
	return out
}

func decodeEvent(t testing.TB, r kafka.Record) *sgv1.Event {
	t.Helper()
	ev := &sgv1.Event{}
	if err := proto.Unmarshal(r.Value, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestNDJSONItemFailureBothForms: an event ingest accepted can still fail
// at the normalizer (here its clock is two days behind ingest's, so an
// event of the last hour lies too far in its future). In both forms the
// other events are published, the same, and the envelope is a permanent
// failure (dead-lettered) naming the failed entry: "line N" (1-based) in
// the former form, "item N-1" (0-based) in the protobuf form.
func TestNDJSONItemFailureBothForms(t *testing.T) {
	pub := &recordSink{}
	_, h := newServer(t, pub, Config{TenantRate: -1}, nil)
	at := func(d time.Duration) string { return testNow.Add(-d).Format(time.RFC3339) }
	lines := [][]byte{
		[]byte(`{"event_id":"old-1","type":"delivered","occurred_at":"` + at(72*time.Hour) + `","recipient":"a@gmail.com"}`),
		[]byte(`{"event_id":"recent","type":"delivered","occurred_at":"` + at(time.Hour) + `","recipient":"b@gmail.com"}`),
		[]byte(`{"type":"delivered","occurred_at":"` + at(50*time.Hour) + `","recipient":"c@gmail.com"}`),
	}
	current, legacy := bothForms(t, h, pub, lines, "\n")
	behind := testNow.Add(-48 * time.Hour)
	got, gotErrs := normalizeRecords(t, current, behind)
	want, wantErrs := normalizeRecords(t, legacy, behind)
	for _, tc := range []struct {
		form, entry string
		err         error
	}{
		{"protobuf", "item 1: occurred_at", gotErrs[0]},
		{"former", "line 2: occurred_at", wantErrs[0]},
	} {
		if !kafka.IsPermanent(tc.err) || !strings.Contains(fmt.Sprint(tc.err), tc.entry) {
			t.Errorf("%s form: %v, want a permanent error naming %q", tc.form, tc.err, tc.entry)
		}
	}
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("%d events, former form %d; want 2", len(got), len(want))
	}
	for i := range got {
		if g, w := decodeEvent(t, got[i]), decodeEvent(t, want[i]); !proto.Equal(g, w) || !bytes.Equal(got[i].Key, want[i].Key) {
			t.Errorf("event %d: %v, former form %v", i, g, w)
		}
	}
	if id := decodeEvent(t, got[0]).GetEventId(); id != "old-1" {
		t.Errorf("first event %q", id)
	}
}

// TestNDJSONBadLineRefusesRequest: every line is checked before anything
// is published; one bad line refuses the request (400 naming the line and
// the field, 403 for another tenant) and nothing reaches the topic.
func TestNDJSONBadLineRefusesRequest(t *testing.T) {
	good := `{"type":"sent","occurred_at":"2026-11-22T10:00:00Z","recipient":"a@b.io"}`
	for _, tc := range []struct {
		name, bad  string
		code       int
		msg, field string
	}{
		{"unknown field", `{"type":"sent","occurred_at":"2026-11-22T10:00:00Z","recipient":"a@b.io","colour":"red"}`, 400, "line 2: colour: unknown field", "colour"},
		{"invalid event", `{"type":"sent","occurred_at":"2026-11-22T10:00:00Z"}`, 400, "line 2: recipient: required", "recipient"},
		{"future", `{"type":"sent","occurred_at":"2026-11-24T10:00:00Z","recipient":"a@b.io"}`, 400, "line 2: occurred_at:", "occurred_at"},
		{"malformed", `{"type":`, 400, "line 2: type: ", "type"},
		{"other tenant", `{"tenant":"globex","type":"sent","occurred_at":"2026-11-22T10:00:00Z","recipient":"a@b.io"}`, 403, "line 2: tenant:", "tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &recordSink{}
			_, h := newServer(t, pub, Config{}, nil)
			code, body := postNDJSON(h, [][]byte{[]byte(good), []byte(tc.bad), []byte(good)}, "\n")
			var res map[string]string
			if err := json.Unmarshal([]byte(body), &res); err != nil || code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			if !strings.HasPrefix(res["error"], tc.msg) || res["field"] != tc.field {
				t.Errorf("answer %v, want error %q… field %q", res, tc.msg, tc.field)
			}
			if len(pub.recs) != 0 {
				t.Errorf("%d records published for a refused request", len(pub.recs))
			}
		})
	}
}

// TestEventPayloads: events are packed in order into payloads of at most
// the limit, each item a varint size and the event's encoding; an
// oversized event travels alone, as protobuf, or as its JSON line when its
// protobuf form is larger than the line; an event protobuf cannot encode
// is named.
func TestEventPayloads(t *testing.T) {
	ev := func(rcpt string) *sgv1.Event {
		return &sgv1.Event{EventId: rcpt, Type: sgv1.EventType_EVENT_TYPE_SENT, Recipient: rcpt,
			OccurredAt: timestamppb.New(testNow)}
	}
	small := []*sgv1.Event{ev("a@x.io"), ev("b@x.io"), ev("c@x.io"), ev("d@x.io")}
	one := delimitedLen(proto.Size(small[0]))
	big := ev("big@x.io")
	big.Bounce = &sgv1.Bounce{Diagnostic: strings.Repeat("x", 3*one)}
	// Each invalid byte of this line becomes U+FFFD: three bytes in protobuf.
	invalidLine := []byte(`{"type":"sent","occurred_at":"2026-11-22T10:00:00Z","recipient":"a@b.io","campaign":"` + strings.Repeat("\xff", 4*one) + `"}`)
	invalid, err := canonical.Decode(invalidLine)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		evs    []*sgv1.Event
		limit  int
		counts []int // events per payload; -1: the event's JSON line
	}{
		{"none", nil, 100, nil},
		{"all in one", small, 4 * one, []int{4}},
		{"exact fit", small, 2 * one, []int{2, 2}},
		{"one byte short", small, 2*one - 1, []int{1, 1, 1, 1}},
		{"oversized event alone", []*sgv1.Event{small[0], big, small[1]}, 2 * one, []int{1, 1, 1}},
		{"oversized event larger than its line", []*sgv1.Event{small[0], invalid, small[1], small[2]}, 2 * one, []int{1, -1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := make([][]byte, len(tc.evs))
			for i, e := range tc.evs {
				if e == invalid {
					lines[i] = invalidLine
					continue
				}
				line, err := canonical.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				lines[i] = line
			}
			payloads, err := eventPayloads(tc.evs, lines, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var counts []int
			var all []*sgv1.Event
			for _, p := range payloads {
				if p.json {
					e, err := canonical.Decode(p.data)
					if err != nil {
						t.Fatal(err)
					}
					counts, all = append(counts, -1), append(all, e)
					if !bytes.Equal(p.data, lines[len(all)-1]) {
						t.Errorf("JSON payload is not the event's line")
					}
					continue
				}
				items := splitDelimited(t, p.data)
				if len(items) > 1 && len(p.data) > tc.limit {
					t.Errorf("payload of %d events, %d bytes > %d", len(items), len(p.data), tc.limit)
				}
				counts, all = append(counts, len(items)), append(all, items...)
			}
			if !reflect.DeepEqual(counts, tc.counts) {
				t.Errorf("payloads %v, want %v", counts, tc.counts)
			}
			for i := range tc.evs {
				if !proto.Equal(all[i], tc.evs[i]) {
					t.Errorf("event %d = %v, want %v", i, all[i], tc.evs[i])
				}
			}
		})
	}
	bad := ev("bad@x.io")
	bad.Campaign = "\xff"
	_, err = eventPayloads([]*sgv1.Event{small[0], bad}, [][]byte{[]byte("{}"), []byte("{}")}, 1<<10)
	var ee *encodeError
	if !errors.As(err, &ee) || ee.index != 1 {
		t.Fatalf("invalid UTF-8: %v, want an encodeError of event 1", err)
	}
}

// FuzzNDJSONForms posts fuzzed NDJSON to the handler; when it is accepted,
// normalizing what ingest wrote (protobuf events) and the same envelopes
// in the former form (the JSON lines) must give the same events and the
// same success or failure. A refused request publishes nothing.
func FuzzNDJSONForms(f *testing.F) {
	for _, l := range edgeLines {
		f.Add([]byte(l))
	}
	f.Add([]byte(edgeLines[0] + "\n" + edgeLines[3] + "\r\n\n" + edgeLines[8]))
	f.Add(bytes.Join(loadgenLines(f, 5, 20, true), []byte("\n")))
	f.Add([]byte(`{"type":"sent","occurred_at":"2026-11-22T10:00:00Z","recipient":"a@b.io"}` + "\n" + `{"type":`))
	pub := &recordSink{}
	_, h := newServer(f, pub, Config{TenantRate: -1, MaxEvents: 1000}, zap.NewNop())
	f.Fuzz(func(t *testing.T, body []byte) {
		pub.reset()
		rec := request{path: "/v1/events", contentType: "application/x-ndjson", bearer: "k-acme", body: body}.do(h)
		if rec.Code != http.StatusAccepted {
			if len(pub.recs) != 0 {
				t.Fatalf("%d: %d records published", rec.Code, len(pub.recs))
			}
			return
		}
		var lines [][]byte
		for _, l := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines = append(lines, bytes.TrimRight(l, "\r"))
			}
		}
		current, legacy := formsOf(t, pub.recs, lines)
		later := testNow.Add(time.Minute)
		got, gotErrs := normalizeRecords(t, current, later)
		want, wantErrs := normalizeRecords(t, legacy, later)
		for i := range gotErrs {
			if (gotErrs[i] == nil) != (wantErrs[i] == nil) {
				t.Fatalf("envelope %d: %v, former form %v", i, gotErrs[i], wantErrs[i])
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d events, former form %d", len(got), len(want))
		}
		for i := range got {
			if g, w := decodeEvent(t, got[i]), decodeEvent(t, want[i]); !proto.Equal(g, w) || !bytes.Equal(got[i].Key, want[i].Key) {
				t.Fatalf("event %d: %v, former form %v", i, g, w)
			}
		}
	})
}
