package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sendguard/sendguard/pkg/webhooksig"
	"github.com/sendguard/sendguard/pkg/webhooksig/webhooksigtest"
)

const snsTopic = "arn:aws:sns:us-east-1:1234567890:SES_Events"

func sample(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sigFixture is a stage whose tenant acme configured every provider's
// verification, with a confirmation endpoint standing in for SNS.
type sigFixture struct {
	h        http.Handler
	s        *Stage
	pub      *fakePublisher
	clock    *clock
	signer   *webhooksigtest.SNSSigner
	confirms atomic.Int32
	confirm  *httptest.Server
	logs     *observer.ObservedLogs
}

func newSigFixture(t *testing.T, confirm bool) *sigFixture {
	t.Helper()
	f := &sigFixture{pub: &fakePublisher{}, clock: newClock(testNow)}
	f.signer = webhooksigtest.NewSNSSigner(t, testNow)
	f.confirm = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("Action") != "ConfirmSubscription" || r.URL.Query().Get("Token") == "" {
			http.Error(w, "bad confirmation", http.StatusBadRequest)
			return
		}
		f.confirms.Add(1)
		_, _ = w.Write([]byte("<ConfirmSubscriptionResponse/>"))
	}))
	t.Cleanup(f.confirm.Close)
	var sc struct {
		Key string `json:"verification_public_key_base64_der"`
	}
	if err := json.Unmarshal(sample(t, "webhooks/sendgrid/stronggrid_signed-test-event-batch.headers"), &sc); err != nil {
		t.Fatal(err)
	}
	cfg := `
tenants:
  acme:
    sendgrid_public_key: ` + sc.Key + `
    mailgun_signing_key: TEST_WEBHOOK_SIGNING_KEY
    mailgun_replay_window: 5m
    postmark: {user: pm-hook, password: pm-secret}
    sparkpost: {user: sp-hook, password: sp-secret}
    sns:
      cert_files: [sns.pem]
      allowed_topic_arns: [` + snsTopic + `]
      confirm_subscriptions: ` + map[bool]string{true: "true", false: "false"}[confirm] + `
`
	set, err := webhooksig.Parse([]byte(cfg), func(string) ([]byte, error) { return f.signer.CertPEM, nil })
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	f.logs = logs
	f.s, f.h = newServer(t, f.pub, Config{Webhooks: set, Now: f.clock.Now, ConfirmClient: f.confirm.Client(),
		ConfirmTimeout: 2 * time.Second}, zap.New(core))
	return f
}

func (f *sigFixture) snsConfirmation(t *testing.T, typ string) []byte {
	t.Helper()
	u := f.confirm.URL + "/?Action=ConfirmSubscription&TopicArn=" + snsTopic + "&Token=2336412f37fb687f5d51"
	doc, _ := json.Marshal(map[string]string{
		"Type": typ, "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "Token": "2336412f37fb687f5d51",
		"TopicArn": snsTopic, "SubscribeURL": u, "Timestamp": "2026-11-22T11:59:00.000Z",
		"Message":        "You have chosen to subscribe to the topic " + snsTopic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		"SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
	})
	return f.signer.Sign(t, doc, "1")
}

func TestWebhookSignatures(t *testing.T) {
	f := newSigFixture(t, true)
	sgBody := sample(t, "webhooks/sendgrid/stronggrid_signed-test-event-batch.json")
	var sgHeaders map[string]string
	if err := json.Unmarshal(sample(t, "webhooks/sendgrid/stronggrid_signed-test-event-batch.headers"), &sgHeaders); err != nil {
		t.Fatal(err)
	}
	signed := map[string]string{
		webhooksig.SendGridSignatureHeader: sgHeaders[webhooksig.SendGridSignatureHeader],
		webhooksig.SendGridTimestampHeader: sgHeaders[webhooksig.SendGridTimestampHeader],
	}
	mgBody := sample(t, "webhooks/mailgun/anymail_delivered.json")
	mgAt := time.Unix(1534108637, 0).UTC() // the sample's signature timestamp
	fresh := func(key, token string) []byte {
		return webhooksigtest.ResignMailgun(t, sample(t, "webhooks/mailgun/mgdocs_delivered.json"), key, testNow, token)
	}
	pmBody := sample(t, "webhooks/postmark/anymail_bounce-hard.json")
	spBody := sample(t, "webhooks/sparkpost/gosparkpost-samples_bounce.json")
	sesBody := sample(t, "webhooks/ses/anymail_sns-notification-bounce.json")
	sesOtherTopic := bytes.ReplaceAll(sesBody, []byte(snsTopic), []byte("arn:aws:sns:us-east-1:666:other"))

	for _, tc := range []struct {
		name   string
		at     time.Time
		q      request
		code   int
		reason string // signature failure metric reason
	}{
		{"sendgrid signed sample", testNow, request{path: "/v1/webhooks/sendgrid", body: sgBody, query: "key=k-acme", header: signed}, 202, ""},
		{"sendgrid unsigned", testNow, request{path: "/v1/webhooks/sendgrid", body: sgBody, query: "key=k-acme"}, 401, "missing"},
		{"sendgrid body altered", testNow, request{path: "/v1/webhooks/sendgrid", body: bytes.Replace(sgBody, []byte("cat facts"), []byte("dog facts"), 1), query: "key=k-acme", header: signed}, 403, "bad_signature"},
		{"sendgrid other tenant needs no signature", testNow, request{path: "/v1/webhooks/sendgrid", body: sgBody, query: "key=k-globex"}, 202, ""},

		{"mailgun signed sample", mgAt.Add(10 * time.Second), request{path: "/v1/webhooks/mailgun", body: mgBody, bearer: "k-acme"}, 202, ""},
		{"mailgun replayed", mgAt.Add(20 * time.Second), request{path: "/v1/webhooks/mailgun", body: mgBody, bearer: "k-acme"}, 403, "replay"},
		{"mailgun stale", mgAt.Add(time.Hour), request{path: "/v1/webhooks/mailgun", body: mgBody, bearer: "k-acme"}, 403, "stale"},
		{"mailgun wrong key", testNow, request{path: "/v1/webhooks/mailgun", body: fresh("not-the-key", strings.Repeat("w", 50)), bearer: "k-acme"}, 403, "bad_signature"},
		{"mailgun fresh signature", testNow, request{path: "/v1/webhooks/mailgun", body: fresh("TEST_WEBHOOK_SIGNING_KEY", strings.Repeat("f", 50)), bearer: "k-acme"}, 202, ""},
		{"mailgun no signature object", testNow, request{path: "/v1/webhooks/mailgun", body: []byte(`{"event-data":{"event":"delivered"}}`), bearer: "k-acme"}, 401, "missing"},

		{"postmark basic auth + key in URL", testNow, request{path: "/v1/webhooks/postmark", body: pmBody, query: "key=k-acme", basicUser: "pm-hook", basicPass: "pm-secret"}, 202, ""},
		{"postmark without basic auth", testNow, request{path: "/v1/webhooks/postmark", body: pmBody, query: "key=k-acme"}, 401, "missing"},
		{"postmark wrong password", testNow, request{path: "/v1/webhooks/postmark", body: pmBody, query: "key=k-acme", basicUser: "pm-hook", basicPass: "guess"}, 403, "bad_credentials"},
		{"postmark api key as password is not the hook password", testNow, request{path: "/v1/webhooks/postmark", body: pmBody, basicUser: "pm-hook", basicPass: "k-acme"}, 403, "bad_credentials"},
		{"sparkpost basic auth", testNow, request{path: "/v1/webhooks/sparkpost", body: spBody, query: "key=k-acme", basicUser: "sp-hook", basicPass: "sp-secret"}, 202, ""},
		{"sparkpost postmark's credentials", testNow, request{path: "/v1/webhooks/sparkpost", body: spBody, query: "key=k-acme", basicUser: "pm-hook", basicPass: "pm-secret"}, 403, "bad_credentials"},

		{"ses signed v1", testNow, request{path: "/v1/webhooks/ses", body: f.signer.Sign(t, sesBody, "1"), query: "key=k-acme"}, 202, ""},
		{"ses signed v2", testNow, request{path: "/v1/webhooks/ses", body: f.signer.Sign(t, sesBody, "2"), query: "key=k-acme"}, 202, ""},
		{"ses sample's placeholder signature", testNow, request{path: "/v1/webhooks/ses", body: sesBody, query: "key=k-acme"}, 403, "bad_signature"},
		{"ses bare SES JSON (unsigned)", testNow, request{path: "/v1/webhooks/ses", body: sample(t, "webhooks/ses/awsdocs_event-bounce.json"), query: "key=k-acme"}, 401, "missing"},
		{"ses topic not allowed", testNow, request{path: "/v1/webhooks/ses", body: f.signer.Sign(t, sesOtherTopic, "2"), query: "key=k-acme"}, 403, "topic"},
		{"ses not JSON", testNow, request{path: "/v1/webhooks/ses", body: []byte("Type=Notification"), query: "key=k-acme"}, 400, "malformed"},
		{"ses signing cert expired", f.signer.NotAfter.Add(time.Hour), request{path: "/v1/webhooks/ses", body: f.signer.Sign(t, sesBody, "2"), query: "key=k-acme"}, 403, "bad_signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.Set(tc.at)
			before := len(f.pub.recs)
			var metricBefore float64
			if tc.reason != "" {
				metricBefore = testutil.ToFloat64(f.s.sigFailures.WithLabelValues("webhooks/"+strings.TrimPrefix(tc.q.path, "/v1/webhooks/"), "acme", tc.reason))
			}
			rec := tc.q.do(f.h)
			if rec.Code != tc.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.code, rec.Body.String())
			}
			published := len(f.pub.recs) - before
			if (tc.code == 202) != (published == 1) {
				t.Fatalf("published %d envelopes for a %d", published, tc.code)
			}
			if tc.reason != "" {
				got := testutil.ToFloat64(f.s.sigFailures.WithLabelValues("webhooks/"+strings.TrimPrefix(tc.q.path, "/v1/webhooks/"), "acme", tc.reason))
				if got != metricBefore+1 {
					t.Errorf("signature failure metric %q = %v, want %v", tc.reason, got, metricBefore+1)
				}
			}
		})
	}
	// Refusals are logged, without the secrets.
	refusals := f.logs.FilterMessage("webhook verification refused").All()
	if len(refusals) == 0 {
		t.Fatal("no refusal logged")
	}
	for _, e := range f.logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		for _, secret := range []string{"pm-secret", "sp-secret", "TEST_WEBHOOK_SIGNING_KEY", "k-acme", "guess"} {
			if strings.Contains(e.Message+string(line), secret) {
				t.Errorf("log %q %s contains a secret", e.Message, line)
			}
		}
	}
}

// A Mailgun delivery the broker did not take is retried by Mailgun with the
// same signed payload: the retry must not count as a replay.
func TestMailgunRetryAfterBrokerFailureIsNotAReplay(t *testing.T) {
	f := newSigFixture(t, true)
	body := webhooksigtest.ResignMailgun(t, sample(t, "webhooks/mailgun/anymail_failed-permanent.json"), "TEST_WEBHOOK_SIGNING_KEY", testNow, strings.Repeat("r", 50))
	q := request{path: "/v1/webhooks/mailgun", body: body, bearer: "k-acme"}
	f.pub.mu.Lock()
	f.pub.fail = errors.New("broker down")
	f.pub.mu.Unlock()
	if rec := q.do(f.h); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("broker down: %d %s", rec.Code, rec.Body.String())
	}
	f.pub.mu.Lock()
	f.pub.fail = nil
	f.pub.mu.Unlock()
	f.clock.Add(30 * time.Second)
	if rec := q.do(f.h); rec.Code != http.StatusAccepted {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body.String())
	}
	f.clock.Add(30 * time.Second)
	if rec := q.do(f.h); rec.Code != http.StatusForbidden {
		t.Fatalf("replay after acceptance: %d %s", rec.Code, rec.Body.String())
	}
}

func TestSNSSubscriptionConfirmation(t *testing.T) {
	t.Run("confirmed by fetching SubscribeURL", func(t *testing.T) {
		f := newSigFixture(t, true)
		rec := request{path: "/v1/webhooks/ses", body: f.snsConfirmation(t, "SubscriptionConfirmation"), query: "key=k-acme",
			header: map[string]string{"X-Amz-Sns-Message-Type": "SubscriptionConfirmation"}}.do(f.h)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "subscription confirmed") {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
		if f.confirms.Load() != 1 || len(f.pub.recs) != 0 {
			t.Fatalf("confirmations %d, published %d", f.confirms.Load(), len(f.pub.recs))
		}
	})
	t.Run("forged confirmation is not fetched", func(t *testing.T) {
		f := newSigFixture(t, true)
		forged := bytes.Replace(f.snsConfirmation(t, "SubscriptionConfirmation"), []byte("Token=2336412f37fb687f5d51"), []byte("Token=attacker"), 1)
		rec := request{path: "/v1/webhooks/ses", body: forged, query: "key=k-acme"}.do(f.h)
		if rec.Code != http.StatusForbidden || f.confirms.Load() != 0 {
			t.Fatalf("%d, confirmations %d", rec.Code, f.confirms.Load())
		}
	})
	t.Run("confirmation endpoint down is 503 so SNS retries", func(t *testing.T) {
		f := newSigFixture(t, true)
		body := f.snsConfirmation(t, "SubscriptionConfirmation")
		f.confirm.Close()
		rec := request{path: "/v1/webhooks/ses", body: body, query: "key=k-acme"}.do(f.h)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	})
	t.Run("confirm_subscriptions off: logged, not fetched", func(t *testing.T) {
		f := newSigFixture(t, false)
		rec := request{path: "/v1/webhooks/ses", body: f.snsConfirmation(t, "SubscriptionConfirmation"), query: "key=k-acme"}.do(f.h)
		if rec.Code != http.StatusOK || f.confirms.Load() != 0 {
			t.Fatalf("%d, confirmations %d", rec.Code, f.confirms.Load())
		}
		if len(f.logs.FilterMessageSnippet("confirm_subscriptions is off").All()) != 1 {
			t.Fatal("pending confirmation not logged")
		}
	})
	t.Run("unsubscribe confirmation", func(t *testing.T) {
		f := newSigFixture(t, true)
		rec := request{path: "/v1/webhooks/ses", body: f.snsConfirmation(t, "UnsubscribeConfirmation"), query: "key=k-acme"}.do(f.h)
		if rec.Code != http.StatusOK || f.confirms.Load() != 0 || len(f.pub.recs) != 0 {
			t.Fatalf("%d, confirmations %d, published %d", rec.Code, f.confirms.Load(), len(f.pub.recs))
		}
	})
	t.Run("a plain http SubscribeURL is refused", func(t *testing.T) {
		f := newSigFixture(t, true)
		plain := strings.Replace(f.confirm.URL, "https://", "http://", 1)
		body := f.signer.Sign(t, bytes.Replace(f.snsConfirmation(t, "SubscriptionConfirmation"), []byte(f.confirm.URL), []byte(plain), 1), "2")
		rec := request{path: "/v1/webhooks/ses", body: body, query: "key=k-acme"}.do(f.h)
		if rec.Code != http.StatusServiceUnavailable || f.confirms.Load() != 0 {
			t.Fatalf("%d, confirmations %d", rec.Code, f.confirms.Load())
		}
	})
}

func TestUnverifiedSNSConfirmationIsLogged(t *testing.T) {
	f := newSigFixture(t, true)
	// globex configured no sns section: its confirmation is accepted as a
	// payload, never fetched, and an operator is told.
	rec := request{path: "/v1/webhooks/ses", body: f.snsConfirmation(t, "SubscriptionConfirmation"), query: "key=k-globex"}.do(f.h)
	if rec.Code != http.StatusAccepted || f.confirms.Load() != 0 {
		t.Fatalf("%d, confirmations %d", rec.Code, f.confirms.Load())
	}
	if len(f.logs.FilterMessageSnippet("tenant without sns verification").All()) != 1 {
		t.Fatal("unconfirmed subscription not logged")
	}
}
