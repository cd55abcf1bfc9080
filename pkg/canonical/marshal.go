package canonical

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Marshal encodes an event in the canonical JSON form on one line, fields in
// protobuf declaration order, unset and zero-valued scalars omitted (a set
// but empty nested message is written as {}). Decode(Marshal(e)) equals e.
// It returns a *FieldError for values the form cannot carry: an enum number
// the enum does not define, an invalid timestamp, a NaN or infinite number,
// a string that is not valid UTF-8.
func Marshal(ev *sgv1.Event) ([]byte, error) {
	if ev == nil {
		return nil, fieldErr("", "nil event")
	}
	buf := make([]byte, 0, 256)
	return appendMessage(buf, ev.ProtoReflect(), "")
}

func appendMessage(buf []byte, m protoreflect.Message, path string) ([]byte, error) {
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
		if buf, err = appendField(buf, m.Get(fd), fd, p); err != nil {
			return nil, err
		}
	}
	return append(buf, '}'), nil
}

func appendField(buf []byte, v protoreflect.Value, fd protoreflect.FieldDescriptor, path string) ([]byte, error) {
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
			return appendString(buf, ts.AsTime().UTC().Format(time.RFC3339Nano), path)
		}
		return appendMessage(buf, v.Message(), path)
	case protoreflect.EnumKind:
		w, ok := wordsFor(fd.Enum()).toWord[v.Enum()]
		if !ok {
			return nil, fieldErr(path, "unknown %s value %d", fd.Enum().Name(), v.Enum())
		}
		return appendString(buf, w, path)
	case protoreflect.StringKind:
		return appendString(buf, v.String(), path)
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

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string without HTML escaping.
func appendString(buf []byte, s, path string) ([]byte, error) {
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
