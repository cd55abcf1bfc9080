package window

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// randomEvents returns n events of every type over a few tenants, domains,
// senders, campaigns, providers and accounts, at times spread over span
// before end.
func randomEvents(r *rand.Rand, n int, end time.Time, span time.Duration) []*sgv1.Event {
	out := make([]*sgv1.Event, 0, n)
	for i := range n {
		at := end.Add(-time.Duration(r.Int64N(int64(span))))
		dom := fmt.Sprintf("d%d.com", r.IntN(2))
		e := &sgv1.Event{
			EventId:       fmt.Sprintf("r%d", i),
			Tenant:        fmt.Sprintf("t%d", r.IntN(2)),
			Type:          sgv1.EventType(1 + r.IntN(13)),
			OccurredAt:    timestamppb.New(at),
			Sender:        fmt.Sprintf("s%d@%s", r.IntN(3), dom),
			SendingDomain: dom,
			Provider:      sgv1.Provider(r.IntN(6)),
			Campaign:      []string{"", "c1", "c2"}[r.IntN(3)],
			Variant:       []string{"", "A", "B"}[r.IntN(3)],
			Account:       []string{"", "bigco.com", "small.io"}[r.IntN(3)],
			Segment:       []string{"", "smb"}[r.IntN(2)],
			ListSource:    []string{"", "apollo"}[r.IntN(2)],
		}
		switch e.Type {
		case typBounced:
			e.Bounce = &sgv1.Bounce{Class: sgv1.BounceClass(r.IntN(3)), SmtpCode: int32([]int{0, 421, 550}[r.IntN(3)])}
		case typComplained:
			e.Complaint = &sgv1.Complaint{FeedbackType: sgv1.FeedbackType(r.IntN(5))}
		case typReplied:
			e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory(r.IntN(10))}
		case typPlacement:
			e.Placement = &sgv1.Placement{TestId: fmt.Sprintf("pt%d", r.IntN(4)), Provider: sgv1.Provider(r.IntN(6)), Folder: sgv1.PlacementFolder(r.IntN(5))}
		case typAuth:
			e.Auth = &sgv1.Auth{Spf: sgv1.AuthResult(r.IntN(4)), Dkim: sgv1.AuthResult(1 + r.IntN(2)), DmarcPolicy: sgv1.DmarcPolicy(r.IntN(5)), Aligned: r.IntN(4) > 0}
		case typPostmaster:
			e.Postmaster = &sgv1.Postmaster{SpamRate: float64(r.IntN(5)) / 1000, DomainReputation: sgv1.DomainReputation(r.IntN(5)), DeliveryErrorRate: float64(r.IntN(3)) / 100}
		}
		out = append(out, e)
	}
	return out
}

func allSnapshots(a *Aggregator) map[ScopeKey]*sgv1.WindowSnapshot {
	out := map[ScopeKey]*sgv1.WindowSnapshot{}
	for _, k := range a.All() {
		out[k] = a.Snapshot(k)
	}
	return out
}

func diffSnapshots(t *testing.T, want, got map[ScopeKey]*sgv1.WindowSnapshot) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d scopes, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if proto.Equal(w, g) {
			continue
		}
		for name, v := range w.GetMetrics() {
			if gv := g.GetMetrics()[name]; gv != v {
				t.Errorf("%s %s = %v, want %v", k, name, gv, v)
			}
		}
		t.Fatalf("scope %s differs:\n got %v\nwant %v", k, g.GetVersion(), w.GetVersion())
	}
}

// TestMergeEqualsSingle splits a stream arbitrarily over N aggregators and
// checks the merge equals one aggregator fed everything.
func TestMergeEqualsSingle(t *testing.T) {
	end := t0
	for seed := range uint64(3) {
		for _, n := range []int{1, 2, 3, 5} {
			t.Run(fmt.Sprintf("seed%d_n%d", seed, n), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 7))
				evs := randomEvents(r, 1500, end, 40*24*time.Hour)
				single := newAgg(end, 50*24*time.Hour)
				parts := make([]*Aggregator, n)
				for i := range parts {
					parts[i] = newAgg(end, 50*24*time.Hour)
				}
				for _, e := range evs {
					mustApply(t, single, e)
					mustApply(t, parts[r.IntN(n)], e)
				}
				merged := newAgg(end, 50*24*time.Hour)
				for _, p := range parts {
					merged.Merge(p)
				}
				diffSnapshots(t, allSnapshots(single), allSnapshots(merged))
				if single.Stats() != merged.Stats() {
					t.Fatalf("stats %+v, want %+v", merged.Stats(), single.Stats())
				}
				for tenant := range map[string]bool{"t0": true, "t1": true} {
					if !single.Watermark(tenant).Equal(merged.Watermark(tenant)) {
						t.Fatalf("watermark %s differs", tenant)
					}
				}
			})
		}
	}
}

// TestOrderInvariance: any arrival order of events within the lateness
// gives the same snapshots.
func TestOrderInvariance(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 11))
			span := 3 * 24 * time.Hour
			evs := randomEvents(r, 1200, t0, span)
			want := newAgg(t0, span)
			mustApply(t, want, evs...)
			for range 3 {
				r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
				got := newAgg(t0, span)
				mustApply(t, got, evs...)
				diffSnapshots(t, allSnapshots(want), allSnapshots(got))
			}
		})
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	evs := randomEvents(r, 3000, t0, 35*24*time.Hour)
	a := newAgg(t0, 40*24*time.Hour)
	mustApply(t, a, evs...)
	b := newAgg(t0, 40*24*time.Hour)
	total := 0
	for _, k := range a.All() {
		blob, err := a.MarshalScope(k)
		if err != nil {
			t.Fatal(err)
		}
		total += len(blob)
		if err := b.RestoreScope(blob); err != nil {
			t.Fatalf("restore %s: %v", k, err)
		}
		again, err := b.MarshalScope(k)
		if err != nil || !bytes.Equal(blob, again) {
			t.Fatalf("%s: re-marshal differs (%v)", k, err)
		}
	}
	diffSnapshots(t, allSnapshots(a), allSnapshots(b))
	for _, tn := range []string{"t0", "t1"} {
		if !a.Watermark(tn).Equal(b.Watermark(tn)) {
			t.Fatalf("watermark %s: %v vs %v", tn, a.Watermark(tn), b.Watermark(tn))
		}
	}
	t.Logf("%d scopes, %d checkpoint bytes (%d per scope)", len(a.All()), total, total/len(a.All()))
	if _, err := a.MarshalScope(ScopeKey{Tenant: "nobody"}); err == nil {
		t.Fatal("marshal of unknown scope succeeded")
	}
	// Every truncation and a flipped magic fail cleanly.
	blob, _ := a.MarshalScope(a.All()[0])
	for i := range len(blob) {
		if err := b.RestoreScope(blob[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: restored", i)
		}
	}
	bad := append([]byte("XGW1"), blob[4:]...)
	if err := b.RestoreScope(bad); err == nil {
		t.Fatal("bad magic restored")
	}
}

func FuzzRestoreScope(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	a := newAgg(t0, 40*24*time.Hour)
	mustApply(f, a, randomEvents(r, 300, t0, 30*24*time.Hour)...)
	for _, k := range a.All()[:8] {
		blob, _ := a.MarshalScope(k)
		f.Add(blob)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newAgg(t0, time.Hour)
		if err := b.RestoreScope(data); err != nil {
			return
		}
		k := b.All()[0]
		first, err := b.MarshalScope(k)
		if err != nil {
			t.Fatal(err)
		}
		c := newAgg(t0, time.Hour)
		if err := c.RestoreScope(first); err != nil {
			t.Fatalf("re-restore: %v", err)
		}
		second, _ := c.MarshalScope(k)
		if !bytes.Equal(first, second) {
			t.Fatal("marshal not stable")
		}
		_ = c.Snapshot(k)
	})
}

func TestMemDeduper(t *testing.T) {
	d := NewMemDeduper(time.Hour)
	if d.Seen("a", "x", t0) || !d.Seen("a", "x", t0.Add(time.Minute)) || d.Seen("b", "x", t0) {
		t.Fatal("basic dedup")
	}
	// Within retention: remembered; beyond: forgotten (after a sweep).
	for i := range 120 {
		d.Seen("a", fmt.Sprint("m", i), t0.Add(time.Duration(i)*time.Minute))
	}
	if !d.Seen("a", "m70", t0) {
		t.Fatal("id within retention forgotten")
	}
	if d.Seen("a", "x", t0) {
		t.Fatal("id beyond retention still remembered")
	}
	if n := d.Len(); n > 2*62 {
		t.Fatalf("%d ids retained; retention not bounding memory", n)
	}
	blob, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	e := NewMemDeduper(time.Hour)
	if err := e.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	again, _ := e.MarshalBinary()
	if !bytes.Equal(blob, again) || e.Len() != d.Len() || !e.Seen("a", "m119", t0) {
		t.Fatal("dedup export/import round trip")
	}
	for i := range len(blob) {
		if err := NewMemDeduper(time.Hour).UnmarshalBinary(blob[:i]); err == nil {
			t.Fatalf("truncated dedup state (%d bytes) accepted", i)
		}
	}
}

// TestLateDuplicateNeverCounts: with the default deduper a duplicate is
// either remembered or rejected as late, never counted.
func TestLateDuplicateNeverCounts(t *testing.T) {
	a := newAgg(t0.Add(10*time.Hour), time.Hour)
	first := ev(typComplained, t0)
	mustApply(t, a, first)
	for i := range 600 {
		mustApply(t, a, ev(typSent, t0.Add(time.Duration(i)*time.Minute)))
		if i%37 == 0 {
			_, _ = a.Apply(first)
		}
	}
	if got := metric(t, a.SnapshotAt(tenantKey, t0), "complaints_28d"); got != 1 {
		t.Fatalf("complaints_28d = %v", got)
	}
	st := a.Stats()
	if st.Duplicates+st.Late != 17 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOwnsFilter(t *testing.T) {
	a := New(Config{Now: func() time.Time { return t0 }, Owns: func(k ScopeKey) bool { return k.Level == levelDomain }})
	changed, err := a.Apply(ev(typSent, t0))
	if err != nil || len(changed) != 1 || changed[0] != domainKey || a.Len() != 1 {
		t.Fatalf("changed %v err %v", changed, err)
	}
}

// TestScopeMemoryBound: a scope busy for 40 days (every minute lately) has
// every tier full and holds no more than its documented bound.
func TestScopeMemoryBound(t *testing.T) {
	a := newAgg(t0, time.Hour)
	// Hourly for 40 days, then every minute for the last 3 days.
	start := t0.Add(-40 * 24 * time.Hour)
	busy := t0.Add(-72 * time.Hour)
	for at, m := start, 0; !at.After(t0); m++ {
		mustApply(t, a, ev(typDelivered, at), ev(typReplied, at, withReply(sgv1.ReplyCategory(m%10))))
		if m%7 == 0 {
			mustApply(t, a, ev(typComplained, at))
		}
		if at.Before(busy) {
			at = at.Add(time.Hour)
		} else {
			at = at.Add(time.Minute)
		}
	}
	s := a.scopes[tenantKey]
	if len(s.min.b) != minuteKeep || len(s.hour.b) != hourKeep || len(s.day.b) != dayKeep {
		t.Fatalf("slots %d/%d/%d", len(s.min.b), len(s.hour.b), len(s.day.b))
	}
	if n := a.ScopeBytes(tenantKey); n > 40<<10 {
		t.Fatalf("busy scope holds %d bytes", n)
	} else {
		t.Logf("busy scope: %d bytes", n)
	}
}

func FuzzMemDeduperUnmarshal(f *testing.F) {
	d := NewMemDeduper(time.Hour)
	for i := range 20 {
		d.Seen(fmt.Sprint("t", i%3), fmt.Sprint("id", i), t0.Add(time.Duration(i)*time.Minute))
	}
	blob, _ := d.MarshalBinary()
	f.Add(blob)
	f.Add([]byte(dedupMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		e := NewMemDeduper(time.Hour)
		if err := e.UnmarshalBinary(data); err != nil {
			return
		}
		first, _ := e.MarshalBinary()
		g := NewMemDeduper(time.Hour)
		if err := g.UnmarshalBinary(first); err != nil {
			t.Fatalf("re-import: %v", err)
		}
		second, _ := g.MarshalBinary()
		if !bytes.Equal(first, second) {
			t.Fatal("export not stable")
		}
	})
}
