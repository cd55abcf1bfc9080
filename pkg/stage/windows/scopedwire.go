package windows

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// An sg.scoped-events.v1 record is an sgv1.ScopedBatch. Admission writes
// it, and the aggregating step reads it, on the wire directly: every event
// passes through here once per partition that owns one of its scopes, and
// building or decoding a ScopedEvent message per entry (a struct, a copy of
// the event's bytes, a levels slice) cost more than folding the event.
// Records of the first form (events and updates) are decoded with
// proto.Unmarshal, as before.

// Field numbers of sgv1.ScopedBatch and sgv1.ScopedEvent (metrics.proto).
const (
	batchEventsField     protowire.Number = 1 // repeated bytes events (first form)
	batchUpdatesField    protowire.Number = 2 // repeated ScopedUpdate updates (first form)
	batchScopedField     protowire.Number = 3 // repeated ScopedEvent scoped
	scopedEventField     protowire.Number = 1 // bytes event
	scopedLevelsField    protowire.Number = 2 // repeated ScopeLevel levels (packed)
	scopedSrcPartField   protowire.Number = 3 // int32 src_partition
	scopedSrcOffsetField protowire.Number = 4 // int64 src_offset
)

// appendScopedEvent appends to b one ScopedBatch.scoped entry holding
// event, levels and the source position, byte for byte as proto.Marshal
// encodes a ScopedBatch{Scoped: [{Event, Levels, SrcPartition,
// SrcOffset}]}: fields in number order, levels packed, empty and zero
// fields omitted. Appending entries to one buffer builds the batch.
func appendScopedEvent(b, event []byte, levels []sgv1.ScopeLevel, srcPartition int32, srcOffset int64) []byte {
	packed := 0
	for _, l := range levels {
		packed += protowire.SizeVarint(uint64(int64(l)))
	}
	size := 0
	if len(event) > 0 {
		size += protowire.SizeTag(scopedEventField) + protowire.SizeBytes(len(event))
	}
	if len(levels) > 0 {
		size += protowire.SizeTag(scopedLevelsField) + protowire.SizeBytes(packed)
	}
	if srcPartition != 0 {
		size += protowire.SizeTag(scopedSrcPartField) + protowire.SizeVarint(uint64(int64(srcPartition)))
	}
	if srcOffset != 0 {
		size += protowire.SizeTag(scopedSrcOffsetField) + protowire.SizeVarint(uint64(srcOffset))
	}
	b = protowire.AppendTag(b, batchScopedField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if len(event) > 0 {
		b = protowire.AppendTag(b, scopedEventField, protowire.BytesType)
		b = protowire.AppendBytes(b, event)
	}
	if len(levels) > 0 {
		b = protowire.AppendTag(b, scopedLevelsField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(packed))
		for _, l := range levels {
			b = protowire.AppendVarint(b, uint64(int64(l)))
		}
	}
	if srcPartition != 0 {
		b = protowire.AppendTag(b, scopedSrcPartField, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(srcPartition)))
	}
	if srcOffset != 0 {
		b = protowire.AppendTag(b, scopedSrcOffsetField, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(srcOffset))
	}
	return b
}

// scopedEntry is one ScopedBatch.scoped entry read in place.
type scopedEntry struct {
	event        []byte // aliases the record's value
	levels       []sgv1.ScopeLevel
	srcPartition int32
	srcOffset    int64
}

// scopedReader reads ScopedBatch records in place, reusing its buffers
// from one record to the next.
type scopedReader struct {
	entries []scopedEntry
	levels  []sgv1.ScopeLevel
	spans   [][2]int // entries' ranges in levels
}

// errMalformed is what read reports for a value that is not a ScopedBatch.
var errMalformed = errors.New("malformed protobuf")

// read parses value, a ScopedBatch, into r.entries as proto.Unmarshal
// would decode its scoped entries (the last of a repeated singular field
// wins, levels packed or not, a field of an unexpected wire type is
// unknown and skipped), and fails where proto.Unmarshal fails. firstForm
// reports events or updates in the record (the first form): the caller
// then decodes the record with proto.Unmarshal instead (which validates
// them; read does not) and ignores the entries. The entries alias value
// and are valid until the next read.
func (r *scopedReader) read(value []byte) (firstForm bool, err error) {
	r.entries, r.levels, r.spans = r.entries[:0], r.levels[:0], r.spans[:0]
	for b := value; len(b) > 0; {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return false, err
		}
		b = b[n:]
		if typ == protowire.BytesType && num >= batchEventsField && num <= batchScopedField {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return false, fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(m))
			}
			b = b[m:]
			if num != batchScopedField {
				firstForm = true
				continue
			}
			if err := r.readEntry(v); err != nil {
				return false, err
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false, fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(m))
		}
		b = b[m:]
	}
	for i, sp := range r.spans {
		r.entries[i].levels = r.levels[sp[0]:sp[1]:sp[1]]
	}
	return firstForm, nil
}

// consumeTag is protowire.ConsumeTag refusing, as proto.Unmarshal does,
// field numbers above protowire.MaxValidNumber.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, n, fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(n))
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, -1, fmt.Errorf("%w: field number %d", errMalformed, num)
	}
	return num, typ, n, nil
}

// readEntry parses one ScopedEvent.
func (r *scopedReader) readEntry(b []byte) error {
	var e scopedEntry
	start := len(r.levels)
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case num == scopedEventField && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(m))
			}
			e.event, b = v, b[m:]
		case num == scopedLevelsField && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(m))
			}
			b = b[m:]
			for len(v) > 0 {
				x, k := protowire.ConsumeVarint(v)
				if k < 0 {
					return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(k))
				}
				r.levels = append(r.levels, sgv1.ScopeLevel(int32(x)))
				v = v[k:]
			}
		case typ == protowire.VarintType && (num == scopedLevelsField || num == scopedSrcPartField || num == scopedSrcOffsetField):
			x, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(m))
			}
			b = b[m:]
			switch num {
			case scopedLevelsField:
				r.levels = append(r.levels, sgv1.ScopeLevel(int32(x)))
			case scopedSrcPartField:
				e.srcPartition = int32(x)
			default:
				e.srcOffset = int64(x)
			}
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(m))
			}
			b = b[m:]
		}
	}
	r.entries = append(r.entries, e)
	r.spans = append(r.spans, [2]int{start, len(r.levels)})
	return nil
}
