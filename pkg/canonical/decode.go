package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const timestampName protoreflect.FullName = "google.protobuf.Timestamp"

// Decode parses one canonical event in its JSON form. The input must be a
// single JSON object (surrounding whitespace allowed). Every error is a
// *FieldError; its Field is "" when the input is not well-formed JSON or not
// an object. A JSON null value leaves its field unset. Decode does not
// validate the event's content; see Validate.
func Decode(data []byte) (*sgv1.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr("", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fieldErr("", "expected a JSON object, got %s", describe(tok))
	}
	ev := &sgv1.Event{}
	if err := decodeMessage(dec, ev.ProtoReflect(), ""); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
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

// decodeMessage reads the members of an object whose '{' was consumed, and
// the closing '}'.
func decodeMessage(dec *json.Decoder, m protoreflect.Message, path string) error {
	fields := m.Descriptor().Fields()
	var seen map[protoreflect.FieldNumber]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxErr(path, err)
		}
		key, ok := tok.(string)
		if !ok {
			return fieldErr(path, "expected a field name, got %s", describe(tok))
		}
		p := joinPath(path, key)
		fd := fields.ByName(protoreflect.Name(key))
		if fd == nil {
			return fieldErr(p, "unknown field")
		}
		if seen == nil {
			seen = make(map[protoreflect.FieldNumber]bool, fields.Len())
		}
		if seen[fd.Number()] {
			return fieldErr(p, "duplicate field")
		}
		seen[fd.Number()] = true
		if err := decodeField(dec, m, fd, p); err != nil {
			return err
		}
	}
	// Consume the closing '}'.
	if _, err := dec.Token(); err != nil {
		return syntaxErr(path, err)
	}
	return nil
}

func decodeField(dec *json.Decoder, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxErr(path, err)
	}
	if tok == nil {
		return nil // null: leave unset
	}
	if fd.IsList() || fd.IsMap() {
		return fieldErr(path, "repeated fields are not supported")
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fd.Message().FullName() == timestampName {
			s, ok := tok.(string)
			if !ok {
				return fieldErr(path, "expected an RFC 3339 timestamp string, got %s", describe(tok))
			}
			ts, err := parseTimestamp(s)
			if err != nil {
				return fieldErr(path, "%v", err)
			}
			m.Set(fd, protoreflect.ValueOfMessage(ts.ProtoReflect()))
			return nil
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return fieldErr(path, "expected an object, got %s", describe(tok))
		}
		return decodeMessage(dec, m.Mutable(fd).Message(), path)
	case protoreflect.EnumKind:
		s, ok := tok.(string)
		if !ok {
			return fieldErr(path, "expected a string, got %s", describe(tok))
		}
		n, err := ParseWord(fd.Enum(), s)
		if err != nil {
			return fieldErr(path, "%v", err)
		}
		m.Set(fd, protoreflect.ValueOfEnum(n))
	case protoreflect.StringKind:
		s, ok := tok.(string)
		if !ok {
			return fieldErr(path, "expected a string, got %s", describe(tok))
		}
		m.Set(fd, protoreflect.ValueOfString(s))
	case protoreflect.BoolKind:
		b, ok := tok.(bool)
		if !ok {
			return fieldErr(path, "expected true or false, got %s", describe(tok))
		}
		m.Set(fd, protoreflect.ValueOfBool(b))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, ok := tok.(json.Number)
		if !ok {
			return fieldErr(path, "expected an integer, got %s", describe(tok))
		}
		v, err := strconv.ParseInt(string(n), 10, 32)
		if err != nil {
			return fieldErr(path, "expected a 32-bit integer, got %s", n)
		}
		m.Set(fd, protoreflect.ValueOfInt32(int32(v)))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, ok := tok.(json.Number)
		if !ok {
			return fieldErr(path, "expected an integer, got %s", describe(tok))
		}
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return fieldErr(path, "expected a 64-bit integer, got %s", n)
		}
		m.Set(fd, protoreflect.ValueOfInt64(v))
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		n, ok := tok.(json.Number)
		if !ok {
			return fieldErr(path, "expected a number, got %s", describe(tok))
		}
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		v, err := strconv.ParseFloat(string(n), bits)
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

func syntaxErr(path string, err error) *FieldError {
	if errors.Is(err, io.EOF) {
		return fieldErr(path, "unexpected end of JSON input")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fieldErr(path, "malformed JSON at offset %d: %v", se.Offset, se)
	}
	return fieldErr(path, "malformed JSON: %v", err)
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", tok)
}
