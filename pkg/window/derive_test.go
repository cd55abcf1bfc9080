package window

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/metrics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestCompactSnapshotDerivesEveryMetric: a compact snapshot, through the
// wire, yields exactly the metrics of the complete one, for every scope of
// a busy aggregator (every counter, breakdown, Postmaster, placement and
// auth value in play), and every catalogue name.
func TestCompactSnapshotDerivesEveryMetric(t *testing.T) {
	a := busyAggregator(t)
	mustApply(t, a,
		ev(typPostmaster, t0, withPostmaster(0.002, sgv1.DomainReputation_DOMAIN_REPUTATION_LOW)),
		ev(typAuth, t0, withAuth(&sgv1.Auth{Spf: 2})),
		ev(typPlacement, t0, withPlacement("t1", gmail, sgv1.PlacementFolder_PLACEMENT_FOLDER_SPAM)),
		ev(typComplained, t0, withProvider(yahoo)),
	)
	keys := a.All()
	if len(keys) < 6 {
		t.Fatalf("busy aggregator has %d scopes", len(keys))
	}
	for _, k := range keys {
		at := t0.Add(26 * time.Hour) // windows slid: prev_24h and changes non-trivial
		full := a.SnapshotAt(k, at)
		b, err := proto.Marshal(a.CompactSnapshotAt(k, at))
		if err != nil {
			t.Fatal(err)
		}
		compact := &sgv1.WindowSnapshot{}
		if err := proto.Unmarshal(b, compact); err != nil {
			t.Fatal(err)
		}
		if len(compact.GetMetrics()) != 0 || len(compact.GetWindows()) != 0 {
			t.Fatalf("%v: compact snapshot carries %d metrics and %d windows", k, len(compact.GetMetrics()), len(compact.GetWindows()))
		}
		m, err := MetricsOf(compact)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metrics.Names() {
			want, ok := full.GetMetrics()[name]
			if !ok {
				t.Fatalf("%v: complete snapshot lacks %s", k, name)
			}
			got, ok := m.Get(name)
			if !ok || !near(got, want) {
				t.Errorf("%v %s: compact %v (present %v), complete %v", k, name, got, ok, want)
			}
			if !m.Has(name) {
				t.Errorf("%v: Has(%s) false", k, name)
			}
		}
		if _, ok := m.Get("no_such_metric"); ok || m.Has("no_such_metric") {
			t.Errorf("%v: an unknown name has a value", k)
		}
		// The next scope's MetricsOf reuses these buffers: its values
		// must be its own.
		m.Release()
	}
}

// TestCompactSnapshotSize: the compact form is what makes the metrics topic
// affordable; a busy scope's stays under 1 KB (the complete one is ~15 KB).
func TestCompactSnapshotSize(t *testing.T) {
	a := busyAggregator(t)
	for _, k := range a.All() {
		b, err := proto.Marshal(a.CompactSnapshotAt(k, time.Time{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 1024 {
			full, _ := proto.Marshal(a.Snapshot(k))
			t.Errorf("%v: compact snapshot %d bytes (complete %d)", k, len(b), len(full))
		}
	}
}

func TestMetricsOfRefusesUnknownLayouts(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    *sgv1.SnapshotCounters
	}{
		{"newer layout", &sgv1.SnapshotCounters{Layout: CountersLayout + 1, Totals: make([]int64, countersLen)}},
		{"short totals", &sgv1.SnapshotCounters{Layout: CountersLayout, Totals: make([]int64, countersLen-1)}},
		{"long totals", &sgv1.SnapshotCounters{Layout: CountersLayout, Totals: make([]int64, countersLen+1)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MetricsOf(&sgv1.WindowSnapshot{Counters: tt.c})
			if err == nil || !strings.Contains(err.Error(), "layout") {
				t.Fatalf("err = %v, want a layout error", err)
			}
			if v := MetricValue(&sgv1.WindowSnapshot{Counters: tt.c}, "sent_24h"); v != 0 {
				t.Fatalf("MetricValue = %v, want 0", v)
			}
		})
	}
}

// TestMetricsOfAMap: a snapshot without counters (built by hand) reads its
// map, and has only the names it carries.
func TestMetricsOfAMap(t *testing.T) {
	m, err := MetricsOf(&sgv1.WindowSnapshot{Metrics: map[string]float64{"sent_24h": 3}})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Get("sent_24h"); !ok || v != 3 {
		t.Fatalf("sent_24h = %v, %v", v, ok)
	}
	if m.Has("delivered_24h") {
		t.Fatal("Has(delivered_24h) on a map without it")
	}
	if got := m.All(); len(got) != 1 {
		t.Fatalf("All = %v", got)
	}
}
