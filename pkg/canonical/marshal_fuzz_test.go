package canonical

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// FuzzAppendMarshalMatchesReference checks AppendMarshal against
// referenceMarshal on events read with proto.Unmarshal (any enum number,
// any timestamp, any double), with text of any bytes put in one of the
// string fields (proto.Unmarshal refuses invalid UTF-8 itself): both give
// the same bytes or the same *FieldError.
func FuzzAppendMarshalMatchesReference(f *testing.F) {
	for _, ev := range handEvents() {
		if b, err := proto.Marshal(ev); err == nil {
			f.Add(b, "", uint8(0))
		}
	}
	for _, ev := range generatedEvents(f, 30) {
		b, err := proto.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "", uint8(0))
	}
	f.Add([]byte{}, "a\xffb", uint8(3))
	f.Add([]byte{}, "\"\\\x00\u2028é", uint8(40))
	var strs []leafField
	for _, l := range leafFields() {
		if l.fd.Kind() == protoreflect.StringKind {
			strs = append(strs, l)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, s string, pick uint8) {
		ev := &sgv1.Event{}
		if err := proto.Unmarshal(data, ev); err != nil {
			return
		}
		if s != "" {
			strs[int(pick)%len(strs)].set(ev, protoreflect.ValueOfString(s))
		}
		checkSameAsReference(t, ev)
	})
}
