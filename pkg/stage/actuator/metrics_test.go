package actuator_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestStateMetrics: the enforcement state's sizes are read at scrape time,
// by level and kind, with zero series for the usual combinations, and the
// freshness gauges follow the newest decision and event handled.
func TestStateMetrics(t *testing.T) {
	clk := &clock{t: t0}
	cfg := enforce.DefaultConfig()
	cfg.Clock = clk.Now
	state := enforce.New(cfg)
	reg := prometheus.NewRegistry()
	s, err := actuator.New(state, nil, nil, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	s.SetClock(clk.Now)
	// A second stage on the same registry shares the series instead of failing.
	if _, err := actuator.New(state, nil, nil, zap.NewNop(), reg); err != nil {
		t.Fatalf("second stage on one registry: %v", err)
	}

	d := &sgv1.Decision{
		DecisionId: "d-1", Scope: &sgv1.Scope{Tenant: "default", Level: dom, Target: "acme.io"},
		Rule: "domain-complaint", Action: sgv1.Action_ACTION_PAUSE, At: timestamppb.New(t0.Add(-time.Minute)),
		Until: timestamppb.New(t0.Add(time.Hour)),
	}
	ev := &sgv1.Event{EventId: "e-1", Tenant: "default", Type: sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED,
		OccurredAt: timestamppb.New(t0.Add(-2 * time.Minute)), Sender: "ann@acme.io", Recipient: "bob@example.com"}
	future := proto.Clone(ev).(*sgv1.Event) // a client clock a day ahead must not move the gauge
	future.EventId, future.Recipient, future.OccurredAt = "e-2", "carol@example.com", timestamppb.New(t0.Add(24*time.Hour))
	mustHandle(t, s.DecisionsHandler().Handle, d)
	mustHandle(t, s.EventsHandler().Handle, ev)
	mustHandle(t, s.EventsHandler().Handle, future)

	want := `
# HELP sendguard_actuator_newest_event_time_seconds Event time (unix seconds) of the newest input handled: input=decisions (the snapshot time a decision was taken at), input=events (occurred_at); 0 before the first. time() minus it is the stage's freshness.
# TYPE sendguard_actuator_newest_event_time_seconds gauge
sendguard_actuator_newest_event_time_seconds{input="decisions"} ` + seconds(t0.Add(-time.Minute)) + `
sendguard_actuator_newest_event_time_seconds{input="events"} ` + seconds(t0.Add(-2*time.Minute)) + `
# HELP sendguard_enforcement_tenants Tenants the enforcement state holds.
# TYPE sendguard_enforcement_tenants gauge
sendguard_enforcement_tenants 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"sendguard_actuator_newest_event_time_seconds", "sendguard_enforcement_tenants"); err != nil {
		t.Error(err)
	}
	gauge := func(name string, labels map[string]string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
						continue next
					}
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("%s%v not exposed", name, labels)
		return 0
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sendguard_enforcement_pauses", map[string]string{"level": "domain", "kind": "rule"}, 1},
		{"sendguard_enforcement_pauses", map[string]string{"level": "sender", "kind": "manual"}, 0},
		{"sendguard_enforcement_throttles", map[string]string{"level": "campaign", "kind": "rule"}, 0},
		{"sendguard_enforcement_suppressions", map[string]string{"level": "recipient", "kind": "unsubscribe"}, 2},
		// Two unsubscribes at example.com are two negative contacts: cooldown.
		{"sendguard_enforcement_suppressions", map[string]string{"level": "account", "kind": "cooldown"}, 1},
		{"sendguard_enforcement_suppressions", map[string]string{"level": "account", "kind": "account_complaint"}, 0},
		{"sendguard_enforcement_warmups", map[string]string{"phase": "active"}, 0},
		{"sendguard_enforcement_memory_entries", map[string]string{"kind": "negative_accounts"}, 1},
		{"sendguard_actuator_unpublished_manual_commands", nil, 0},
	}
	for _, c := range checks {
		if got := gauge(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// A resume is counted at the next scrape: nothing is cached.
	resume := proto.Clone(d).(*sgv1.Decision)
	resume.DecisionId, resume.Action = "d-2", sgv1.Action_ACTION_RESUME
	mustHandle(t, s.DecisionsHandler().Handle, resume)
	if got := gauge("sendguard_enforcement_pauses", map[string]string{"level": "domain", "kind": "rule"}); got != 0 {
		t.Errorf("resumed pause still counted: %v", got)
	}
}

func mustHandle(t *testing.T, handle func(context.Context, kafka.Message) error, m proto.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := handle(context.Background(), msg{value: b}); err != nil {
		t.Fatalf("handle: %v", err)
	}
}

func seconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'g', -1, 64)
}
