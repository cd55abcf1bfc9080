// Package canonical is the JSON form of the canonical event (ARCHITECTURE.md,
// "The canonical event (JSON form)"): a strict decoder, an encoder that
// round-trips with it, the minimum validation an event must pass at the edge,
// deterministic event ids, and the short lower-case words of every sendguard
// enum.
//
// The JSON form mirrors sgv1.Event field by field: each key is the protobuf
// field name (snake_case), nested messages are objects, timestamps are RFC 3339
// strings, enums are short words ("bounced", "hard", "not_now"). Readers also
// accept the protobuf enum value names ("EVENT_TYPE_BOUNCED"). Unknown fields,
// duplicate fields, wrong JSON types, bad timestamps and unknown enum words are
// errors naming the field by its dotted path ("bounce.class").
package canonical

import (
	"errors"
	"fmt"
)

// FieldError is a problem attributable to one field of the JSON form. Field is
// the dotted path ("bounce.class"), or "" when the input is not a well-formed
// JSON object at all.
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: msg", or just msg when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// LineError locates an error in NDJSON input. Line is 1-based and counts every
// physical line, blank ones included.
type LineError struct {
	Line int
	Err  error
}

// Error returns "line N: <inner error>".
func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the inner error (usually a *FieldError).
func (e *LineError) Unwrap() error { return e.Err }

// DelimitedEventsContentType is the content type of a raw envelope holding
// canonical events as a sequence of length-delimited protobuf messages
// (sgv1.Event, each preceded by its size as a varint): how ingest stores the
// events of one gRPC publish call.
const DelimitedEventsContentType = "application/vnd.sendguard.events+protobuf-delimited"

// ErrTooManyEvents is returned by DecodeNDJSON when the input holds more
// events than the caller allows.
var ErrTooManyEvents = errors.New("too many events")

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
