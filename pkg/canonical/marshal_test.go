package canonical

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/loadgen"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// checkSameAsReference fails t unless AppendMarshal (onto an empty and onto
// a non-empty buffer) and Marshal give referenceMarshal's bytes, or its
// error: a *FieldError with the same field and message.
func checkSameAsReference(t testing.TB, ev *sgv1.Event) {
	t.Helper()
	want, wantErr := referenceMarshal(ev)
	got, err := Marshal(ev)
	sameResult(t, "Marshal", got, err, want, wantErr)
	got, err = AppendMarshal(nil, ev)
	sameResult(t, "AppendMarshal(nil)", got, err, want, wantErr)

	prefix := []byte(`{"earlier":"line"}` + "\n")
	buf := append(make([]byte, 0, len(prefix)+8), prefix...)
	got, err = AppendMarshal(buf, ev)
	if !bytes.Equal(got[:len(prefix)], prefix) {
		t.Fatalf("AppendMarshal changed the prefix: %q", got)
	}
	if err != nil {
		if len(got) != len(prefix) {
			t.Fatalf("AppendMarshal error %v returned %d bytes, want the %d of buf", err, len(got), len(prefix))
		}
		got = nil
	} else {
		got = got[len(prefix):]
	}
	sameResult(t, "AppendMarshal(prefix)", got, err, want, wantErr)
}

func sameResult(t testing.TB, what string, got []byte, err error, want []byte, wantErr error) {
	t.Helper()
	if wantErr != nil {
		var fe, wfe *FieldError
		if !errors.As(wantErr, &wfe) {
			t.Fatalf("reference error %T is not a *FieldError", wantErr)
		}
		if !errors.As(err, &fe) || *fe != *wfe {
			t.Fatalf("%s: error %#v (bytes %q), want %#v", what, err, got, wfe)
		}
		if got != nil {
			t.Fatalf("%s: error %v with bytes %q", what, err, got)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v, want\n%s", what, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s =\n%s\nwant\n%s", what, got, want)
	}
}

// handEvents are events covering every message, escapes, non-ASCII text,
// negative and extreme times, -0 and extreme doubles.
func handEvents() map[string]*sgv1.Event {
	at := func(sec int64, nanos int32) *timestamppb.Timestamp {
		return &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}
	}
	return map[string]*sgv1.Event{
		"empty": {},
		"identity": {
			EventId: "e1", Tenant: "t1", Type: sgv1.EventType_EVENT_TYPE_SENT, OccurredAt: at(1795341600, 123000000),
			Sender: "ann@acme.io", SendingDomain: "acme.io", Recipient: "bob@gmail.com", RecipientDomain: "gmail.com",
			Provider: sgv1.Provider_PROVIDER_GMAIL, Account: "gmail.com", Campaign: "c1", Step: "2", Variant: "v1",
			Segment: "smb", ListSource: "apollo", MessageId: "<m1@acme.io>", Source: sgv1.Source_SOURCE_SES,
			EnvelopeId: "env1", ReceivedAt: at(1795341601, 500000000), RoleAccount: true, SourceEvent: "Send",
		},
		"bounce": {Type: sgv1.EventType_EVENT_TYPE_BOUNCED, Bounce: &sgv1.Bounce{
			Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, Category: sgv1.BounceCategory_BOUNCE_CATEGORY_OTHER,
			SmtpCode: -2147483648, EnhancedCode: "5.1.1", Diagnostic: "550 \"quoted\" \\ back\tslash\r\n\x00\x1f\x7f", ReportingMta: "mx",
		}},
		"complaint": {Complaint: &sgv1.Complaint{Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_MANUAL,
			FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_VIRUS, ReportedDomain: "acme.io", SourceIp: "::1", FeedbackProvider: "Yahoo"}},
		"unsubscribe": {Unsubscribe: &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_MANUAL,
			Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_TOPIC, Topic: "news"}},
		"reply": {Reply: &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE, Risk: sgv1.Risk_RISK_HIGH,
			Text: "grüße \u2028 😀 <a>&amp;", Subject: "Re: \u00e9"}},
		"placement": {Placement: &sgv1.Placement{Provider: sgv1.Provider_PROVIDER_OTHER,
			Folder: sgv1.PlacementFolder_PLACEMENT_FOLDER_MISSING, Tool: "glockapps", TestId: "T9"}},
		"auth": {Auth: &sgv1.Auth{Spf: sgv1.AuthResult_AUTH_RESULT_NONE, Dkim: sgv1.AuthResult_AUTH_RESULT_PASS,
			DmarcPolicy: sgv1.DmarcPolicy_DMARC_POLICY_MISSING, Aligned: true, Tls: true, Ptr: true}},
		"auth bools only": {Auth: &sgv1.Auth{Tls: true}},
		"postmaster": {Postmaster: &sgv1.Postmaster{SpamRate: math.Copysign(0, -1),
			DomainReputation: sgv1.DomainReputation_DOMAIN_REPUTATION_BAD, DeliveryErrorRate: 1e21, SpfSuccessRate: 1e-7,
			DkimSuccessRate: math.MaxFloat64, DmarcSuccessRate: math.SmallestNonzeroFloat64, InboundEncryptionRate: 0.1}},
		"postmaster zero": {Postmaster: &sgv1.Postmaster{}},
		"empty nested":    {Bounce: &sgv1.Bounce{}, Complaint: &sgv1.Complaint{}, Unsubscribe: &sgv1.Unsubscribe{}, Reply: &sgv1.Reply{}, Placement: &sgv1.Placement{}, Auth: &sgv1.Auth{}},
		"time min":        {OccurredAt: at(-62135596800, 0), ReceivedAt: at(-1, 1)},
		"time max":        {OccurredAt: at(253402300799, 999999999), ReceivedAt: at(951782400, 100)},
		"time epoch":      {OccurredAt: at(0, 0)},
		"time empty":      {OccurredAt: &timestamppb.Timestamp{}},
		// Errors, the first in declaration order reported.
		"nil":                 nil,
		"bad type":            {Type: 99},
		"negative enum":       {Provider: -1},
		"bad nested enum":     {Sender: "ok", Placement: &sgv1.Placement{Folder: 1 << 20}},
		"bad utf-8":           {Recipient: "a\xffb", Type: 77},
		"bad utf-8 nested":    {Reply: &sgv1.Reply{Subject: "\xc3"}},
		"NaN":                 {Postmaster: &sgv1.Postmaster{DkimSuccessRate: math.NaN()}},
		"-Inf":                {Postmaster: &sgv1.Postmaster{SpamRate: math.Inf(-1), DeliveryErrorRate: math.NaN()}},
		"nanos":               {OccurredAt: at(0, 1e9)},
		"negative nanos":      {ReceivedAt: at(0, -1)},
		"underflow":           {OccurredAt: at(-62135596801, 0)},
		"overflow":            {ReceivedAt: at(253402300800, 0), SourceEvent: "\xff"},
		"first of two errors": {Tenant: "\x80", Type: 50},
	}
}

// generatedEvents are loadgen's realistic events, an anomaly's included.
func generatedEvents(t testing.TB, n int) []*sgv1.Event {
	t.Helper()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	g, err := loadgen.New(loadgen.Config{Seed: 7, Start: start, Tenants: []string{"acme", "globex"},
		Anomalies: []loadgen.Anomaly{{Level: "provider", Target: "gmail", Start: start,
			Rates: loadgen.Rates{Bounce: 0.3, Reply: 0.2, Unsubscribe: 0.1, Complaint: 0.1}}}})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*sgv1.Event, n)
	for i := range out {
		out[i] = g.Next()
	}
	warm, spike := loadgen.DomainSpike("acme", "spike.example", start, 3, 2, "sp")
	return append(append(out, warm...), spike...)
}

func TestAppendMarshalMatchesReference(t *testing.T) {
	for name, ev := range handEvents() {
		t.Run(name, func(t *testing.T) { checkSameAsReference(t, ev) })
	}
	t.Run("decoded lines", func(t *testing.T) {
		for _, line := range []string{
			string(benchLine),
			`{"type":"complained","complaint":{"source":"fbl","feedback_type":"abuse"},"unsubscribe":{"method":"one_click","scope":"global"}}`,
			`{"type":"postmaster_stats","sending_domain":"acme.io","postmaster":{"spam_rate":0.003,"domain_reputation":"HIGH","delivery_error_rate":-0}}`,
			`{"type":"replied","reply":{"category":"not_now","risk":"low","text":"\u2028\u0000"},"role_account":true,"auth":{"spf":"pass","aligned":false}}`,
			`{"message_id":"\ud83d\ude00 \ud800x \udc00\ud800 \u00e9\/\b\f"}`,
		} {
			ev, err := Decode([]byte(line))
			if err != nil {
				t.Fatalf("Decode(%s): %v", line, err)
			}
			checkSameAsReference(t, ev)
		}
	})
	t.Run("loadgen", func(t *testing.T) {
		types := map[sgv1.EventType]int{}
		for _, ev := range generatedEvents(t, 20000) {
			types[ev.GetType()]++
			checkSameAsReference(t, ev)
		}
		if len(types) < 8 {
			t.Fatalf("the generated events have only the types %v", types)
		}
	})
}

// fieldValues returns values for field fd: valid ones, then ones Marshal
// refuses (after the index it returns).
func fieldValues(fd protoreflect.FieldDescriptor) (vals []protoreflect.Value, firstBad int) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return []protoreflect.Value{protoreflect.ValueOfString("x"), protoreflect.ValueOfString("é\"\n"),
			protoreflect.ValueOfString("a\xffb")}, 2
	case protoreflect.EnumKind:
		values := fd.Enum().Values() // the zero value (unset) last
		for i := 1; i <= values.Len(); i++ {
			vals = append(vals, protoreflect.ValueOfEnum(values.Get(i%values.Len()).Number()))
		}
		return append(vals, protoreflect.ValueOfEnum(-1), protoreflect.ValueOfEnum(1000),
			protoreflect.ValueOfEnum(math.MaxInt32)), len(vals)
	case protoreflect.BoolKind:
		return []protoreflect.Value{protoreflect.ValueOfBool(true), protoreflect.ValueOfBool(false)}, 2
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return []protoreflect.Value{protoreflect.ValueOfInt32(1), protoreflect.ValueOfInt32(-1),
			protoreflect.ValueOfInt32(math.MaxInt32), protoreflect.ValueOfInt32(math.MinInt32)}, 4
	case protoreflect.DoubleKind:
		return []protoreflect.Value{protoreflect.ValueOfFloat64(1.5), protoreflect.ValueOfFloat64(math.Copysign(0, -1)),
			protoreflect.ValueOfFloat64(1e-300), protoreflect.ValueOfFloat64(math.NaN()),
			protoreflect.ValueOfFloat64(math.Inf(1))}, 3
	case protoreflect.MessageKind:
		if fd.Message().FullName() == timestampName {
			return []protoreflect.Value{
				protoreflect.ValueOfMessage((&timestamppb.Timestamp{Seconds: 1795341600, Nanos: 120}).ProtoReflect()),
				protoreflect.ValueOfMessage((&timestamppb.Timestamp{Seconds: 1}).ProtoReflect()),
				protoreflect.ValueOfMessage((&timestamppb.Timestamp{Nanos: -1}).ProtoReflect()),
				protoreflect.ValueOfMessage((&timestamppb.Timestamp{Seconds: 1 << 40}).ProtoReflect()),
			}, 2
		}
	}
	// A kind the canonical messages do not have yet, such as a
	// repeated field: the reference decides what AppendMarshal must do.
	return []protoreflect.Value{fd.Default()}, 1
}

// leafField is a field of the event or of one of its nested messages.
type leafField struct {
	parent protoreflect.FieldDescriptor // nil for the event's own fields
	fd     protoreflect.FieldDescriptor
}

func leafFields() []leafField {
	var out []leafField
	fields := (&sgv1.Event{}).ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != timestampName && !fd.IsList() && !fd.IsMap() {
			sub := fd.Message().Fields()
			for j := 0; j < sub.Len(); j++ {
				out = append(out, leafField{fd, sub.Get(j)})
			}
			continue
		}
		out = append(out, leafField{nil, fd})
	}
	return out
}

func (f leafField) name() string {
	if f.parent == nil {
		return string(f.fd.Name())
	}
	return string(f.parent.Name()) + "." + string(f.fd.Name())
}

func (f leafField) set(ev *sgv1.Event, v protoreflect.Value) {
	m := ev.ProtoReflect()
	if f.parent != nil {
		m = m.Mutable(f.parent).Message()
	}
	if f.fd.IsList() || f.fd.IsMap() {
		return // left unset: no value of fieldValues fits
	}
	m.Set(f.fd, v)
}

// TestAppendMarshalCoversSchema sets every field of the event and of its
// nested messages, alone, all together, and two bad ones at a time, so that
// a field the schema gains and AppendMarshal does not write (or writes
// differently) fails here.
func TestAppendMarshalCoversSchema(t *testing.T) {
	leaves := leafFields()
	if len(leaves) < 56 { // the fields of the schema when this test was written
		t.Fatalf("only %d fields found", len(leaves))
	}
	full := &sgv1.Event{}
	var bad []leafField
	for _, f := range leaves {
		vals, firstBad := fieldValues(f.fd)
		t.Run(f.name(), func(t *testing.T) {
			for _, v := range vals {
				ev := &sgv1.Event{}
				f.set(ev, v)
				checkSameAsReference(t, ev)
			}
		})
		f.set(full, vals[0])
		if firstBad < len(vals) {
			bad = append(bad, f)
		}
	}
	t.Run("every field", func(t *testing.T) {
		checkSameAsReference(t, full)
		out, err := AppendMarshal(nil, full)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range leaves {
			if !bytes.Contains(out, []byte(`"`+string(f.fd.Name())+`":`)) {
				t.Errorf("%s missing from %s", f.name(), out)
			}
		}
	})
	t.Run("two bad fields", func(t *testing.T) {
		for i, a := range bad {
			for _, b := range bad[i+1:] {
				ev := proto.Clone(full).(*sgv1.Event)
				va, ia := fieldValues(a.fd)
				vb, ib := fieldValues(b.fd)
				b.set(ev, vb[ib])
				a.set(ev, va[ia])
				checkSameAsReference(t, ev)
			}
		}
	})
}

func TestAppendMarshalRoundTrip(t *testing.T) {
	evs := generatedEvents(t, 2000)
	for _, ev := range handEvents() {
		if _, err := referenceMarshal(ev); err == nil {
			evs = append(evs, ev)
		}
	}
	var all []byte
	for _, ev := range evs {
		start := len(all)
		var err error
		if all, err = AppendMarshal(all, ev); err != nil {
			t.Fatalf("%v: %v", ev, err)
		}
		back, err := Decode(all[start:])
		if err != nil {
			t.Fatalf("Decode(%s): %v", all[start:], err)
		}
		if !proto.Equal(ev, back) {
			t.Fatalf("round trip changed the event:\n%v\n%v", ev, back)
		}
		all = append(all, '\n')
	}
	back, err := DecodeNDJSON(all, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(evs) {
		t.Fatalf("%d events read back from one buffer, want %d", len(back), len(evs))
	}
	for i := range evs {
		if !proto.Equal(evs[i], back[i]) {
			t.Fatalf("event %d changed:\n%v\n%v", i, evs[i], back[i])
		}
	}
}

func TestAppendMarshalKeepsBuffer(t *testing.T) {
	ev := &sgv1.Event{EventId: "e1", Type: sgv1.EventType_EVENT_TYPE_SENT}
	tests := []struct {
		name string
		buf  []byte
		ev   *sgv1.Event
		want string
		// errField is the FieldError's field when fails; the result must
		// then be buf.
		fails    bool
		errField string
	}{
		{"nil buf", nil, ev, `{"event_id":"e1","type":"sent"}`, false, ""},
		{"prefix", []byte("x\n"), ev, "x\n" + `{"event_id":"e1","type":"sent"}`, false, ""},
		{"prefix ending in a brace", []byte("{"), &sgv1.Event{Tenant: "t"}, `{{"tenant":"t"}`, false, ""},
		{"empty event after a brace", []byte("{"), &sgv1.Event{}, `{{}`, false, ""},
		{"error keeps buf", []byte("x\n"), &sgv1.Event{EventId: "e1", Type: 99}, "x\n", true, "type"},
		{"nil event keeps buf", []byte("x"), nil, "x", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendMarshal(tt.buf, tt.ev)
			var fe *FieldError
			if tt.fails && (!errors.As(err, &fe) || fe.Field != tt.errField) || !tt.fails && err != nil {
				t.Fatalf("err = %v, want failure %v on %q", err, tt.fails, tt.errField)
			}
			if string(got) != tt.want {
				t.Fatalf("AppendMarshal = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("reused buffer does not allocate", func(t *testing.T) {
		evs := generatedEvents(t, 100)
		buf := make([]byte, 0, 4096)
		allocs := testing.AllocsPerRun(20, func() {
			for _, ev := range evs {
				var err error
				if buf, err = AppendMarshal(buf[:0], ev); err != nil {
					t.Fatal(err)
				}
			}
		})
		if allocs != 0 {
			t.Fatalf("%v allocations per 100 events", allocs)
		}
	})
}

func TestAppendRFC3339NanoUTC(t *testing.T) {
	const minSec, maxSec = -62135596800, 253402300799
	secs := []int64{minSec, minSec + 86399, -1, 0, 1, 951782400 /* 2000-02-29 */, -2203891200 /* 1900-03-01 */, maxSec}
	nanos := []int64{0, 1, 10, 999, 120000, 500000000, 999999999}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		secs = append(secs, minSec+rng.Int64N(maxSec-minSec+1))
		nanos = append(nanos, rng.Int64N(1e9))
	}
	check := func(s, n int64) {
		tm := time.Unix(s, n).UTC()
		want := tm.Format(time.RFC3339Nano)
		if got := appendRFC3339NanoUTC([]byte("p"), tm); string(got) != "p"+want {
			t.Fatalf("appendRFC3339NanoUTC(%d, %d) = %q, want %q", s, n, got[1:], want)
		}
	}
	for _, s := range secs[:8] {
		for _, n := range nanos[:7] {
			check(s, n)
		}
	}
	for i := 8; i < len(secs); i++ {
		check(secs[i], nanos[i-8+7])
	}
}
