package canonical

import (
	"google.golang.org/protobuf/reflect/protoreflect"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// fieldTable is what Decode needs of one message type of the canonical
// event, computed once: its fields by JSON key (looked up without turning
// the key into a string) and the dotted path of each field (built without
// concatenating for every field decoded).
type fieldTable struct {
	byKey map[string]protoreflect.FieldDescriptor
	// parent is the message's path in the event; paths is nil when the
	// message has more than one (then Decode joins the path itself).
	parent string
	paths  map[protoreflect.FieldNumber]string
}

// tables holds the fieldTable of the event and of every message under it.
var tables = buildTables((*sgv1.Event)(nil).ProtoReflect().Descriptor())

func buildTables(root protoreflect.MessageDescriptor) map[protoreflect.MessageDescriptor]*fieldTable {
	out := map[protoreflect.MessageDescriptor]*fieldTable{}
	var visit func(md protoreflect.MessageDescriptor, path string)
	visit = func(md protoreflect.MessageDescriptor, path string) {
		if t, ok := out[md]; ok {
			if t.parent != path {
				t.paths = nil // a second place: no single path
			}
			return
		}
		fields := md.Fields()
		t := &fieldTable{byKey: make(map[string]protoreflect.FieldDescriptor, fields.Len()), parent: path,
			paths: make(map[protoreflect.FieldNumber]string, fields.Len())}
		out[md] = t
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			p := joinPath(path, string(fd.Name()))
			t.byKey[string(fd.Name())] = fd
			t.paths[fd.Number()] = p
			if fd.Message() != nil && !fd.IsList() && !fd.IsMap() {
				visit(fd.Message(), p)
			}
		}
	}
	visit(root, "")
	return out
}

// setString sets string field fd of m to s. The fields of the canonical
// messages are assigned directly: protoreflect's Set boxes the value, two
// allocations per field; any other field goes through Set.
func setString(m protoreflect.Message, fd protoreflect.FieldDescriptor, s string) {
	if p := stringField(m.Interface(), fd.Number()); p != nil {
		*p = s
		return
	}
	m.Set(fd, protoreflect.ValueOfString(s))
}

// stringField returns the address of string field n of the canonical
// message m, or nil. TestStringFields checks it against the descriptors.
func stringField(m protoreflect.ProtoMessage, n protoreflect.FieldNumber) *string {
	switch x := m.(type) {
	case *sgv1.Event:
		switch n {
		case 1:
			return &x.EventId
		case 2:
			return &x.Tenant
		case 5:
			return &x.Sender
		case 6:
			return &x.SendingDomain
		case 7:
			return &x.Recipient
		case 8:
			return &x.RecipientDomain
		case 10:
			return &x.Account
		case 11:
			return &x.Campaign
		case 12:
			return &x.Step
		case 13:
			return &x.Variant
		case 14:
			return &x.Segment
		case 15:
			return &x.ListSource
		case 16:
			return &x.MessageId
		case 25:
			return &x.EnvelopeId
		case 28:
			return &x.SourceEvent
		}
	case *sgv1.Bounce:
		switch n {
		case 4:
			return &x.EnhancedCode
		case 5:
			return &x.Diagnostic
		case 6:
			return &x.ReportingMta
		}
	case *sgv1.Complaint:
		switch n {
		case 3:
			return &x.ReportedDomain
		case 4:
			return &x.SourceIp
		case 5:
			return &x.FeedbackProvider
		}
	case *sgv1.Unsubscribe:
		if n == 3 {
			return &x.Topic
		}
	case *sgv1.Reply:
		switch n {
		case 3:
			return &x.Text
		case 4:
			return &x.Subject
		}
	case *sgv1.Placement:
		switch n {
		case 3:
			return &x.Tool
		case 4:
			return &x.TestId
		}
	}
	return nil
}
