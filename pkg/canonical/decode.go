package canonical

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

const timestampName protoreflect.FullName = "google.protobuf.Timestamp"

// Decode parses one canonical event in its JSON form. The input must be a
// single JSON object (surrounding whitespace allowed). Every error is a
// *FieldError; its Field is "" when the input is not well-formed JSON or not
// an object. A JSON null value leaves its field unset. Decode does not
// validate the event's content; see Validate.
func Decode(data []byte) (*sgv1.Event, error) {
	l := &lexer{data: data}
	if c := l.peek(); c != '{' {
		if c == 0 {
			return nil, l.syntax("")
		}
		return nil, fieldErr("", "expected a JSON object, got %s", l.kind())
	}
	l.pos++
	ev := &sgv1.Event{}
	if err := decodeMessage(l, ev.ProtoReflect(), ""); err != nil {
		return nil, err
	}
	if !l.eof() {
		return nil, fieldErr("", "unexpected data after the JSON object")
	}
	return ev, nil
}

// DecodeNDJSON parses newline-delimited canonical events. Blank lines (only
// whitespace) are skipped. An error names its line: it is a *LineError
// wrapping the line's *FieldError. More than max events (max > 0) yields an
// error wrapping ErrTooManyEvents; max <= 0 means no limit.
func DecodeNDJSON(data []byte, max int) ([]*sgv1.Event, error) {
	var out []*sgv1.Event
	line := 0
	for len(data) > 0 {
		line++
		var cur []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			cur, data = data[:i], data[i+1:]
		} else {
			cur, data = data, nil
		}
		cur = bytes.TrimSpace(cur)
		if len(cur) == 0 {
			continue
		}
		if max > 0 && len(out) >= max {
			return nil, &LineError{Line: line, Err: fmt.Errorf("%w: more than %d", ErrTooManyEvents, max)}
		}
		ev, err := Decode(cur)
		if err != nil {
			return nil, &LineError{Line: line, Err: err}
		}
		out = append(out, ev)
	}
	return out, nil
}

// fieldSet records the fields seen in one object, to refuse duplicates.
type fieldSet struct {
	low  [2]uint64
	high map[protoreflect.FieldNumber]bool
}

// add reports whether n was not yet in the set.
func (s *fieldSet) add(n protoreflect.FieldNumber) bool {
	if n < 128 {
		w, bit := n/64, uint64(1)<<(n%64)
		if s.low[w]&bit != 0 {
			return false
		}
		s.low[w] |= bit
		return true
	}
	if s.high == nil {
		s.high = map[protoreflect.FieldNumber]bool{}
	}
	if s.high[n] {
		return false
	}
	s.high[n] = true
	return true
}

// decodeMessage reads the members of an object whose '{' was consumed, and
// the closing '}'.
func decodeMessage(l *lexer, m protoreflect.Message, path string) error {
	md := m.Descriptor()
	table := tables[md]
	var seen fieldSet
	if l.peek() == '}' {
		l.pos++
		return nil
	}
	for {
		if l.peek() != '"' {
			if c := l.peek(); isValueStart(c) {
				return fieldErr(path, "expected a field name, got %s", l.kind())
			}
			return l.syntax(path)
		}
		key, err := l.readStringBytes(path)
		if err != nil {
			return err
		}
		var fd protoreflect.FieldDescriptor
		if table != nil {
			fd = table.byKey[string(key)]
		} else {
			fd = md.Fields().ByName(protoreflect.Name(key))
		}
		var p string
		if fd != nil && table != nil && table.paths != nil && table.parent == path {
			p = table.paths[fd.Number()]
		} else {
			p = joinPath(path, string(key))
		}
		if err := l.expect(':', p); err != nil {
			return err
		}
		if fd == nil {
			return fieldErr(p, "unknown field")
		}
		if !seen.add(fd.Number()) {
			return fieldErr(p, "duplicate field")
		}
		if err := decodeField(l, m, fd, p); err != nil {
			return err
		}
		switch l.peek() {
		case ',':
			l.pos++
		case '}':
			l.pos++
			return nil
		default:
			return l.syntax(path)
		}
	}
}

func decodeField(l *lexer, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) error {
	c := l.peek()
	if c == 'n' {
		return l.readLiteral("null", path) // null: leave unset
	}
	if !isValueStart(c) {
		return l.syntax(path)
	}
	if fd.IsList() || fd.IsMap() {
		return fieldErr(path, "repeated fields are not supported")
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fd.Message().FullName() == timestampName {
			if c != '"' {
				return fieldErr(path, "expected an RFC 3339 timestamp string, got %s", l.kind())
			}
			s, err := l.readString(path)
			if err != nil {
				return err
			}
			ts, err := parseTimestamp(s)
			if err != nil {
				return fieldErr(path, "%v", err)
			}
			m.Set(fd, protoreflect.ValueOfMessage(ts.ProtoReflect()))
			return nil
		}
		if c != '{' {
			return fieldErr(path, "expected an object, got %s", l.kind())
		}
		l.pos++
		return decodeMessage(l, m.Mutable(fd).Message(), path)
	case protoreflect.EnumKind:
		if c != '"' {
			return fieldErr(path, "expected a string, got %s", l.kind())
		}
		word, err := l.readStringBytes(path)
		if err != nil {
			return err
		}
		n, err := parseWordBytes(fd.Enum(), word)
		if err != nil {
			return fieldErr(path, "%v", err)
		}
		m.Set(fd, protoreflect.ValueOfEnum(n))
	case protoreflect.StringKind:
		s, err := readTyped(l, c, '"', "a string", path, l.readString)
		if err != nil {
			return err
		}
		setString(m, fd, s)
	case protoreflect.BoolKind:
		switch c {
		case 't':
			if err := l.readLiteral("true", path); err != nil {
				return err
			}
			m.Set(fd, protoreflect.ValueOfBool(true))
		case 'f':
			if err := l.readLiteral("false", path); err != nil {
				return err
			}
			m.Set(fd, protoreflect.ValueOfBool(false))
		default:
			return fieldErr(path, "expected true or false, got %s", l.kind())
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := readNumber(l, c, "an integer", path)
		if err != nil {
			return err
		}
		bits := 64
		if k := fd.Kind(); k == protoreflect.Int32Kind || k == protoreflect.Sint32Kind || k == protoreflect.Sfixed32Kind {
			bits = 32
		}
		v, err := strconv.ParseInt(n, 10, bits)
		if err != nil {
			return fieldErr(path, "expected a %d-bit integer, got %s", bits, n)
		}
		if bits == 32 {
			m.Set(fd, protoreflect.ValueOfInt32(int32(v)))
		} else {
			m.Set(fd, protoreflect.ValueOfInt64(v))
		}
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		n, err := readNumber(l, c, "a number", path)
		if err != nil {
			return err
		}
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		v, err := strconv.ParseFloat(n, bits)
		if err != nil || math.IsInf(v, 0) {
			return fieldErr(path, "number %s out of range", n)
		}
		if bits == 32 {
			m.Set(fd, protoreflect.ValueOfFloat32(float32(v)))
		} else {
			m.Set(fd, protoreflect.ValueOfFloat64(v))
		}
	default:
		return fieldErr(path, "unsupported field kind %s", fd.Kind())
	}
	return nil
}

// readTyped reads a string value, or reports the JSON type found instead.
func readTyped(l *lexer, c, want byte, wantDesc, path string, read func(string) (string, error)) (string, error) {
	if c != want {
		return "", fieldErr(path, "expected %s, got %s", wantDesc, l.kind())
	}
	return read(path)
}

// readNumber reads a number value, or reports the JSON type found instead.
func readNumber(l *lexer, c byte, wantDesc, path string) (string, error) {
	if c != '-' && (c < '0' || c > '9') {
		return "", fieldErr(path, "expected %s, got %s", wantDesc, l.kind())
	}
	return l.readNumber(path)
}

// parseTimestamp parses an RFC 3339 time (fractional seconds allowed) into a
// Timestamp within the protobuf range (years 1–9999).
func parseTimestamp(s string) (*timestamppb.Timestamp, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("not an RFC 3339 timestamp: %q", s)
	}
	ts := timestamppb.New(t)
	if err := ts.CheckValid(); err != nil {
		return nil, fmt.Errorf("timestamp %q out of range", s)
	}
	return ts, nil
}

// isValueStart reports whether c can begin a JSON value.
func isValueStart(c byte) bool {
	switch {
	case c == '{', c == '[', c == '"', c == 't', c == 'f', c == 'n', c == '-':
		return true
	}
	return '0' <= c && c <= '9'
}
