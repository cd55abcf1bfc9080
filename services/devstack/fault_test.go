package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/loadgen"
	"github.com/sendguard/sendguard/pkg/loadgen/drive"
	"github.com/sendguard/sendguard/pkg/replay"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// faultPlan sizes one run of TestFaults.
type faultPlan struct {
	faults []string      // a service name, "broker", "clickhouse" or "none"
	load   time.Duration // load per fault
	rate   float64       // events per second offered
	down   time.Duration // how long a killed service or broker stays down
	chDown time.Duration // how long ClickHouse stays stopped
	drain  time.Duration // bound for the backlog to drain after load and fault
}

// The short plan runs in `make test` (under a minute and a half on a loaded
// 2-core machine); the long one, `make fault-test`
// (SENDGUARD_FAULT_LONG=1), kills every service, restarts the broker and
// stops ClickHouse for a minute, each under longer load.
var (
	shortFaultPlan = faultPlan{
		faults: []string{"windowed-metrics", "broker", "clickhouse"},
		load:   10 * time.Second, rate: 400, down: time.Second, chDown: 3 * time.Second, drain: 60 * time.Second,
	}
	longFaultPlan = faultPlan{
		faults: []string{"none", "ingest", "normalizer", "windowed-metrics", "rule-evaluator", "actuator", "broker", "clickhouse"},
		load:   40 * time.Second, rate: 600, down: 3 * time.Second, chDown: 60 * time.Second, drain: 180 * time.Second,
	}
)

// faultResult is the figures of one fault, logged as one JSON line.
type faultResult struct {
	Fault           string  `json:"fault"`
	Tenant          string  `json:"tenant"`
	Acked           int     `json:"acked"`
	Retries         int64   `json:"retries"`
	Lost            int     `json:"lost"`
	Duplicated      int     `json:"duplicated"`
	EventsMissing   int     `json:"events_topic_missing"`
	EventsRepeated  int     `json:"events_topic_repeated"`
	WindowExpected  int64   `json:"window_expected"`
	WindowCounted   int64   `json:"window_counted"`
	CHFinal         int64   `json:"clickhouse_final"`
	CHUnique        int64   `json:"clickhouse_unique"`
	CHRows          int64   `json:"clickhouse_rows"`
	FaultSeconds    float64 `json:"fault_seconds"`
	DrainSeconds    float64 `json:"drain_seconds"`
	LoadSeconds     float64 `json:"load_seconds"`
	LagMax          int64   `json:"lag_max"`
	Decisions       int     `json:"decisions"`
	DecisionsReplay int     `json:"decisions_replay"`
	DecisionsDiffer int     `json:"decisions_differ"`
}

// TestFaults runs the five services and the broker as separate processes
// (and a private ClickHouse), drives steady seeded load over HTTP with
// designed anomalies, and for each fault of the plan — SIGKILL of a service
// and its restart, SIGKILL of the broker and its restart on its data dir,
// ClickHouse stopped — checks afterwards that nothing acknowledged is lost
// and nothing is counted twice (sg.events.v1 by id, the tenant's window
// counts, ClickHouse FINAL, uniqExact and raw rows), that the backlog drains
// within the plan's bound, and that the enforcing decisions are those of a
// replay of the same events. Every fault has its own tenant, so the figures
// of one never mix with another's.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the services, a broker and a ClickHouse as processes")
	}
	plan := shortFaultPlan
	if os.Getenv("SENDGUARD_FAULT_LONG") != "" {
		plan = longFaultPlan
	}
	began := time.Now()
	ch := startPrivateClickHouse(t)
	keys := map[string]string{}
	var faults []string
	for _, f := range plan.faults {
		if f == "clickhouse" && ch == nil {
			continue
		}
		faults = append(faults, f)
		keys["fault-"+f] = "fault-key-" + f
	}
	s := startFaultStack(t, keys, ch)
	t.Logf("ClickHouse and stack ready in %.1fs", time.Since(began).Seconds())
	t.Cleanup(func() { t.Logf("TestFaults took %.1fs before its cleanup", time.Since(began).Seconds()) })
	for _, f := range faults {
		res := runFault(t, s, plan, f, "fault-"+f, keys["fault-"+f])
		b, _ := json.Marshal(res)
		t.Logf("%s", b)
		if t.Failed() {
			return
		}
	}
}

// faultTraffic is the seeded traffic of one fault's tenant, designed so that
// the enforcing decisions depend only on which events were counted, not on
// when snapshots were taken:
//
//   - Healthy base: sends, deliveries, opens and clicks only, so no rate
//     rule hovers near its threshold on small samples.
//   - Unsubscribes at 10% on campaign c0 from the start: recipients
//     suppressed, the campaign paused (campaign-unsubscribe-pause) within
//     its first ~50 messages.
//   - Hard bounces at 30% from the domain of rank 1 from the start: its
//     recipients suppressed, the domain throttled
//     (domain-delivery-errors-stop), its domain×provider scopes and (in the
//     long run) its senders as their samples grow.
//   - Complaints at 10% from sender rep0 of the busiest domain, starting
//     3 s of event time after the first 300 messages (when the sender has
//     long passed the warm-up threshold of 30 sends, and campaign c0's
//     unsubscribe pause, follow-ups included, is seconds old): the sender,
//     its domain, the campaigns and variants it sends paused, complainers
//     suppressed.
//
// Every rate is far above its rule's threshold once the rule's minimum
// sample is met, so a scope's rule, once true, stays true; and where one
// scope has two enforcing rules (a sender's warm-up throttle then its pause;
// campaign c0's unsubscribe pause then its complaint pause) they fire
// seconds of event time apart, and the fault is injected only once both
// have been announced.
func faultTraffic(tenant string, start time.Time, rate float64) loadgen.Config {
	mps := rate / 2.3 // ~2.3 events per message with these rates
	d0, d1 := loadgen.Domain(tenant, 0), loadgen.Domain(tenant, 1)
	return loadgen.Config{
		Seed: 8, Start: start, MessagesPerSecond: mps, Tenants: []string{tenant}, IDPrefix: tenant,
		Domains: 8, SendersPerDomain: 2, Campaigns: 6, MaxDelay: 2 * time.Second,
		// Consumer mailboxes only: no company accounts, whose few
		// events would make small scopes.
		Providers: []loadgen.ProviderShare{
			{Provider: sgv1.Provider_PROVIDER_GMAIL, Share: 0.5},
			{Provider: sgv1.Provider_PROVIDER_MICROSOFT, Share: 0.3},
			{Provider: sgv1.Provider_PROVIDER_YAHOO, Share: 0.2},
		},
		Rates: loadgen.Rates{Open: 0.3, Click: 0.1},
		Anomalies: []loadgen.Anomaly{
			{Level: "campaign", Target: "c0", Start: start, Rates: loadgen.Rates{Unsubscribe: 0.1}},
			{Level: "domain", Target: d1, Start: start, Rates: loadgen.Rates{Bounce: 0.3, HardShare: 1}},
			{Level: "sender", Target: loadgen.Sender(d0, 0), Start: start.Add(time.Duration(300/mps*float64(time.Second)) + 3*time.Second),
				Rates: loadgen.Rates{Complaint: 0.1}},
		},
	}
}

// countedMetrics are the tenant-scope counts every generated event adds
// one to (as in sgctl bench pipeline).
var countedMetrics = []string{"sent_28d", "delivered_28d", "deferred_28d", "delivery_errors_28d", "complaints_28d",
	"unsubscribes_28d", "opens_28d", "clicks_28d", "replies_28d"}

func windowTotal(sn *sgv1.WindowSnapshot) int64 {
	var n float64
	for _, m := range countedMetrics {
		n += window.MetricValue(sn, m)
	}
	return int64(math.Round(n))
}

// enforcingKey is the identity of an enforcing command compared between the
// live run and the replay: action, scope and rule. A recipient suppression
// has two sources, the event itself at the actuator (rule "suppression") and
// the windows' recipient rules; whichever is applied first makes the other a
// no-op, and which arrives first is a race between two topics by design, so
// for recipient suppressions only the scope is compared.
func enforcingKey(c *sgv1.ControlCommand) (string, bool) {
	switch c.GetAction() {
	case sgv1.Action_ACTION_PAUSE, sgv1.Action_ACTION_THROTTLE, sgv1.Action_ACTION_SUPPRESS,
		sgv1.Action_ACTION_RESUME, sgv1.Action_ACTION_UNSUPPRESS:
	default:
		return "", false
	}
	rule := c.GetRule()
	if c.GetScope().GetLevel() == sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT && c.GetAction() == sgv1.Action_ACTION_SUPPRESS {
		rule = "*"
	}
	return strings.Join([]string{enforce.ActionWord(c.GetAction()), enforce.LevelWord(c.GetScope().GetLevel()),
		c.GetScope().GetTarget(), rule}, " "), true
}

// replayDecisions replays evs (one tenant's, each id once) through the
// whole decision logic and returns its enforcing commands; flush as
// replay.Config.Flush.
func replayDecisions(t *testing.T, evs []*sgv1.Event, flush time.Duration) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	_, err := replay.Run(evs, replay.Config{Flush: flush}, func(c *sgv1.ControlCommand) error {
		if k, ok := enforcingKey(c); ok {
			out[k] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return out
}

// diffSets returns the keys of a not in b, sorted.
func diffSets(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// runFault drives one tenant's load, injects the fault halfway (once the
// early decisions are announced), waits for the backlog to drain and checks
// everything the fault must not have broken.
func runFault(t *testing.T, s *faultStack, plan faultPlan, fault, tenant, key string) faultResult {
	t.Helper()
	res := faultResult{Fault: fault, Tenant: tenant}
	ctx, cancel := context.WithTimeout(context.Background(), plan.load+plan.chDown+plan.drain+5*time.Minute)
	defer cancel()
	tenantKey := topics.Key(tenant, "tenant", tenant)
	from := map[string]map[int]int64{}
	for _, tp := range []string{topics.Events, topics.Control, topics.Metrics} {
		end, err := endOffsets(ctx, s.kafka, tp)
		if err != nil {
			t.Fatal(err)
		}
		from[tp] = end
	}

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	// The largest group lag, sampled every second until the backlog drained.
	var lagMax atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for tk := time.NewTicker(time.Second); ; {
			select {
			case <-sampleCtx.Done():
				tk.Stop()
				return
			case <-tk.C:
			}
			lags, err := groupLag(sampleCtx, s.kafka)
			if err != nil {
				continue // the broker may be down: that is the fault
			}
			for _, l := range lags {
				if l > lagMax.Load() {
					lagMax.Store(l)
				}
			}
		}
	}()
	sink := drive.NewHTTPSink(s.http, drive.Keys{tenant: key}, 4)
	defer sink.Close()
	gen := faultTraffic(tenant, time.Now().UTC().Add(-10*time.Minute), plan.rate)
	loadDone := make(chan drive.LoadResult, 1)
	loadExited := make(chan struct{})
	// On any way out (t.Fatal included), the load and the sampler end
	// before the test does.
	defer func() {
		cancel()
		<-loadExited
		stopSampling()
		<-sampled
	}()
	loadStart := time.Now()
	go func() {
		defer close(loadExited)
		lr, err := drive.Load(ctx, drive.LoadConfig{Gen: gen, Sink: sink, Rate: plan.rate, Duration: plan.load, Batch: 100, Concurrency: 4,
			OnAck: func(evs []*sgv1.Event, _ time.Time) {
				mu.Lock()
				for _, ev := range evs {
					acked[ev.GetEventId()] = true
				}
				mu.Unlock()
			}})
		if err != nil {
			t.Errorf("load: %v", err)
		}
		res.LoadSeconds = math.Round(time.Since(loadStart).Seconds()*10) / 10
		loadDone <- lr
	}()

	// The fault, halfway through the load and once the sender with
	// complaints is paused and campaign c0 is paused (see faultTraffic).
	early := []string{
		"pause sender " + loadgen.Sender(loadgen.Domain(tenant, 0), 0),
		"pause campaign c0",
	}
	time.Sleep(plan.load / 2)
	for deadline := time.Now().Add(plan.load); ; time.Sleep(200 * time.Millisecond) {
		live, _ := readDecisions(ctx, s.kafka, tenant, from[topics.Control])
		if hasAll(live, early) {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("%s: early decisions %v not announced after %s; injecting the fault anyway", fault, early, plan.load)
			break
		}
	}
	faultStart := time.Now()
	switch fault {
	case "none":
	case "clickhouse":
		if err := s.ch.script("stop"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(plan.chDown)
		if err := s.ch.script("start"); err != nil {
			t.Fatal(err)
		}
	default:
		s.restart(t, fault, plan.down)
	}
	res.FaultSeconds = time.Since(faultStart).Seconds()
	lr := <-loadDone
	res.Retries = lr.Retries
	if lr.Rejected > 0 {
		t.Errorf("%s: %d events rejected: %s", fault, lr.Rejected, lr.FirstError)
	}
	recovered := time.Now()

	mu.Lock()
	res.Acked = len(acked)
	mu.Unlock()
	res.WindowExpected = int64(res.Acked)

	// Drain: the tenant's windows count every acknowledged event, and
	// after that every group's lag is 0 twice in a row (what the windows
	// published until then has been evaluated and enforced).
	snaps := &snapshotReader{addr: s.kafka, key: tenantKey, from: from[topics.Metrics]}
	var (
		lastLag  map[string]int64
		zeroLags int
	)
	for {
		if res.WindowCounted < res.WindowExpected {
			if err := snaps.poll(ctx); err != nil {
				t.Fatal(err)
			}
			res.WindowCounted = windowTotal(snaps.latest)
		}
		if res.WindowCounted >= res.WindowExpected {
			lags, err := groupLag(ctx, s.kafka)
			var total int64
			for _, l := range lags {
				total += l
			}
			switch {
			case err != nil:
				zeroLags = 0
			case total == 0:
				zeroLags++
			default:
				zeroLags, lastLag = 0, lags
			}
			if zeroLags == 2 {
				break
			}
		}
		if time.Since(recovered) > plan.drain {
			t.Errorf("%s: backlog not drained within %s: lag %v, windows counted %d of %d", fault, plan.drain, lastLag, res.WindowCounted, res.WindowExpected)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	res.DrainSeconds = math.Round(time.Since(recovered).Seconds()*10) / 10
	stopSampling()
	<-sampled
	res.LagMax = lagMax.Load()
	res.FaultSeconds = math.Round(res.FaultSeconds*10) / 10

	checksStart := time.Now()
	var replayTook time.Duration
	defer func() {
		t.Logf("%s: checks took %.1fs (replays %.1fs)", fault, time.Since(checksStart).Seconds(), replayTook.Seconds())
	}()
	// sg.events.v1: every acknowledged id at least once; the events for
	// the replay, each id once, in log order.
	seen := map[string]int{}
	var evs []*sgv1.Event
	if _, err := readRange(ctx, s.kafka, topics.Events, from[topics.Events], func(m kafka.Message) error {
		ev := &sgv1.Event{}
		if err := proto.Unmarshal(m.Value(), ev); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		if ev.GetTenant() != tenant {
			return nil
		}
		if seen[ev.GetEventId()]++; seen[ev.GetEventId()] == 1 {
			evs = append(evs, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id := range acked {
		if seen[id] == 0 {
			res.EventsMissing++
		}
	}
	for _, n := range seen {
		if n > 1 {
			res.EventsRepeated++
		}
	}
	res.Lost = max(res.EventsMissing, int(res.WindowExpected-res.WindowCounted))
	res.Duplicated = max(0, int(res.WindowCounted-res.WindowExpected))
	if res.EventsMissing > 0 {
		t.Errorf("%s: %d acknowledged events missing from %s", fault, res.EventsMissing, topics.Events)
	}
	if len(seen) != res.Acked {
		t.Errorf("%s: %d distinct ids of the tenant on %s, %d acknowledged", fault, len(seen), topics.Events, res.Acked)
	}
	if res.WindowCounted != res.WindowExpected {
		t.Errorf("%s: the tenant's windows count %d events, %d were acknowledged", fault, res.WindowCounted, res.WindowExpected)
	}

	if s.ch != nil {
		res.CHFinal, res.CHUnique, res.CHRows = clickHouseCounts(ctx, t, s, tenant)
		if res.CHFinal != int64(res.Acked) || res.CHUnique != int64(res.Acked) {
			t.Errorf("%s: ClickHouse events: %d rows FINAL, %d distinct ids; %d acknowledged", fault, res.CHFinal, res.CHUnique, res.Acked)
		}
		if res.CHRows != res.CHUnique {
			t.Errorf("%s: ClickHouse events: %d rows inserted for %d distinct ids (an event inserted twice)", fault, res.CHRows, res.CHUnique)
		}
	}

	// Decisions: the live enforcing commands against a replay of the same
	// events. Not against a second, fault-free live run: its snapshot
	// timing would differ from the faulty run's as much as from the
	// replay, and it would double the test's time. The replay is
	// deterministic, and the traffic is designed (faultTraffic) so that
	// its decisions do not depend on how snapshots are coalesced: the test
	// checks that design itself by replaying twice, evaluating after every
	// event and once per second of event time (four times the live
	// coalescing of 250 ms). Equal sets mean no decision depends on
	// seeing an intermediate state the live run may skip; the fault itself
	// is injected only once the scopes that take two enforcing decisions
	// in sequence have taken both (runFault waits for them), so the
	// backlog a fault leaves cannot merge them.
	live, err := readDecisions(ctx, s.kafka, tenant, from[topics.Control])
	if err != nil {
		t.Fatal(err)
	}
	replayStart := time.Now()
	everyEvent := replayDecisions(t, evs, -1)
	coarse := replayDecisions(t, evs, time.Second)
	replayTook = time.Since(replayStart)
	if a, b := diffSets(everyEvent, coarse), diffSets(coarse, everyEvent); len(a)+len(b) > 0 {
		t.Errorf("%s: the traffic's decisions depend on snapshot coalescing (a test design error): only when evaluating every event %v; only when evaluating every 1s %v", fault, a, b)
	}
	res.Decisions, res.DecisionsReplay = len(live), len(everyEvent)
	onlyLive, onlyReplay := diffSets(live, everyEvent), diffSets(everyEvent, live)
	res.DecisionsDiffer = len(onlyLive) + len(onlyReplay)
	if res.DecisionsDiffer > 0 {
		t.Errorf("%s: enforcing decisions differ from the replay of the same events: only live %v; only in the replay %v",
			fault, onlyLive[:min(len(onlyLive), 20)], onlyReplay[:min(len(onlyReplay), 20)])
	}
	// The designed anomalies must be enforced, or the comparison is empty.
	want := append(early, "pause domain "+loadgen.Domain(tenant, 0), "throttle domain "+loadgen.Domain(tenant, 1), "suppress recipient")
	if !hasAll(live, want) {
		t.Errorf("%s: designed anomalies not all enforced; want %v among %d decisions", fault, want, len(live))
	}
	s.alive(t)
	return res
}

// hasAll reports whether, for every prefix, some key of set starts with it.
func hasAll(set map[string]bool, prefixes []string) bool {
	for _, p := range prefixes {
		if !slices.ContainsFunc(mapKeys(set), func(k string) bool { return strings.HasPrefix(k, p+" ") || k == p }) {
			return false
		}
	}
	return true
}

func mapKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// readDecisions returns the enforcing commands of tenant on sg.control.v1
// since from.
func readDecisions(ctx context.Context, addr, tenant string, from map[int]int64) (map[string]bool, error) {
	out := map[string]bool{}
	_, err := readRange(ctx, addr, topics.Control, from, func(m kafka.Message) error {
		c := &sgv1.ControlCommand{}
		if err := proto.Unmarshal(m.Value(), c); err != nil {
			return fmt.Errorf("decode command: %w", err)
		}
		if c.GetScope().GetTenant() != tenant {
			return nil
		}
		if k, ok := enforcingKey(c); ok {
			out[k] = true
		}
		return nil
	})
	return out, err
}

// snapshotReader follows the newest snapshot of one key on sg.metrics.v1,
// reading only that key's partition, from where it stopped.
type snapshotReader struct {
	addr   string
	key    []byte
	from   map[int]int64
	latest *sgv1.WindowSnapshot
}

func (r *snapshotReader) poll(ctx context.Context) error {
	end, err := endOffsets(ctx, r.addr, topics.Metrics)
	if err != nil {
		return err
	}
	p := partitionOf(r.key, len(end))
	if r.from[p] >= end[p] {
		return nil
	}
	err = kafka.Tail(ctx, []string{r.addr}, topics.Metrics, p, r.from[p], end[p], 50*time.Millisecond, func(m kafka.Message) error {
		if string(m.Key()) != string(r.key) {
			return nil
		}
		sn := &sgv1.WindowSnapshot{}
		if err := proto.Unmarshal(m.Value(), sn); err != nil {
			return fmt.Errorf("decode snapshot: %w", err)
		}
		r.latest = sn // the last published is the newest state
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s/%d: %w", topics.Metrics, p, err)
	}
	r.from[p] = end[p]
	return nil
}

// clickHouseCounts returns the tenant's events in ClickHouse: rows FINAL,
// distinct ids, and rows as inserted (before any merge).
func clickHouseCounts(ctx context.Context, t *testing.T, s *faultStack, tenant string) (final, unique, rows int64) {
	t.Helper()
	conn, err := clickhouse.Open(ctx, clickhouse.Config{Addr: s.ch.addr, Database: s.chDB})
	if err != nil {
		t.Fatalf("open ClickHouse: %v", err)
	}
	defer conn.Close()
	for _, q := range []struct {
		sql string
		dst *int64
	}{
		{"SELECT count() FROM events FINAL WHERE tenant = ?", &final},
		{"SELECT uniqExact(event_id) FROM events WHERE tenant = ?", &unique},
		{"SELECT count() FROM events WHERE tenant = ?", &rows},
	} {
		var n uint64
		if err := conn.QueryRow(ctx, q.sql, tenant).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
		*q.dst = int64(n)
	}
	return final, unique, rows
}
