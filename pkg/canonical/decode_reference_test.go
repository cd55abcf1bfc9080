package canonical

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// timestampName is the full name of the Timestamp message, how the
// reflective reference (and the schema walks of the tests) tell a timestamp
// field from a nested message.
const timestampName protoreflect.FullName = "google.protobuf.Timestamp"

// referenceDecode is Decode as it was before decoding read the sgv1 fields
// directly (commit 5207474): a walk through protoreflect driven by the field
// tables of schema.go, over refLexer, a copy of the lexer of that commit.
// Decode must return an event proto.Equal to its event, or its error (a
// *FieldError with the same field and message), for every input.
func referenceDecode(data []byte) (*sgv1.Event, error) {
	l := &refLexer{data: data}
	if c := l.peek(); c != '{' {
		if c == 0 {
			return nil, l.syntax("")
		}
		return nil, fieldErr("", "expected a JSON object, got %s", l.kind())
	}
	l.pos++
	ev := &sgv1.Event{}
	if err := refDecodeMessage(l, ev.ProtoReflect(), ""); err != nil {
		return nil, err
	}
	if !l.eof() {
		return nil, fieldErr("", "unexpected data after the JSON object")
	}
	return ev, nil
}

// refFieldSet records the fields seen in one object, to refuse duplicates.
type refFieldSet struct {
	low  [2]uint64
	high map[protoreflect.FieldNumber]bool
}

// add reports whether n was not yet in the set.
func (s *refFieldSet) add(n protoreflect.FieldNumber) bool {
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

// refDecodeMessage reads the members of an object whose '{' was consumed, and
// the closing '}'.
func refDecodeMessage(l *refLexer, m protoreflect.Message, path string) error {
	md := m.Descriptor()
	table := tables[md]
	var seen refFieldSet
	if l.peek() == '}' {
		l.pos++
		return nil
	}
	for {
		if l.peek() != '"' {
			if c := l.peek(); refIsValueStart(c) {
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
		if err := refDecodeField(l, m, fd, p); err != nil {
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

func refDecodeField(l *refLexer, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) error {
	c := l.peek()
	if c == 'n' {
		return l.readLiteral("null", path) // null: leave unset
	}
	if !refIsValueStart(c) {
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
			ts, err := refParseTimestamp(s)
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
		return refDecodeMessage(l, m.Mutable(fd).Message(), path)
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
		s, err := refReadTyped(l, c, '"', "a string", path, l.readString)
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
		n, err := refReadNumber(l, c, "an integer", path)
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
		n, err := refReadNumber(l, c, "a number", path)
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

// refReadTyped reads a string value, or reports the JSON type found instead.
func refReadTyped(l *refLexer, c, want byte, wantDesc, path string, read func(string) (string, error)) (string, error) {
	if c != want {
		return "", fieldErr(path, "expected %s, got %s", wantDesc, l.kind())
	}
	return read(path)
}

// refReadNumber reads a number value, or reports the JSON type found instead.
func refReadNumber(l *refLexer, c byte, wantDesc, path string) (string, error) {
	if c != '-' && (c < '0' || c > '9') {
		return "", fieldErr(path, "expected %s, got %s", wantDesc, l.kind())
	}
	return l.readNumber(path)
}

// refParseTimestamp parses an RFC 3339 time (fractional seconds allowed) into a
// Timestamp within the protobuf range (years 1–9999).
func refParseTimestamp(s string) (*timestamppb.Timestamp, error) {
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

// refIsValueStart reports whether c can begin a JSON value.
func refIsValueStart(c byte) bool {
	switch {
	case c == '{', c == '[', c == '"', c == 't', c == 'f', c == 'n', c == '-':
		return true
	}
	return '0' <= c && c <= '9'
}

// refLexer is the lexer of commit 5207474. It reads the JSON subset the
// canonical form needs. The form has no arrays and every object key is
// checked against the schema before its value is read, so the decoder never
// has to skip a value: it reads exactly the value the schema expects or
// reports the mismatch. Syntax follows RFC 8259; invalid UTF-8 inside
// strings becomes U+FFFD, as encoding/json does.
type refLexer struct {
	data []byte
	pos  int
}

func (l *refLexer) skipWS() {
	for l.pos < len(l.data) {
		switch l.data[l.pos] {
		case ' ', '\t', '\n', '\r':
			l.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (l *refLexer) peek() byte {
	l.skipWS()
	if l.pos >= len(l.data) {
		return 0
	}
	return l.data[l.pos]
}

func (l *refLexer) eof() bool { return l.peek() == 0 && l.pos >= len(l.data) }

// syntax builds the error for a malformed input at the current position.
func (l *refLexer) syntax(path string) *FieldError {
	if l.pos >= len(l.data) {
		return fieldErr(path, "unexpected end of JSON input")
	}
	return fieldErr(path, "malformed JSON at offset %d: unexpected %s", l.pos, refQuoteByte(l.data[l.pos]))
}

// expect consumes byte c (after white space) or fails.
func (l *refLexer) expect(c byte, path string) error {
	if l.peek() != c {
		return l.syntax(path)
	}
	l.pos++
	return nil
}

// kind describes the value starting at the next byte, for type errors.
func (l *refLexer) kind() string {
	switch c := l.peek(); {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || ('0' <= c && c <= '9'):
		return "a number"
	}
	return "invalid JSON"
}

// readLiteral consumes true, false or null.
func (l *refLexer) readLiteral(word, path string) error {
	l.skipWS()
	if len(l.data)-l.pos < len(word) || string(l.data[l.pos:l.pos+len(word)]) != word {
		return l.syntax(path)
	}
	l.pos += len(word)
	return nil
}

// readNumber consumes a JSON number and returns its text.
func (l *refLexer) readNumber(path string) (string, error) {
	l.skipWS()
	start := l.pos
	d := l.data
	i := l.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		l.pos = i
		return "", l.syntax(path)
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			l.pos = i
			return "", l.syntax(path)
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			l.pos = i
			return "", l.syntax(path)
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	l.pos = i
	return string(d[start:i]), nil
}

// readString consumes a JSON string and returns its decoded value.
func (l *refLexer) readString(path string) (string, error) {
	b, err := l.readStringBytes(path)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// readStringBytes is readString without the string: the decoded value is
// a view of the input when the string needs no decoding (no escapes, valid
// UTF-8), else a new slice. Either is valid until the input changes.
func (l *refLexer) readStringBytes(path string) ([]byte, error) {
	if err := l.expect('"', path); err != nil {
		return nil, err
	}
	d := l.data
	start := l.pos
	// Fast path: no escapes, ASCII or valid UTF-8, no control characters.
	i := start
	for i < len(d) {
		c := d[i]
		if c == '"' {
			if utf8.Valid(d[start:i]) {
				l.pos = i + 1
				return d[start:i], nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
		i++
	}
	buf := make([]byte, 0, i-start+16)
	i = start
	for {
		if i >= len(d) {
			l.pos = i
			return nil, l.syntax(path)
		}
		c := d[i]
		switch {
		case c == '"':
			l.pos = i + 1
			return buf, nil
		case c < 0x20:
			l.pos = i
			return nil, l.syntax(path)
		case c == '\\':
			i++
			if i >= len(d) {
				l.pos = i
				return nil, l.syntax(path)
			}
			switch d[i] {
			case '"', '\\', '/':
				buf = append(buf, d[i])
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := refHex4(d, i+1)
				if !ok {
					l.pos = i
					return nil, l.syntax(path)
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok := rune(-1), false
					if i+2 < len(d) && d[i+1] == '\\' && d[i+2] == 'u' {
						r2, ok = refHex4(d, i+3)
					}
					if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				l.pos = i
				return nil, l.syntax(path)
			}
			i++
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			buf = utf8.AppendRune(buf, r) // invalid bytes become U+FFFD
			i += size
		}
	}
}

func refHex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d[i:i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

func refQuoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", string(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// parseWordBytes is ParseWord for a word held as bytes: the usual case, a
// known lower-case word, needs no string.
func parseWordBytes(ed protoreflect.EnumDescriptor, b []byte) (protoreflect.EnumNumber, error) {
	if n, ok := wordsFor(ed).fromText[string(b)]; ok && len(b) > 0 {
		return n, nil
	}
	return ParseWord(ed, string(b))
}
