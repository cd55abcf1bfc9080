package webhooksig_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/webhooksig"
	"github.com/sendguard/sendguard/pkg/webhooksig/webhooksigtest"
)

var samplesDir = filepath.Join("..", "..", "..", "shared", "samples", "webhooks")

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatalf("sample: %v", err)
	}
	return b
}

// sendgridSidecar is the key, timestamp and signature StrongGrid's test
// published with its signed payload.
type sendgridSidecar struct {
	Timestamp string `json:"X-Twilio-Email-Event-Webhook-Timestamp"`
	Signature string `json:"X-Twilio-Email-Event-Webhook-Signature"`
	Key       string `json:"verification_public_key_base64_der"`
}

func loadSendGridSample(t testing.TB) ([]byte, sendgridSidecar) {
	t.Helper()
	var sc sendgridSidecar
	if err := json.Unmarshal(readSample(t, "sendgrid/stronggrid_signed-test-event-batch.headers"), &sc); err != nil {
		t.Fatal(err)
	}
	return readSample(t, "sendgrid/stronggrid_signed-test-event-batch.json"), sc
}

func wantKind(t *testing.T, err error, kind webhooksig.Kind, reason string) {
	t.Helper()
	var we *webhooksig.Error
	if kind == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.As(err, &we) || we.Kind != kind || (reason != "" && we.Reason != reason) {
		t.Fatalf("error = %v (%#v), want kind %d reason %q", err, we, kind, reason)
	}
}

func TestSendGrid(t *testing.T) {
	body, sc := loadSendGridSample(t)
	signedAt := time.Unix(1606575372, 0)
	v, err := webhooksig.NewSendGrid(sc.Key, 0)
	if err != nil {
		t.Fatal(err)
	}
	aged, err := webhooksig.NewSendGrid(sc.Key, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(body, []byte("cat facts"), []byte("dog facts"), 1)
	for _, tc := range []struct {
		name    string
		v       *webhooksig.SendGrid
		sig, ts string
		body    []byte
		now     time.Time
		kind    webhooksig.Kind
		reason  string
	}{
		{"real sample verifies", v, sc.Signature, sc.Timestamp, body, time.Now(), 0, ""},
		{"within max age", aged, sc.Signature, sc.Timestamp, body, signedAt.Add(time.Minute), 0, ""},
		{"older than max age", aged, sc.Signature, sc.Timestamp, body, signedAt.Add(time.Hour), webhooksig.Invalid, "stale"},
		{"body changed", v, sc.Signature, sc.Timestamp, tampered, signedAt, webhooksig.Invalid, "bad_signature"},
		{"timestamp changed", v, sc.Signature, "1606575373", body, signedAt, webhooksig.Invalid, "bad_signature"},
		{"CRLF normalised away", v, sc.Signature, sc.Timestamp, bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")), signedAt, webhooksig.Invalid, "bad_signature"},
		{"not base64", v, "!!", sc.Timestamp, body, signedAt, webhooksig.Invalid, "bad_signature"},
		{"no signature", v, "", sc.Timestamp, body, signedAt, webhooksig.Missing, "missing"},
		{"no timestamp", v, sc.Signature, "", body, signedAt, webhooksig.Missing, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, tc.v.Verify(tc.sig, tc.ts, tc.body, tc.now), tc.kind, tc.reason)
		})
	}
	t.Run("bad keys", func(t *testing.T) {
		for _, k := range []string{"", "not base64 ***", "AAAA", sc.Key[:40]} {
			if _, err := webhooksig.ParseSendGridKey(k); err == nil {
				t.Errorf("ParseSendGridKey(%q) accepted", k)
			}
		}
	})
}

func TestMailgunSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(samplesDir, "mailgun", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no mailgun samples: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := webhooksig.ParseMailgunSignature(body)
			if err != nil {
				t.Fatal(err)
			}
			at := time.Unix(sig.Timestamp, 0)
			v, _ := webhooksig.NewMailgun("TEST_WEBHOOK_SIGNING_KEY", 5*time.Minute)
			if strings.HasPrefix(filepath.Base(file), "mgdocs_") {
				// The documentation's signature block was made with a key
				// nobody knows: it must not verify.
				_, err = v.Verify(body, at)
				wantKind(t, err, webhooksig.Invalid, "bad_signature")
				return
			}
			_, err = v.Verify(body, at.Add(30*time.Second))
			wantKind(t, err, 0, "")
			// The same delivery again is a replay.
			_, err = v.Verify(body, at.Add(time.Minute))
			wantKind(t, err, webhooksig.Invalid, "replay")
			// Another key does not verify it.
			other, _ := webhooksig.NewMailgun("another-key", 5*time.Minute)
			_, err = other.Verify(body, at)
			wantKind(t, err, webhooksig.Invalid, "bad_signature")
			// Too late: outside the window (fresh verifier, no token memory).
			late, _ := webhooksig.NewMailgun("TEST_WEBHOOK_SIGNING_KEY", 5*time.Minute)
			_, err = late.Verify(body, at.Add(6*time.Minute))
			wantKind(t, err, webhooksig.Invalid, "stale")
			_, err = late.Verify(body, at.Add(-6*time.Minute))
			wantKind(t, err, webhooksig.Invalid, "stale")
		})
	}
}

func TestMailgunReplayWindow(t *testing.T) {
	const key = "k-mailgun"
	body := readSample(t, "mailgun/mgdocs_delivered.json")
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	v, err := webhooksig.NewMailgun(key, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a := webhooksigtest.ResignMailgun(t, body, key, t0, strings.Repeat("a", 50))
	b := webhooksigtest.ResignMailgun(t, body, key, t0, strings.Repeat("b", 50))
	numeric := bytes.Replace(webhooksigtest.ResignMailgun(t, body, key, t0, strings.Repeat("c", 50)),
		[]byte(`"timestamp":"`+itoa(t0.Unix())+`"`), []byte(`"timestamp":`+itoa(t0.Unix())), 1)
	for _, tc := range []struct {
		name   string
		body   []byte
		now    time.Time
		kind   webhooksig.Kind
		reason string
	}{
		{"fresh", a, t0.Add(time.Second), 0, ""},
		{"same token again", a, t0.Add(90 * time.Second), webhooksig.Invalid, "replay"},
		{"other token", b, t0.Add(90 * time.Second), 0, ""},
		{"numeric timestamp", numeric, t0, 0, ""},
		{"token expired with its timestamp", a, t0.Add(3 * time.Minute), webhooksig.Invalid, "stale"},
		{"no signature object", []byte(`{"event-data":{}}`), t0, webhooksig.Missing, "missing"},
		{"empty token", []byte(`{"signature":{"timestamp":"1","token":"","signature":"00"}}`), t0, webhooksig.Missing, "missing"},
		{"not json", []byte(`event=delivered`), t0, webhooksig.Invalid, "malformed"},
		{"timestamp not seconds", []byte(`{"signature":{"timestamp":"soon","token":"t","signature":"00"}}`), t0, webhooksig.Invalid, "malformed"},
		{"signature not hex", []byte(`{"signature":{"timestamp":"1","token":"t","signature":"zz"}}`), t0, webhooksig.Invalid, "bad_signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.body, tc.now)
			wantKind(t, err, tc.kind, tc.reason)
		})
	}
	t.Run("released token is accepted again", func(t *testing.T) {
		d := webhooksigtest.ResignMailgun(t, body, key, t0, strings.Repeat("d", 50))
		release, err := v.Verify(d, t0)
		wantKind(t, err, 0, "")
		release()
		_, err = v.Verify(d, t0.Add(time.Second))
		wantKind(t, err, 0, "")
		_, err = v.Verify(d, t0.Add(2*time.Second))
		wantKind(t, err, webhooksig.Invalid, "replay")
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestMailgunForgetsExpiredTokens(t *testing.T) {
	const key = "k"
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	v, _ := webhooksig.NewMailgun(key, time.Minute)
	body := []byte(`{"event-data":{}}`)
	for i := range 3000 {
		at := t0.Add(time.Duration(i) * time.Second)
		tok := "tok-" + itoa(int64(i))
		if _, err := v.Verify(webhooksigtest.ResignMailgun(t, body, key, at, tok), at); err != nil {
			t.Fatal(err)
		}
	}
	// At most about two windows' worth of tokens (60 s, one per second) plus
	// the prune threshold are held, not all 3000.
	if n := webhooksig.Remembered(v); n > 1100 {
		t.Fatalf("remembers %d tokens", n)
	}
}

func TestBasicAuth(t *testing.T) {
	b, err := webhooksig.NewBasicAuth("hook", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
		kind             webhooksig.Kind
	}{
		{"match", "hook", "s3cret", true, 0},
		{"wrong password", "hook", "s3cret!", true, webhooksig.Invalid},
		{"wrong user", "Hook", "s3cret", true, webhooksig.Invalid},
		{"none", "", "", false, webhooksig.Missing},
	} {
		t.Run(tc.name, func(t *testing.T) { wantKind(t, b.Verify(tc.user, tc.pass, tc.ok), tc.kind, "") })
	}
	if _, err := webhooksig.NewBasicAuth("u", ""); err == nil {
		t.Error("empty password accepted")
	}
}

const topic = "arn:aws:sns:us-east-1:1234567890:SES_Events"

func TestSNS(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	signer := webhooksigtest.NewSNSSigner(t, now)
	other := webhooksigtest.NewSNSSigner(t, now)
	v, err := webhooksig.NewSNS([][]byte{other.CertPEM, signer.CertPEM}, []string{topic}, true)
	if err != nil {
		t.Fatal(err)
	}
	bounce := readSample(t, "ses/anymail_sns-notification-bounce.json")
	reject := readSample(t, "ses/anymail_sns-event-reject.json")
	confirm := []byte(`{"Type":"SubscriptionConfirmation","MessageId":"165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
	 "Token":"2336412f37","TopicArn":"` + topic + `",
	 "Message":"You have chosen to subscribe to the topic ` + topic + `.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
	 "SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=` + topic + `&Token=2336412f37",
	 "Timestamp":"2012-04-26T20:45:04.751Z","SigningCertURL":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"}`)
	unsub := bytes.Replace(confirm, []byte(`"SubscriptionConfirmation"`), []byte(`"UnsubscribeConfirmation"`), 1)
	otherTopic := bytes.ReplaceAll(bounce, []byte(topic), []byte("arn:aws:sns:us-east-1:666:evil"))
	tamperedMsg := bytes.Replace(signer.Sign(t, bounce, "1"), []byte("jane@example.com"), []byte("john@example.com"), 1)
	unsigned := bounce // the sample's "EXAMPLE-SIGNATURE==" is not a signature
	var noSig map[string]any
	_ = json.Unmarshal(bounce, &noSig)
	delete(noSig, "Signature")
	noSigBody, _ := json.Marshal(noSig)
	for _, tc := range []struct {
		name   string
		body   []byte
		now    time.Time
		kind   webhooksig.Kind
		reason string
	}{
		{"notification v1", signer.Sign(t, bounce, "1"), now, 0, ""},
		{"notification v2", signer.Sign(t, bounce, "2"), now, 0, ""},
		// The anymail reject sample has no TopicArn: refused as it is,
		// accepted once it names the allowed topic.
		{"event publishing without topic", signer.Sign(t, reject, "2"), now, webhooksig.Invalid, "topic"},
		{"event publishing v2", signer.Sign(t, withTopic(t, reject), "2"), now, 0, ""},
		{"subscription confirmation", signer.Sign(t, confirm, "1"), now, 0, ""},
		{"unsubscribe confirmation", signer.Sign(t, unsub, "2"), now, 0, ""},
		{"topic not allowed", signer.Sign(t, otherTopic, "2"), now, webhooksig.Invalid, "topic"},
		{"message changed after signing", tamperedMsg, now, webhooksig.Invalid, "bad_signature"},
		{"sample placeholder signature", unsigned, now, webhooksig.Invalid, "bad_signature"},
		{"no signature", noSigBody, now, webhooksig.Missing, "missing"},
		{"unknown version", bytes.Replace(signer.Sign(t, bounce, "2"), []byte(`"SignatureVersion": "2"`), []byte(`"SignatureVersion": "3"`), 1), now, webhooksig.Invalid, "bad_signature"},
		{"certificate expired", signer.Sign(t, bounce, "2"), signer.NotAfter.Add(time.Hour), webhooksig.Invalid, "bad_signature"},
		{"bare SES JSON", readSample(t, "ses/awsdocs_event-bounce.json"), now, webhooksig.Missing, "missing"},
		{"not json", []byte("Type=Notification"), now, webhooksig.Invalid, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := v.Verify(tc.body, tc.now)
			wantKind(t, err, tc.kind, tc.reason)
			if err == nil && m.TopicArn != topic {
				t.Errorf("topic = %q", m.TopicArn)
			}
		})
	}
}

func withTopic(t *testing.T, body []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	doc["TopicArn"] = topic
	out, _ := json.Marshal(doc)
	return out
}

func TestSNSStringToSign(t *testing.T) {
	subj := "Hello"
	m := &webhooksig.SNSMessage{Type: "Notification", MessageID: "id", TopicArn: "arn", Subject: &subj, Message: "a\nb", Timestamp: "ts"}
	got, err := m.StringToSign()
	if err != nil {
		t.Fatal(err)
	}
	if want := "Message\na\nb\nMessageId\nid\nSubject\nHello\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"; got != want {
		t.Errorf("notification:\n%q\nwant\n%q", got, want)
	}
	m = &webhooksig.SNSMessage{Type: "SubscriptionConfirmation", MessageID: "id", Token: "tok", TopicArn: "arn", Message: "m", Timestamp: "ts", SubscribeURL: "u"}
	got, _ = m.StringToSign()
	if want := "Message\nm\nMessageId\nid\nSubscribeURL\nu\nTimestamp\nts\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n"; got != want {
		t.Errorf("confirmation:\n%q\nwant\n%q", got, want)
	}
	if _, err := (&webhooksig.SNSMessage{Type: "Other"}).StringToSign(); err == nil {
		t.Error("unknown type accepted")
	}
}

func TestConfig(t *testing.T) {
	_, sc := loadSendGridSample(t)
	now := time.Now()
	signer := webhooksigtest.NewSNSSigner(t, now)
	files := map[string][]byte{"sns.pem": signer.CertPEM, "junk.pem": []byte("not a cert")}
	read := func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, os.ErrNotExist
	}
	good := `
tenants:
  acme:
    sendgrid_public_key: ` + sc.Key + `
    mailgun_signing_key: TEST_WEBHOOK_SIGNING_KEY
    mailgun_replay_window: 10m
    postmark: {user: pm, password: pm-secret}
    sparkpost: {user: sp, password: sp-secret}
    sns:
      cert_files: [sns.pem]
      allowed_topic_arns: [` + topic + `]
      confirm_subscriptions: true
  globex:
    mailgun_signing_key: other
`
	set, err := webhooksig.Parse([]byte(good), read)
	if err != nil {
		t.Fatal(err)
	}
	acme := set.Tenant("acme")
	if acme == nil || acme.SendGrid == nil || acme.Mailgun == nil || acme.Postmark == nil || acme.SparkPost == nil || acme.SNS == nil || !acme.SNS.Confirm {
		t.Fatalf("acme = %+v", acme)
	}
	if g := set.Tenant("globex"); g == nil || g.SendGrid != nil || g.Mailgun == nil {
		t.Fatalf("globex = %+v", g)
	}
	if set.Tenant("initech") != nil || (*webhooksig.Set)(nil).Tenant("acme") != nil {
		t.Error("unconfigured tenant has verifiers")
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad sendgrid key", "tenants: {a: {sendgrid_public_key: AAAA}}", `tenant "a": sendgrid_public_key`},
		{"rsa key for sendgrid", "tenants: {a: {sendgrid_public_key: " + rsaSPKI(t, signer) + "}}", "P-256"},
		{"bad window", "tenants: {a: {mailgun_signing_key: k, mailgun_replay_window: soon}}", "mailgun_replay_window"},
		{"window too long", "tenants: {a: {mailgun_signing_key: k, mailgun_replay_window: 48h}}", "at most 24h"},
		{"window without key", "tenants: {a: {mailgun_replay_window: 5m}}", "without mailgun_signing_key"},
		{"postmark without password", "tenants: {a: {postmark: {user: u}}}", "postmark"},
		{"missing cert file", "tenants: {a: {sns: {cert_files: [nope.pem], allowed_topic_arns: [" + topic + "]}}}", "cert_files"},
		{"junk cert", "tenants: {a: {sns: {cert_files: [junk.pem], allowed_topic_arns: [" + topic + "]}}}", "no PEM"},
		{"no topics", "tenants: {a: {sns: {cert_files: [sns.pem]}}}", "topic ARN"},
		{"bad topic", "tenants: {a: {sns: {cert_files: [sns.pem], allowed_topic_arns: [SES_Events]}}}", "not a topic ARN"},
		{"unknown key", "tenants: {a: {sendgrid_key: x}}", "sendgrid_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhooksig.Parse([]byte(tc.yaml), read)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			for _, secret := range []string{"pm-secret", "TEST_WEBHOOK_SIGNING_KEY"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

func TestLoadResolvesCertsNextToTheFile(t *testing.T) {
	dir := t.TempDir()
	signer := webhooksigtest.NewSNSSigner(t, time.Now())
	if err := os.WriteFile(filepath.Join(dir, "sns.pem"), signer.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "webhooks.yaml")
	if err := os.WriteFile(cfg, []byte("tenants:\n  acme:\n    sns:\n      cert_files: [sns.pem]\n      allowed_topic_arns: ["+topic+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := webhooksig.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if set.Tenant("acme").SNS == nil {
		t.Fatal("sns not configured")
	}
	if _, err := webhooksig.Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}
