package windows

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var wireCases = []struct {
	name    string
	entries []*sgv1.ScopedEvent
}{
	{"one entry", []*sgv1.ScopedEvent{{Event: []byte("ev"), Levels: []sgv1.ScopeLevel{sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN}, SrcPartition: 3, SrcOffset: 1 << 40}}},
	{"zero source", []*sgv1.ScopedEvent{{Event: []byte{0, 1, 2}, Levels: []sgv1.ScopeLevel{sgv1.ScopeLevel_SCOPE_LEVEL_SENDER}}}},
	{"no event no levels", []*sgv1.ScopedEvent{{SrcPartition: 1, SrcOffset: 2}}},
	{"negative values", []*sgv1.ScopedEvent{{Event: []byte("x"), Levels: []sgv1.ScopeLevel{-1, 1 << 30}, SrcPartition: -5, SrcOffset: -7}}},
	{"many entries", func() []*sgv1.ScopedEvent {
		var out []*sgv1.ScopedEvent
		for i := range 300 {
			out = append(out, &sgv1.ScopedEvent{Event: bytes.Repeat([]byte{byte(i)}, i), Levels: []sgv1.ScopeLevel{sgv1.ScopeLevel(i % 11), sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN}, SrcPartition: int32(i % 4), SrcOffset: int64(i) * 1000})
		}
		return out
	}()},
}

// TestAppendScopedEventMatchesProto: the batches admission builds on the
// wire are the bytes proto.Marshal writes for the same ScopedBatch.
func TestAppendScopedEventMatchesProto(t *testing.T) {
	for _, tc := range wireCases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := proto.Marshal(&sgv1.ScopedBatch{Scoped: tc.entries})
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, e := range tc.entries {
				got = appendScopedEvent(got, e.GetEvent(), e.GetLevels(), e.GetSrcPartition(), e.GetSrcOffset())
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appendScopedEvent wrote\n%x\nproto.Marshal writes\n%x", got, want)
			}
		})
	}
}

// sameAsProto checks that the reader and proto.Unmarshal agree on value:
// both fail, or both decode the same scoped entries, or the reader tells
// the first form (which its caller decodes with proto.Unmarshal) and proto
// finds events or updates or fails.
func sameAsProto(t *testing.T, r *scopedReader, value []byte) {
	t.Helper()
	var batch sgv1.ScopedBatch
	perr := proto.Unmarshal(value, &batch)
	firstForm, rerr := r.read(value)
	if rerr == nil && firstForm {
		// The caller decodes a first-form record with proto.Unmarshal:
		// proto must see events or updates in it, or refuse it.
		if perr == nil && len(batch.GetEvents()) == 0 && len(batch.GetUpdates()) == 0 {
			t.Fatalf("reader reports the first form, proto decodes none (value %x)", value)
		}
		return
	}
	if (perr == nil) != (rerr == nil) {
		t.Fatalf("proto.Unmarshal: %v; reader: %v (value %x)", perr, rerr, value)
	}
	if perr != nil {
		if !errors.Is(rerr, errMalformed) {
			t.Fatalf("reader error %v is not errMalformed", rerr)
		}
		return
	}
	if want := len(batch.GetEvents()) > 0 || len(batch.GetUpdates()) > 0; firstForm != want {
		t.Fatalf("first form = %v, proto decodes %d events and %d updates", firstForm, len(batch.GetEvents()), len(batch.GetUpdates()))
	}
	if len(r.entries) != len(batch.GetScoped()) {
		t.Fatalf("reader read %d entries, proto %d", len(r.entries), len(batch.GetScoped()))
	}
	for i, se := range batch.GetScoped() {
		e := r.entries[i]
		if !bytes.Equal(e.event, se.GetEvent()) || !slices.Equal(e.levels, se.GetLevels()) ||
			e.srcPartition != se.GetSrcPartition() || e.srcOffset != se.GetSrcOffset() {
			t.Fatalf("entry %d: reader %+v, proto %v", i, e, se)
		}
	}
}

// TestScopedReaderMatchesProto covers the encodings proto.Unmarshal
// accepts besides the one admission writes: unpacked levels, repeated
// singular fields (the last wins), unknown fields, fields of an unexpected
// wire type (unknown), the first form, and truncated records.
func TestScopedReaderMatchesProto(t *testing.T) {
	var r scopedReader
	for _, tc := range wireCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(&sgv1.ScopedBatch{Scoped: tc.entries})
			if err != nil {
				t.Fatal(err)
			}
			sameAsProto(t, &r, b)
			for cut := range min(len(b), 64) {
				sameAsProto(t, &r, b[:cut])
			}
		})
	}
	entry := func(fields ...[]byte) []byte {
		b := protowire.AppendTag(nil, batchScopedField, protowire.BytesType)
		return protowire.AppendBytes(b, bytes.Join(fields, nil))
	}
	varint := func(n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), v)
	}
	bytesField := func(n protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), v)
	}
	old, err := proto.Marshal(&sgv1.ScopedBatch{Events: [][]byte{[]byte("e")}, Updates: []*sgv1.ScopedUpdate{{Tenant: "t", Level: 1, Target: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"unpacked levels", entry(bytesField(1, []byte("ev")), varint(2, 1), varint(2, 2), varint(3, 1))},
		{"packed and unpacked levels", entry(varint(2, 4), bytesField(2, []byte{1, 2}), varint(2, 3))},
		{"last singular wins", entry(bytesField(1, []byte("a")), bytesField(1, []byte("b")), varint(3, 1), varint(3, 2), varint(4, 9), varint(4, 8))},
		{"unknown fields", append(entry(varint(9, 1), bytesField(10, []byte("z")), bytesField(1, []byte("ev"))), varint(7, 3)...)},
		{"wrong wire types are unknown", entry(varint(1, 5), bytesField(3, []byte{1}), bytesField(4, []byte{1}))},
		{"scoped as a varint", varint(batchScopedField, 3)},
		{"first form", old},
		{"first form and scoped", append(slices.Clone(old), entry(bytesField(1, []byte("ev")), varint(2, 1))...)},
		{"truncated varint in levels", entry(bytesField(2, []byte{0x80}))},
		{"field number zero", []byte{0x00}},
		{"field number above the maximum", protowire.AppendVarint(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), 1)},
		{"entry field number above the maximum", entry(protowire.AppendVarint(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), 1))},
		{"bad group", entry([]byte{0x0b})},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) { sameAsProto(t, &r, tc.value) })
	}
}

func FuzzScopedReader(f *testing.F) {
	for _, tc := range wireCases {
		b, err := proto.Marshal(&sgv1.ScopedBatch{Scoped: tc.entries})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	old, err := proto.Marshal(&sgv1.ScopedBatch{Events: [][]byte{[]byte("e")}, Updates: []*sgv1.ScopedUpdate{{Tenant: "t", Level: 1, Target: "x", Event: 0}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(old)
	var r scopedReader
	f.Fuzz(func(t *testing.T, value []byte) { sameAsProto(t, &r, value) })
}
