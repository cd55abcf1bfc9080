package ingest

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// maxEventsEnvelope bounds the payload of one envelope of canonical events
// (canonical.DelimitedEventsContentType): the events of a request are
// published in as few envelopes as fit, well under the broker's 1 MB
// record limit. An event larger than the bound travels alone.
const maxEventsEnvelope = 256 << 10

// cachedSize marshals with the sizes the caller's proto.Size just computed.
var cachedSize = proto.MarshalOptions{UseCachedSize: true}

// delimitedLen is the length of an event of encoded size size in a
// delimited payload: its size as a varint, then the message.
func delimitedLen(size int) int { return protowire.SizeVarint(uint64(size)) + size }

// appendDelimited appends ev, whose proto.Size was size when the caller
// computed it (ev unchanged since), as one item of a
// canonical.DelimitedEventsContentType payload.
func appendDelimited(b []byte, ev *sgv1.Event, size int) ([]byte, error) {
	b = protowire.AppendVarint(b, uint64(size))
	start := len(b)
	b, err := cachedSize.MarshalAppend(b, ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	if n := len(b) - start; n != size {
		return nil, fmt.Errorf("encode event: %d bytes written, %d announced", n, size)
	}
	return b, nil
}

// encodeError is an event protobuf cannot encode, by its 0-based index.
type encodeError struct {
	index int
	err   error
}

func (e *encodeError) Error() string { return fmt.Sprintf("event %d: %v", e.index, e.err) }
func (e *encodeError) Unwrap() error { return e.err }

// delimitedPayloads encodes evs in order as canonical.DelimitedEventsContentType
// payloads of at most limit bytes each (an event larger than limit alone in
// its payload): every event is in exactly one payload, and the payloads in
// order hold the events in order. Each payload is allocated at its exact
// size. The error is an *encodeError naming an event protobuf cannot
// encode (a string that is not valid UTF-8).
func delimitedPayloads(evs []*sgv1.Event, limit int) ([][]byte, error) {
	sizes := make([]int, len(evs))
	for i, ev := range evs {
		sizes[i] = proto.Size(ev)
	}
	var out [][]byte
	for start := 0; start < len(evs); {
		end, n := start, 0
		for end < len(evs) && (end == start || n+delimitedLen(sizes[end]) <= limit) {
			n += delimitedLen(sizes[end])
			end++
		}
		buf := make([]byte, 0, n)
		for i := start; i < end; i++ {
			var err error
			if buf, err = appendDelimited(buf, evs[i], sizes[i]); err != nil {
				return nil, &encodeError{index: i, err: err}
			}
		}
		out = append(out, buf)
		start = end
	}
	return out, nil
}
