package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Providers are loose about JSON types (SparkPost sends timestamps as
// strings or numbers, Postmark ids as numbers, SendGrid custom args as
// anything). These types accept the reasonable variants and reject the rest.

// flexString accepts a JSON string, number or boolean (kept as its text);
// null leaves it empty.
type flexString string

func (s *flexString) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	switch data[0] {
	case '"':
		var v string
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case '{', '[':
		return fmt.Errorf("expected a string, got %s", jsonKind(data))
	default:
		*s = flexString(data) // number or boolean literal
	}
	return nil
}

// flexStrings accepts a string or an array of strings (SendGrid category).
type flexStrings []string

func (s *flexStrings) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	if data[0] == '[' {
		var items []flexString
		if err := json.Unmarshal(data, &items); err != nil {
			return err
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			out = append(out, string(it))
		}
		*s = out
		return nil
	}
	var one flexString
	if err := one.UnmarshalJSON(data); err != nil {
		return err
	}
	*s = flexStrings{string(one)}
	return nil
}

// flexInt accepts a JSON integer or a string holding one.
type flexInt int64

func (n *flexInt) UnmarshalJSON(data []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(data); err != nil {
		return err
	}
	if s == "" {
		return nil
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
	if err != nil {
		return fmt.Errorf("expected an integer, got %q", string(s))
	}
	*n = flexInt(v)
	return nil
}

// flexMap accepts an object whose values are strings, numbers or booleans;
// nested values are kept as their JSON text.
type flexMap map[string]string

func (m *flexMap) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	if data[0] != '{' {
		// Postmark and Mailgun sometimes send an empty array for "none".
		if string(data) == "[]" {
			return nil
		}
		return fmt.Errorf("expected an object, got %s", jsonKind(data))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	out := make(flexMap, len(raw))
	for k, v := range raw {
		var s flexString
		if err := s.UnmarshalJSON(v); err != nil {
			out[k] = string(bytes.TrimSpace(v))
			continue
		}
		out[k] = string(s)
	}
	*m = out
	return nil
}

// unixTime parses Unix seconds given as an integer or decimal, in a number
// or a string ("1464824548", 1534109600.089676). Decimals are parsed
// exactly, without float rounding, so ids built from them stay stable.
func unixTime(s string) (*timestamppb.Timestamp, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	secPart, fracPart, hasFrac := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secPart, 10, 64)
	if err != nil || strings.ContainsAny(fracPart, "eE") {
		// Exponent forms and the like: fall back to a float.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
			return nil, fmt.Errorf("bad Unix timestamp %q", s)
		}
		whole := math.Floor(f)
		return checkTS(&timestamppb.Timestamp{Seconds: int64(whole), Nanos: int32((f - whole) * 1e9)}, s)
	}
	var nanos int64
	if hasFrac {
		if len(fracPart) > 9 {
			fracPart = fracPart[:9]
		}
		if fracPart != "" {
			n, err := strconv.ParseUint(fracPart, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad Unix timestamp %q", s)
			}
			nanos = int64(n)
			for i := len(fracPart); i < 9; i++ {
				nanos *= 10
			}
		}
	}
	return checkTS(&timestamppb.Timestamp{Seconds: sec, Nanos: int32(nanos)}, s)
}

func checkTS(ts *timestamppb.Timestamp, s string) (*timestamppb.Timestamp, error) {
	if ts.CheckValid() != nil {
		return nil, fmt.Errorf("timestamp %q out of range", s)
	}
	return ts, nil
}

// rfc3339 parses an RFC 3339 time with any number of fractional digits
// (Postmark sends seven).
func rfc3339(s string) (*timestamppb.Timestamp, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("bad RFC 3339 timestamp %q", s)
	}
	return checkTS(timestamppb.New(t), s)
}

// address extracts the bare address from "Name <a@b>" or "a@b"; it returns
// "" when s holds no usable address.
func address(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return strings.TrimSpace(s[i+1 : i+j])
		}
	}
	if strings.Contains(s, "@") && !strings.ContainsAny(s, " \t<>,;") {
		return s
	}
	return ""
}

// addressList extracts every address of a header value such as
// "Jane <jane@x>, bob@y".
func addressList(s string) []string {
	if list, err := mail.ParseAddressList(s); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	if a := address(s); a != "" {
		return []string{a}
	}
	return nil
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func jsonKind(data []byte) string {
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// decodeJSON unmarshals data, describing syntax errors with their offset.
func decodeJSON(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("malformed JSON at offset %d: %w", se.Offset, err)
		}
		return err
	}
	return nil
}
