package normalize

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// parseOK parses and fails the test on any error.
func parseOK(t *testing.T, src sgv1.Source, payload string) []*sgv1.Event {
	t.Helper()
	evs, err := Parse(envelope(src, []byte(payload)), testOptions())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, ev := range evs {
		checkStamped(t, envelope(src, nil), ev)
	}
	return evs
}

// parseErr parses and returns the *ParseError, failing if there is none.
func parseErr(t *testing.T, src sgv1.Source, payload string) ([]*sgv1.Event, *ParseError) {
	t.Helper()
	evs, err := Parse(envelope(src, []byte(payload)), testOptions())
	var pe *ParseError
	if !errors.As(err, &pe) || !IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent *ParseError", err)
	}
	return evs, pe
}

func TestParseEnvelopeErrors(t *testing.T) {
	if _, err := Parse(nil, Options{}); !IsPermanent(err) {
		t.Errorf("nil envelope: %v", err)
	}
	_, pe := parseErr(t, sgv1.Source_SOURCE_UNSPECIFIED, `{}`)
	if !strings.Contains(pe.Error(), "unsupported source") {
		t.Errorf("unspecified source: %v", pe)
	}
	noTenant := envelope(sgv1.Source_SOURCE_GENERIC, []byte(`{"type":"sent","recipient":"a@x.io"}`))
	noTenant.Tenant = ""
	if evs, err := Parse(noTenant, testOptions()); !IsPermanent(err) || len(evs) != 0 {
		t.Errorf("envelope without tenant: %v %v", evs, err)
	}
	if IsPermanent(errors.New("broker down")) {
		t.Error("IsPermanent of a foreign error")
	}
	for _, src := range []sgv1.Source{sgv1.Source_SOURCE_SES, sgv1.Source_SOURCE_SENDGRID, sgv1.Source_SOURCE_MAILGUN,
		sgv1.Source_SOURCE_POSTMARK, sgv1.Source_SOURCE_SPARKPOST, sgv1.Source_SOURCE_POSTMASTER, sgv1.Source_SOURCE_GENERIC} {
		t.Run("malformed "+canonical.SourceWord(src), func(t *testing.T) {
			evs, pe := parseErr(t, src, `{"oops": [1, 2`)
			if len(evs) != 0 || pe.Source != canonical.SourceWord(src) {
				t.Errorf("events %v, source %q", evs, pe.Source)
			}
		})
	}
}

func TestStampingAndClock(t *testing.T) {
	payload := `{"RecordType":"Delivery","MessageID":"m1","Recipient":"Bob@Example.com"}`
	t.Run("occurred_at falls back to received_at", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_POSTMARK, payload)
		if !evs[0].GetOccurredAt().AsTime().Equal(testReceivedAt) {
			t.Errorf("occurred_at = %v", evs[0].GetOccurredAt().AsTime())
		}
		if evs[0].GetRecipient() != "bob@example.com" || evs[0].GetRecipientDomain() != "example.com" {
			t.Errorf("enrichment: %v", evs[0])
		}
	})
	t.Run("received_at falls back to the clock", func(t *testing.T) {
		env := envelope(sgv1.Source_SOURCE_POSTMARK, []byte(payload))
		env.ReceivedAt = nil
		evs, err := Parse(env, testOptions())
		if err != nil || !evs[0].GetReceivedAt().AsTime().Equal(testNow) {
			t.Fatalf("%v %v", evs, err)
		}
	})
	t.Run("event time too far ahead of the clock", func(t *testing.T) {
		future := testNow.Add(48 * time.Hour).Format(time.RFC3339)
		_, pe := parseErr(t, sgv1.Source_SOURCE_POSTMARK,
			`{"RecordType":"Delivery","MessageID":"m1","Recipient":"bob@example.com","DeliveredAt":"`+future+`"}`)
		var fe *canonical.FieldError
		if !errors.As(pe, &fe) || fe.Field != "occurred_at" {
			t.Errorf("err = %v", pe)
		}
	})
	t.Run("tenant comes from the envelope only", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_GENERIC,
			`{"tenant":"tenant-b","type":"sent","recipient":"a@x.io","occurred_at":"2026-11-01T00:00:00Z","source":"ses","envelope_id":"forged"}`)
		if evs[0].GetTenant() != "tenant-a" || evs[0].GetSource() != sgv1.Source_SOURCE_GENERIC || evs[0].GetEnvelopeId() != "env-1" {
			t.Errorf("payload overrode the envelope: %v", evs[0])
		}
	})
	t.Run("MaxEvents", func(t *testing.T) {
		opts := testOptions()
		opts.MaxEvents = 2
		body := `[{"event":"delivered","email":"a@x.io","timestamp":1,"sg_event_id":"1"},{"event":"delivered","email":"b@x.io","timestamp":1,"sg_event_id":"2"},{"event":"delivered","email":"c@x.io","timestamp":1,"sg_event_id":"3"}]`
		evs, err := Parse(envelope(sgv1.Source_SOURCE_SENDGRID, []byte(body)), opts)
		if !errors.Is(err, canonical.ErrTooManyEvents) || len(evs) != 0 {
			t.Errorf("%d events, err %v", len(evs), err)
		}
	})
}

func TestGeneric(t *testing.T) {
	line := func(extra string) string {
		return `{"type":"bounced","recipient":"a@x.io","occurred_at":"2026-11-01T00:00:00Z"` + extra + `}`
	}
	t.Run("single object with a derived, stable id", func(t *testing.T) {
		a := parseOK(t, sgv1.Source_SOURCE_GENERIC, line(`,"bounce":{"smtp_code":550,"diagnostic":"5.1.1 user unknown"}`))
		env := envelope(sgv1.Source_SOURCE_GENERIC, []byte(line(`,"bounce":{"smtp_code":550,"diagnostic":"5.1.1 user unknown"}`)))
		env.EnvelopeId, env.Tenant = "env-9", "tenant-z"
		b, err := Parse(env, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a[0].EventId, "sg-") || a[0].EventId != b[0].EventId {
			t.Errorf("ids %q %q", a[0].EventId, b[0].EventId)
		}
		bo := a[0].GetBounce()
		if bo.Class != sgv1.BounceClass_BOUNCE_CLASS_HARD || bo.Category != sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX || bo.EnhancedCode != "5.1.1" {
			t.Errorf("bounce not classified: %v", bo)
		}
	})
	t.Run("given class and id are kept", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_GENERIC, line(`,"event_id":"e-1","bounce":{"class":"soft","category":"dns","smtp_code":550}`))
		if evs[0].EventId != "e-1" || evs[0].Bounce.Class != sgv1.BounceClass_BOUNCE_CLASS_SOFT || evs[0].Bounce.Category != sgv1.BounceCategory_BOUNCE_CATEGORY_DNS {
			t.Errorf("%v", evs[0])
		}
	})
	t.Run("NDJSON by content type, partial failure names the line", func(t *testing.T) {
		body := line(`,"event_id":"1"`) + "\n\n" + line(`,"event_id":"2","bounce":{"class":"medium"}`) + "\n" + `{"type":"sent","occurred_at":"2026-11-01T00:00:00Z"}` + "\n" + line(`,"event_id":"4"`)
		env := envelope(sgv1.Source_SOURCE_GENERIC, []byte(body))
		env.ContentType = "application/x-ndjson"
		evs, err := Parse(env, testOptions())
		if len(evs) != 2 || evs[0].EventId != "1" || evs[1].EventId != "4" {
			t.Fatalf("events %v", evs)
		}
		msg := err.Error()
		if !strings.Contains(msg, "line 3: bounce.class: ") || !strings.Contains(msg, "line 4: recipient: required") {
			t.Errorf("err = %v", err)
		}
		var fe *canonical.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("no FieldError inside %v", err)
		}
	})
	t.Run("NDJSON detected without content type", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_GENERIC, line(`,"event_id":"1"`)+"\n"+line(`,"event_id":"2"`)+"\n")
		if len(evs) != 2 {
			t.Fatalf("%d events", len(evs))
		}
	})
	t.Run("pretty-printed single object", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_GENERIC, "{\n  \"type\": \"sent\",\n  \"recipient\": \"a@x.io\",\n  \"occurred_at\": \"2026-11-01T00:00:00Z\"\n}\n")
		if len(evs) != 1 {
			t.Fatalf("%d events", len(evs))
		}
	})
	t.Run("unknown field is a payload error naming it", func(t *testing.T) {
		_, pe := parseErr(t, sgv1.Source_SOURCE_GENERIC, line(`,"colour":"red"`))
		var fe *canonical.FieldError
		if !errors.As(pe, &fe) || fe.Field != "colour" {
			t.Errorf("err = %v", pe)
		}
	})
	t.Run("grpc protobuf payload", func(t *testing.T) {
		in := &sgv1.Event{Type: sgv1.EventType_EVENT_TYPE_COMPLAINED, Recipient: "A@X.io", Tenant: "tenant-b",
			OccurredAt: timestamppb.New(testReceivedAt.Add(-time.Minute))}
		data, err := proto.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		env := envelope(sgv1.Source_SOURCE_GRPC, data)
		env.ContentType = "application/protobuf"
		evs, err := Parse(env, testOptions())
		if err != nil || len(evs) != 1 {
			t.Fatalf("%v %v", evs, err)
		}
		checkStamped(t, env, evs[0])
		if evs[0].Recipient != "a@x.io" || !strings.HasPrefix(evs[0].EventId, "sg-") {
			t.Errorf("%v", evs[0])
		}
		again, _ := Parse(envelope(sgv1.Source_SOURCE_GRPC, data), testOptions())
		if again[0].EventId != evs[0].EventId {
			t.Errorf("id not stable: %s %s", again[0].EventId, evs[0].EventId)
		}
		if _, err := Parse(envelope(sgv1.Source_SOURCE_GRPC, []byte{0xff, 0xff}), testOptions()); !IsPermanent(err) {
			t.Errorf("garbage protobuf: %v", err)
		}
	})
	t.Run("grpc source uses the same form", func(t *testing.T) {
		evs, err := Parse(envelope(sgv1.Source_SOURCE_GRPC, []byte(line(""))), testOptions())
		if err != nil || evs[0].Source != sgv1.Source_SOURCE_GRPC {
			t.Fatalf("%v %v", evs, err)
		}
	})
}

func TestSESDetails(t *testing.T) {
	t.Run("SNS housekeeping yields nothing", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_SES, `{"Type":"SubscriptionConfirmation","SubscribeURL":"https://sns.example/confirm"}`)
		if len(evs) != 0 {
			t.Errorf("%v", evs)
		}
	})
	t.Run("multi-recipient delivery, header and tag attribution", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_SES, `{"eventType":"Delivery","mail":{"timestamp":"2026-11-01T00:00:00Z","source":"Ann <ann@acme.io>","messageId":"m1",
			"destination":["a@x.io","b@y.io"],"headers":[{"name":"X-Campaign-ID","value":"spring"}],"tags":{"variant":["B"],"ses:source-ip":["1.2.3.4"]}},
			"delivery":{"timestamp":"2026-11-01T00:00:05Z","recipients":["a@x.io","b@y.io"]}}`)
		if len(evs) != 2 || evs[0].EventId == evs[1].EventId {
			t.Fatalf("%v", evs)
		}
		for _, ev := range evs {
			if ev.Campaign != "spring" || ev.Variant != "B" || ev.Sender != "ann@acme.io" || ev.SendingDomain != "acme.io" {
				t.Errorf("attribution: %v", ev)
			}
		}
	})
	t.Run("complaint on the suppression list is a rejection", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_SES, `{"notificationType":"Complaint","mail":{"messageId":"m1","timestamp":"2026-11-01T00:00:00Z"},
			"complaint":{"complainedRecipients":[{"emailAddress":"a@x.io"}],"complaintSubType":"OnAccountSuppressionList","timestamp":"2026-11-01T00:00:01Z","feedbackId":"f1"}}`)
		if evs[0].Type != sgv1.EventType_EVENT_TYPE_REJECTED || evs[0].Complaint != nil {
			t.Errorf("%v", evs[0])
		}
	})
	t.Run("unknown event type", func(t *testing.T) {
		_, pe := parseErr(t, sgv1.Source_SOURCE_SES, `{"eventType":"Teleport","mail":{}}`)
		if !strings.Contains(pe.Error(), "Teleport") {
			t.Errorf("%v", pe)
		}
	})
}

func TestSendGridDetails(t *testing.T) {
	body := `[
	 {"event":"processed","email":"a@x.io","timestamp":1761955200,"sg_event_id":"e1","category":["launch","variant:B"],"campaign":"c-9","step":"2","from":"ann@acme.io","segment":"smb"},
	 {"event":"open","email":"a@x.io","timestamp":1761955300,"sg_machine_open":true,"sg_message_id":"m1"},
	 {"event":"teleported","email":"a@x.io","timestamp":1761955300,"sg_event_id":"e3"},
	 {"event":"group_resubscribe","email":"a@x.io","timestamp":1761955300,"sg_event_id":"e4"}
	]`
	evs, pe := parseErr(t, sgv1.Source_SOURCE_SENDGRID, body)
	if len(evs) != 2 {
		t.Fatalf("%d events: %v", len(evs), evs)
	}
	if !strings.Contains(pe.Error(), `item 2: event: unsupported SendGrid event "teleported"`) {
		t.Errorf("err = %v", pe)
	}
	sent := evs[0]
	if sent.EventId != "sendgrid:e1" || sent.Campaign != "c-9" || sent.Step != "2" || sent.Variant != "B" || sent.Segment != "smb" || sent.Sender != "ann@acme.io" {
		t.Errorf("attribution: %v", sent)
	}
	open := evs[1]
	if open.SourceEvent != "machine_open" || !strings.HasPrefix(open.EventId, "sg-") {
		t.Errorf("open: %v", open)
	}
	t.Run("plain category is the campaign", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_SENDGRID, `{"event":"delivered","email":"a@x.io","timestamp":"1761955200","category":"newsletter"}`)
		if evs[0].Campaign != "newsletter" {
			t.Errorf("%v", evs[0])
		}
	})
	t.Run("bad timestamp fails the item", func(t *testing.T) {
		_, pe := parseErr(t, sgv1.Source_SOURCE_SENDGRID, `[{"event":"delivered","email":"a@x.io","timestamp":"yesterday"}]`)
		if !strings.Contains(pe.Error(), "item 0: timestamp") {
			t.Errorf("%v", pe)
		}
	})
}

func TestMailgunDetails(t *testing.T) {
	t.Run("bare event-data with user-variables", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_MAILGUN, `{"event":"delivered","id":"x1","timestamp":1761955200.5,"recipient":"a@x.io",
			"user-variables":{"campaign_id":"c1","variant":"A"},"tags":["list_source:apollo"],"envelope":{"sender":"ann@acme.io"}}`)
		ev := evs[0]
		if ev.EventId != "mailgun:x1" || ev.Campaign != "c1" || ev.Variant != "A" || ev.ListSource != "apollo" || ev.Sender != "ann@acme.io" {
			t.Errorf("%v", ev)
		}
		if ev.OccurredAt.GetNanos() != 500000000 {
			t.Errorf("fractional timestamp: %v", ev.OccurredAt)
		}
	})
	t.Run("suppressed address is a rejection", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_MAILGUN, `{"signature":{},"event-data":{"event":"failed","severity":"permanent","reason":"suppress-unsubscribe","timestamp":1761955200,"recipient":"a@x.io","delivery-status":{"code":605,"description":"Not delivering to previously unsubscribed address"}}}`)
		if evs[0].Type != sgv1.EventType_EVENT_TYPE_REJECTED || evs[0].Bounce.SmtpCode != 0 {
			t.Errorf("%v", evs[0])
		}
	})
	t.Run("unknown event", func(t *testing.T) {
		parseErr(t, sgv1.Source_SOURCE_MAILGUN, `{"event-data":{"event":"exploded","timestamp":1}}`)
	})
}

func TestPostmarkDetails(t *testing.T) {
	cases := []struct {
		name, body string
		typ        sgv1.EventType
		check      func(*sgv1.Event) bool
	}{
		{"TypeCode only", `{"RecordType":"Bounce","ID":7,"TypeCode":256,"Email":"a@x.io","BouncedAt":"2026-11-01T00:00:00Z","Details":"DNS lookup failed"}`,
			sgv1.EventType_EVENT_TYPE_BOUNCED, func(e *sgv1.Event) bool {
				return e.EventId == "postmark:7" && e.Bounce.Category == sgv1.BounceCategory_BOUNCE_CATEGORY_DNS
			}},
		{"transient is a deferral", `{"RecordType":"Bounce","ID":9,"Type":"Transient","Email":"a@x.io","BouncedAt":"2026-11-01T00:00:00Z","Details":"smtp;550 5.7.1 try later"}`,
			sgv1.EventType_EVENT_TYPE_DEFERRED, func(e *sgv1.Event) bool {
				return e.Bounce.GetClass() == sgv1.BounceClass_BOUNCE_CLASS_SOFT && e.Bounce.GetSmtpCode() == 550
			}},
		{"auto responder is an ooo reply", `{"RecordType":"Bounce","ID":8,"Type":"AutoResponder","Email":"a@x.io","BouncedAt":"2026-11-01T00:00:00Z"}`,
			sgv1.EventType_EVENT_TYPE_REPLIED, func(e *sgv1.Event) bool {
				return e.Reply.GetCategory() == sgv1.ReplyCategory_REPLY_CATEGORY_OOO && e.Reply.GetRisk() != 0
			}},
		{"metadata attribution", `{"RecordType":"Open","MessageID":"m","Recipient":"a@x.io","ReceivedAt":"2026-11-01T00:00:00Z","Tag":"t1","Metadata":{"Campaign":"c7","list-source":"csv"}}`,
			sgv1.EventType_EVENT_TYPE_OPENED, func(e *sgv1.Event) bool { return e.Campaign == "c7" && e.ListSource == "csv" }},
		{"customer suppression is a manual unsubscribe", `{"RecordType":"SubscriptionChange","MessageID":"m","Recipient":"a@x.io","ChangedAt":"2026-11-01T00:00:00Z","SuppressSending":true,"SuppressionReason":"ManualSuppression","Origin":"Customer"}`,
			sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, func(e *sgv1.Event) bool {
				return e.Unsubscribe.GetMethod() == sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_MANUAL
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := parseOK(t, sgv1.Source_SOURCE_POSTMARK, tc.body)
			if len(evs) != 1 || evs[0].Type != tc.typ || !tc.check(evs[0]) {
				t.Errorf("%v", evs)
			}
		})
	}
}

func TestSparkPostDetails(t *testing.T) {
	body := `[{"msys":{"message_event":{"type":"bounce","bounce_class":"25","event_id":"1","rcpt_to":"a@x.io","timestamp":"1761955200","reason":"550 5.0.0 Message generation rejected"}}},
	 {"msys":{"message_event":{"type":"bounce","bounce_class":"90","event_id":"2","rcpt_to":"b@x.io","timestamp":1761955200}}},
	 {"msys":{"message_event":{"type":"delivery","event_id":"3","rcpt_to":"c@x.io","timestamp":1761955200,"campaign_id":"c1","rcpt_meta":{"campaign":"ignored","variant":"v2"},"rcpt_tags":["vip","step:3"]}}},
	 {"msys":{"relay_event":{"type":"relay_injection","event_id":"4"}}},
	 {"msys":{"track_event":{"type":"amp_teleport","event_id":"5","rcpt_to":"d@x.io"}}}]`
	evs, pe := parseErr(t, sgv1.Source_SOURCE_SPARKPOST, body)
	if len(evs) != 3 || !strings.Contains(pe.Error(), "item 4: track_event.type") {
		t.Fatalf("%v %v", evs, pe)
	}
	if evs[0].Type != sgv1.EventType_EVENT_TYPE_REJECTED || evs[0].EventId != "sparkpost:1" {
		t.Errorf("class 25: %v", evs[0])
	}
	if evs[1].Type != sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED || evs[1].Unsubscribe.GetMethod() != sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_REPLY {
		t.Errorf("class 90: %v", evs[1])
	}
	if d := evs[2]; d.Campaign != "c1" || d.Variant != "v2" || d.Step != "3" {
		t.Errorf("attribution: %v", d)
	}
}

func TestPostmaster(t *testing.T) {
	v1 := `{"name":"domains/acme.io/trafficStats/20261101","userReportedSpamRatio":0.0031,"domainReputation":"MEDIUM",
		"spfSuccessRatio":1,"dkimSuccessRatio":0.99,"dmarcSuccessRatio":0.98,"inboundEncryptionRatio":1,
		"deliveryErrors":[{"errorClass":"PERMANENT_ERROR","errorType":"REJECTED_CONTENT","errorRatio":0.01},{"errorClass":"TEMPORARY_ERROR","errorType":"RATE_LIMIT_EXCEEDED","errorRatio":0.02}],
		"ipReputations":[{"reputation":"HIGH","ipCount":"1"}]}`
	t.Run("v1 trafficStats", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_POSTMASTER, v1)
		ev := evs[0]
		pm := ev.GetPostmaster()
		if ev.Type != sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS || ev.SendingDomain != "acme.io" || ev.Provider != sgv1.Provider_PROVIDER_GMAIL ||
			!ev.OccurredAt.AsTime().Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%v", ev)
		}
		if pm.SpamRate != 0.0031 || pm.DomainReputation != sgv1.DomainReputation_DOMAIN_REPUTATION_MEDIUM ||
			pm.DeliveryErrorRate < 0.0299 || pm.DeliveryErrorRate > 0.0301 || pm.DkimSuccessRate != 0.99 {
			t.Errorf("%v", pm)
		}
		again := parseOK(t, sgv1.Source_SOURCE_POSTMASTER, v1)
		revised := parseOK(t, sgv1.Source_SOURCE_POSTMASTER, strings.Replace(v1, "0.0031", "0.004", 1))
		if again[0].EventId != ev.EventId || revised[0].EventId == ev.EventId {
			t.Errorf("ids: %s %s %s", ev.EventId, again[0].EventId, revised[0].EventId)
		}
	})
	t.Run("v1 list", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_POSTMASTER, `{"trafficStats":[`+v1+`,`+strings.Replace(v1, "20261101", "20261102", 1)+`],"nextPageToken":""}`)
		if len(evs) != 2 || evs[1].OccurredAt.AsTime().Day() != 2 {
			t.Errorf("%v", evs)
		}
	})
	t.Run("v2 domainStats grouped by day", func(t *testing.T) {
		evs := parseOK(t, sgv1.Source_SOURCE_POSTMASTER, `{"domainStats":[
			{"name":"domains/acme.io/domainStats/a1","metric":"SPAM_RATE","value":{"doubleValue":0.002},"date":{"year":2026,"month":11,"day":2}},
			{"name":"domains/acme.io/domainStats/a2","metric":"auth_success_rate_dkim","value":{"doubleValue":0.97},"date":{"year":2026,"month":11,"day":2}},
			{"name":"domains/acme.io/domainStats/a3","metric":"SPAM_RATE","value":{"floatValue":0.001},"date":{"year":2026,"month":11,"day":1}},
			{"name":"domains/acme.io/domainStats/a4","metric":"DELIVERY_ERROR_COUNT","value":{"intValue":"12"},"date":{"year":2026,"month":11,"day":1}},
			{"name":"domains/acme.io/domainStats/a5","metric":"DOMAIN_REPUTATION","value":{"stringValue":"LOW"},"date":{"year":2026,"month":11,"day":1}}
		]}`)
		if len(evs) != 2 {
			t.Fatalf("%d events: %v", len(evs), evs)
		}
		d1, d2 := evs[0], evs[1]
		if d1.OccurredAt.AsTime().Day() != 1 || d1.Postmaster.SpamRate != 0.001 || d1.Postmaster.DomainReputation != sgv1.DomainReputation_DOMAIN_REPUTATION_LOW {
			t.Errorf("day 1: %v", d1)
		}
		if d2.Postmaster.SpamRate != 0.002 || d2.Postmaster.DkimSuccessRate != 0.97 {
			t.Errorf("day 2: %v", d2)
		}
	})
	t.Run("domain from the envelope header", func(t *testing.T) {
		env := envelope(sgv1.Source_SOURCE_POSTMASTER, []byte(`{"domainStats":[{"metric":"SPAM_RATE","value":{"doubleValue":0.001},"date":{"year":2026,"month":11,"day":1}}]}`))
		env.Headers = map[string]string{"x-postmaster-domain": "acme.io"}
		evs, err := Parse(env, testOptions())
		if err != nil || evs[0].SendingDomain != "acme.io" {
			t.Fatalf("%v %v", evs, err)
		}
	})
	bad := []struct{ name, body, want string }{
		{"percentage is not a fraction", `{"domainStats":[{"name":"domains/acme.io/domainStats/a","metric":"SPAM_RATE","value":{"doubleValue":12.5},"date":{"year":2026,"month":11,"day":1}}]}`, "postmaster.spam_rate"},
		{"no domain", `{"domainStats":[{"metric":"SPAM_RATE","value":{"doubleValue":0.1},"date":{"year":2026,"month":11,"day":1}}]}`, "sending_domain"},
		{"bad day", `{"name":"domains/acme.io/trafficStats/2026-11-01"}`, "YYYYMMDD"},
		{"bad date", `{"domainStats":[{"name":"domains/acme.io/domainStats/a","metric":"SPAM_RATE","value":{"doubleValue":0.1},"date":{"year":2026,"month":2,"day":31}}]}`, "not a date"},
		{"empty", `{}`, "no trafficStats"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, pe := parseErr(t, sgv1.Source_SOURCE_POSTMASTER, tc.body)
			if !strings.Contains(pe.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", pe, tc.want)
			}
		})
	}
}

// TestMailSources checks the ARF and DSN dispatch holds package mail's
// events to the same guarantees.
func TestMailSources(t *testing.T) {
	for _, tc := range []struct {
		dir string
		src sgv1.Source
		typ sgv1.EventType
	}{
		{"arf", sgv1.Source_SOURCE_ARF, sgv1.EventType_EVENT_TYPE_COMPLAINED},
		{"dsn", sgv1.Source_SOURCE_DSN, sgv1.EventType_EVENT_TYPE_BOUNCED},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(samplesDir, tc.dir, "*.eml"))
			if len(files) == 0 {
				t.Skipf("no samples in %s", filepath.Join(samplesDir, tc.dir))
			}
			found := 0
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				env := envelope(tc.src, data)
				evs, err := Parse(env, testOptions())
				if err != nil && !IsPermanent(err) {
					t.Errorf("%s: non-permanent error %v", f, err)
				}
				for _, ev := range evs {
					checkStamped(t, env, ev)
					if ev.Type == tc.typ {
						found++
					}
				}
			}
			if found == 0 {
				t.Errorf("no %v event from any %s sample", tc.typ, tc.dir)
			}
		})
	}
	_, pe := parseErr(t, sgv1.Source_SOURCE_DSN, "")
	if pe.Source != "dsn" {
		t.Errorf("%v", pe)
	}
}

func TestUnixTime(t *testing.T) {
	cases := []struct {
		in      string
		sec     int64
		nanos   int32
		wantErr bool
	}{
		{"1464824548", 1464824548, 0, false},
		{"1534109600.089676", 1534109600, 89676000, false},
		{"1666214138.4046676", 1666214138, 404667600, false},
		{"1.5e9", 1500000000, 0, false},
		{"", 0, 0, false},
		{"soon", 0, 0, true},
		{"1e300", 0, 0, true},
		{"99999999999999", 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			ts, err := unixTime(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (ts.GetSeconds() != tc.sec || ts.GetNanos() != tc.nanos) {
				t.Errorf("got %v", ts)
			}
		})
	}
}

func TestAttributionOptions(t *testing.T) {
	opts := testOptions()
	opts.Attribution = Attribution{Campaign: []string{"seq"}, Variant: []string{"copy"}}
	opts.CampaignHeaders = []string{"X-Seq"}
	t.Run("custom metadata keys", func(t *testing.T) {
		body := `[{"event":"delivered","email":"a@x.io","timestamp":1761955200,"sg_event_id":"1","unique_args":{"SEQ":"s-1","copy":"c-2","campaign":"not-this-one"}}]`
		evs, err := Parse(envelope(sgv1.Source_SOURCE_SENDGRID, []byte(body)), opts)
		if err != nil || evs[0].Campaign != "s-1" || evs[0].Variant != "c-2" {
			t.Fatalf("%v %v", evs, err)
		}
	})
	t.Run("custom campaign header", func(t *testing.T) {
		body := `{"eventType":"Send","mail":{"timestamp":"2026-11-01T00:00:00Z","messageId":"m","destination":["a@x.io"],
			"headers":[{"name":"x-seq","value":"from-header"},{"name":"X-Campaign-ID","value":"default-header"}]},"send":{}}`
		evs, err := Parse(envelope(sgv1.Source_SOURCE_SES, []byte(body)), opts)
		if err != nil || evs[0].Campaign != "from-header" {
			t.Fatalf("%v %v", evs, err)
		}
		evs, err = Parse(envelope(sgv1.Source_SOURCE_SES, []byte(body)), testOptions())
		if err != nil || evs[0].Campaign != "default-header" {
			t.Fatalf("default headers: %v %v", evs, err)
		}
	})
	t.Run("sender from metadata only when valid and missing", func(t *testing.T) {
		body := `[{"event":"delivered","email":"a@x.io","timestamp":1761955200,"sg_event_id":"1","sender":"not an address"},
			{"event":"delivered","email":"a@x.io","timestamp":1761955200,"sg_event_id":"2","from_email":"Ann <ann@acme.io>"}]`
		evs, err := Parse(envelope(sgv1.Source_SOURCE_SENDGRID, []byte(body)), testOptions())
		if err != nil || evs[0].Sender != "" || evs[1].Sender != "ann@acme.io" {
			t.Fatalf("%v %v", evs, err)
		}
	})
}

// TestGenericDelimited: ingest's gRPC batches (length-delimited protobuf
// events) split into their events; a bad event fails only its item, a
// truncated tail fails from there on.
func TestGenericDelimited(t *testing.T) {
	at := timestamppb.New(testNow.Add(-time.Hour))
	var payload []byte
	for i, ev := range []*sgv1.Event{
		{EventId: "d0", Type: sgv1.EventType_EVENT_TYPE_SENT, OccurredAt: at, Sender: "a@acme.io", Recipient: "r0@x.io"},
		{EventId: "d1", Type: sgv1.EventType_EVENT_TYPE_SENT, OccurredAt: at, Sender: "a@acme.io"}, // no recipient
		{EventId: "d2", Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: at, Sender: "a@acme.io", Recipient: "r2@x.io"},
	} {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(i, err)
		}
		payload = protowire.AppendBytes(payload, b)
	}
	for _, tt := range []struct {
		name    string
		payload []byte
		ids     []string
		failed  []int
	}{
		{"whole", payload, []string{"d0", "d2"}, []int{1}},
		{"garbage item", protowire.AppendBytes(append([]byte(nil), payload...), []byte{0xff, 0xff}), []string{"d0", "d2"}, []int{1, 3}},
		{"truncated", append(append([]byte(nil), payload...), 0x80), []string{"d0", "d2"}, []int{1, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := envelope(sgv1.Source_SOURCE_GRPC, tt.payload)
			env.ContentType = canonical.DelimitedEventsContentType
			evs, err := Parse(env, testOptions())
			var ids []string
			for _, ev := range evs {
				ids = append(ids, ev.GetEventId())
			}
			if !slices.Equal(ids, tt.ids) {
				t.Fatalf("events %v, want %v", ids, tt.ids)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a ParseError", err)
			}
			var failed []int
			for _, e := range unwrapItems(pe.Err) {
				if e.Unit != "item" {
					t.Fatalf("unit %q", e.Unit)
				}
				failed = append(failed, e.Index)
			}
			slices.Sort(failed)
			if !slices.Equal(failed, tt.failed) {
				t.Fatalf("failed items %v, want %v (%v)", failed, tt.failed, err)
			}
		})
	}
}

// unwrapItems returns the *ItemError values joined in err.
func unwrapItems(err error) []*ItemError {
	var out []*ItemError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, unwrapItems(e)...)
		}
		return out
	}
	var ie *ItemError
	if errors.As(err, &ie) {
		out = append(out, ie)
	}
	return out
}
