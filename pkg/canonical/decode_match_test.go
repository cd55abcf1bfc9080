package canonical

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// checkDecodeSameAsReference fails t unless Decode gives referenceDecode's
// event (proto.Equal, and the same deterministic wire bytes, which tell -0
// from an unset double) or its error: a *FieldError, not wrapped, with the
// same field and message. The event must not change when data does after
// Decode returns.
func checkDecodeSameAsReference(t testing.TB, data []byte) {
	t.Helper()
	want, wantErr := referenceDecodeFunc(data)
	in := bytes.Clone(data)
	got, err := Decode(in)
	for i := range in {
		in[i] = 'x'
	}
	if wantErr != nil {
		wfe, ok := wantErr.(*FieldError)
		if !ok {
			t.Fatalf("reference error %T is not a *FieldError", wantErr)
		}
		fe, ok := err.(*FieldError)
		if !ok || *fe != *wfe {
			t.Fatalf("Decode(%q): error %#v (event %v), want %#v", data, err, got, wfe)
		}
		if got != nil {
			t.Fatalf("Decode(%q): error %v with event %v", data, err, got)
		}
		return
	}
	if err != nil {
		t.Fatalf("Decode(%q): %v, want %v", data, err, want)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("Decode(%q) =\n%v\nwant\n%v", data, got, want)
	}
	gb, err1 := proto.MarshalOptions{Deterministic: true}.Marshal(got)
	wb, err2 := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err1 != nil || err2 != nil || !bytes.Equal(gb, wb) {
		t.Fatalf("Decode(%q): wire bytes %x (%v), want %x (%v)", data, gb, err1, wb, err2)
	}
}

// referenceDecodeFunc is the reference checkDecodeSameAsReference compares
// with: referenceDecode, but for TestCheckDecodeSameAsReferenceFails.
var referenceDecodeFunc = referenceDecode

// decodeSeeds are the inputs of the other decoding tests, the fuzz seeds
// and the examples, and lines reaching every error of the lexer.
func decodeSeeds() []string {
	return append([]string{
		// TestDecodeFieldGroups.
		`{"event_id":"e1","tenant":"t1","type":"sent","occurred_at":"2026-11-20T10:00:00Z",
			"sender":"ann@acme.io","sending_domain":"acme.io","recipient":"bob@gmail.com",
			"recipient_domain":"gmail.com","provider":"gmail","account":"gmail.com",
			"campaign":"c1","step":"2","variant":"v1","segment":"smb","list_source":"apollo",
			"message_id":"<m1@acme.io>","source":"ses","envelope_id":"env1",
			"received_at":"2026-11-20T10:00:01.5Z","role_account":true,"source_event":"Send"}`,
		`{"type":"bounced","occurred_at":"2026-11-20T10:00:00+02:00","bounce":{"class":"hard",
			"category":"invalid_mailbox","smtp_code":550,"enhanced_code":"5.1.1","diagnostic":"no such user",
			"reporting_mta":"mx.example.com"}}`,
		`{"type":"complained","complaint":{"source":"fbl","feedback_type":"not_spam",
			"reported_domain":"acme.io","source_ip":"192.0.2.1","feedback_provider":"Yahoo"}}`,
		`{"type":"unsubscribed","unsubscribe":{"method":"one_click","scope":"topic","topic":"news"}}`,
		`{"type":"replied","reply":{"category":"not_now","risk":"medium","text":"ping me in Q3","subject":"Re: hi"}}`,
		`{"type":"placement_test","placement":{"provider":"microsoft","folder":"promotions","tool":"glockapps","test_id":"T9"}}`,
		`{"type":"auth_check","auth":{"spf":"pass","dkim":"fail","dmarc_policy":"quarantine","aligned":true,"tls":false,"ptr":true}}`,
		`{"type":"postmaster_stats","sending_domain":"acme.io","postmaster":{"spam_rate":0.003,
			"domain_reputation":"bad","delivery_error_rate":0.01,"spf_success_rate":1,"dkim_success_rate":0.99,
			"dmarc_success_rate":0.98,"inbound_encryption_rate":1e-1}}`,
		`{"type":"EVENT_TYPE_BOUNCED","provider":"Yahoo","bounce":{"class":"BOUNCE_CLASS_SOFT","category":"Rate_Limited"}}`,
		` {"type":"bounced","sender":null,"bounce":{},"complaint":null} ` + "\n",
		`{"reply":{"text":"line1\nline2 \"q\" \u00e9 <b>&"}}`,
		// TestDecodeErrors.
		``, `[1]`, `"x"`, `{"type":"sent"`, `{"type":}`, `{"type":"sent"} {}`, `{"type":"sent","colour":"red"}`,
		`{"occurredAt":"2026-11-20T10:00:00Z"}`, `{"bounce":{"kind":"hard"}}`, `{"type":"sent","type":"bounced"}`,
		`{"type":"exploded"}`, `{"type":""}`, `{"bounce":{"class":"medium"}}`, `{"bounce":{"class":"EVENT_TYPE_BOUNCED"}}`,
		`{"type":4}`, `{"sender":5}`, `{"sender":{}}`, `{"role_account":"true"}`, `{"bounce":{"smtp_code":"550"}}`,
		`{"bounce":{"smtp_code":550.5}}`, `{"bounce":{"smtp_code":99999999999}}`, `{"postmaster":{"spam_rate":"0.1"}}`,
		`{"postmaster":{"spam_rate":1e400}}`, `{"bounce":"hard"}`, `{"bounce":[]}`,
		`{"occurred_at":"2026-11-20 10:00:00"}`, `{"occurred_at":"2026-11-20T10:00:00"}`, `{"occurred_at":1763632800}`,
		`{"received_at":"0000-01-01T00:00:00Z"}`, `{"bounce":{"class":"hard",}}`,
		// The examples, the bench line and the NDJSON test's lines.
		`{"type":"EVENT_TYPE_BOUNCED","recipient":"bob@example.com",
		"occurred_at":"2026-11-20T10:00:00+01:00","bounce":{"class":"hard","smtp_code":550}}`,
		`{"type":"bounced","bounce":{"class":"medium"}}`, string(benchLine),
		`{"type":"sent","recipient":"a@x.io"}`, `{"type":"delivered"}`, `{"type":"bounced","bounce":{"class":"x"}}`,
		// The lexer's errors and edge cases.
		"\x00", " \t\r\n", `{`, `{ }`, "{\n}\n", `{"`, `{"type`, `{"type"`, `{"type" :`, `{"type":"sent",}`,
		`{"type":"sent" "x":1}`, `{"type":"sent"]`, `{1:2}`, `{tenant:"t"}`, `{"ty\u0070e":"sent"}`, `{"\u0074ype":"sent","type":"sent"}`,
		`{"type":"sen\u0074"}`, `{"type":"se\nt"}`, "{\"type\":\"se\x01t\"}", `{"tenant":"a\"}`, `{"tenant":"a\`,
		`{"tenant":"\u00"}`, `{"tenant":"\u00zz"}`, `{"tenant":"\x"}`, `{"tenant":"\ud800"}`, `{"tenant":"\ud800\u0041"}`,
		`{"tenant":"\udbff\udfff"}`, "{\"tenant\":\"\xed\xa0\x80\"}", "{\"tenant\":\"\xc3\xa9\xe2\x82\"}", "{\"te\xffnant\":1}",
		`{"role_account":tru}`, `{"role_account":nul}`, `{"role_account":t}`, `{"role_account":True}`, `{"role_account":1}`,
		`{"bounce":{"smtp_code":-}}`, `{"bounce":{"smtp_code":01}}`, `{"bounce":{"smtp_code":1.}}`, `{"bounce":{"smtp_code":1e}}`,
		`{"bounce":{"smtp_code":1e+}}`, `{"bounce":{"smtp_code":2147483647}}`, `{"bounce":{"smtp_code":-2147483648}}`,
		`{"bounce":{"smtp_code":2147483648}}`, `{"bounce":{"smtp_code":-2147483649}}`, `{"bounce":{"smtp_code":1e2}}`,
		`{"bounce":{"smtp_code":-0.0}}`, `{"postmaster":{"spam_rate":-0}}`, `{"postmaster":{"spam_rate":0}}`,
		`{"postmaster":{"spam_rate":1e-400}}`, `{"postmaster":{"spam_rate":-1e309}}`, `{"postmaster":{"spam_rate":1.7976931348623157e308}}`,
		`{"postmaster":{"spam_rate":4.9e-324,"spam_rate":1}}`, `{"postmaster":{"spam_rate":.5}}`, `{"postmaster":{"spam_rate":+1}}`,
		`{"type":"unspecified"}`, `{"type":"EVENT_TYPE_UNSPECIFIED"}`, `{"type":"Bounced"}`, `{"type":"bounced "}`,
		`{"bounce":{"class":"hard"},"bounce":{}}`, `{"bounce":null,"bounce":{}}`, `{"bounce":{"class":null,"class":"hard"}}`,
		`{"auth":{"aligned":true,"tls":true,"ptr":false,"x":1}}`, `{"auth":{} , "auth" : {}}`, `{"bounce":{"":1}}`, `{"":1}`,
		`{"occurred_at":"2026-11-20T10:00:00,5Z"}`, `{"occurred_at":"2026-11-20t10:00:00z"}`, `{"occurred_at":"2026-02-29T10:00:00Z"}`,
		`{"occurred_at":"2024-02-29T10:00:00Z"}`, `{"occurred_at":"2026-11-20T24:00:00Z"}`, `{"occurred_at":"2026-11-20T23:59:60Z"}`,
		`{"occurred_at":"0001-01-01T00:00:00+00:01"}`, `{"occurred_at":"0000-12-31T23:59:59-00:01"}`,
		`{"occurred_at":"9999-12-31T23:59:59-00:01"}`, `{"occurred_at":"2026-11-20T10:00:00.1234567891234Z"}`,
		`{"occurred_at":"2026-11-20T10:00:00.Z"}`, `{"occurred_at":"2026-11-20T10:00:00+2:00"}`, `{"occurred_at":"2026-11-20T10:00:00+24:00"}`,
		`{"occurred_at":"2026-11-20T10:00:00+0200"}`, `{"occurred_at":"+2026-11-20T10:00:00Z"}`, `{"occurred_at":"2026-11-20T10:00:00\u005a"}`,
		`{"occurred_at":"9999-12-31T23:00:00-01:00"}`, `{"occurred_at":"9999-12-31T22:59:59.999999999-01:00"}`,
		`{"occurred_at":"0001-01-01T01:00:00+01:00"}`, `{"occurred_at":"0001-01-01T00:59:59.999999999+01:00"}`,
		`{"occurred_at":""}`, `{"occurred_at":null}`, `{"occurred_at":{}}`, `{"received_at":"10000-01-01T00:00:00Z"}`,
		// More string bytes than Decode's shared buffer holds.
		`{"event_id":"` + strings.Repeat("a", 300) + `"}`,
		`{"tenant":"` + strings.Repeat("b", 200) + `","sender":"` + strings.Repeat("c", 100) + `","recipient":"d",` +
			`"reply":{"text":"` + strings.Repeat("\u00e9", 60) + `","subject":"` + strings.Repeat("e", 56) + `"}}`,
		`{"type":"sent"}` + "\x00", `{"type":"sent"}` + "\n\n ", `{"type":"sent"}}`,
	}, fuzzDecodeSeeds...)
}

func TestDecodeMatchesReference(t *testing.T) {
	t.Run("seeds", func(t *testing.T) {
		for _, s := range decodeSeeds() {
			checkDecodeSameAsReference(t, []byte(s))
		}
	})
	t.Run("loadgen", func(t *testing.T) {
		var all []byte
		types := map[sgv1.EventType]int{}
		for _, ev := range generatedEvents(t, 20000) {
			types[ev.GetType()]++
			start := len(all)
			var err error
			if all, err = AppendMarshal(all, ev); err != nil {
				t.Fatal(err)
			}
			checkDecodeSameAsReference(t, all[start:])
			all = append(all, '\n')
		}
		if len(types) < 8 {
			t.Fatalf("the generated events have only the types %v", types)
		}
		evs, err := DecodeNDJSON(all, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(all, []byte("\n")), []byte("\n")) {
			want, err := referenceDecode(line)
			if err != nil || !proto.Equal(evs[i], want) {
				t.Fatalf("DecodeNDJSON line %d: %v, want %v (%v)", i+1, evs[i], want, err)
			}
		}
	})
	t.Run("every byte of a full event mutated", func(t *testing.T) {
		full := fullEventLine(t)
		for i := 0; i <= len(full); i++ {
			checkDecodeSameAsReference(t, full[:i])
			if i == len(full) {
				break
			}
			checkDecodeSameAsReference(t, append(bytes.Clone(full[:i]), full[i+1:]...))
			for _, c := range []byte{'"', '\\', '{', '}', '[', ',', ':', ' ', 'x', '0', '-', 'n', 0, 0x1f, 0xff} {
				m := bytes.Clone(full)
				m[i] = c
				checkDecodeSameAsReference(t, m)
			}
		}
	})
}

// fullEventLine is the JSON form of an event with every field set, escapes
// and non-ASCII text included.
func fullEventLine(t testing.TB) []byte {
	t.Helper()
	ev := &sgv1.Event{}
	for _, f := range leafFields() {
		vals, _ := fieldValues(f.fd)
		f.set(ev, vals[0])
	}
	ev.Reply.Text = "é\"\n\\ \u2028 😀"
	b, err := AppendMarshal(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonValues are values of every JSON type, valid and not, for any field.
var jsonValues = []string{
	`null`, `nul`, `true`, `false`, `tru`, `fals`, `0`, `-0`, `1`, `-1`, `550`, `1.5`, `-1.5e-3`, `1e400`, `-1e400`,
	`1e-400`, `99999999999`, `2147483648`, `-2147483649`, `01`, `-`, `1.`, `.5`, `1e`, `""`, `"x"`, `"\u0078"`, `"a\"b"`,
	`"é"`, "\"a\xffb\"", `"\ud800"`, `"2026-11-20T10:00:00Z"`, `"2026-11-20T10:00:00.5+01:00"`, `"0000-01-01T00:00:00Z"`,
	`"2026-13-01T00:00:00Z"`, `"unspecified"`, `"UNSPECIFIED"`, `"nope"`, `{}`, `{"x":1}`, `{"":null}`, `[]`, `[1]`, `{`,
	`"`, `}`, `,`, ``, `x`, "\x00",
}

// TestDecodeCoversSchema decodes every field of the event and of its nested
// messages with values of every JSON type (its words for an enum), alone,
// twice, and as the object of each nested message, so that a field the
// schema gains and Decode does not read as the reference does fails here.
func TestDecodeCoversSchema(t *testing.T) {
	leaves := leafFields()
	if len(leaves) < 56 { // the fields of the schema when this test was written
		t.Fatalf("only %d fields found", len(leaves))
	}
	wrap := func(f leafField, v string) string {
		if f.parent == nil {
			return fmt.Sprintf(`{"%s":%s}`, f.fd.Name(), v)
		}
		return fmt.Sprintf(`{"%s":{"%s":%s}}`, f.parent.Name(), f.fd.Name(), v)
	}
	for _, f := range leaves {
		t.Run(f.name(), func(t *testing.T) {
			if f.fd.Number() >= 64 {
				t.Fatalf("field number %d: Decode's set of seen fields holds numbers below 64", f.fd.Number())
			}
			vals := append([]string(nil), jsonValues...)
			if f.fd.Kind() == protoreflect.EnumKind {
				ev := f.fd.Enum().Values()
				for i := 0; i < ev.Len(); i++ {
					name := string(ev.Get(i).Name())
					vals = append(vals, `"`+name+`"`, `"`+strings.ToLower(name)+`"`)
				}
				for _, w := range Words(f.fd.Enum()) {
					vals = append(vals, `"`+w+`"`, `"`+strings.ToUpper(w)+`"`, `" `+w+`"`)
				}
			}
			set := 0
			for _, v := range vals {
				in := wrap(f, v)
				checkDecodeSameAsReference(t, []byte(in))
				checkDecodeSameAsReference(t, []byte(wrap(f, v+`,"`+string(f.fd.Name())+`":`+v)))
				checkDecodeSameAsReference(t, []byte(strings.Replace(in, ":", " :\n ", -1)))
				if ev, err := Decode([]byte(in)); err == nil && f.get(ev).IsValid() {
					set++
				}
			}
			if set == 0 {
				t.Fatalf("no value set %s", f.name())
			}
		})
	}
	fields := (&sgv1.Event{}).ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Message() == nil || fd.Message().FullName() == timestampName {
			continue
		}
		t.Run(string(fd.Name())+" object", func(t *testing.T) {
			for _, v := range jsonValues {
				checkDecodeSameAsReference(t, []byte(fmt.Sprintf(`{"%s":%s}`, fd.Name(), v)))
				checkDecodeSameAsReference(t, []byte(fmt.Sprintf(`{"%s":{"unknown":%s}}`, fd.Name(), v)))
			}
		})
	}
	t.Run("every field", func(t *testing.T) {
		full := fullEventLine(t)
		checkDecodeSameAsReference(t, full)
		ev, err := Decode(full)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range leaves {
			if !f.get(ev).IsValid() {
				t.Errorf("%s not set by %s", f.name(), full)
			}
		}
	})
}

// get returns the field's value in ev, or an invalid Value when it is
// unset (its message included).
func (f leafField) get(ev *sgv1.Event) protoreflect.Value {
	m := ev.ProtoReflect()
	if f.parent != nil {
		if !m.Has(f.parent) {
			return protoreflect.Value{}
		}
		m = m.Get(f.parent).Message()
	}
	if !m.Has(f.fd) {
		return protoreflect.Value{}
	}
	return m.Get(f.fd)
}

// TestParseRFC3339 checks the fast timestamp parser against time.Parse: a
// text it reads is one time.Parse reads as the same instant, and the
// common forms are read by it rather than left to time.Parse.
func TestParseRFC3339(t *testing.T) {
	check := func(t *testing.T, s string, wantFast bool) {
		t.Helper()
		sec, nsec, ok := parseRFC3339([]byte(s))
		tm, err := time.Parse(time.RFC3339Nano, s)
		if ok && (err != nil || tm.Unix() != sec || int32(tm.Nanosecond()) != nsec) {
			t.Fatalf("parseRFC3339(%q) = %d, %d; time.Parse = %v (%d, %d), %v", s, sec, nsec, tm, tm.Unix(), tm.Nanosecond(), err)
		}
		if wantFast && !ok {
			t.Fatalf("parseRFC3339(%q) left a common form to time.Parse", s)
		}
	}
	t.Run("forms", func(t *testing.T) {
		years := []string{"0000", "0001", "1600", "1700", "1900", "1969", "1970", "2000", "2024", "2026", "2100", "9999", "99x9"}
		dates := []string{"01-01", "01-31", "02-28", "02-29", "02-30", "03-01", "04-30", "04-31", "06-15", "12-31", "12-32", "13-01", "00-10", "11-00"}
		clocks := []string{"00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "9:00:00", "12:00:0a"}
		fracs := []string{"", ".", ".0", ".5", ".123456789", ".1234567891", ".000000001", ".99999999999999", ",5", ".x"}
		zones := []string{"Z", "z", "+00:00", "-00:00", "+01:00", "-07:30", "+23:59", "+24:00", "-00:60", "+0100", "+01:0", "", "ZZ"}
		for _, y := range years {
			for _, d := range dates {
				for _, c := range clocks {
					for _, f := range fracs {
						for _, z := range zones {
							s := y + "-" + d + "T" + c + f + z
							common := y != "99x9" && (d[:2] != "02" || d[3:] <= "28") && d != "04-31" && d != "12-32" &&
								d != "13-01" && d != "00-10" && d != "11-00" && c <= "23:59:59" && len(c) == 8 && c[7] != 'a' &&
								c[3:5] < "60" && c[6:] < "60" && f != "." && f != ",5" && f != ".x" &&
								(z == "Z" || len(z) == 6 && z[1:3] < "24" && z[4:] < "60")
							check(t, s, common)
						}
					}
				}
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		const alphabet = "0123456789-:T.Z+z, "
		base := []byte("2026-11-20T10:00:00.123+01:00")
		for range 300000 {
			s := bytes.Clone(base[:rng.IntN(len(base)+1)])
			for range rng.IntN(4) {
				if len(s) > 0 {
					s[rng.IntN(len(s))] = alphabet[rng.IntN(len(alphabet))]
				}
			}
			check(t, string(s), false)
			sec := -62135596800 + rng.Int64N(253402300800+62135596800)
			tm := time.Unix(sec, rng.Int64N(1e9)).In(time.FixedZone("", (rng.IntN(48)-24)*1800))
			check(t, tm.Format(time.RFC3339Nano), true)
		}
	})
}

// FuzzDecodeMatchesReference checks Decode against referenceDecode on any
// input: the same event or the same *FieldError.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, s := range decodeSeeds() {
		f.Add([]byte(s))
	}
	for _, ev := range generatedEvents(f, 30) {
		b, err := AppendMarshal(nil, ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(fullEventLine(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeSameAsReference(t, data)
	})
}

// TestCheckDecodeSameAsReferenceFails guards the comparison itself: it must
// fail on another event, on -0 against an unset double, on another error
// message or field, and on an error where an event is expected.
func TestCheckDecodeSameAsReferenceFails(t *testing.T) {
	tests := []struct {
		name string
		run  func(tb testing.TB)
	}{
		{"different events", func(tb testing.TB) {
			sameDecode(tb, []byte(`{"type":"sent"}`), mustDecode(tb, `{"type":"bounced"}`), nil)
		}},
		{"-0 and unset", func(tb testing.TB) {
			sameDecode(tb, []byte(`{"postmaster":{"spam_rate":-0}}`), mustDecode(tb, `{"postmaster":{}}`), nil)
		}},
		{"different messages", func(tb testing.TB) {
			sameDecode(tb, []byte(`{"type":"x"}`), nil, &FieldError{Field: "type", Msg: "unknown"})
		}},
		{"different fields", func(tb testing.TB) {
			_, err := referenceDecode([]byte(`{"type":"x"}`))
			fe := *err.(*FieldError)
			fe.Field = "bounce.type"
			sameDecode(tb, []byte(`{"type":"x"}`), nil, &fe)
		}},
		{"error for an event", func(tb testing.TB) {
			sameDecode(tb, []byte(`{"type":"x"}`), mustDecode(tb, `{}`), nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &failRecorder{TB: t}
			func() {
				defer func() { _ = recover() }()
				tt.run(rec)
			}()
			if !rec.failed {
				t.Fatal("the comparison accepted a difference")
			}
		})
	}
}

func mustDecode(tb testing.TB, s string) *sgv1.Event {
	ev, err := referenceDecode([]byte(s))
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}

// sameDecode is checkDecodeSameAsReference with the expected result given.
func sameDecode(tb testing.TB, data []byte, want *sgv1.Event, wantErr error) {
	saved := referenceDecodeFunc
	referenceDecodeFunc = func([]byte) (*sgv1.Event, error) { return want, wantErr }
	defer func() { referenceDecodeFunc = saved }()
	checkDecodeSameAsReference(tb, data)
}

// failRecorder is a testing.TB whose Fatal records the failure and stops
// the function under test without failing the test.
type failRecorder struct {
	testing.TB
	failed bool
}

func (r *failRecorder) Helper() {}
func (r *failRecorder) Fatalf(format string, args ...any) {
	r.failed = true
	panic(fmt.Sprintf(format, args...))
}
func (r *failRecorder) Fatal(args ...any) {
	r.failed = true
	panic(fmt.Sprint(args...))
}

// TestSpecialMask checks the word trick of the string scan against a byte
// loop: the mask is zero exactly when no byte is special, and its lowest
// set bit is the first special byte's, whatever bytes follow it.
func TestSpecialMask(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	check := func(w [8]byte) {
		first := 8
		for j := 7; j >= 0; j-- {
			if special(w[j]) {
				first = j
			}
		}
		m := specialMask(binary.LittleEndian.Uint64(w[:]))
		got := 8
		if m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if got != first || m != 0 && bits.TrailingZeros64(m)%8 != 7 {
			t.Fatalf("specialMask(%q) = %#x: first special byte %d, want %d", w[:], m, got, first)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for pos := 0; pos < 8; pos++ {
		for v := 0; v < 256; v++ {
			for _, bg := range []byte{'a', ' ', '~', '!', '#', '[', ']'} {
				var w [8]byte
				for j := range w {
					w[j] = bg
				}
				w[pos] = byte(v)
				check(w)
				for j := pos + 1; j < 8; j++ {
					w[j] = byte(rng.IntN(256))
				}
				check(w)
			}
		}
	}
	for range 1000000 {
		var w [8]byte
		for j := range w {
			if rng.IntN(4) == 0 {
				w[j] = byte(rng.IntN(256))
			} else {
				w[j] = byte(0x20 + rng.IntN(0x60))
			}
		}
		check(w)
	}
}
