package canonical

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// referenceMarshal is Marshal as it was before AppendMarshal (commit
// 1786861): a walk of the event through protoreflect in descriptor order.
// AppendMarshal must produce its bytes and its errors for every event.
func referenceMarshal(ev *sgv1.Event) ([]byte, error) {
	if ev == nil {
		return nil, fieldErr("", "nil event")
	}
	buf := make([]byte, 0, 256)
	return refAppendMessage(buf, ev.ProtoReflect(), "")
}

func refAppendMessage(buf []byte, m protoreflect.Message, path string) ([]byte, error) {
	buf = append(buf, '{')
	fields := m.Descriptor().Fields()
	first := true
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		name := string(fd.Name())
		p := joinPath(path, name)
		buf = append(buf, '"')
		buf = append(buf, name...)
		buf = append(buf, '"', ':')
		var err error
		if buf, err = refAppendField(buf, m.Get(fd), fd, p); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func refAppendField(buf []byte, v protoreflect.Value, fd protoreflect.FieldDescriptor, path string) ([]byte, error) {
	if fd.IsList() || fd.IsMap() {
		return nil, fieldErr(path, "repeated fields are not supported")
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fd.Message().FullName() == timestampName {
			ts, ok := v.Message().Interface().(*timestamppb.Timestamp)
			if !ok {
				return nil, fieldErr(path, "unexpected timestamp type")
			}
			if err := ts.CheckValid(); err != nil {
				return nil, fieldErr(path, "invalid timestamp: %v", err)
			}
			return refAppendString(buf, ts.AsTime().UTC().Format(time.RFC3339Nano), path)
		}
		return refAppendMessage(buf, v.Message(), path)
	case protoreflect.EnumKind:
		w, ok := wordsFor(fd.Enum()).toWord[v.Enum()]
		if !ok {
			return nil, fieldErr(path, "unknown %s value %d", fd.Enum().Name(), v.Enum())
		}
		return refAppendString(buf, w, path)
	case protoreflect.StringKind:
		return refAppendString(buf, v.String(), path)
	case protoreflect.BoolKind:
		return strconv.AppendBool(buf, v.Bool()), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.AppendInt(buf, v.Int(), 10), nil
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fieldErr(path, "number %v cannot be represented in JSON", f)
		}
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		return strconv.AppendFloat(buf, f, 'g', -1, bits), nil
	}
	return nil, fieldErr(path, "unsupported field kind %s", fd.Kind())
}

func refAppendString(buf []byte, s, path string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fieldErr(path, "string is not valid UTF-8")
	}
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"'), nil
}
