package canonical

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

func TestDecodeFieldGroups(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *sgv1.Event
	}{
		{
			name: "identity and attribution",
			in: `{"event_id":"e1","tenant":"t1","type":"sent","occurred_at":"2026-11-20T10:00:00Z",
				"sender":"ann@acme.io","sending_domain":"acme.io","recipient":"bob@gmail.com",
				"recipient_domain":"gmail.com","provider":"gmail","account":"gmail.com",
				"campaign":"c1","step":"2","variant":"v1","segment":"smb","list_source":"apollo",
				"message_id":"<m1@acme.io>","source":"ses","envelope_id":"env1",
				"received_at":"2026-11-20T10:00:01.5Z","role_account":true,"source_event":"Send"}`,
			want: &sgv1.Event{
				EventId: "e1", Tenant: "t1", Type: sgv1.EventType_EVENT_TYPE_SENT,
				OccurredAt: ts("2026-11-20T10:00:00Z"), Sender: "ann@acme.io", SendingDomain: "acme.io",
				Recipient: "bob@gmail.com", RecipientDomain: "gmail.com", Provider: sgv1.Provider_PROVIDER_GMAIL,
				Account: "gmail.com", Campaign: "c1", Step: "2", Variant: "v1", Segment: "smb", ListSource: "apollo",
				MessageId: "<m1@acme.io>", Source: sgv1.Source_SOURCE_SES, EnvelopeId: "env1",
				ReceivedAt: ts("2026-11-20T10:00:01.5Z"), RoleAccount: true, SourceEvent: "Send",
			},
		},
		{
			name: "bounce",
			in: `{"type":"bounced","occurred_at":"2026-11-20T10:00:00+02:00","bounce":{"class":"hard",
				"category":"invalid_mailbox","smtp_code":550,"enhanced_code":"5.1.1","diagnostic":"no such user",
				"reporting_mta":"mx.example.com"}}`,
			want: &sgv1.Event{
				Type: sgv1.EventType_EVENT_TYPE_BOUNCED, OccurredAt: ts("2026-11-20T08:00:00Z"),
				Bounce: &sgv1.Bounce{
					Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, Category: sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX,
					SmtpCode: 550, EnhancedCode: "5.1.1", Diagnostic: "no such user", ReportingMta: "mx.example.com",
				},
			},
		},
		{
			name: "complaint",
			in: `{"type":"complained","complaint":{"source":"fbl","feedback_type":"not_spam",
				"reported_domain":"acme.io","source_ip":"192.0.2.1","feedback_provider":"Yahoo"}}`,
			want: &sgv1.Event{
				Type: sgv1.EventType_EVENT_TYPE_COMPLAINED,
				Complaint: &sgv1.Complaint{
					Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL, FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM,
					ReportedDomain: "acme.io", SourceIp: "192.0.2.1", FeedbackProvider: "Yahoo",
				},
			},
		},
		{
			name: "unsubscribe",
			in:   `{"type":"unsubscribed","unsubscribe":{"method":"one_click","scope":"topic","topic":"news"}}`,
			want: &sgv1.Event{
				Type: sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED,
				Unsubscribe: &sgv1.Unsubscribe{
					Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK,
					Scope:  sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_TOPIC, Topic: "news",
				},
			},
		},
		{
			name: "reply",
			in:   `{"type":"replied","reply":{"category":"not_now","risk":"medium","text":"ping me in Q3","subject":"Re: hi"}}`,
			want: &sgv1.Event{
				Type: sgv1.EventType_EVENT_TYPE_REPLIED,
				Reply: &sgv1.Reply{
					Category: sgv1.ReplyCategory_REPLY_CATEGORY_NOT_NOW, Risk: sgv1.Risk_RISK_MEDIUM,
					Text: "ping me in Q3", Subject: "Re: hi",
				},
			},
		},
		{
			name: "placement",
			in:   `{"type":"placement_test","placement":{"provider":"microsoft","folder":"promotions","tool":"glockapps","test_id":"T9"}}`,
			want: &sgv1.Event{
				Type: sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST,
				Placement: &sgv1.Placement{
					Provider: sgv1.Provider_PROVIDER_MICROSOFT, Folder: sgv1.PlacementFolder_PLACEMENT_FOLDER_PROMOTIONS,
					Tool: "glockapps", TestId: "T9",
				},
			},
		},
		{
			name: "auth",
			in:   `{"type":"auth_check","auth":{"spf":"pass","dkim":"fail","dmarc_policy":"quarantine","aligned":true,"tls":false,"ptr":true}}`,
			want: &sgv1.Event{
				Type: sgv1.EventType_EVENT_TYPE_AUTH_CHECK,
				Auth: &sgv1.Auth{
					Spf: sgv1.AuthResult_AUTH_RESULT_PASS, Dkim: sgv1.AuthResult_AUTH_RESULT_FAIL,
					DmarcPolicy: sgv1.DmarcPolicy_DMARC_POLICY_QUARANTINE, Aligned: true, Ptr: true,
				},
			},
		},
		{
			name: "postmaster",
			in: `{"type":"postmaster_stats","sending_domain":"acme.io","postmaster":{"spam_rate":0.003,
				"domain_reputation":"bad","delivery_error_rate":0.01,"spf_success_rate":1,"dkim_success_rate":0.99,
				"dmarc_success_rate":0.98,"inbound_encryption_rate":1e-1}}`,
			want: &sgv1.Event{
				Type: sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS, SendingDomain: "acme.io",
				Postmaster: &sgv1.Postmaster{
					SpamRate: 0.003, DomainReputation: sgv1.DomainReputation_DOMAIN_REPUTATION_BAD, DeliveryErrorRate: 0.01,
					SpfSuccessRate: 1, DkimSuccessRate: 0.99, DmarcSuccessRate: 0.98, InboundEncryptionRate: 0.1,
				},
			},
		},
		{
			name: "protobuf enum names and any case",
			in:   `{"type":"EVENT_TYPE_BOUNCED","provider":"Yahoo","bounce":{"class":"BOUNCE_CLASS_SOFT","category":"Rate_Limited"}}`,
			want: &sgv1.Event{
				Type: sgv1.EventType_EVENT_TYPE_BOUNCED, Provider: sgv1.Provider_PROVIDER_YAHOO,
				Bounce: &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_SOFT, Category: sgv1.BounceCategory_BOUNCE_CATEGORY_RATE_LIMITED},
			},
		},
		{
			name: "null leaves fields unset, empty object sets message",
			in:   ` {"type":"bounced","sender":null,"bounce":{},"complaint":null} ` + "\n",
			want: &sgv1.Event{Type: sgv1.EventType_EVENT_TYPE_BOUNCED, Bounce: &sgv1.Bounce{}},
		},
		{
			name: "escapes in strings",
			in:   `{"reply":{"text":"line1\nline2 \"q\" \u00e9 <b>&"}}`,
			want: &sgv1.Event{Reply: &sgv1.Reply{Text: "line1\nline2 \"q\" é <b>&"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !proto.Equal(got, tt.want) {
				t.Fatalf("Decode:\n got %v\nwant %v", got, tt.want)
			}
			out, err := Marshal(got)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			back, err := Decode(out)
			if err != nil {
				t.Fatalf("Decode(Marshal): %v (%s)", err, out)
			}
			if !proto.Equal(back, tt.want) {
				t.Fatalf("round trip:\n got %v\nwant %v", back, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantField string
		wantMsg   string
	}{
		{"empty input", ``, "", "unexpected end"},
		{"not an object", `[1]`, "", "expected a JSON object"},
		{"string top level", `"x"`, "", "expected a JSON object"},
		{"truncated", `{"type":"sent"`, "", "unexpected end"},
		{"malformed", `{"type":}`, "type", "malformed JSON"},
		{"trailing data", `{"type":"sent"} {}`, "", "unexpected data"},
		{"unknown field", `{"type":"sent","colour":"red"}`, "colour", "unknown field"},
		{"camelCase name is unknown", `{"occurredAt":"2026-11-20T10:00:00Z"}`, "occurredAt", "unknown field"},
		{"unknown nested field", `{"bounce":{"kind":"hard"}}`, "bounce.kind", "unknown field"},
		{"duplicate field", `{"type":"sent","type":"bounced"}`, "type", "duplicate field"},
		{"unknown enum word", `{"type":"exploded"}`, "type", "unknown EventType"},
		{"empty enum word", `{"type":""}`, "type", "empty EventType"},
		{"unknown nested enum", `{"bounce":{"class":"medium"}}`, "bounce.class", "unknown BounceClass"},
		{"enum of another type", `{"bounce":{"class":"EVENT_TYPE_BOUNCED"}}`, "bounce.class", "unknown BounceClass"},
		{"enum as number", `{"type":4}`, "type", "expected a string"},
		{"string as number", `{"sender":5}`, "sender", "expected a string"},
		{"string as object", `{"sender":{}}`, "sender", "expected a string, got an object"},
		{"bool as string", `{"role_account":"true"}`, "role_account", "expected true or false"},
		{"int as string", `{"bounce":{"smtp_code":"550"}}`, "bounce.smtp_code", "expected an integer"},
		{"int as float", `{"bounce":{"smtp_code":550.5}}`, "bounce.smtp_code", "32-bit integer"},
		{"int overflow", `{"bounce":{"smtp_code":99999999999}}`, "bounce.smtp_code", "32-bit integer"},
		{"double as string", `{"postmaster":{"spam_rate":"0.1"}}`, "postmaster.spam_rate", "expected a number"},
		{"double overflow", `{"postmaster":{"spam_rate":1e400}}`, "postmaster.spam_rate", "out of range"},
		{"message as string", `{"bounce":"hard"}`, "bounce", "expected an object"},
		{"message as array", `{"bounce":[]}`, "bounce", "expected an object"},
		{"timestamp not RFC 3339", `{"occurred_at":"2026-11-20 10:00:00"}`, "occurred_at", "not an RFC 3339"},
		{"timestamp without zone", `{"occurred_at":"2026-11-20T10:00:00"}`, "occurred_at", "not an RFC 3339"},
		{"timestamp as number", `{"occurred_at":1763632800}`, "occurred_at", "expected an RFC 3339"},
		{"timestamp out of proto range", `{"received_at":"0000-01-01T00:00:00Z"}`, "received_at", "out of range"},
		{"malformed inside nested", `{"bounce":{"class":"hard",}}`, "bounce", "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%s) = %v, want error", tt.in, ev)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("Field = %q, want %q (err %v)", fe.Field, tt.wantField, err)
			}
			if !strings.Contains(fe.Msg, tt.wantMsg) {
				t.Errorf("Msg = %q, want it to contain %q", fe.Msg, tt.wantMsg)
			}
			if tt.wantField != "" && !strings.HasPrefix(err.Error(), tt.wantField+": ") {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), tt.wantField+": ")
			}
		})
	}
}

func TestDecodeNDJSON(t *testing.T) {
	good := `{"type":"sent","recipient":"a@x.io"}`
	t.Run("blank lines and CRLF", func(t *testing.T) {
		in := "\n" + good + "\r\n   \n" + `{"type":"delivered"}` + "\n\n"
		evs, err := DecodeNDJSON([]byte(in), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[0].GetRecipient() != "a@x.io" || evs[1].GetType() != sgv1.EventType_EVENT_TYPE_DELIVERED {
			t.Fatalf("got %v", evs)
		}
	})
	t.Run("empty input", func(t *testing.T) {
		evs, err := DecodeNDJSON(nil, 10)
		if err != nil || len(evs) != 0 {
			t.Fatalf("got %v, %v", evs, err)
		}
	})
	t.Run("error names the line and field", func(t *testing.T) {
		in := good + "\n\n" + `{"type":"bounced","bounce":{"class":"x"}}` + "\n"
		_, err := DecodeNDJSON([]byte(in), 10)
		var le *LineError
		if !errors.As(err, &le) || le.Line != 3 {
			t.Fatalf("err = %v, want *LineError on line 3", err)
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "bounce.class" {
			t.Fatalf("err = %v, want wrapped FieldError for bounce.class", err)
		}
		if !strings.HasPrefix(err.Error(), "line 3: bounce.class: ") {
			t.Fatalf("Error() = %q", err.Error())
		}
	})
	t.Run("too many", func(t *testing.T) {
		in := strings.Repeat(good+"\n", 3)
		if _, err := DecodeNDJSON([]byte(in), 2); !errors.Is(err, ErrTooManyEvents) {
			t.Fatalf("err = %v, want ErrTooManyEvents", err)
		}
		if evs, err := DecodeNDJSON([]byte(in), 3); err != nil || len(evs) != 3 {
			t.Fatalf("at the limit: %d, %v", len(evs), err)
		}
		if evs, err := DecodeNDJSON([]byte(in), 0); err != nil || len(evs) != 3 {
			t.Fatalf("no limit: %d, %v", len(evs), err)
		}
	})
	t.Run("two objects on one line", func(t *testing.T) {
		var le *LineError
		if _, err := DecodeNDJSON([]byte(good+good), 0); !errors.As(err, &le) || le.Line != 1 {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMarshal(t *testing.T) {
	t.Run("words, omitted zero fields and UTC times", func(t *testing.T) {
		ev := &sgv1.Event{
			Type:       sgv1.EventType_EVENT_TYPE_BOUNCED,
			OccurredAt: ts("2026-11-20T12:00:00.25+02:00"),
			Recipient:  "bob@x.io",
			Bounce:     &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, SmtpCode: 550},
			Reply:      &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_NOT_NOW, Text: "<a>&\"\x01"},
		}
		got, err := Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"type":"bounced","occurred_at":"2026-11-20T10:00:00.25Z","recipient":"bob@x.io",` +
			`"bounce":{"class":"hard","smtp_code":550},"reply":{"category":"not_now","text":"<a>&\"\u0001"}}`
		if string(got) != want {
			t.Fatalf("Marshal =\n%s\nwant\n%s", got, want)
		}
	})
	errCases := []struct {
		name  string
		ev    *sgv1.Event
		field string
	}{
		{"nil", nil, ""},
		{"unknown enum", &sgv1.Event{Type: sgv1.EventType(99)}, "type"},
		{"unknown nested enum", &sgv1.Event{Bounce: &sgv1.Bounce{Class: 7}}, "bounce.class"},
		{"invalid timestamp", &sgv1.Event{OccurredAt: &timestamppb.Timestamp{Nanos: -1}}, "occurred_at"},
		{"NaN", &sgv1.Event{Postmaster: &sgv1.Postmaster{SpamRate: nanValue()}}, "postmaster.spam_rate"},
		{"invalid UTF-8", &sgv1.Event{Sender: "a\xffb"}, "sender"},
	}
	for _, tt := range errCases {
		t.Run("error "+tt.name, func(t *testing.T) {
			_, err := Marshal(tt.ev)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want FieldError on %q", err, tt.field)
			}
		})
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestValidateAt(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	base := func() *sgv1.Event {
		return &sgv1.Event{
			Type:       sgv1.EventType_EVENT_TYPE_BOUNCED,
			OccurredAt: timestamppb.New(now.Add(-time.Hour)),
			Recipient:  "bob@example.com",
		}
	}
	tests := []struct {
		name   string
		mutate func(*sgv1.Event)
		field  string // "" = valid
	}{
		{"valid", func(*sgv1.Event) {}, ""},
		{"nil event is handled below", nil, ""},
		{"type missing", func(e *sgv1.Event) { e.Type = 0 }, "type"},
		{"type unknown", func(e *sgv1.Event) { e.Type = 42 }, "type"},
		{"occurred_at missing", func(e *sgv1.Event) { e.OccurredAt = nil }, "occurred_at"},
		{"occurred_at invalid", func(e *sgv1.Event) { e.OccurredAt = &timestamppb.Timestamp{Nanos: 2e9} }, "occurred_at"},
		{"occurred_at before 2000", func(e *sgv1.Event) { e.OccurredAt = ts("1999-12-31T23:59:59Z") }, "occurred_at"},
		{"occurred_at at 2000", func(e *sgv1.Event) { e.OccurredAt = ts("2000-01-01T00:00:00Z") }, ""},
		{"occurred_at 24h ahead", func(e *sgv1.Event) { e.OccurredAt = timestamppb.New(now.Add(24 * time.Hour)) }, ""},
		{"occurred_at too far ahead", func(e *sgv1.Event) { e.OccurredAt = timestamppb.New(now.Add(24*time.Hour + time.Second)) }, "occurred_at"},
		{"recipient missing", func(e *sgv1.Event) { e.Recipient = "" }, "recipient"},
		{"recipient invalid", func(e *sgv1.Event) { e.Recipient = "bob" }, "recipient"},
		{"recipient with display name", func(e *sgv1.Event) { e.Recipient = "Bob <bob@example.com>" }, "recipient"},
		{"recipient two ats", func(e *sgv1.Event) { e.Recipient = "a@b@c" }, "recipient"},
		{"sender invalid", func(e *sgv1.Event) { e.Sender = "ann@" }, "sender"},
		{"sender valid", func(e *sgv1.Event) { e.Sender = "ann.lee+x@mail.acme.io" }, ""},
		{"sending_domain invalid", func(e *sgv1.Event) { e.SendingDomain = "acme io" }, "sending_domain"},
		{"recipient_domain invalid", func(e *sgv1.Event) { e.RecipientDomain = "a..b" }, "recipient_domain"},
		{"smtp code invalid", func(e *sgv1.Event) { e.Bounce = &sgv1.Bounce{SmtpCode: 55} }, "bounce.smtp_code"},
		{"enhanced code invalid", func(e *sgv1.Event) { e.Bounce = &sgv1.Bounce{EnhancedCode: "5.1"} }, "bounce.enhanced_code"},
		{"bounce valid", func(e *sgv1.Event) { e.Bounce = &sgv1.Bounce{SmtpCode: 550, EnhancedCode: "5.7.26"} }, ""},
		// Found by FuzzParseGRPCDelimited: a protobuf event may carry any
		// enum number, which Marshal cannot write.
		{"provider unknown", func(e *sgv1.Event) { e.Provider = 6144 }, "provider"},
		{"provider known", func(e *sgv1.Event) { e.Provider = sgv1.Provider_PROVIDER_YAHOO }, ""},
		{"bounce class unknown", func(e *sgv1.Event) { e.Bounce = &sgv1.Bounce{Class: 9} }, "bounce.class"},
		{"auth dkim unknown", func(e *sgv1.Event) { e.Auth = &sgv1.Auth{Dkim: -1} }, "auth.dkim"},
		{"placement folder unknown", func(e *sgv1.Event) { e.Placement = &sgv1.Placement{Folder: 77} }, "placement.folder"},
		{"postmaster needs sending_domain", func(e *sgv1.Event) {
			e.Type = sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS
			e.Recipient = ""
		}, "sending_domain"},
		{"postmaster valid", func(e *sgv1.Event) {
			e.Type = sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS
			e.Recipient, e.SendingDomain = "", "acme.io"
			e.Postmaster = &sgv1.Postmaster{SpamRate: 0.003}
		}, ""},
		{"postmaster rate above 1", func(e *sgv1.Event) {
			e.Type = sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS
			e.SendingDomain = "acme.io"
			e.Postmaster = &sgv1.Postmaster{SpamRate: 3}
		}, "postmaster.spam_rate"},
		{"auth_check needs sender or domain", func(e *sgv1.Event) {
			e.Type = sgv1.EventType_EVENT_TYPE_AUTH_CHECK
		}, "sender"},
		{"auth_check with domain", func(e *sgv1.Event) {
			e.Type = sgv1.EventType_EVENT_TYPE_AUTH_CHECK
			e.Recipient, e.SendingDomain = "", "acme.io"
		}, ""},
		{"placement_test with sender", func(e *sgv1.Event) {
			e.Type = sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST
			e.Recipient, e.Sender = "", "ann@acme.io"
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev *sgv1.Event
			if tt.mutate != nil {
				ev = base()
				tt.mutate(ev)
			}
			err := ValidateAt(ev, now)
			if ev == nil {
				if err == nil {
					t.Fatal("nil event accepted")
				}
				return
			}
			if tt.field == "" {
				if err != nil {
					t.Fatalf("ValidateAt: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want FieldError on %q", err, tt.field)
			}
		})
	}
}

func TestEventID(t *testing.T) {
	a := EventID("sendgrid", "x", "y")
	if a != EventID("sendgrid", "x", "y") {
		t.Fatal("not deterministic")
	}
	if !strings.HasPrefix(a, "sg-") || len(a) != 3+32 {
		t.Fatalf("format: %q", a)
	}
	distinct := []string{
		a,
		EventID("sendgrid", "xy"),
		EventID("sendgrid", "x", "y", ""),
		EventID("ses", "x", "y"),
		EventID("sendgridx", "y"),
		EventID("sendgrid", "y", "x"),
	}
	seen := map[string]int{}
	for i, id := range distinct {
		if j, ok := seen[id]; ok {
			t.Fatalf("ids %d and %d collide: %s", j, i, id)
		}
		seen[id] = i
	}
}

func TestWords(t *testing.T) {
	levels := map[string]sgv1.ScopeLevel{
		"tenant": sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, "domain": sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN,
		"sender": sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, "campaign": sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN,
		"variant": sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, "provider": sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER,
		"account": sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, "recipient": sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT,
		"domain_provider": sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, "segment": sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT,
		"list_source": sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE,
	}
	for w, l := range levels {
		t.Run("level "+w, func(t *testing.T) {
			if got := LevelWord(l); got != w {
				t.Errorf("LevelWord = %q", got)
			}
			if got, err := ParseLevel(w); err != nil || got != l {
				t.Errorf("ParseLevel = %v, %v", got, err)
			}
			if got, err := ParseLevel(l.String()); err != nil || got != l {
				t.Errorf("ParseLevel(proto name) = %v, %v", got, err)
			}
		})
	}
	actions := []string{"pause", "resume", "throttle", "suppress", "unsuppress", "alert"}
	for i, w := range actions {
		a := sgv1.Action(i + 1)
		if ActionWord(a) != w {
			t.Errorf("ActionWord(%v) = %q, want %q", a, ActionWord(a), w)
		}
		if got, err := ParseAction(w); err != nil || got != a {
			t.Errorf("ParseAction(%q) = %v, %v", w, got, err)
		}
	}
	types := []string{"sent", "delivered", "deferred", "bounced", "complained", "unsubscribed", "opened",
		"clicked", "replied", "placement_test", "auth_check", "postmaster_stats", "rejected"}
	if got := Words(sgv1.EventType(0).Descriptor()); strings.Join(got, ",") != strings.Join(types, ",") {
		t.Errorf("event type words = %v", got)
	}
	checks := []struct{ got, want string }{
		{ProviderWord(sgv1.Provider_PROVIDER_MICROSOFT), "microsoft"},
		{SourceWord(sgv1.Source_SOURCE_SPARKPOST), "sparkpost"},
		{BounceCategoryWord(sgv1.BounceCategory_BOUNCE_CATEGORY_AUTH_FAILURE), "auth_failure"},
		{BounceClassWord(sgv1.BounceClass_BOUNCE_CLASS_SOFT), "soft"},
		{ReplyCategoryWord(sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT), "not_a_fit"},
		{SeverityWord(sgv1.Severity_SEVERITY_CRITICAL), "critical"},
		{HealthStateWord(sgv1.HealthState_HEALTH_STATE_COOLDOWN), "cooldown"},
		{Word(sgv1.DmarcPolicy_DMARC_POLICY_MISSING), "missing"},
		{TypeWord(sgv1.EventType(77)), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("word = %q, want %q", c.got, c.want)
		}
	}
	for _, bad := range []string{"", "paused", "ACTION_", "pause "} {
		if _, err := ParseAction(bad); err == nil {
			t.Errorf("ParseAction(%q) accepted", bad)
		}
	}
	if _, err := ParseSource("SES"); err != nil {
		t.Errorf("ParseSource(SES): %v", err)
	}
	if _, err := ParseType("exploded"); err == nil || !strings.Contains(err.Error(), "bounced") {
		t.Errorf("ParseType error should list the words: %v", err)
	}
}
