package window

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestAdmitVerdicts(t *testing.T) {
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	type step struct {
		ev      *sgv1.Event
		logTime time.Time
		want    Verdict
		wantErr error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first is admitted, a copy is a duplicate", []step{
			{ev: ev(typDelivered, base, withID("a")), want: Admitted},
			{ev: ev(typDelivered, base, withID("a")), want: Duplicate},
		}},
		{"same id in another tenant is admitted", []step{
			{ev: ev(typDelivered, base, withID("a")), want: Admitted},
			{ev: ev(typDelivered, base, withID("a"), func(e *sgv1.Event) { e.Tenant = "other" }), want: Admitted},
		}},
		{"late behind the partition watermark", []step{
			{ev: ev(typDelivered, base.Add(3*time.Hour)), want: Admitted},
			{ev: ev(typDelivered, base), wantErr: ErrLateEvent},
			{ev: ev(typDelivered, base.Add(2*time.Hour+time.Minute)), want: Admitted},
		}},
		{"postmaster stats are exempt from lateness and keep the watermark", []step{
			{ev: ev(typDelivered, base.Add(3*time.Hour)), want: Admitted},
			{ev: ev(typPostmaster, base, withPostmaster(0.001, 0)), want: Admitted},
		}},
		{"future relative to the record's log time, not the clock", []step{
			{ev: ev(typDelivered, base.Add(2*time.Hour)), logTime: base, wantErr: ErrFutureEvent},
			{ev: ev(typDelivered, base.Add(30*time.Minute)), logTime: base, want: Admitted},
		}},
		{"invalid", []step{
			{ev: &sgv1.Event{Tenant: "acme", Type: typDelivered}, wantErr: ErrInvalidEvent},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAdmission(AdmitConfig{Lateness: time.Hour})
			for i, s := range tt.steps {
				v, err := a.Admit(0, int64(i), s.logTime, s.ev)
				if s.wantErr != nil {
					if !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: err %v, want %v", i, err, s.wantErr)
					}
					continue
				}
				if err != nil || v != s.want {
					t.Fatalf("step %d: %v, %v; want %v", i, v, err, s.want)
				}
			}
		})
	}
}

func TestAdmitSegmentsRestoreAndExpire(t *testing.T) {
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	a := NewAdmission(AdmitConfig{Lateness: time.Hour, Retention: 2 * time.Hour})
	segs := map[string][]byte{}
	admit := func(off int64, id string, at time.Time) {
		t.Helper()
		if v, err := a.Admit(3, off, time.Time{}, ev(typDelivered, at, withID(id))); err != nil || v != Admitted {
			t.Fatalf("admit %s: %v %v", id, v, err)
		}
	}
	admit(0, "a", base)
	admit(1, "b", base.Add(time.Minute))
	k1, v1, ok := a.TakeSegment(3)
	if !ok || k1 != "admit|3|0" {
		t.Fatalf("segment key %q %v", k1, ok)
	}
	segs[k1] = v1
	if _, _, ok := a.TakeSegment(3); ok {
		t.Fatal("empty segment returned")
	}
	admit(2, "c", base.Add(2*time.Minute))
	admit(3, "d", base.Add(3*time.Minute))
	k2, v2, _ := a.TakeSegment(3)
	segs[k2] = v2
	if p, ok := ParseSegmentKey(k2); !ok || p != 3 {
		t.Fatalf("ParseSegmentKey(%q) = %d %v", k2, p, ok)
	}

	// Consumption resumes at offset 3: d (offset 3) was admitted by a run
	// that did not commit; it is returned as ahead and admitted again.
	r := NewAdmission(AdmitConfig{Lateness: time.Hour, Retention: 2 * time.Hour})
	ahead, err := r.Restore(3, 3, segs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ahead) != 1 || ahead[0].EventID != "d" || ahead[0].Offset != 3 {
		t.Fatalf("ahead = %+v", ahead)
	}
	for _, c := range []struct {
		id   string
		want Verdict
	}{{"a", Duplicate}, {"c", Duplicate}, {"d", Admitted}, {"d", Duplicate}} {
		if v, err := r.Admit(3, 3, time.Time{}, ev(typDelivered, base.Add(3*time.Minute), withID(c.id))); err != nil || v != c.want {
			t.Fatalf("after restore %s: %v %v, want %v", c.id, v, err, c.want)
		}
	}
	// The lateness watermark is restored too.
	if _, err := r.Admit(3, 4, time.Time{}, ev(typDelivered, base.Add(-2*time.Hour))); !errors.Is(err, ErrLateEvent) {
		t.Fatalf("late after restore: %v", err)
	}
	// Segments expire once every id is older than the retention.
	if got := r.ExpiredSegments(3); len(got) != 0 {
		t.Fatalf("expired too early: %v", got)
	}
	if _, err := r.Admit(3, 5, time.Time{}, ev(typDelivered, base.Add(2*time.Hour+90*time.Second))); err != nil {
		t.Fatal(err)
	}
	if got := r.ExpiredSegments(3); len(got) != 1 || got[0] != k1 {
		t.Fatalf("expired = %v, want [%s]", got, k1)
	}
	if _, err := DecodeSegment([]byte("SGA1\x05")); err == nil {
		t.Fatal("truncated segment decoded")
	}
}

// TestAdmitExpiredSegmentsScanInterval: segments are looked at again only
// once the partition's greatest watermark moved a minute of event time, so
// an expirable segment waits for that, and is returned then.
func TestAdmitExpiredSegmentsScanInterval(t *testing.T) {
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	a := NewAdmission(AdmitConfig{Lateness: time.Hour, Retention: 2 * time.Hour})
	admit := func(off int64, id string, at time.Time) {
		t.Helper()
		if v, err := a.Admit(1, off, time.Time{}, ev(typDelivered, at, withID(id))); err != nil || v != Admitted {
			t.Fatalf("admit %s: %v %v", id, v, err)
		}
	}
	admit(0, "a", base)
	k1, _, _ := a.TakeSegment(1)
	admit(1, "b", base.Add(2*time.Hour-10*time.Second))
	a.TakeSegment(1)
	if got := a.ExpiredSegments(1); len(got) != 0 {
		t.Fatalf("expired too early: %v", got)
	}
	// k1 is expirable from here on, but the watermark moved only 30s.
	admit(2, "c", base.Add(2*time.Hour+20*time.Second))
	if got := a.ExpiredSegments(1); len(got) != 0 {
		t.Fatalf("scanned before the watermark moved a minute: %v", got)
	}
	admit(3, "d", base.Add(2*time.Hour+55*time.Second))
	if got := a.ExpiredSegments(1); len(got) != 1 || got[0] != k1 {
		t.Fatalf("expired = %v, want [%s]", got, k1)
	}
	if got := a.ExpiredSegments(1); len(got) != 0 {
		t.Fatalf("returned twice: %v", got)
	}
}

// record is one fanned-out scoped record.
type record struct {
	ev     *sgv1.Event
	key    ScopeKey
	srcP   int32
	srcOff int64
}

func hashOf(s string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return int(h.Sum32() % uint32(n))
}

// randomStream returns n events over two tenants, several domains,
// campaigns, variants and providers, about 10% of them redelivered copies,
// with event times jittered well within the lateness.
func randomStream(rng *rand.Rand, n int, base time.Time) []*sgv1.Event {
	types := []sgv1.EventType{typSent, typSent, typSent, typDelivered, typDelivered, typDelivered, sgv1.EventType_EVENT_TYPE_BOUNCED,
		sgv1.EventType_EVENT_TYPE_COMPLAINED, sgv1.EventType_EVENT_TYPE_OPENED, sgv1.EventType_EVENT_TYPE_CLICKED,
		sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, sgv1.EventType_EVENT_TYPE_REPLIED, sgv1.EventType_EVENT_TYPE_DEFERRED}
	provs := []sgv1.Provider{gmail, sgv1.Provider_PROVIDER_MICROSOFT, sgv1.Provider_PROVIDER_YAHOO}
	var out []*sgv1.Event
	for i := range n {
		if i > 0 && rng.IntN(10) == 0 {
			out = append(out, proto.Clone(out[len(out)-1-rng.IntN(min(len(out), 50))]).(*sgv1.Event)) // a recent one: older copies are late
			continue
		}
		at := base.Add(time.Duration(i)*20*time.Second - time.Duration(rng.IntN(1800))*time.Second)
		tenant := []string{"acme", "beta"}[rng.IntN(2)]
		dom := fmt.Sprintf("d%d.com", rng.IntN(3))
		e := &sgv1.Event{
			EventId: fmt.Sprintf("ev-%d", i), Tenant: tenant, Type: types[rng.IntN(len(types))],
			OccurredAt: timestamppb.New(at), Sender: fmt.Sprintf("s%d@%s", rng.IntN(2), dom), SendingDomain: dom,
			Provider: provs[rng.IntN(len(provs))], Campaign: fmt.Sprintf("c%d", rng.IntN(3)),
			Variant: []string{"", "a", "b"}[rng.IntN(3)], Segment: fmt.Sprintf("seg%d", rng.IntN(2)),
			ListSource: []string{"", "import", "form"}[rng.IntN(3)], Account: fmt.Sprintf("acct%d", rng.IntN(2)),
		}
		switch e.Type {
		case sgv1.EventType_EVENT_TYPE_BOUNCED:
			e.Bounce = &sgv1.Bounce{Class: []sgv1.BounceClass{sgv1.BounceClass_BOUNCE_CLASS_HARD, sgv1.BounceClass_BOUNCE_CLASS_SOFT}[rng.IntN(2)], SmtpCode: 550}
		case sgv1.EventType_EVENT_TYPE_REPLIED:
			e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory(1 + rng.IntN(4))}
		}
		out = append(out, e)
	}
	return out
}

// TestExactAcrossPartitionsInstancesAndReplays is the correctness proof of
// the re-keyed pipeline at the level of the pure packages: events spread
// over 6 source partitions by tenant|event_id (copies included), admitted
// per partition with a crash and replay of every partition (state restored
// from segments, records re-emitted), fanned out to 6 scope partitions
// owned by 3 aggregating instances, one of which hands its partitions to
// another mid-stream (checkpoint, restore, replay of records from before
// the checkpoint). The merged state must equal one aggregator fed the
// stream in order, scope by scope.
func TestExactAcrossPartitionsInstancesAndReplays(t *testing.T) {
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	now := base.Add(72 * time.Hour)
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			stream := randomStream(rng, 3000, base)
			oracle := newAgg(now, time.Hour)
			mustApply(t, oracle, stream...)

			const srcParts, scopeParts, instances = 6, 6, 3
			parts := make([][]*sgv1.Event, srcParts)
			for _, e := range stream {
				p := hashOf(e.GetTenant()+"|"+e.GetEventId(), srcParts)
				parts[p] = append(parts[p], e)
			}
			// Admission with a crash per partition: segments flushed every
			// 50 records, the commit lags one flush, the crash happens at a
			// random point; the replay restores and re-emits.
			var scoped []record
			segs := map[string][]byte{}
			adm := NewAdmission(AdmitConfig{Lateness: time.Hour})
			emit := func(p int, off int64, e *sgv1.Event) {
				v, err := adm.Admit(int32(p), off, time.Time{}, e)
				if err != nil {
					t.Fatalf("admit: %v", err)
				}
				if v != Admitted || !CountsSomewhere(e) {
					return
				}
				for _, k := range ScopeKeys(e, nil) {
					scoped = append(scoped, record{ev: e, key: k, srcP: int32(p), srcOff: off})
				}
			}
			flush := func(p int) {
				if k, v, ok := adm.TakeSegment(int32(p)); ok {
					segs[k] = v
				}
			}
			for p, evs := range parts {
				crash := rng.IntN(len(evs))
				committed := int64(0)
				for off := range int64(crash) {
					emit(p, off, evs[off])
					if off%50 == 49 {
						flush(p)
						committed = off - 49 // the commit of the previous flush
					}
				}
				flush(p) // the crashed run's last flush reached the topic
				mine := map[string][]byte{}
				for k, v := range segs {
					if sp, _ := ParseSegmentKey(k); int(sp) == p {
						mine[k] = v
					}
				}
				if _, err := adm.Restore(int32(p), committed, mine); err != nil {
					t.Fatal(err)
				}
				for off := committed; off < int64(len(evs)); off++ {
					emit(p, off, evs[off])
				}
				flush(p)
			}
			// Aggregation: records in produce order per scope partition
			// (interleaved across partitions), 3 instances; instance 0 hands
			// its partitions to instance 1 half way, after a checkpoint
			// that is older than what it folded in (records replayed).
			aggs := make([]*Aggregator, instances)
			for i := range aggs {
				aggs[i] = New(Config{Now: func() time.Time { return now }})
			}
			ownerOf := func(q int) int { return q % instances }
			checkpoints := map[ScopeKey][]byte{}
			handedAt := len(scoped) / 2
			replayFrom := handedAt - 400
			checkpointAt := replayFrom
			for i, r := range scoped {
				q := hashOf(r.key.String(), scopeParts)
				inst := ownerOf(q)
				if i >= handedAt && inst == 0 {
					inst = 1
				}
				if _, err := aggs[inst].ApplyScoped(r.ev, r.key, r.srcP, r.srcOff); err != nil {
					t.Fatal(err)
				}
				if i == checkpointAt-1 {
					for _, k := range aggs[0].All() {
						b, err := aggs[0].MarshalScope(k)
						if err != nil {
							t.Fatal(err)
						}
						checkpoints[k] = b
					}
				}
				if i == handedAt-1 {
					// hand-over: instance 1 restores instance 0's
					// checkpoints and the runner re-delivers from the
					// committed position (before the checkpoint).
					aggs[0] = New(Config{Now: func() time.Time { return now }})
					for _, b := range checkpoints {
						if _, err := aggs[1].RestoreScopeKey(b); err != nil {
							t.Fatal(err)
						}
					}
					for _, rr := range scoped[replayFrom-200 : handedAt] {
						if ownerOf(hashOf(rr.key.String(), scopeParts)) == 0 {
							if _, err := aggs[1].ApplyScoped(rr.ev, rr.key, rr.srcP, rr.srcOff); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
			}
			merged := New(Config{Now: func() time.Time { return now }})
			for _, a := range aggs {
				merged.Merge(a)
			}
			keys := oracle.All()
			if got := merged.All(); len(got) != len(keys) {
				t.Fatalf("%d scopes, oracle %d", len(got), len(keys))
			}
			for _, k := range keys {
				want, got := oracle.SnapshotAt(k, now), merged.SnapshotAt(k, now)
				if got == nil {
					t.Fatalf("scope %s missing", k)
				}
				want.Version, got.Version = 0, 0 // ApplyScoped counts folds per owner
				if !proto.Equal(want, got) {
					t.Fatalf("scope %s differs from the oracle:\nwant %s\ngot  %s", k, prototext.Format(want), prototext.Format(got))
				}
			}
		})
	}
}
