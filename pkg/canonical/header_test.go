package canonical

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestEventHeaderRoundTrip: every defined type, with and without a time,
// reads back as written (time at millisecond precision); an undefined type
// has no header; values a newer or broken producer might write read as
// "decode the record" (ok false) or as a type without a time.
func TestEventHeaderRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123_456_789, time.UTC)
	values := sgv1.EventType(0).Descriptor().Values()
	for i := range values.Len() {
		typ := sgv1.EventType(values.Get(i).Number())
		for _, ts := range []*timestamppb.Timestamp{timestamppb.New(at), nil} {
			h, ok := EventHeader(&sgv1.Event{Type: typ, OccurredAt: ts})
			if !ok {
				t.Fatalf("%v: no header", typ)
			}
			got, gotAt, ok := ParseEventHeader(h)
			want := time.Time{}
			if ts != nil {
				want = at.Truncate(time.Millisecond)
			}
			if !ok || got != typ || !gotAt.Equal(want) {
				t.Fatalf("%q reads back as %v %v %v, want %v %v", h, got, gotAt, ok, typ, want)
			}
		}
	}
	if h, ok := EventHeader(&sgv1.Event{Type: 99}); ok {
		t.Fatalf("undefined type: header %q", h)
	}
	for _, tt := range []struct {
		h       string
		ok      bool
		hasTime bool
	}{
		{"", false, false},
		{"teleported 1795341600123", false, false},
		{" 1795341600123", false, false},
		{"bounced", true, false},
		{"bounced x12", true, false},
		{"bounced -1500", true, true},
	} {
		_, at, ok := ParseEventHeader([]byte(tt.h))
		if ok != tt.ok || at.IsZero() == tt.hasTime {
			t.Errorf("ParseEventHeader(%q) = %v, %v", tt.h, at, ok)
		}
	}
}
