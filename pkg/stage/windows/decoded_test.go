package windows

import (
	"testing"

	"google.golang.org/protobuf/proto"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestDecodedEventsReuseOnlyTheSameBytes: an event is decoded once per
// position while remembered, decoded afresh when the position comes with
// other bytes or was forgotten, and an undecodable entry is an error.
func TestDecodedEventsReuseOnlyTheSameBytes(t *testing.T) {
	enc := func(id string) []byte {
		b, err := proto.Marshal(&sgv1.Event{EventId: id, Tenant: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	d := newDecodedEvents(4)
	a, err := d.decode(1, 10, enc("a"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.decode(1, 10, enc("a"))
	if err != nil || again != a {
		t.Fatalf("same position and bytes: decoded again (%p vs %p, %v)", again, a, err)
	}
	other, err := d.decode(1, 10, enc("b"))
	if err != nil || other == a || other.GetEventId() != "b" {
		t.Fatalf("same position, other bytes: got %v (%v)", other, err)
	}
	if ev, err := d.decode(2, 10, enc("a")); err != nil || ev == a || ev.GetEventId() != "a" {
		t.Fatalf("other partition: got %v (%v)", ev, err)
	}
	// Every slot of the four taken by other positions: (1, 10) is gone.
	for off := range int64(64) {
		if _, err := d.decode(3, off, enc("x")); err != nil {
			t.Fatal(err)
		}
	}
	for i, sl := range d.slots {
		if sl.pos.partition != 3 {
			t.Fatalf("slot %d holds %v after 64 positions of partition 3", i, sl.pos)
		}
	}
	if ev, err := d.decode(1, 10, enc("b")); err != nil || ev == other {
		t.Fatalf("forgotten position: reused %p (%v)", ev, err)
	}
	if _, err := d.decode(4, 1, []byte{0xff}); err == nil {
		t.Fatal("undecodable bytes: no error")
	}
}
