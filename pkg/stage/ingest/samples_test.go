package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var samplesDir = filepath.Join("..", "..", "..", "..", "shared", "samples")

// postmasterV1 is a Gmail Postmaster Tools v1 TrafficStats resource with
// the fields of the API reference (domains.trafficStats.get), and the same
// in a ListTrafficStatsResponse.
const postmasterV1 = `{
  "name": "domains/acme.io/trafficStats/20261120",
  "userReportedSpamRatio": 0.0021,
  "userReportedSpamRatioLowerBound": 0.0015,
  "userReportedSpamRatioUpperBound": 0.0029,
  "ipReputations": [
    {"reputation": "HIGH", "ipCount": "2", "sampleIps": ["203.0.113.10", "203.0.113.11"]},
    {"reputation": "MEDIUM", "ipCount": "1", "sampleIps": ["203.0.113.12"]}
  ],
  "domainReputation": "MEDIUM",
  "spammyFeedbackLoops": [{"id": "campaign-42", "spamRatio": 0.012}],
  "spfSuccessRatio": 1,
  "dkimSuccessRatio": 0.998,
  "dmarcSuccessRatio": 0.997,
  "outboundEncryptionRatio": 1,
  "inboundEncryptionRatio": 0.999,
  "deliveryErrors": [
    {"errorClass": "PERMANENT_ERROR", "errorType": "REJECTED_CONTENT", "errorRatio": 0.0012},
    {"errorClass": "TEMPORARY_ERROR", "errorType": "RATE_LIMIT_EXCEEDED", "errorRatio": 0.003}
  ]
}`

const postmasterV1List = `{"trafficStats": [` + postmasterV1 + `,
  {"name": "domains/acme.io/trafficStats/20261121", "userReportedSpamRatio": 0.0008, "domainReputation": "HIGH"}],
  "nextPageToken": ""}`

// sampleCase is one real payload and the endpoint that takes it.
type sampleCase struct {
	name, path, contentType string
	body                    []byte
	src                     sgv1.Source
}

func realSamples(t *testing.T) []sampleCase {
	t.Helper()
	var out []sampleCase
	add := func(glob, path, ct string, src sgv1.Source) {
		files, err := filepath.Glob(filepath.Join(samplesDir, glob))
		if err != nil || len(files) == 0 {
			t.Fatalf("no samples for %s: %v", glob, err)
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(samplesDir, f)
			out = append(out, sampleCase{name: rel, path: path, contentType: ct, body: b, src: src})
		}
	}
	add("webhooks/ses/*.json", "/v1/webhooks/ses", "text/plain; charset=UTF-8", sgv1.Source_SOURCE_SES)
	add("webhooks/sendgrid/*.json", "/v1/webhooks/sendgrid", "application/json", sgv1.Source_SOURCE_SENDGRID)
	add("webhooks/mailgun/*.json", "/v1/webhooks/mailgun", "application/json", sgv1.Source_SOURCE_MAILGUN)
	add("webhooks/postmark/*.json", "/v1/webhooks/postmark", "application/json", sgv1.Source_SOURCE_POSTMARK)
	add("webhooks/sparkpost/*.json", "/v1/webhooks/sparkpost", "application/json", sgv1.Source_SOURCE_SPARKPOST)
	add("arf/*.eml", "/v1/feedback/arf", "message/rfc822", sgv1.Source_SOURCE_ARF)
	add("dsn/*.eml", "/v1/bounces/dsn", "message/rfc822", sgv1.Source_SOURCE_DSN)
	out = append(out,
		sampleCase{name: "postmaster/v1-trafficStats", path: "/v1/postmaster", contentType: "application/json", body: []byte(postmasterV1), src: sgv1.Source_SOURCE_POSTMASTER},
		sampleCase{name: "postmaster/v1-list", path: "/v1/postmaster", contentType: "application/json", body: []byte(postmasterV1List), src: sgv1.Source_SOURCE_POSTMASTER})
	return out
}

// TestEndpointsTakeRealSamples posts every real sample to its endpoint in
// front of a real broker: each is acknowledged with 202 (or refused with
// 400 and a reason when it holds nothing Sendguard counts), and every 202
// is on the raw topic as one envelope holding the exact bytes, with the
// key's tenant and the endpoint's source.
func TestEndpointsTakeRealSamples(t *testing.T) {
	pub, addr := brokerProducer(t, "")
	_, h := newServer(t, pub, Config{}, nil)
	cases := realSamples(t)
	accepted := map[string]sampleCase{} // envelope id → sample
	refused := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := request{path: tc.path, contentType: tc.contentType, body: tc.body, bearer: "k-acme"}.do(h)
			var body struct {
				Accepted    int      `json:"accepted"`
				EnvelopeIDs []string `json:"envelope_ids"`
				Error       string   `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("answer is not JSON: %q", rec.Body.String())
			}
			switch rec.Code {
			case http.StatusAccepted:
				if body.Accepted != 1 || len(body.EnvelopeIDs) != 1 {
					t.Fatalf("202 body %+v", body)
				}
				accepted[body.EnvelopeIDs[0]] = tc
			case http.StatusBadRequest:
				if body.Error == "" {
					t.Fatalf("400 without a reason")
				}
				refused++
				t.Logf("refused at the edge: %s", body.Error)
			default:
				t.Fatalf("code %d: %s", rec.Code, rec.Body.String())
			}
		})
	}
	// Nearly every real sample carries an event; the refusals are the
	// documented exceptions (pings, records without an opt-out, mail the
	// parser cannot use), far fewer than the samples.
	if len(accepted) < len(cases)*9/10 {
		t.Fatalf("accepted %d of %d samples", len(accepted), len(cases))
	}
	envs := readRaw(t, addr)
	if len(envs) != len(accepted) {
		t.Fatalf("raw topic holds %d envelopes, %d were acknowledged", len(envs), len(accepted))
	}
	for _, env := range envs {
		tc, ok := accepted[env.GetEnvelopeId()]
		if !ok {
			t.Fatalf("envelope %s was never acknowledged", env.GetEnvelopeId())
		}
		if !bytes.Equal(env.GetPayload(), tc.body) || env.GetTenant() != "acme" || env.GetSource() != tc.src {
			t.Errorf("%s: envelope tenant=%q source=%v payload equal=%v", tc.name, env.GetTenant(), env.GetSource(), bytes.Equal(env.GetPayload(), tc.body))
		}
		if tc.contentType != "" && env.GetContentType() != tc.contentType {
			t.Errorf("%s: content type %q", tc.name, env.GetContentType())
		}
	}
	t.Logf("%d samples: %d accepted, %d refused with 400", len(cases), len(accepted), refused)
}

// TestProviderEndpointErrors feeds every provider endpoint the error cases
// of the contract.
func TestProviderEndpointErrors(t *testing.T) {
	pub := &fakePublisher{}
	_, h := newServer(t, pub, Config{MaxBodyBytes: 64 << 10}, nil)
	endpoints := []struct{ path, ct string }{
		{"/v1/webhooks/ses", "application/json"},
		{"/v1/webhooks/sendgrid", "application/json"},
		{"/v1/webhooks/mailgun", "application/json"},
		{"/v1/webhooks/postmark", "application/json"},
		{"/v1/webhooks/sparkpost", "application/json"},
		{"/v1/feedback/arf", "message/rfc822"},
		{"/v1/bounces/dsn", "message/rfc822"},
		{"/v1/postmaster", "application/json"},
	}
	// The first sample of each endpoint that holds an event.
	good := map[string][]byte{}
	validate := edgeValidator(func() time.Time { return testNow })
	for _, tc := range realSamples(t) {
		if _, ok := good[tc.path]; ok {
			continue
		}
		if _, err := validate(&sgv1.RawEnvelope{Tenant: "acme", Source: tc.src, Payload: tc.body}); err == nil {
			good[tc.path] = tc.body
		}
	}
	for _, ep := range endpoints {
		cases := []struct {
			name string
			q    request
			code int
		}{
			{"empty body", request{body: []byte(" \n"), bearer: "k-acme"}, 400},
			{"malformed", request{body: []byte(`{"Type": "Notif`), bearer: "k-acme"}, 400},
			{"wrong shape", request{body: []byte(`[1, "two", {"three": 3}]`), bearer: "k-acme"}, 400},
			{"too large", request{body: bytes.Repeat([]byte("a"), 65<<10), bearer: "k-acme"}, 413},
			{"no credentials", request{body: good[ep.path]}, 401},
			{"unknown key", request{body: good[ep.path], bearer: "k-nope"}, 401},
			{"key in the URL", request{body: good[ep.path], query: "key=k-globex"}, 202},
			{"key as basic password", request{body: good[ep.path], basicUser: "any", basicPass: "k-globex"}, 202},
		}
		for _, tc := range cases {
			t.Run(strings.TrimPrefix(ep.path, "/v1/")+"/"+tc.name, func(t *testing.T) {
				tc.q.path, tc.q.contentType = ep.path, ep.ct
				rec := tc.q.do(h)
				if rec.Code != tc.code {
					t.Fatalf("code %d, want %d: %s", rec.Code, tc.code, rec.Body.String())
				}
				var body map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("answer is not JSON: %q", rec.Body.String())
				}
				if tc.code >= 400 && body["error"] == "" {
					t.Fatalf("no error: %v", body)
				}
			})
		}
	}
	// A bad value inside a provider payload is refused with the parser's
	// reason (which names the provider's field).
	t.Run("sendgrid bad timestamp", func(t *testing.T) {
		rec := request{path: "/v1/webhooks/sendgrid", bearer: "k-acme", contentType: "application/json",
			body: []byte(`[{"email":"bob@example.com","event":"delivered","timestamp":"yesterday","sg_event_id":"x"}]`)}.do(h)
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != 400 || !strings.Contains(body["error"], "timestamp") {
			t.Fatalf("code %d body %v", rec.Code, body)
		}
	})
}
