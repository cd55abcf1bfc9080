package normalize

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// samplesDir is /work/shared/samples seen from this package's directory
// (/work/main/pkg/normalize).
var samplesDir = filepath.Join("..", "..", "..", "shared", "samples")

// testNow is after every sample's event time.
var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

var testReceivedAt = time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)

func testOptions() Options { return Options{Now: func() time.Time { return testNow }} }

func envelope(src sgv1.Source, payload []byte) *sgv1.RawEnvelope {
	return &sgv1.RawEnvelope{
		EnvelopeId: "env-1",
		Tenant:     "tenant-a",
		Source:     src,
		ReceivedAt: timestamppb.New(testReceivedAt),
		Payload:    payload,
	}
}

// want is what one event of a sample must carry: type, recipient, sender
// ("" = none), bounce class and category, SMTP and enhanced codes.
type want struct {
	typ, rcpt, sender, class, category string
	smtp                               int32
	enhanced                           string
}

// sampleCases covers every file under samples/webhooks; TestSamples fails
// when a file has no case. errs is the number of items expected to fail.
var sampleCases = []struct {
	file   string
	errs   int
	events []want
	// note explains an expectation that depends on another package.
	note string
}{
	{file: "mailgun/anymail_clicked.json", errs: 0, events: []want{
		{"clicked", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "mailgun/anymail_complained.json", errs: 0, events: []want{
		{"complained", "recipient@example.com", "sender@example.org", "", "", 0, ""},
	}},
	{file: "mailgun/anymail_delivered.json", errs: 0, events: []want{
		{"delivered", "recipient@example.com", "test@example.org", "", "", 0, ""},
	}},
	{file: "mailgun/anymail_failed-permanent.json", errs: 0, events: []want{
		{"bounced", "invalid@example.com", "", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "mailgun/anymail_failed-temporary-greylisted.json", errs: 0, events: []want{
		{"deferred", "undeliverable@mx.example.com", "", "soft", "rate_limited", 450, ""},
	}},
	{file: "mailgun/anymail_failed-temporary-nomx.json", errs: 0, events: []want{
		{"deferred", "undeliverable@nomx.example.com", "", "soft", "dns", 498, ""},
	}},
	{file: "mailgun/anymail_opened.json", errs: 0, events: []want{
		{"opened", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "mailgun/anymail_rejected.json", errs: 0, events: []want{
		{"rejected", "recipient@example.org", "test@sandbox55887.mailgun.org", "soft", "other", 0, ""},
	}},
	{file: "mailgun/anymail_unsubscribed.json", errs: 0, events: []want{
		{"unsubscribed", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "mailgun/mgdocs_accepted-routed.json", errs: 0, events: []want{
		{"sent", "john@example.com", "sender@example.org", "", "", 0, ""},
	}},
	{file: "mailgun/mgdocs_accepted.json", errs: 0, events: []want{
		{"sent", "team@example.org", "sender@example.org", "", "", 0, ""},
	}},
	{file: "mailgun/mgdocs_clicked.json", errs: 0, events: []want{
		{"clicked", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "mailgun/mgdocs_complained.json", errs: 0, events: []want{
		{"complained", "foo@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "mailgun/mgdocs_delivered.json", errs: 0, events: []want{
		{"delivered", "john@example.com", "sender@example.org", "", "", 0, ""},
	}},
	{file: "mailgun/mgdocs_failed-permanent-delayed-bounce.json", errs: 0, events: []want{
		{"bounced", "christest123@test.com", "test@test.com", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "mailgun/mgdocs_failed-permanent.json", errs: 0, events: []want{
		{"rejected", "slava@mailgun.com", "john@example.org", "hard", "invalid_mailbox", 0, ""},
	}},
	{file: "mailgun/mgdocs_failed-temporary.json", errs: 0, note: "Microsoft 451 4.7.652 'exceeded the maximum number of connections' is a rate limit: classify.Bounce must say rate_limited", events: []want{
		{"deferred", "test@test.com", "test@test.com", "soft", "rate_limited", 451, "4.7.652"},
	}},
	{file: "mailgun/mgdocs_opened.json", errs: 0, events: []want{
		{"opened", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "mailgun/mgdocs_rejected.json", errs: 0, events: []want{
		{"rejected", "joan@example.org", "john@sandbox55887fac92de874df5ae0023b75fd62f1d.mailgun.org", "soft", "other", 0, ""},
	}},
	{file: "mailgun/mgdocs_unsubscribed.json", errs: 0, events: []want{
		{"unsubscribed", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "postmark/anymail_bounce-hard.json", errs: 0, events: []want{
		{"bounced", "bounce@example.com", "sender@example.com", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "postmark/anymail_bounce-type-unsubscribe.json", errs: 1, events: []want{}},
	{file: "postmark/anymail_click.json", errs: 0, events: []want{
		{"clicked", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "postmark/anymail_delivery.json", errs: 0, events: []want{
		{"delivered", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "postmark/anymail_open.json", errs: 0, events: []want{
		{"opened", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "postmark/anymail_spam-complaint.json", errs: 0, events: []want{
		{"complained", "spam@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "postmark/anymail_subscription-change-hardbounce.json", errs: 0, events: []want{}},
	{file: "postmark/anymail_subscription-change-resubscribe.json", errs: 0, events: []want{}},
	{file: "postmark/anymail_subscription-change-unsubscribe.json", errs: 0, events: []want{
		{"unsubscribed", "john@example.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/anymail_bounce.json", errs: 0, events: []want{
		{"bounced", "noreply@example.com", "", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "sendgrid/anymail_click.json", errs: 0, events: []want{
		{"clicked", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/anymail_deferred.json", errs: 0, events: []want{
		{"deferred", "recipient@example.com", "", "soft", "rate_limited", 0, ""},
	}},
	{file: "sendgrid/anymail_delivered.json", errs: 0, events: []want{
		{"delivered", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/anymail_dropped-bounced-address.json", errs: 0, events: []want{
		{"rejected", "example@example.com", "", "hard", "policy_block", 0, "5.0.0"},
	}},
	{file: "sendgrid/anymail_dropped-invalid.json", errs: 0, events: []want{
		{"rejected", "invalid@invalid", "", "hard", "policy_block", 0, ""},
	}},
	{file: "sendgrid/anymail_dropped-unsubscribed.json", errs: 0, events: []want{
		{"rejected", "unsubscribe@example.com", "", "hard", "policy_block", 0, ""},
	}},
	{file: "sendgrid/anymail_open.json", errs: 0, events: []want{
		{"opened", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/anymail_processed.json", errs: 0, events: []want{
		{"sent", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/sisimai_json-sendgrid-12.json", errs: 0, events: []want{
		{"bounced", "mailboxfull@example.jp", "", "soft", "mailbox_full", 550, "5.2.2"},
	}},
	{file: "sendgrid/sisimai_json-sendgrid-13.json", errs: 0, events: []want{
		{"delivered", "kijitora@example.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/sisimai_json-sendgrid-14.json", errs: 0, events: []want{
		{"bounced", "kijitora@example.jp", "", "hard", "invalid_mailbox", 525, "5.7.13"},
	}},
	{file: "sendgrid/sisimai_json-sendgrid-15.json", errs: 0, events: []want{
		{"complained", "kijitora@example.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/stronggrid_bounce-type-blocked.json", errs: 0, events: []want{
		{"bounced", "example@test.com", "", "hard", "invalid_mailbox", 500, "5.0.0"},
	}},
	{file: "sendgrid/stronggrid_group-resubscribe.json", errs: 0, events: []want{}},
	{file: "sendgrid/stronggrid_group-unsubscribe.json", errs: 0, events: []want{
		{"unsubscribed", "example@test.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/stronggrid_signed-test-event-batch.json", errs: 0, events: []want{
		{"sent", "example@test.com", "", "", "", 0, ""},
		{"deferred", "example@test.com", "", "soft", "rate_limited", 400, ""},
		{"delivered", "example@test.com", "", "", "", 0, ""},
		{"opened", "example@test.com", "", "", "", 0, ""},
		{"clicked", "example@test.com", "", "", "", 0, ""},
		{"bounced", "example@test.com", "", "hard", "invalid_mailbox", 500, "5.0.0"},
		{"rejected", "example@test.com", "", "hard", "policy_block", 0, "5.0.0"},
		{"complained", "example@test.com", "", "", "", 0, ""},
		{"unsubscribed", "example@test.com", "", "", "", 0, ""},
		{"unsubscribed", "example@test.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/stronggrid_spamreport.json", errs: 0, events: []want{
		{"complained", "example@test.com", "", "", "", 0, ""},
	}},
	{file: "sendgrid/stronggrid_unsubscribe.json", errs: 0, events: []want{
		{"unsubscribed", "example@test.com", "", "", "", 0, ""},
	}},
	{file: "ses/anymail_sns-event-reject.json", errs: 0, events: []want{
		{"rejected", "recipient@example.com", "", "hard", "content", 0, ""},
	}},
	{file: "ses/anymail_sns-notification-bounce-two-recipients.json", errs: 0, events: []want{
		{"bounced", "jane@example.com", "", "hard", "other", 0, ""},
		{"bounced", "richard@example.com", "", "hard", "other", 0, ""},
	}},
	{file: "ses/anymail_sns-notification-bounce.json", errs: 0, events: []want{
		{"bounced", "jane@example.com", "john@example.com", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "ses/awsdocs_event-bounce.json", errs: 0, events: []want{
		{"bounced", "recipient@example.com", "sender@example.com", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "ses/awsdocs_event-click.json", errs: 0, events: []want{
		{"clicked", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "ses/awsdocs_event-complaint.json", errs: 0, events: []want{
		{"complained", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "ses/awsdocs_event-delivery.json", errs: 0, events: []want{
		{"delivered", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "ses/awsdocs_event-deliverydelay.json", errs: 0, events: []want{
		{"deferred", "recipient@example.com", "sender@example.com", "soft", "dns", 421, "4.4.1"},
	}},
	{file: "ses/awsdocs_event-open.json", errs: 0, events: []want{
		{"opened", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "ses/awsdocs_event-reject.json", errs: 0, events: []want{
		{"rejected", "sender@example.com", "sender@example.com", "hard", "content", 0, ""},
	}},
	{file: "ses/awsdocs_event-rendering-failure.json", errs: 0, events: []want{
		{"rejected", "recipient@example.com", "sender@example.com", "soft", "other", 0, ""},
	}},
	{file: "ses/awsdocs_event-send.json", errs: 0, events: []want{
		{"sent", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "ses/awsdocs_event-subscription.json", errs: 0, events: []want{
		{"unsubscribed", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "ses/awsdocs_notification-bounce-no-dsn.json", errs: 0, events: []want{
		{"bounced", "jane@example.com", "john@example.com", "hard", "other", 0, ""},
		{"bounced", "richard@example.com", "john@example.com", "hard", "other", 0, ""},
	}},
	{file: "ses/awsdocs_notification-bounce-with-dsn.json", errs: 0, events: []want{
		{"bounced", "jane@example.com", "john@example.com", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "ses/awsdocs_notification-complaint-no-feedback-report.json", errs: 0, events: []want{
		{"complained", "richard@example.com", "john@example.com", "", "", 0, ""},
	}},
	{file: "ses/awsdocs_notification-complaint-with-feedback-report.json", errs: 0, events: []want{
		{"complained", "richard@example.com", "john@example.com", "", "", 0, ""},
	}},
	{file: "ses/awsdocs_notification-delivery.json", errs: 0, events: []want{
		{"delivered", "jane@example.com", "john@example.com", "", "", 0, ""},
	}},
	{file: "ses/sisimai_json-amazonses-01.json", errs: 0, events: []want{
		{"bounced", "bounce@simulator.amazonses.com", "kijitora@neko.example.org", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "ses/sisimai_json-amazonses-02.json", errs: 0, events: []want{
		{"bounced", "bounce@simulator.amazonses.com", "kijitora@neko.example.org", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "ses/sisimai_json-amazonses-03.json", errs: 0, events: []want{
		{"complained", "complaint@simulator.amazonses.com", "kijitora@neko.example.jp", "", "", 0, ""},
	}},
	{file: "ses/sisimai_json-amazonses-04.json", errs: 0, events: []want{
		{"delivered", "success@simulator.amazonses.com", "kijitora@neko.example.jp", "", "", 0, ""},
	}},
	{file: "ses/sisimai_json-amazonses-06.json", errs: 0, events: []want{
		{"bounced", "bounce@simulator.amazonses.com", "xxx@xxx", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "sparkpost/anymail_amp-click.json", errs: 0, events: []want{
		{"clicked", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "sparkpost/anymail_amp-events-batch.json", errs: 3, events: []want{}},
	{file: "sparkpost/anymail_bounce-class10.json", errs: 0, events: []want{
		{"bounced", "bounce@example.com", "", "hard", "invalid_mailbox", 550, "5.1.1"},
	}},
	{file: "sparkpost/anymail_bounce-class60-autoreply.json", errs: 0, events: []want{
		{"replied", "vacationing@example.com", "", "", "", 0, ""},
	}},
	{file: "sparkpost/anymail_delay-class21.json", errs: 0, events: []want{
		{"deferred", "recipient@nomx.example.com", "", "soft", "dns", 454, "4.4.4"},
	}},
	{file: "sparkpost/anymail_generation-rejection.json", errs: 0, events: []want{
		{"rejected", "suppressed@example.com", "", "hard", "policy_block", 554, "5.7.1"},
	}},
	{file: "sparkpost/anymail_initial-open.json", errs: 0, events: []want{
		{"opened", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "sparkpost/anymail_ping-empty-msys.json", errs: 0, events: []want{}},
	{file: "sparkpost/gosparkpost-samples_bounce.json", errs: 0, events: []want{
		{"bounced", "recipient@example.com", "sender@example.com", "hard", "spam_block", 554, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_click.json", errs: 0, events: []want{
		{"clicked", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_delay.json", errs: 0, events: []want{
		{"deferred", "recipient@example.com", "sender@example.com", "soft", "spam_block", 554, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_delivery.json", errs: 0, events: []want{
		{"delivered", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_generation-failure.json", errs: 0, events: []want{
		{"rejected", "recipient@example.com", "sender@example.com", "hard", "spam_block", 554, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_generation-rejection.json", errs: 0, events: []want{
		{"rejected", "recipient@example.com", "sender@example.com", "hard", "spam_block", 554, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_injection.json", errs: 0, events: []want{
		{"sent", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_link-unsubscribe.json", errs: 0, events: []want{
		{"unsubscribed", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_list-unsubscribe.json", errs: 0, events: []want{
		{"unsubscribed", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_open.json", errs: 0, events: []want{
		{"opened", "recipient@example.com", "", "", "", 0, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_out-of-band.json", errs: 0, events: []want{
		{"bounced", "recipient@example.com", "sender@example.com", "hard", "spam_block", 554, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_policy-rejection.json", errs: 0, events: []want{
		{"rejected", "recipient@example.com", "sender@example.com", "hard", "spam_block", 554, ""},
	}},
	{file: "sparkpost/gosparkpost-samples_spam-complaint.json", errs: 0, events: []want{
		{"complained", "recipient@example.com", "sender@example.com", "", "", 0, ""},
	}},
}

var sampleSources = map[string]sgv1.Source{
	"ses": sgv1.Source_SOURCE_SES, "sendgrid": sgv1.Source_SOURCE_SENDGRID, "mailgun": sgv1.Source_SOURCE_MAILGUN,
	"postmark": sgv1.Source_SOURCE_POSTMARK, "sparkpost": sgv1.Source_SOURCE_SPARKPOST,
}

func TestSamples(t *testing.T) {
	root := filepath.Join(samplesDir, "webhooks")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("sample directory %s not present (%v); the samples live beside the repository in /work/shared", root, err)
	}
	covered := map[string]bool{}
	for _, tc := range sampleCases {
		covered[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			dir := strings.Split(tc.file, "/")[0]
			data, err := os.ReadFile(filepath.Join(root, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			env := envelope(sampleSources[dir], data)
			evs, err := Parse(env, testOptions())
			checkItemErrors(t, err, tc.errs)
			if len(evs) != len(tc.events) {
				t.Fatalf("got %d events, want %d: %v", len(evs), len(tc.events), evs)
			}
			if tc.note != "" {
				t.Log(tc.note)
			}
			for i, w := range tc.events {
				checkEvent(t, i, evs[i], w)
				checkStamped(t, env, evs[i])
			}
			checkIDs(t, env, evs)
		})
	}
	var missing []string
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !covered[filepath.ToSlash(rel)] {
			missing = append(missing, rel)
		}
		return nil
	})
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("samples without a case in sampleCases: %v", missing)
	}
}

func checkItemErrors(t *testing.T, err error, wantItems int) {
	t.Helper()
	if wantItems == 0 {
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return
	}
	var pe *ParseError
	if !errors.As(err, &pe) || !IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent *ParseError", err)
	}
	joined, ok := pe.Err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("err = %v, want item errors", err)
	}
	n := 0
	for _, e := range joined.Unwrap() {
		var ie *ItemError
		if errors.As(e, &ie) {
			n++
		}
	}
	if n != wantItems {
		t.Fatalf("%d item errors, want %d: %v", n, wantItems, err)
	}
}

func checkEvent(t *testing.T, i int, ev *sgv1.Event, w want) {
	t.Helper()
	b := ev.GetBounce()
	got := want{
		typ: canonical.TypeWord(ev.GetType()), rcpt: ev.GetRecipient(), sender: ev.GetSender(),
		smtp: b.GetSmtpCode(), enhanced: b.GetEnhancedCode(),
	}
	if b != nil {
		got.class = canonical.BounceClassWord(b.GetClass())
		got.category = canonical.BounceCategoryWord(b.GetCategory())
	}
	if got != w {
		t.Errorf("event %d:\n got %+v\nwant %+v\n(%v)", i, got, w, ev)
	}
}

// checkStamped asserts the guarantees every event carries.
func checkStamped(t *testing.T, env *sgv1.RawEnvelope, ev *sgv1.Event) {
	t.Helper()
	if ev.GetTenant() != env.GetTenant() || ev.GetEnvelopeId() != env.GetEnvelopeId() || ev.GetSource() != env.GetSource() {
		t.Errorf("tenant/envelope/source not stamped: %v", ev)
	}
	if !proto.Equal(ev.GetReceivedAt(), env.GetReceivedAt()) {
		t.Errorf("received_at = %v, want %v", ev.GetReceivedAt(), env.GetReceivedAt())
	}
	if ev.GetEventId() == "" {
		t.Errorf("no event id: %v", ev)
	}
	if err := canonical.ValidateAt(ev, testNow); err != nil {
		t.Errorf("invalid event: %v (%v)", err, ev)
	}
	if _, err := canonical.Marshal(ev); err != nil {
		t.Errorf("Marshal: %v", err)
	}
}

// checkIDs asserts ids are unique within a payload and identical when the
// same payload is delivered again (other envelope id, later receive time).
func checkIDs(t *testing.T, env *sgv1.RawEnvelope, evs []*sgv1.Event) {
	t.Helper()
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.GetEventId()] {
			t.Errorf("duplicate event id %s in one payload", ev.GetEventId())
		}
		seen[ev.GetEventId()] = true
	}
	again := proto.Clone(env).(*sgv1.RawEnvelope)
	again.EnvelopeId = "env-2"
	again.ReceivedAt = timestamppb.New(testReceivedAt.Add(time.Hour))
	evs2, _ := Parse(again, testOptions())
	if len(evs2) != len(evs) {
		t.Fatalf("redelivery gave %d events, first delivery %d", len(evs2), len(evs))
	}
	for i := range evs {
		if evs[i].GetEventId() != evs2[i].GetEventId() {
			t.Errorf("event %d: id %s on redelivery, %s first", i, evs2[i].GetEventId(), evs[i].GetEventId())
		}
	}
}
