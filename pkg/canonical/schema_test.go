package canonical

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestStringFields: setString sets every string field of the event and of
// every message under it exactly as protoreflect's Set does, and Decode
// knows each field of those messages by its key and its dotted path.
func TestStringFields(t *testing.T) {
	var visit func(md protoreflect.MessageDescriptor, path string, seen map[protoreflect.FullName]bool)
	direct, strings := 0, 0
	visit = func(md protoreflect.MessageDescriptor, path string, seen map[protoreflect.FullName]bool) {
		if seen[md.FullName()] || md.FullName() == timestampName {
			return
		}
		seen[md.FullName()] = true
		table := tables[md]
		if table == nil {
			t.Fatalf("no field table for %s", md.FullName())
		}
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			want := joinPath(path, string(fd.Name()))
			t.Run(want, func(t *testing.T) {
				if table.byKey[string(fd.Name())] != fd || table.paths[fd.Number()] != want {
					t.Errorf("table: field %v path %q, want %q", table.byKey[string(fd.Name())], table.paths[fd.Number()], want)
				}
				if fd.Kind() == protoreflect.StringKind {
					strings++
					a, b := newMessage(t, md), newMessage(t, md)
					setString(a, fd, "v-"+string(fd.Name()))
					b.Set(fd, protoreflect.ValueOfString("v-"+string(fd.Name())))
					if !proto.Equal(a.Interface(), b.Interface()) {
						t.Errorf("setString gives %v, Set gives %v", a.Interface(), b.Interface())
					}
					if stringField(a.Interface(), fd.Number()) != nil {
						direct++
					}
				}
				if fd.Message() != nil {
					visit(fd.Message(), want, seen)
				}
			})
		}
	}
	visit((&sgv1.Event{}).ProtoReflect().Descriptor(), "", map[protoreflect.FullName]bool{})
	if direct != strings || strings == 0 {
		t.Errorf("%d of %d string fields set directly, want every one", direct, strings)
	}
}

// newMessage returns an empty message of the canonical type md.
func newMessage(t *testing.T, md protoreflect.MessageDescriptor) protoreflect.Message {
	t.Helper()
	ev := (&sgv1.Event{}).ProtoReflect()
	fields := ev.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if fd := fields.Get(i); fd.Message() != nil && fd.Message().FullName() == md.FullName() {
			return ev.NewField(fd).Message()
		}
	}
	if md.FullName() == ev.Descriptor().FullName() {
		return ev
	}
	t.Fatalf("no field of type %s", md.FullName())
	return nil
}
