package webhooksig_test

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/webhooksig"
	"github.com/sendguard/sendguard/pkg/webhooksig/webhooksigtest"
)

func rsaSPKI(t testing.TB, s *webhooksigtest.SNSSigner) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// kindOf checks that err is nil or a *webhooksig.Error of a known kind.
func kindOf(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var we *webhooksig.Error
	if !errors.As(err, &we) || (we.Kind != webhooksig.Missing && we.Kind != webhooksig.Invalid) || we.Reason == "" {
		t.Fatalf("error %T %v is not a classified *webhooksig.Error", err, err)
	}
}

func FuzzMailgun(f *testing.F) {
	f.Add(readSample(f, "mailgun/anymail_delivered.json"))
	f.Add(readSample(f, "mailgun/mgdocs_failed-permanent.json"))
	f.Add([]byte(`{"signature":{"timestamp":1534108637,"token":"t","signature":"00"}}`))
	f.Add([]byte(`{"signature":null}`))
	f.Add([]byte(`{"signature":{"timestamp":"-1","token":"t","signature":""}}`))
	v, _ := webhooksig.NewMailgun("TEST_WEBHOOK_SIGNING_KEY", time.Minute)
	now := time.Unix(1534108637, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := v.Verify(body, now)
		kindOf(t, err)
		if sig, err := webhooksig.ParseMailgunSignature(body); err == nil && sig.Token == "" {
			t.Fatal("parsed a signature without a token")
		}
	})
}

func FuzzSNS(f *testing.F) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	signer := webhooksigtest.NewSNSSigner(f, now)
	f.Add(signer.Sign(f, readSample(f, "ses/anymail_sns-notification-bounce.json"), "1"))
	f.Add(signer.Sign(f, readSample(f, "ses/anymail_sns-event-reject.json"), "2"))
	f.Add(readSample(f, "ses/awsdocs_event-bounce.json"))
	f.Add([]byte(`{"Type":"SubscriptionConfirmation","Signature":"AA==","SignatureVersion":"1"}`))
	f.Add([]byte(`{"Type":"Notification","Subject":null,"Signature":"","SignatureVersion":"2"}`))
	v, err := webhooksig.NewSNS([][]byte{signer.CertPEM}, []string{topic}, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := v.Verify(body, now)
		kindOf(t, err)
		if err == nil && m.TopicArn != topic {
			t.Fatalf("verified a message of topic %q", m.TopicArn)
		}
		if m, err := webhooksig.ParseSNS(body); err == nil {
			_, _ = m.StringToSign()
		}
	})
}

func FuzzSendGrid(f *testing.F) {
	body, sc := loadSendGridSample(f)
	f.Add(sc.Signature, sc.Timestamp, body)
	f.Add("", "", []byte("[]"))
	f.Add("MEUCIQ==", "1", []byte("{}"))
	v, err := webhooksig.NewSendGrid(sc.Key, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sig, ts string, body []byte) {
		kindOf(t, v.Verify(sig, ts, body, time.Unix(1606575372, 0)))
		_, _ = webhooksig.ParseSendGridKey(sig)
	})
}

func FuzzConfig(f *testing.F) {
	f.Add([]byte("tenants:\n  a:\n    mailgun_signing_key: k\n    mailgun_replay_window: 5m\n"))
	f.Add([]byte("tenants: {a: {postmark: {user: u, password: p}, sns: {cert_files: [x], allowed_topic_arns: [arn:aws:sns:r:1:t]}}}"))
	f.Add([]byte("tenants: [1, 2]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := webhooksig.Parse(data, func(string) ([]byte, error) { return nil, errors.New("no files") })
		if err == nil {
			for _, name := range set.Tenants() {
				if set.Tenant(name) == nil {
					t.Fatalf("listed tenant %q has no verifiers", name)
				}
			}
		}
	})
}
