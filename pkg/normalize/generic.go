package normalize

import (
	"bytes"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Generic and gRPC: a protobuf-encoded sgv1.Event (Content-Type naming
// protobuf, or a gRPC envelope whose payload is not JSON — what ingest
// writes for IngestService), or Sendguard's canonical event JSON
// (pkg/canonical), one object or
// NDJSON (item errors then name the 1-based line). NDJSON is chosen by a Content-Type naming ndjson or jsonl, or
// when the payload is not a single object but its first line is one. The
// envelope's tenant, envelope id, received_at and source replace whatever
// the payload says. Events without an event_id get one derived from their
// content. Bounces missing class or category are classified from their
// codes and diagnostic. Any invalid line fails that item.

func parseGeneric(b *builder) {
	payload := b.env.GetPayload()
	ct := strings.ToLower(b.env.GetContentType())
	if ct == canonical.DelimitedEventsContentType {
		b.genericDelimited(payload)
		return
	}
	if strings.Contains(ct, "protobuf") || (b.env.GetSource() == sgv1.Source_SOURCE_GRPC && !looksLikeJSON(payload)) {
		// Ingest stores a canonical event received over gRPC as the
		// protobuf encoding of sgv1.Event.
		ev := &sgv1.Event{}
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, ev); err != nil {
			b.payloadErr("invalid protobuf event", err)
			return
		}
		b.genericEvent(0, ev)
		return
	}
	ndjson := strings.Contains(ct, "ndjson") || strings.Contains(ct, "jsonl") || strings.Contains(ct, "json-seq")
	if !ndjson {
		ev, err := canonical.Decode(payload)
		if err == nil {
			b.genericEvent(0, ev)
			return
		}
		first, _, _ := bytes.Cut(bytes.TrimSpace(payload), []byte("\n"))
		if _, ferr := canonical.Decode(first); ferr != nil || len(bytes.TrimSpace(first)) == len(bytes.TrimSpace(payload)) {
			b.payloadErr("invalid canonical event", err)
			return
		}
	}
	b.genericLines(payload)
}

// genericDelimited decodes length-delimited protobuf events (ingest's gRPC
// batches) one by one, so that one bad event fails only its item (0-based
// position, unit "item"). A truncated size or message fails the rest of the
// payload.
func (b *builder) genericDelimited(payload []byte) {
	b.unit = "item"
	for item := 0; len(payload) > 0; item++ {
		if item >= b.opts.maxEvents() {
			b.payloadErr("too many events", canonical.ErrTooManyEvents)
			return
		}
		msg, n := protowire.ConsumeBytes(payload)
		if n < 0 {
			b.fail(item, fmt.Errorf("truncated event: %w", protowire.ParseError(n)))
			return
		}
		payload = payload[n:]
		ev := &sgv1.Event{}
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(msg, ev); err != nil {
			b.fail(item, fmt.Errorf("invalid protobuf event: %w", err))
			continue
		}
		b.genericEvent(item, ev)
	}
}

// genericLines decodes NDJSON line by line so that one bad line fails only
// its item. Item indexes are 1-based line numbers.
func (b *builder) genericLines(payload []byte) {
	line := 0
	count := 0
	for len(payload) > 0 {
		line++
		var cur []byte
		if i := bytes.IndexByte(payload, '\n'); i >= 0 {
			cur, payload = payload[:i], payload[i+1:]
		} else {
			cur, payload = payload, nil
		}
		if len(bytes.TrimSpace(cur)) == 0 {
			continue
		}
		count++
		if count > b.opts.maxEvents() {
			b.payloadErr("too many events", canonical.ErrTooManyEvents)
			return
		}
		ev, err := canonical.Decode(cur)
		if err != nil {
			b.fail(line, err)
			continue
		}
		b.genericEvent(line, ev)
	}
}

func (b *builder) genericEvent(item int, ev *sgv1.Event) {
	if ev.EventId == "" {
		// Derive the id from what the client sent, before the envelope's
		// fields are stamped, so a resent line dedups.
		ev.Tenant, ev.EnvelopeId, ev.ReceivedAt, ev.Source = "", "", nil, 0
		ev.EventId = contentID("generic", ev)
	}
	if bo := ev.GetBounce(); bo != nil && (bo.Class == 0 || bo.Category == 0) {
		v := bounce(bounceIn{smtpCode: int64(bo.SmtpCode), enhanced: bo.EnhancedCode, diagnostic: bo.Diagnostic})
		if bo.Class == 0 {
			bo.Class = v.Class
		}
		if bo.Category == 0 {
			bo.Category = v.Category
		}
		if bo.SmtpCode == 0 {
			bo.SmtpCode = v.SmtpCode
		}
		if bo.EnhancedCode == "" {
			bo.EnhancedCode = v.EnhancedCode
		}
	}
	b.add(item, ev)
}

// looksLikeJSON reports whether payload starts, after white space, with '{'.
func looksLikeJSON(payload []byte) bool {
	p := bytes.TrimLeft(payload, " \t\r\n")
	return len(p) > 0 && p[0] == '{'
}
