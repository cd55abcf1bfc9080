package normalize

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// fuzzParse seeds the corpus with the source's real samples (when present)
// and extra payloads, then checks: Parse never panics; its error is nil or
// a *ParseError; every event it returns is stamped with the envelope,
// passes canonical.ValidateAt, and survives the canonical JSON form
// unchanged (Decode(Marshal(ev)) == ev).
func fuzzParse(f *testing.F, src sgv1.Source, sampleGlob string, extra ...string) {
	if sampleGlob != "" {
		files, _ := filepath.Glob(filepath.Join(samplesDir, sampleGlob))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, envelope(src, data))
	})
}

// checkParse checks Parse's contract on env (see fuzzParse).
func checkParse(t *testing.T, env *sgv1.RawEnvelope) {
	t.Helper()
	{
		evs, err := Parse(env, testOptions())
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
		}
		for _, ev := range evs {
			if ev.GetTenant() != env.GetTenant() || ev.GetEnvelopeId() != env.GetEnvelopeId() || ev.GetEventId() == "" {
				t.Fatalf("event not stamped: %v", ev)
			}
			if err := canonical.ValidateAt(ev, testNow); err != nil {
				t.Fatalf("invalid event returned: %v (%v)", err, ev)
			}
			js, err := canonical.Marshal(ev)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			back, err := canonical.Decode(js)
			if err != nil || !proto.Equal(back, ev) {
				t.Fatalf("canonical round trip: %v\n%s", err, js)
			}
		}
	}
}

func FuzzParseSES(f *testing.F) {
	fuzzParse(f, sgv1.Source_SOURCE_SES, "webhooks/ses/*.json",
		`{"Type":"Notification","Message":"{\"eventType\":\"Send\",\"mail\":{\"destination\":[\"a@x.io\"]}}"}`)
}

func FuzzParseSendGrid(f *testing.F) {
	fuzzParse(f, sgv1.Source_SOURCE_SENDGRID, "webhooks/sendgrid/*.json",
		`[{"event":"bounce","email":"a@x.io","timestamp":1761955200,"status":"5.1.1","reason":"550 no such user","custom":{"x":1}}]`)
}

func FuzzParseMailgun(f *testing.F) {
	fuzzParse(f, sgv1.Source_SOURCE_MAILGUN, "webhooks/mailgun/*.json",
		`{"event":"rejected","timestamp":"1","message":{"headers":{"to":"a@x.io, B <b@y.io>"}}}`)
}

func FuzzParsePostmark(f *testing.F) {
	fuzzParse(f, sgv1.Source_SOURCE_POSTMARK, "webhooks/postmark/*.json",
		`[{"RecordType":"Bounce","TypeCode":4096,"Email":"a@x.io"}]`)
}

func FuzzParseSparkPost(f *testing.F) {
	fuzzParse(f, sgv1.Source_SOURCE_SPARKPOST, "webhooks/sparkpost/*.json",
		`{"msys":{"message_event":{"type":"delay","bounce_class":"21","rcpt_to":"a@x.io","timestamp":"1.5"}}}`)
}

func FuzzParsePostmaster(f *testing.F) {
	fuzzParse(f, sgv1.Source_SOURCE_POSTMASTER, "",
		`{"name":"domains/acme.io/trafficStats/20261101","userReportedSpamRatio":0.003,"domainReputation":"BAD","deliveryErrors":[{"errorRatio":0.5}]}`,
		`{"domainStats":[{"name":"domains/acme.io/domainStats/x","metric":"SPAM_RATE","value":{"doubleValue":0.1},"date":{"year":2026,"month":1,"day":2}}]}`,
		`[{"trafficStats":[{"name":"domains/a.io/trafficStats/20260101"}]}]`)
}

func FuzzParseGeneric(f *testing.F) {
	fuzzParse(f, sgv1.Source_SOURCE_GENERIC, "",
		`{"type":"bounced","recipient":"a@x.io","occurred_at":"2026-11-01T00:00:00Z","bounce":{"smtp_code":550,"diagnostic":"user unknown"}}`,
		"{\"type\":\"sent\",\"recipient\":\"a@x.io\",\"occurred_at\":\"2026-11-01T00:00:00Z\"}\n{\"type\":\"x\"}\n",
		`{"type":"postmaster_stats","sending_domain":"acme.io","occurred_at":"2026-11-01T00:00:00Z","postmaster":{"spam_rate":0.5}}`)
}

func FuzzParseGRPC(f *testing.F) {
	seed, err := proto.Marshal(&sgv1.Event{Type: sgv1.EventType_EVENT_TYPE_SENT, Recipient: "a@x.io", Campaign: "c"})
	if err != nil {
		f.Fatal(err)
	}
	fuzzParse(f, sgv1.Source_SOURCE_GRPC, "", string(seed), `{"type":"sent","recipient":"a@x.io"}`)
}

// FuzzParseGRPCDelimited fuzzes ingest's gRPC batches: length-delimited
// protobuf events.
func FuzzParseGRPCDelimited(f *testing.F) {
	var seed []byte
	for _, r := range []string{"a@x.io", "b@x.io"} {
		b, err := proto.Marshal(&sgv1.Event{Type: sgv1.EventType_EVENT_TYPE_SENT, Recipient: r, Campaign: "c"})
		if err != nil {
			f.Fatal(err)
		}
		seed = protowire.AppendBytes(seed, b)
	}
	f.Add(seed)
	f.Add(append(seed, 0x80))
	f.Fuzz(func(t *testing.T, data []byte) {
		env := envelope(sgv1.Source_SOURCE_GRPC, data)
		env.ContentType = canonical.DelimitedEventsContentType
		checkParse(t, env)
	})
}
