package postfix

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Errors of ReadRequest. After any of them the connection is closed: the
// policy protocol has no error reply, and Postfix answers the SMTP client
// with smtpd_policy_service_default_action (451 4.3.5) and reconnects.
var (
	ErrLineTooLong     = errors.New("policy request: line too long")
	ErrTooManyAttrs    = errors.New("policy request: too many attributes")
	ErrMalformedLine   = errors.New("policy request: line without name=value")
	ErrRequestTooLarge = errors.New("policy request: too large")
)

// Request is one policy request: its attributes by name. A repeated name
// keeps its last value.
type Request map[string]string

// Limits bound what ReadRequest accepts from one request.
type Limits struct {
	// MaxLine is the longest line in bytes, without the newline.
	MaxLine int
	// MaxAttrs is the most attributes of one request.
	MaxAttrs int
}

// ReadRequest reads one request from r: name=value lines, each ended by
// "\n" (a "\r" before it is dropped), ended by an empty line. It returns
// io.EOF when r ends cleanly before a request starts, io.ErrUnexpectedEOF
// when it ends inside one. r must have been created with a buffer of at
// least lim.MaxLine+2 bytes (NewReader) so that a line either fits or is
// reported as ErrLineTooLong.
func ReadRequest(r *bufio.Reader, lim Limits) (Request, error) {
	req := Request{}
	n := 0
	for {
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, ErrLineTooLong
		case errors.Is(err, io.EOF):
			if n == 0 && len(line) == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, fmt.Errorf("policy request: %w", err)
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		if len(line) > lim.MaxLine {
			return nil, ErrLineTooLong
		}
		if len(line) == 0 {
			if n == 0 {
				continue // stray empty line between requests
			}
			return req, nil
		}
		name, value, ok := bytes.Cut(line, []byte{'='})
		if !ok || len(name) == 0 {
			return nil, ErrMalformedLine
		}
		n++
		if n > lim.MaxAttrs {
			return nil, ErrTooManyAttrs
		}
		req[string(name)] = string(value)
	}
}

// NewReader returns a reader sized for lim (see ReadRequest).
func NewReader(r io.Reader, lim Limits) *bufio.Reader { return bufio.NewReaderSize(r, lim.MaxLine+2) }

// WriteRequest writes req in the protocol's form, names sorted; names and
// values must not contain "\n" and names not "=" (the round trip of
// ReadRequest).
func WriteRequest(w io.Writer, req Request) error {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(req)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(req[k])
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// Reply is the answer to one request: "action=" Action, then an empty line.
type Reply struct {
	// Action is an access(5) action with its text, e.g. "DUNNO" or
	// "REJECT 5.7.1 recipient suppressed".
	Action string
}

// Write writes the reply in the protocol's form.
func (r Reply) Write(w io.Writer) error {
	_, err := io.WriteString(w, "action="+r.Action+"\n\n")
	return err
}

// Verb returns the action's first word (DUNNO, DEFER_IF_PERMIT, REJECT).
func (r Reply) Verb() string {
	v, _, _ := strings.Cut(r.Action, " ")
	return v
}
