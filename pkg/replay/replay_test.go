package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// traffic generates realistic canonical JSONL: three mailboxes on two
// domains sending 250–450 messages a day for days days, each sent then
// delivered or bounced, with opens, unsubscribes, replies and complaints;
// ann@acme.io has a complaint spike on day 1 (pause, cooldown, ramp) and
// bob@acme.io a hard-bounce spike on day 2. Lines are in event-time order.
func traffic(seed uint64, days int) []byte {
	rnd := rand.New(rand.NewPCG(seed, 7))
	type line struct {
		at time.Time
		s  string
	}
	var lines []line
	n := 0
	emit := func(at time.Time, typ, sender, rcpt, campaign, extra string) {
		n++
		lines = append(lines, line{at, fmt.Sprintf(`{"event_id":"p%d","type":%q,"occurred_at":%q,"sender":%q,"recipient":%q,"campaign":%q%s}`,
			n, typ, at.Format(time.RFC3339), sender, rcpt, campaign, extra)})
	}
	doms := []string{"gmail.com", "outlook.com", "yahoo.com", "gmail.com", "northwind.example", "icloud.com"}
	senders := []string{"ann@acme.io", "bob@acme.io", "cy@globex.io"}
	// a sender's first message three weeks before: past its warm-up
	for i, s := range senders {
		at := day0.AddDate(0, 0, -21).Add(time.Duration(i) * time.Hour)
		emit(at, "sent", s, "first@gmail.com", "intro", "")
		emit(at.Add(time.Minute), "delivered", s, "first@gmail.com", "intro", "")
	}
	r := 0
	for d := 0; d < days; d++ {
		for _, s := range senders {
			count := 250 + rnd.IntN(200)
			complaintP, hardP := 0.0005, 0.004
			if s == "ann@acme.io" && d == 1 {
				complaintP = 0.006
			}
			if s == "bob@acme.io" && d == 2 {
				hardP = 0.04
			}
			for i := 0; i < count; i++ {
				r++
				at := day0.AddDate(0, 0, d).Add(8*time.Hour + time.Duration(rnd.IntN(10*3600))*time.Second)
				rcpt := fmt.Sprintf("u%d@%s", r, doms[r%len(doms)])
				camp := "c" + s[:1]
				emit(at, "sent", s, rcpt, camp, "")
				switch x := rnd.Float64(); {
				case x < hardP:
					emit(at.Add(time.Minute), "bounced", s, rcpt, camp, `,"bounce":{"class":"hard","category":"invalid_mailbox","smtp_code":550,"enhanced_code":"5.1.1"}`)
					continue
				case x < hardP+0.01:
					emit(at.Add(time.Minute), "bounced", s, rcpt, camp, `,"bounce":{"class":"soft","category":"mailbox_full","smtp_code":452}`)
					continue
				}
				emit(at.Add(time.Minute), "delivered", s, rcpt, camp, "")
				if rnd.Float64() < 0.25 {
					emit(at.Add(20*time.Minute), "opened", s, rcpt, camp, "")
				}
				switch x := rnd.Float64(); {
				case x < complaintP:
					emit(at.Add(2*time.Hour), "complained", s, rcpt, camp, `,"complaint":{"source":"fbl","feedback_type":"abuse"}`)
				case x < complaintP+0.003:
					emit(at.Add(90*time.Minute), "unsubscribed", s, rcpt, camp, `,"unsubscribe":{"method":"one_click"}`)
				case x < complaintP+0.006:
					emit(at.Add(3*time.Hour), "replied", s, rcpt, camp, `,"reply":{"category":"not_a_fit"}`)
				}
			}
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l.s)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func readTraffic(t testing.TB, seed uint64, days int) []*sgv1.Event {
	t.Helper()
	evs, err := ReadEvents(bytes.NewReader(traffic(seed, days)))
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

type result struct {
	cmds []*sgv1.ControlCommand
	decs []*sgv1.Decision
	st   Stats
}

func replay(t testing.TB, evs []*sgv1.Event, cfg Config) result {
	t.Helper()
	var res result
	cfg.OnDecision = func(d *sgv1.Decision) { res.decs = append(res.decs, d) }
	st, err := Run(evs, cfg, func(c *sgv1.ControlCommand) error {
		res.cmds = append(res.cmds, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res.st = st
	return res
}

// key renders what a command decides (its id hashes the same fields).
func key(c *sgv1.ControlCommand) string {
	return fmt.Sprintf("%s %s %s/%s %s until=%s cap=%.2f/%d", c.GetAt().AsTime().Format(time.RFC3339), c.GetAction(),
		c.GetScope().GetLevel(), c.GetScope().GetTarget(), c.GetRule(), c.GetUntil().AsTime().Format(time.RFC3339), c.GetCapRatio(), c.GetDailyCap())
}

func keys(cmds []*sgv1.ControlCommand) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = key(c)
	}
	sort.Strings(out)
	return out
}

func diff(a, b []string) string {
	var sb strings.Builder
	in := func(x []string) map[string]int {
		m := map[string]int{}
		for _, s := range x {
			m[s]++
		}
		return m
	}
	ma, mb := in(a), in(b)
	for _, s := range a {
		if mb[s] == 0 {
			sb.WriteString("  - " + s + "\n")
		} else {
			mb[s]--
		}
	}
	for _, s := range b {
		if ma[s] == 0 {
			sb.WriteString("  + " + s + "\n")
		} else {
			ma[s]--
		}
	}
	return sb.String()
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// TestTrafficHasIncidents guards the generator: the properties below are
// only worth something if the traffic pauses, ramps and suppresses.
func TestTrafficHasIncidents(t *testing.T) {
	res := replay(t, readTraffic(t, 1, 6), Config{})
	seen := map[sgv1.Action]int{}
	ramp := false
	for _, c := range res.cmds {
		seen[c.GetAction()]++
	}
	for _, d := range res.decs {
		if d.GetToState() == sgv1.HealthState_HEALTH_STATE_RAMP {
			ramp = true
		}
	}
	for _, a := range []sgv1.Action{sgv1.Action_ACTION_PAUSE, sgv1.Action_ACTION_THROTTLE, sgv1.Action_ACTION_SUPPRESS, sgv1.Action_ACTION_ALERT} {
		if seen[a] == 0 {
			t.Errorf("no %s command in the generated traffic (%v)", a, seen)
		}
	}
	if !ramp {
		t.Error("no scope ramps in the generated traffic")
	}
}

// TestEveryDecisionIsExplained: no decision and no command without an
// explanation naming the rule, the observed value, the threshold, the
// sample size and the window.
func TestEveryDecisionIsExplained(t *testing.T) {
	for seed := uint64(1); seed <= 2; seed++ {
		res := replay(t, readTraffic(t, seed, 6), Config{})
		if len(res.decs) == 0 {
			t.Fatalf("seed %d: no decisions", seed)
		}
		for _, d := range res.decs {
			x := d.GetExplanation()
			if d.GetRule() == "" || x == nil || x.GetWindow() == "" || x.GetSummary() == "" || x.GetSampleSize() < 0 ||
				!finite(x.GetObserved()) || !finite(x.GetThreshold()) || (x.GetMetric() == "" && x.GetCondition() == "") {
				t.Errorf("seed %d: decision without a full explanation: %v", seed, d)
			}
		}
		for _, c := range res.cmds {
			x := c.GetExplanation()
			if c.GetRule() == "" || x == nil || x.GetWindow() == "" || x.GetMetric() == "" || x.GetSampleSize() < 0 ||
				!finite(x.GetObserved()) || !finite(x.GetThreshold()) {
				t.Errorf("seed %d: command without a full explanation: %v", seed, c)
			}
		}
	}
}

// TestNeverPausedAndRamping: a scope is never paused and ramping at once —
// no throttle is issued for a scope while a pause of it is in force, and a
// ramp never starts before its pause's minimum has passed.
func TestNeverPausedAndRamping(t *testing.T) {
	for seed := uint64(1); seed <= 2; seed++ {
		res := replay(t, readTraffic(t, seed, 6), Config{})
		pausedUntil := map[string]time.Time{} // zero: not paused; far future: open-ended
		open := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, c := range res.cmds {
			sc := c.GetScope().GetLevel().String() + "/" + c.GetScope().GetTarget()
			at := c.GetAt().AsTime()
			switch c.GetAction() {
			case sgv1.Action_ACTION_PAUSE:
				u := open
				if c.GetUntil() != nil {
					u = c.GetUntil().AsTime()
				}
				pausedUntil[sc] = u
			case sgv1.Action_ACTION_RESUME:
				delete(pausedUntil, sc)
			case sgv1.Action_ACTION_THROTTLE:
				if u, ok := pausedUntil[sc]; ok && at.Before(u) {
					t.Errorf("seed %d: %s throttled (%s) at %s while paused until %s", seed, sc, c.GetRule(), at, u)
				}
			}
		}
		for _, d := range res.decs {
			from, to := d.GetFromState(), d.GetToState()
			if to == sgv1.HealthState_HEALTH_STATE_RAMP && from != sgv1.HealthState_HEALTH_STATE_RAMP &&
				from != sgv1.HealthState_HEALTH_STATE_PAUSED && from != sgv1.HealthState_HEALTH_STATE_COOLDOWN {
				t.Errorf("seed %d: %s entered ramp from %s", seed, d.GetScope().GetTarget(), from)
			}
			if to == sgv1.HealthState_HEALTH_STATE_RAMP && d.GetAction() == sgv1.Action_ACTION_PAUSE {
				t.Errorf("seed %d: a pause into ramp: %v", seed, d)
			}
		}
	}
}

// arrival returns evs in arrival order: event i arrives at its event time
// plus delay(i), ties in the given order.
func arrival(evs []*sgv1.Event, delay func(i int) time.Duration) []*sgv1.Event {
	type arr struct {
		at time.Time
		ev *sgv1.Event
	}
	a := make([]arr, len(evs))
	for i, ev := range evs {
		a[i] = arr{ev.GetOccurredAt().AsTime().Add(delay(i)), ev}
	}
	sort.SliceStable(a, func(i, j int) bool { return a[i].at.Before(a[j].at) })
	out := make([]*sgv1.Event, len(a))
	for i := range a {
		out[i] = a[i].ev
	}
	return out
}

// sameDecisions reports the commands of want that got lacks (and the
// reverse), compared on action, scope, rule and caps; with lostOnly only
// the enforcing commands of want that got lacks.
func sameDecisions(want, got []*sgv1.ControlCommand, lostOnly bool) string {
	what := func(c *sgv1.ControlCommand) string {
		return fmt.Sprintf("%s %s/%s %s cap=%.2f/%d", c.GetAction(), c.GetScope().GetLevel(), c.GetScope().GetTarget(), c.GetRule(), c.GetCapRatio(), c.GetDailyCap())
	}
	used := make([]bool, len(got))
	var sb strings.Builder
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && what(g) == what(w) {
				used[i], found = true, true
				break
			}
		}
		if !found && (!lostOnly || w.GetAction() != sgv1.Action_ACTION_ALERT) {
			sb.WriteString("  - " + key(w) + "\n")
		}
	}
	for i, g := range got {
		if !used[i] && !lostOnly {
			sb.WriteString("  + " + key(g) + "\n")
		}
	}
	return sb.String()
}

// TestOrderWithinAFlushDoesNotMatter: without the reorder hold, events
// arriving in any order within the stretch of event time that one
// evaluation covers give exactly the same commands (the windows do not
// depend on arrival order).
func TestOrderWithinAFlushDoesNotMatter(t *testing.T) {
	evs := readTraffic(t, 2, 4)
	want := replay(t, evs, Config{ArrivalOrder: true, Reorder: -1})
	for seed := uint64(1); seed <= 2; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 13))
		// Within each 5-minute bucket, a random order.
		perm := make([]int64, len(evs))
		for i := range perm {
			perm[i] = rnd.Int64N(int64(DefaultFlush))
		}
		got := replay(t, arrival(evs, func(i int) time.Duration {
			at := evs[i].GetOccurredAt().AsTime()
			return at.Truncate(DefaultFlush).Add(time.Duration(perm[i])).Sub(at)
		}), Config{ArrivalOrder: true, Reorder: -1})
		if d := diff(keys(want.cmds), keys(got.cmds)); d != "" {
			t.Errorf("seed %d: shuffled within flush buckets, the commands differ:\n%s", seed, d)
		}
	}
}

// decisionIDs returns the ids of decs, sorted.
func decisionIDs(decs []*sgv1.Decision) []string {
	ids := make([]string, len(decs))
	for i, d := range decs {
		ids[i] = d.GetDecisionId()
	}
	sort.Strings(ids)
	return ids
}

// TestAnyOrderWithinLatenessDecidesTheSame is the order property: the same
// events arriving in any order within the lateness (each up to a whole
// lateness late) give exactly the decisions and commands of event-time
// order — alerts at a hovering threshold included — because the replay
// holds events for the lateness and counts them in event-time order.
func TestAnyOrderWithinLatenessDecidesTheSame(t *testing.T) {
	for _, days := range []int{2, 4} {
		evs := readTraffic(t, uint64(days), days)
		want := replay(t, evs, Config{})
		if len(want.cmds) == 0 {
			t.Fatalf("%d days: the ordered stream decides nothing", days)
		}
		for seed := uint64(1); seed <= 3; seed++ {
			rnd := rand.New(rand.NewPCG(seed, 11))
			shuffled := arrival(evs, func(int) time.Duration { return time.Duration(rnd.Int64N(int64(window.DefaultLateness))) })
			got := replay(t, shuffled, Config{ArrivalOrder: true})
			if got.st.Skipped != 0 {
				t.Fatalf("%d days, seed %d: %d events refused as late", days, seed, got.st.Skipped)
			}
			if d := diff(keys(want.cmds), keys(got.cmds)); d != "" {
				t.Errorf("%d days, seed %d: shuffled within the lateness, the commands differ:\n%s", days, seed, d)
			}
			if w, g := decisionIDs(want.decs), decisionIDs(got.decs); !slices.Equal(w, g) {
				t.Errorf("%d days, seed %d: %d decisions, want the %d of event-time order", days, seed, len(g), len(w))
			}
		}
	}
}

// TestWithoutTheHoldNoStopIsLost: with the hold off, events count on
// arrival; up to half the lateness out of order they are all counted and
// every pause, throttle and suppression of the ordered stream is still
// decided. (A rate hovering at its threshold can cross it briefly in one
// arrival order and not in another, e.g. bounces arriving before the sends
// of the same minutes: the extra decisions are logged.)
func TestWithoutTheHoldNoStopIsLost(t *testing.T) {
	evs := readTraffic(t, 2, 4)
	want := replay(t, evs, Config{ArrivalOrder: true, Reorder: -1})
	const delay = window.DefaultLateness / 2
	for seed := uint64(1); seed <= 2; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 11))
		got := replay(t, arrival(evs, func(int) time.Duration { return time.Duration(rnd.Int64N(int64(delay))) }), Config{ArrivalOrder: true, Reorder: -1})
		if got.st.Skipped != 0 {
			t.Fatalf("seed %d: %d events refused as late", seed, got.st.Skipped)
		}
		if d := sameDecisions(want.cmds, got.cmds, true); d != "" {
			t.Errorf("seed %d: shuffled within the lateness, stops were lost:\n%s", seed, d)
		}
		if d := sameDecisions(want.cmds, got.cmds, false); d != "" {
			t.Logf("seed %d: shuffled within the lateness, decisions at a hovering threshold differ:\n%s", seed, d)
		}
	}
}

// TestShortHoldCountsLaterEvents: an event arriving later than the hold but
// within the lateness still counts (on arrival, out of order), and one
// beyond the lateness is refused.
func TestShortHoldCountsLaterEvents(t *testing.T) {
	// Sends every minute for three hours.
	var evs []*sgv1.Event
	for i := range 180 {
		evs = append(evs, &sgv1.Event{EventId: fmt.Sprintf("s%d", i), Tenant: DefaultTenant, Type: sgv1.EventType_EVENT_TYPE_SENT,
			OccurredAt: timestamppb.New(day0.Add(time.Duration(i) * time.Minute)), Sender: "ann@acme.io", Recipient: "x@gmail.com"})
	}
	n := len(evs)
	for _, tt := range []struct {
		name    string
		behind  int // minutes
		skipped int
	}{
		{"later than the hold", 20, 0},
		{"beyond the lateness", 2 * int(window.DefaultLateness/time.Minute), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := n - 1 - tt.behind // arrives last, behind minutes after its time
			late := arrival(evs, func(i int) time.Duration {
				if i == k {
					return time.Duration(tt.behind)*time.Minute + time.Nanosecond
				}
				return 0
			})
			if late[n-1] != evs[k] {
				t.Fatal("the event does not arrive last")
			}
			got := replay(t, late, Config{ArrivalOrder: true, Reorder: 10 * time.Minute})
			if got.st.Skipped != tt.skipped {
				t.Fatalf("skipped %d, want %d", got.st.Skipped, tt.skipped)
			}
		})
	}
}

// TestDuplicatesChangeNothing: redelivered events (same event ids) leave
// the commands exactly as they were, whether redelivered at once or later
// within the lateness.
func TestDuplicatesChangeNothing(t *testing.T) {
	evs := readTraffic(t, 3, 4)
	rnd := rand.New(rand.NewPCG(3, 5))
	var dup []*sgv1.Event
	var delays []time.Duration
	for _, ev := range evs {
		dup = append(dup, ev)
		delays = append(delays, 0)
		if rnd.IntN(3) == 0 {
			dup = append(dup, ev)
			delays = append(delays, time.Duration(rnd.Int64N(int64(window.DefaultLateness/2))))
		}
	}
	want := replay(t, evs, Config{ArrivalOrder: true})
	got := replay(t, arrival(dup, func(i int) time.Duration { return delays[i] }), Config{ArrivalOrder: true})
	if d := diff(keys(want.cmds), keys(got.cmds)); d != "" {
		t.Errorf("duplicates changed the commands:\n%s", d)
	}
	if sorted := replay(t, dup, Config{}); sorted.st.Decisions != want.st.Decisions {
		t.Errorf("sorted with duplicates: %d decisions, want %d", sorted.st.Decisions, want.st.Decisions)
	}
}

// TestLateEvents: in arrival order an event more than the lateness behind
// the newest one is refused and counted, one within it is counted.
func TestLateEvents(t *testing.T) {
	line := func(id, typ string, at time.Time, extra string) string {
		return fmt.Sprintf(`{"event_id":%q,"type":%q,"occurred_at":%q,"sender":"ann@acme.io","recipient":"r%s@gmail.com"%s}`, id, typ, at.Format(time.RFC3339), id, extra)
	}
	var base []string
	for i := 0; i < 300; i++ {
		at := day0.Add(8*time.Hour + time.Duration(i)*2*time.Minute)
		base = append(base, line(fmt.Sprint("s", i), "sent", at, ""), line(fmt.Sprint("d", i), "delivered", at.Add(time.Minute), ""))
	}
	last := day0.Add(8*time.Hour + 600*time.Minute)
	complaints := func(delay time.Duration) []*sgv1.Event {
		lines := append([]string(nil), base...)
		for i := 0; i < 3; i++ {
			lines = append(lines, line(fmt.Sprint("c", i), "complained", last.Add(-delay-time.Duration(i)*time.Minute), `,"complaint":{"feedback_type":"abuse"}`))
		}
		evs, err := ReadEvents(strings.NewReader(strings.Join(lines, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	paused := func(r result) bool {
		for _, c := range r.cmds {
			if c.GetAction() == sgv1.Action_ACTION_PAUSE && c.GetScope().GetTarget() == "ann@acme.io" {
				return true
			}
		}
		return false
	}
	tests := []struct {
		name        string
		delay       time.Duration
		skipped     int
		wantPause   bool
		arrivalOnly bool
	}{
		{"within the lateness", 30 * time.Minute, 0, true, true},
		{"beyond the lateness", 3 * time.Hour, 3, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := replay(t, complaints(tt.delay), Config{ArrivalOrder: true})
			if r.st.Skipped != tt.skipped || paused(r) != tt.wantPause {
				t.Errorf("skipped %d, paused %v; want %d, %v", r.st.Skipped, paused(r), tt.skipped, tt.wantPause)
			}
			// Sorted by event time (a backtest), every complaint counts.
			if s := replay(t, complaints(tt.delay), Config{}); s.st.Skipped != 0 || !paused(s) {
				t.Errorf("event-time order: skipped %d, paused %v", s.st.Skipped, paused(s))
			}
		})
	}
}

// TestCommandsAreJSONReady: every command carries tenant, scope, rule and
// time (what `sgctl replay` prints).
func TestCommandsAreJSONReady(t *testing.T) {
	res := replay(t, readTraffic(t, 1, 3), Config{})
	for _, c := range res.cmds {
		if c.GetScope().GetTenant() != DefaultTenant || c.GetAt() == nil || c.GetCommandId() == "" {
			b, _ := json.Marshal(c)
			t.Errorf("incomplete command %s", b)
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// latencyStream is one established sender delivering 400 messages on day
// 0 with one complaint, then a second complaint as the last line: the
// event that crosses sender-complaint-critical.
func latencyStream() []byte {
	var b bytes.Buffer
	line := func(id, typ string, at time.Time, rcpt int, extra string) {
		fmt.Fprintf(&b, `{"event_id":%q,"type":%q,"occurred_at":%q,"sender":"ann@acme.io","recipient":"r%d@gmail.com","campaign":"c1"%s}`+"\n",
			id, typ, at.Format(time.RFC3339), rcpt, extra)
	}
	line("first", "sent", day0.AddDate(0, 0, -20), 0, "")
	for i := 1; i <= 400; i++ {
		at := day0.Add(8*time.Hour + time.Duration(i)*time.Minute)
		line(fmt.Sprint("s", i), "sent", at, i, "")
		line(fmt.Sprint("d", i), "delivered", at.Add(30*time.Second), i, "")
	}
	end := day0.Add(8*time.Hour + 401*time.Minute)
	line("c1", "complained", end, 100, `,"complaint":{"feedback_type":"abuse"}`)
	line("c2", "complained", end.Add(time.Minute), 200, `,"complaint":{"feedback_type":"abuse"}`)
	return b.Bytes()
}
