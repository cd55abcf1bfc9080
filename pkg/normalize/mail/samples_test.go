package mail

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var samplesDir = filepath.Join("..", "..", "..", "..", "shared", "samples")

var received = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func envelope(t testing.TB, src sgv1.Source, path string) *sgv1.RawEnvelope {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read sample: %v", err)
	}
	return &sgv1.RawEnvelope{
		EnvelopeId: "env-" + filepath.Base(path),
		Tenant:     "tenant-a",
		Source:     src,
		ReceivedAt: timestamppb.New(received),
		Payload:    raw,
	}
}

func sampleFiles(t *testing.T, kind string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(samplesDir, kind, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s samples under %s (err %v)", kind, samplesDir, err)
	}
	sort.Strings(files)
	return files
}

// checkCommon asserts what every parsed event must satisfy: lineage from
// the envelope, a deterministic id, lower-cased derived fields, and the
// canonical validation rules.
func checkCommon(t *testing.T, env *sgv1.RawEnvelope, ev *sgv1.Event) {
	t.Helper()
	if ev.GetTenant() != "tenant-a" || ev.GetEnvelopeId() != env.GetEnvelopeId() || ev.GetSource() != env.GetSource() {
		t.Errorf("lineage: tenant %q envelope %q source %v", ev.GetTenant(), ev.GetEnvelopeId(), ev.GetSource())
	}
	if !proto.Equal(ev.GetReceivedAt(), env.GetReceivedAt()) {
		t.Errorf("received_at %v, want %v", ev.GetReceivedAt(), env.GetReceivedAt())
	}
	if !strings.HasPrefix(ev.GetEventId(), "sg-") {
		t.Errorf("event_id %q", ev.GetEventId())
	}
	if r := ev.GetRecipient(); r != "" && ev.GetRecipientDomain() != r[strings.LastIndexByte(r, '@')+1:] {
		t.Errorf("recipient_domain %q for %q", ev.GetRecipientDomain(), r)
	}
	if ev.GetProvider() == sgv1.Provider_PROVIDER_UNSPECIFIED && ev.GetRecipientDomain() != "" {
		t.Errorf("provider not derived for %q", ev.GetRecipientDomain())
	}
	// Validate against a clock just after the event.
	v := ev
	if ev.GetOccurredAt().AsTime().Before(canonical.MinOccurredAt) {
		// Two samples are from the 1990s; the validator rightly refuses
		// such dates, which is not what this test is about.
		v = proto.CloneOf(ev)
		v.OccurredAt = env.GetReceivedAt()
	}
	if err := canonical.ValidateAt(v, v.GetOccurredAt().AsTime().Add(time.Hour)); err != nil {
		t.Errorf("canonical validation: %v", err)
	}
}

func TestParseARFSamples(t *testing.T) {
	byFile := map[string][]arfCase{}
	for _, c := range arfCases {
		byFile[c.file] = append(byFile[c.file], c)
	}
	for _, path := range sampleFiles(t, "arf") {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := byFile[name]
			if !ok {
				t.Fatalf("no expectation for %s: add rows to arfCases", name)
			}
			env := envelope(t, sgv1.Source_SOURCE_ARF, path)
			evs, err := ParseARF(env, Options{})
			if want[0].err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Error() != want[0].err || !pe.Permanent() {
					t.Fatalf("err = %v, want ParseError %q", err, want[0].err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseARF: %v", err)
			}
			if len(evs) != len(want) {
				t.Fatalf("%d events, want %d", len(evs), len(want))
			}
			for i, ev := range evs {
				w := want[i]
				c := ev.GetComplaint()
				got := arfCase{file: name, typ: canonical.TypeWord(ev.GetType()), rcpt: ev.GetRecipient(), sender: ev.GetSender(),
					feedback: canonical.Word(c.GetFeedbackType()), domain: c.GetReportedDomain(), ip: c.GetSourceIp()}
				if got != w {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, got, w)
				}
				if ev.GetType() == sgv1.EventType_EVENT_TYPE_COMPLAINED && c.GetSource() != sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL {
					t.Errorf("complaint source %v", c.GetSource())
				}
				checkCommon(t, env, ev)
			}
			again, _ := ParseARF(env, Options{})
			for i := range evs {
				if again[i].GetEventId() != evs[i].GetEventId() {
					t.Errorf("event_id not deterministic: %s vs %s", again[i].GetEventId(), evs[i].GetEventId())
				}
			}
		})
	}
}

func TestParseDSNSamples(t *testing.T) {
	byFile := map[string][]dsnCase{}
	for _, c := range dsnCases {
		byFile[c.file] = append(byFile[c.file], c)
	}
	for _, path := range sampleFiles(t, "dsn") {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := byFile[name]
			if !ok {
				t.Fatalf("no expectation for %s: add rows to dsnCases", name)
			}
			env := envelope(t, sgv1.Source_SOURCE_DSN, path)
			evs, err := ParseDSN(env, Options{})
			if want[0].err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Error() != want[0].err {
					t.Fatalf("err = %v, want ParseError %q", err, want[0].err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDSN: %v", err)
			}
			if len(evs) != len(want) {
				t.Fatalf("%d events, want %d", len(evs), len(want))
			}
			for i, ev := range evs {
				b := ev.GetBounce()
				got := dsnCase{file: name, typ: canonical.TypeWord(ev.GetType()), rcpt: ev.GetRecipient(),
					class: canonical.BounceClassWord(b.GetClass()), cat: canonical.BounceCategoryWord(b.GetCategory()),
					smtp: b.GetSmtpCode(), enh: b.GetEnhancedCode()}
				if got != want[i] {
					t.Errorf("event %d:\n got %+v\nwant %+v\ndiagnostic: %q", i, got, want[i], b.GetDiagnostic())
				}
				checkCommon(t, env, ev)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		parse   func(*sgv1.RawEnvelope, Options) ([]*sgv1.Event, error)
		reason  string
	}{
		{"dsn empty", "", ParseDSN, "empty payload"},
		{"arf empty", "", ParseARF, "empty payload"},
		{"dsn plain mail", "From: a@example.com\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nJust a note, see you tomorrow.\r\n", ParseDSN, "no delivery-status part and no recognisable bounce text"},
		{"arf plain mail", "From: a@example.com\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nhi\r\n", ParseARF, "no message/feedback-report part and no recognisable complaint"},
		{"dsn no recipients", "From: MAILER-DAEMON@example.com\r\nTo: a@example.com\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n--b--\r\n", ParseDSN, "delivery-status part names no recipient"},
		{"not a message", "\x00\x01\x02 garbage without headers", ParseDSN, "not an RFC 5322 message"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.parse(&sgv1.RawEnvelope{Payload: []byte(c.payload)}, Options{})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.Reason != c.reason {
				t.Errorf("reason %q, want %q", pe.Reason, c.reason)
			}
		})
	}
}

func TestAttributionHeaders(t *testing.T) {
	msg := "From: MAILER-DAEMON@mx.example.com\r\n" +
		"To: bounces@send.example.com\r\n" +
		"Date: Thu, 29 Apr 2021 23:34:45 +0000\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example.com\r\n\r\n" +
		"Final-Recipient: rfc822; Ann@Acme.Example.co.uk\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <ann@acme.example.co.uk>: user unknown\r\n" +
		"Last-Attempt-Date: Thu, 29 Apr 2021 23:30:00 +0000\r\n\r\n" +
		"Final-Recipient: rfc822; info@acme.example.co.uk\r\nAction: delayed\r\nStatus: 4.2.2\r\n" +
		"Diagnostic-Code: smtp; 452 4.2.2 mailbox full\r\n\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
		"From: Bob <Bob@Send.Example.com>\r\nTo: ann@acme.example.co.uk\r\nMessage-ID: <abc123@send.example.com>\r\n" +
		"X-Campaign-ID: spring-2021\r\nX-Variant-ID: B\r\nX-My-Step: 3\r\n\r\n" +
		"--b--\r\n"
	env := &sgv1.RawEnvelope{Tenant: "t", EnvelopeId: "e1", Source: sgv1.Source_SOURCE_DSN, Payload: []byte(msg)}
	evs, err := ParseDSN(env, Options{StepHeaders: []string{"X-My-Step"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	checks := []struct{ name, got, want string }{
		{"recipient", ev.GetRecipient(), "ann@acme.example.co.uk"},
		{"sender", ev.GetSender(), "bob@send.example.com"},
		{"sending_domain", ev.GetSendingDomain(), "send.example.com"},
		{"account", ev.GetAccount(), "example.co.uk"},
		{"message_id", ev.GetMessageId(), "abc123@send.example.com"},
		{"campaign", ev.GetCampaign(), "spring-2021"},
		{"variant", ev.GetVariant(), "B"},
		{"step", ev.GetStep(), "3"},
		{"reporting_mta", ev.GetBounce().GetReportingMta(), "mx.example.com"},
		{"occurred_at", ev.GetOccurredAt().AsTime().Format(time.RFC3339), "2021-04-29T23:30:00Z"},
		{"type 2", canonical.TypeWord(evs[1].GetType()), "deferred"},
		{"category 2", canonical.BounceCategoryWord(evs[1].GetBounce().GetCategory()), "mailbox_full"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !evs[1].GetRoleAccount() || evs[0].GetRoleAccount() {
		t.Errorf("role_account: %v %v", evs[0].GetRoleAccount(), evs[1].GetRoleAccount())
	}
	if evs[0].GetEventId() == evs[1].GetEventId() {
		t.Error("two recipients share an event id")
	}
	want := canonical.EventID("dsn", "abc123@send.example.com", "ann@acme.example.co.uk", "bounced")
	if ev.GetEventId() != want {
		t.Errorf("event_id %s, want %s", ev.GetEventId(), want)
	}
}

func TestARFAuthFailure(t *testing.T) {
	env := envelope(t, sgv1.Source_SOURCE_ARF, filepath.Join(samplesDir, "arf", "mailauth_rfc6591-auth-failure-dkim-bodyhash.eml"))
	evs, err := ParseARF(env, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := evs[0].GetAuth()
	if a.GetDkim() != sgv1.AuthResult_AUTH_RESULT_FAIL || a.GetAligned() {
		t.Errorf("auth = %v", a)
	}
}

func TestAutoReplyAndUnsubscribe(t *testing.T) {
	env := envelope(t, sgv1.Source_SOURCE_DSN, filepath.Join(samplesDir, "dsn", "sisimai_rfc3834-01.eml"))
	evs, err := ParseDSN(env, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := evs[0].GetReply(); r.GetCategory() != sgv1.ReplyCategory_REPLY_CATEGORY_OOO || r.GetRisk() != sgv1.Risk_RISK_LOW {
		t.Errorf("reply = %v", r)
	}
	env = envelope(t, sgv1.Source_SOURCE_ARF, filepath.Join(samplesDir, "arf", "sisimai_arf-26.eml"))
	evs, err = ParseARF(env, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if u := evs[0].GetUnsubscribe(); u.GetMethod() != sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK || u.GetScope() != sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL {
		t.Errorf("unsubscribe = %v", u)
	}
	if evs[0].GetSendingDomain() != "example.org" {
		t.Errorf("sending_domain %q", evs[0].GetSendingDomain())
	}
}
