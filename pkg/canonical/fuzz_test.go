package canonical

import (
	"bytes"
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fuzzDecodeSeeds are FuzzDecode's seed inputs; decodeSeeds includes them.
var fuzzDecodeSeeds = []string{
	`{"event_id":"e1","tenant":"t","type":"bounced","occurred_at":"2026-11-20T10:00:00.123456789+01:00","sender":"a@b.io","recipient":"c@gmail.com","provider":"gmail","bounce":{"class":"hard","category":"dns","smtp_code":550,"enhanced_code":"5.1.1","diagnostic":"x\ny"}}`,
	`{"type":"complained","complaint":{"source":"fbl","feedback_type":"abuse"},"unsubscribe":{"method":"one_click","scope":"global"}}`,
	`{"type":"postmaster_stats","sending_domain":"acme.io","postmaster":{"spam_rate":0.003,"domain_reputation":"HIGH","delivery_error_rate":-0}}`,
	`{"type":"replied","reply":{"category":"not_now","risk":"low","text":"\u2028\u0000"},"role_account":true,"auth":{"spf":"pass","aligned":false}}`,
	`{"placement":{},"received_at":"9999-12-31T23:59:59.999999999Z","source":"SOURCE_GRPC"}`,
	`{}`, `null`, `[]`, `{"type":null}`,
	`{"message_id":"\ud83d\ude00 \ud800x \udc00\ud800 \u00e9\/\b\f"}`, "{\"sender\":\"a\xffb\"}",
	`{"bounce":{"smtp_code":-0,"diagnostic":"1e5"},"postmaster":{"spam_rate":-1.5E-3}}`,
}

// FuzzDecode checks that Decode never panics and that every event it accepts
// survives Marshal and Decode unchanged, and that Marshal is stable.
func FuzzDecode(f *testing.F) {
	seeds := fuzzDecodeSeeds
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Decode(data)
		if err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("error %T is not a *FieldError", err)
			}
			return
		}
		// Differential check against encoding/json: what Decode accepts
		// is valid JSON, and its strings decode the same way.
		var ref map[string]any
		if err := json.Unmarshal(data, &ref); err != nil {
			t.Fatalf("Decode accepted what encoding/json rejects: %v", err)
		}
		m := ev.ProtoReflect()
		for k, v := range ref {
			s, ok := v.(string)
			fd := m.Descriptor().Fields().ByName(protoreflect.Name(k))
			if ok && fd != nil && fd.Kind() == protoreflect.StringKind && m.Get(fd).String() != s {
				t.Fatalf("field %s: Decode %q, encoding/json %q", k, m.Get(fd).String(), s)
			}
		}
		out, err := Marshal(ev)
		if err != nil {
			t.Fatalf("Marshal of decoded event: %v", err)
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode(Marshal(e)): %v\n%s", err, out)
		}
		if !proto.Equal(ev, back) {
			t.Fatalf("round trip changed the event:\n%v\n%v", ev, back)
		}
		again, err := Marshal(back)
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("Marshal not stable: %s vs %s (%v)", out, again, err)
		}
		_ = ValidateAt(ev, ev.GetOccurredAt().AsTime()) // must not panic
	})
}
