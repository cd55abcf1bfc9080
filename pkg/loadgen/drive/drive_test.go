package drive

import (
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseKeys(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Keys
		tenants []string
		bad     bool
	}{
		{in: "sg_abc", want: Keys{"": "sg_abc"}},
		{in: "acme:k1, globex:k2", want: Keys{"acme": "k1", "globex": "k2"}, tenants: []string{"acme", "globex"}},
		{in: "", bad: true},
		{in: "acme:", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseKeys(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseKeys(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(got.Tenants(), tc.tenants) {
				t.Fatalf("ParseKeys(%q) = %v (tenants %v), %v; want %v (tenants %v)", tc.in, got, got.Tenants(), err, tc.want, tc.tenants)
			}
		})
	}
}

func TestTrackerCountsEachIDOnce(t *testing.T) {
	tr := newTracker("run1")
	ev := func(id string, typ sgv1.EventType) *sgv1.Event { return &sgv1.Event{EventId: id, Type: typ} }
	sent, deliv := sgv1.EventType_EVENT_TYPE_SENT, sgv1.EventType_EVENT_TYPE_DELIVERED
	tr.ack([]*sgv1.Event{ev("run1-0", sent), ev("run1-1", deliv), ev("run1s0-c-0", sent)})
	tr.ack([]*sgv1.Event{ev("run1-1", deliv)}) // a retried batch
	tr.ack([]*sgv1.Event{ev("run1-5", sent)})
	for _, id := range []string{"run1-0", "run1-1", "run1-1", "run1s0-c-0", "other-3", "run1-9"} {
		tr.see(id)
	}
	missing, repeated, expected := tr.tally()
	// run1-5 acknowledged, never seen; run1-1 seen twice; run1-9 seen but
	// never acknowledged is neither; other-3 is not ours.
	if missing != 1 || repeated != 1 || expected != 4 || tr.nAcked != 4 {
		t.Fatalf("missing %d repeated %d expected %d acked %d; want 1 1 4 4", missing, repeated, expected, tr.nAcked)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p50, p99, p100 := percentileMS(ds, 0.5), percentileMS(ds, 0.99), percentileMS(ds, 1); p50 != 51 || p99 != 99 || p100 != 100 {
		t.Fatalf("p50 %v p99 %v max %v", p50, p99, p100)
	}
	if percentileMS(nil, 0.5) != 0 {
		t.Fatal("empty percentile not 0")
	}
}
