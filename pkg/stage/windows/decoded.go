package windows

import (
	"bytes"

	"google.golang.org/protobuf/proto"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// decodedEvents remembers the events the aggregating step decoded last,
// by source position. Admission sends an event to every partition that
// owns one of its scopes (three or four of them for a typical event), in
// records it writes together, and one instance usually consumes several of
// those partitions: decoding the event once for all of them saves most of
// the step's protobuf work. An entry is reused only when the bytes are the
// same as those it was decoded from, so a position seen again with other
// bytes (another source topic's history) is decoded afresh. Events handed
// out are shared and must not be modified.
type decodedEvents struct {
	slots []decodedEvent // direct-mapped by position
	mask  uint64
}

type srcPos struct {
	partition int32
	offset    int64
}

type decodedEvent struct {
	pos srcPos
	raw []byte // the bytes ev was decoded from (aliasing their record)
	ev  *sgv1.Event
}

// decodedEventsSize is how many slots remember events: more than one
// flush of the admission steps at 50k events/s.
const decodedEventsSize = 1 << 14

// newDecodedEvents returns a cache of n slots; n must be a power of two.
func newDecodedEvents(n int) *decodedEvents {
	return &decodedEvents{slots: make([]decodedEvent, n), mask: uint64(n - 1)}
}

// decode returns the event raw encodes, the one decoded before for the
// same position and bytes if its slot still holds it.
func (d *decodedEvents) decode(p int32, off int64, raw []byte) (*sgv1.Event, error) {
	pos := srcPos{p, off}
	// Offsets of one partition are consecutive: their low bits spread them
	// over the slots; the partition moves each partition's run elsewhere.
	slot := &d.slots[(uint64(off)+uint64(p)*0x9e3779b97f4a7c15)&d.mask]
	if slot.ev != nil && slot.pos == pos && bytes.Equal(slot.raw, raw) {
		return slot.ev, nil
	}
	ev := &sgv1.Event{}
	if err := proto.Unmarshal(raw, ev); err != nil {
		return nil, err
	}
	*slot = decodedEvent{pos: pos, raw: raw, ev: ev}
	return ev, nil
}
