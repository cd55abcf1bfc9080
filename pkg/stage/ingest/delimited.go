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

// payload is the payload of one envelope of canonical events.
type payload struct {
	data []byte
	// json: data is one event's JSON line, to publish as NDJSON (what the
	// normalizer read before events travelled as protobuf).
	json bool
}

// eventPayloads encodes evs, decoded from lines (the same length), in
// order as canonical.DelimitedEventsContentType payloads of at most limit
// bytes each: every event is in exactly one payload, and the payloads in
// order hold the events in order. Each payload is allocated at its exact
// size. An event larger than limit travels alone, as protobuf, unless its
// protobuf form is larger than its line (invalid UTF-8 in the JSON becomes
// U+FFFD, three bytes for one): then as its line, so that no envelope
// outgrows the request body. The error is an *encodeError naming an event
// protobuf cannot encode.
func eventPayloads(evs []*sgv1.Event, lines [][]byte, limit int) ([]payload, error) {
	sizes := make([]int, len(evs))
	for i, ev := range evs {
		sizes[i] = proto.Size(ev)
	}
	var out []payload
	for start := 0; start < len(evs); {
		if n := delimitedLen(sizes[start]); n > limit && n > len(lines[start]) {
			out = append(out, payload{data: lines[start], json: true})
			start++
			continue
		}
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
		out = append(out, payload{data: buf})
		start = end
	}
	return out, nil
}
