package window

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestAdmissionMemoryPerID: a remembered id costs 25 to 40 bytes however
// long it is (16 bytes of map slot, and the map's free slots), and does not
// keep the event's id string alive (ids are kept as pointer-free hashes,
// which the collector does not scan). With the ids themselves as keys it
// was over 100 bytes for these ids; with 128-bit keys and an int64 time,
// 38 to 56.
func TestAdmissionMemoryPerID(t *testing.T) {
	const n = 300_000
	at := timestamppb.New(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	a := NewAdmission(AdmitConfig{Lateness: time.Hour})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		ev := &sgv1.Event{EventId: "01JD5X8Q2Z-lg-" + strconv.Itoa(i) + "-a-long-event-id-from-an-esp", Tenant: "acme",
			Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: at}
		if v, err := a.Admit(0, int64(i), time.Time{}, ev); err != nil || v != Admitted {
			t.Fatalf("event %d: %v %v", i, v, err)
		}
		if i%1000 == 999 {
			a.TakeSegment(0)
		}
	}
	a.TakeSegment(0)
	runtime.GC()
	runtime.ReadMemStats(&after)
	perID := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("%.1f bytes per remembered id (%d ids)", perID, a.Len())
	if a.Len() != n {
		t.Fatalf("%d ids remembered, want %d", a.Len(), n)
	}
	if perID > 44 {
		t.Fatalf("%.1f bytes per remembered id, want under 44 (25 to 40 with the map's free slots)", perID)
	}
	runtime.KeepAlive(a)
}
