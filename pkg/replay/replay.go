// Package replay runs the whole decision logic offline — normalization of
// canonical events, windows, rules and enforcement — in event-time order,
// with the same packages the services run. It is what `sgctl replay` and
// the scenario suite use to backtest a rule set on history.
package replay

import (
	"bufio"
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/rules"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// DefaultTenant is the tenant of events that name none.
const DefaultTenant = "default"

// DefaultFlush is how much event time a replay lets pass between two
// evaluations of a changed scope: a backtest of months stays fast and no
// decision comes more than five minutes of event time late.
const DefaultFlush = 5 * time.Minute

// Config configures a replay.
type Config struct {
	// Rules is the rule set; nil means rules.Default().
	Rules *rules.RuleSet
	// Window configures the windows (Now and MaxFuture are replaced: the
	// clock is event time).
	Window window.Config
	// Enforce configures enforcement (its Clock is replaced by event time).
	Enforce enforce.Config
	// Tick re-evaluates every scope whenever event time advances by this
	// much, as the live snapshot tick does (windows slide, cooldowns end).
	// Zero means one hour; negative disables.
	Tick time.Duration
	// Flush evaluates the scopes changed since the previous flush whenever
	// event time crosses a multiple of Flush, one snapshot per scope
	// however many events changed it, as the windowed-metrics service
	// publishes one snapshot per changed scope per flush. A decision is
	// thus made at most Flush of event time after the event that crossed
	// its threshold (and stamped with the scope's newest event time). Zero
	// means DefaultFlush; negative evaluates after every event.
	Flush time.Duration
	// ArrivalOrder processes the events in the order given, as live
	// processing sees them in arrival order: an event more than
	// Window.Lateness behind the newest one is refused as late (counted
	// in Stats.Skipped). By default events are sorted by event time first
	// (a backtest of history exported in any order).
	ArrivalOrder bool
	// Reorder, in arrival order, holds each event until the newest event
	// time seen is Reorder ahead of it (or the stream ends) and releases
	// the held events in event-time order: events arriving out of order by
	// at most Reorder give exactly the decisions of event-time order, and
	// each decision comes Reorder of event time later than without the
	// hold. Zero means Window.Lateness (its default when unset), so any
	// arrival order of the events the windows accept decides the same;
	// negative disables the hold (every event counts on arrival, and a rate
	// hovering at a threshold may cross it in one order and not another).
	// An arrival-order replay is one stream with one clock, the newest
	// event time fed, whatever the tenants: a file mixing tenants far apart
	// in time is best replayed sorted.
	Reorder time.Duration
	// OnDecision, when set, sees every decision of the engine before its
	// commands are applied (audits, property tests).
	OnDecision func(*sgv1.Decision)
}

// Stats summarises a replay.
type Stats struct {
	Events          int // events read
	Skipped         int // events refused by the windows (late, invalid)
	Snapshots       int // snapshots evaluated
	RuleEvaluations int // rules evaluated: per snapshot, the rules of its level
	Decisions       int
	Commands        int
}

// ReadEvents reads canonical events, one JSON object per line, through the
// generic normalizer the services use. A line that does not parse is an
// error naming the line.
func ReadEvents(r io.Reader) ([]*sgv1.Event, error) {
	var out []*sgv1.Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		env := &sgv1.RawEnvelope{
			EnvelopeId: fmt.Sprintf("replay-%d", line), Tenant: DefaultTenant, Source: sgv1.Source_SOURCE_GENERIC,
			Payload: append([]byte(nil), b...), ReceivedAt: timestamppb.New(time.Unix(0, 0)),
		}
		tenant, err := tenantOf(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if tenant != "" {
			env.Tenant = tenant
		}
		evs, err := normalize.Parse(env, normalize.Options{Now: func() time.Time { return time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC) }})
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, evs...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// Run replays events and calls emit for every control command, in event
// time order: as the actuator publishes them, every command that changed the
// enforcement state and every alert once (re-announcements of an unchanged
// state are not repeated). Unless cfg.ArrivalOrder, the events are sorted
// by event time first.
func Run(events []*sgv1.Event, cfg Config, emit func(*sgv1.ControlCommand) error) (Stats, error) {
	if !cfg.ArrivalOrder {
		events = append([]*sgv1.Event(nil), events...)
		sort.SliceStable(events, func(i, j int) bool {
			return events[i].GetOccurredAt().AsTime().Before(events[j].GetOccurredAt().AsTime())
		})
	}
	r := NewRunner(cfg, emit)
	for _, ev := range events {
		if err := r.Feed(ev); err != nil {
			return r.Stats(), err
		}
	}
	return r.Close()
}

// Runner is the replay of one stream fed event by event in arrival order
// (Run sorts by event time first). It is not safe for concurrent use.
type Runner struct {
	cfg    Config
	emit   func(*sgv1.ControlCommand) error
	now    time.Time
	agg    *window.Aggregator
	state  *enforce.State
	rs     *rules.RuleSet
	engine *rules.Engine
	perLvl map[sgv1.ScopeLevel]int
	tick   time.Duration
	flush  time.Duration

	nextTick, nextFlush time.Time
	lastTick            time.Time // the newest tick evaluated
	st                  Stats

	// The reorder hold (Config.Reorder): events by event time, the newest
	// event time fed, the hold and the lateness.
	held              heldEvents
	newest            time.Time
	reorder, lateness time.Duration
}

// NewRunner returns a runner that calls emit for every command.
func NewRunner(cfg Config, emit func(*sgv1.ControlCommand) error) *Runner {
	r := &Runner{cfg: cfg, emit: emit, tick: cfg.Tick, flush: cfg.Flush, rs: cfg.Rules, perLvl: map[sgv1.ScopeLevel]int{}}
	clock := func() time.Time { return r.now }
	wcfg := cfg.Window
	wcfg.Now, wcfg.MaxFuture = clock, -1
	r.agg = window.New(wcfg)
	ecfg := cfg.Enforce
	ecfg.Clock = clock
	r.state = enforce.New(ecfg)
	if r.rs == nil {
		r.rs = rules.Default()
	}
	for _, rule := range r.rs.Rules {
		r.perLvl[rule.Level]++
	}
	r.engine = rules.NewEngine(r.rs)
	if r.tick == 0 {
		r.tick = time.Hour
	}
	if r.flush == 0 {
		r.flush = DefaultFlush
	}
	r.lateness = cfg.Window.Lateness
	if r.lateness <= 0 {
		r.lateness = window.DefaultLateness
	}
	r.reorder = cfg.Reorder
	if r.reorder == 0 {
		r.reorder = r.lateness
	}
	return r
}

// Stats returns the counts so far.
func (r *Runner) Stats() Stats { return r.st }

// apply publishes what the actuator would: a command that changed the
// enforcement state, or an alert not announced before.
func (r *Runner) apply(cmds []*sgv1.ControlCommand) error {
	for _, c := range cmds {
		if c.GetAction() == sgv1.Action_ACTION_ALERT {
			if !r.state.Announce(c) {
				continue
			}
		} else if !r.state.Apply(c) {
			continue
		}
		r.st.Commands++
		if err := r.emit(c); err != nil {
			return err
		}
	}
	return nil
}

// evaluate runs the rules on one scope's snapshot and applies the commands
// of its decisions. Scopes of a level no rule watches yield no decision:
// their snapshots are not built (the windows still count them).
func (r *Runner) evaluate(k window.ScopeKey, at time.Time) error {
	if !r.rs.Watches(k.Level) {
		return nil
	}
	var snap *sgv1.WindowSnapshot
	if at.IsZero() {
		// A scope whose newest event is older than the last tick (a late
		// event within the lateness) is evaluated as of that tick: the
		// engine ignores snapshots older than one it has seen, and the
		// late event must count now, not when a newer one comes.
		snap = r.agg.CompactSnapshotAt(k, r.lastTick)
	} else {
		snap = r.agg.CompactSnapshotAt(k, at)
	}
	r.st.Snapshots++
	r.st.RuleEvaluations += r.perLvl[k.Level]
	for _, d := range r.engine.Evaluate(snap) {
		r.st.Decisions++
		if r.cfg.OnDecision != nil {
			r.cfg.OnDecision(d)
		}
		if err := r.apply(enforce.Commands(d)); err != nil {
			return err
		}
	}
	return nil
}

// flushDirty evaluates every scope changed since the previous flush, once.
func (r *Runner) flushDirty() error {
	for _, k := range r.agg.Dirty() {
		if err := r.evaluate(k, time.Time{}); err != nil {
			return err
		}
	}
	return r.apply(r.state.DrainPending())
}

// Feed takes one event in arrival order. With a reorder hold, an event
// more than the lateness behind the newest one is skipped (late) and the
// others are held and processed in event-time order once the newest event
// time is the hold ahead of them; without, it is processed at once.
func (r *Runner) Feed(ev *sgv1.Event) error {
	r.st.Events++
	if r.reorder < 0 {
		return r.process(ev)
	}
	at := ev.GetOccurredAt().AsTime()
	if at.Before(r.newest.Add(-r.lateness)) {
		r.st.Skipped++
		return nil
	}
	if at.After(r.newest) {
		r.newest = at
	}
	r.held.push(ev, at)
	return r.release(r.newest.Add(-r.reorder))
}

// release processes, in event-time order, the held events at or before
// upTo (all of them when upTo is zero).
func (r *Runner) release(upTo time.Time) error {
	for r.held.Len() > 0 && (upTo.IsZero() || !r.held.min().After(upTo)) {
		if err := r.process(r.held.pop()); err != nil {
			return err
		}
	}
	return nil
}

// process counts one event: flushes and ticks that its time passes, the
// event-driven suppressions, then the windows (a late, future or invalid
// event is skipped and counted).
func (r *Runner) process(ev *sgv1.Event) error {
	if at := ev.GetOccurredAt().AsTime(); at.After(r.now) {
		r.now = at
	}
	// Flush what earlier events changed before time moves on: their
	// snapshots are older than the tick's.
	if r.flush > 0 && !r.nextFlush.IsZero() && !r.now.Before(r.nextFlush) {
		if err := r.flushDirty(); err != nil {
			return err
		}
		r.nextFlush = r.now.Truncate(r.flush).Add(r.flush)
	}
	if r.tick > 0 {
		if r.nextTick.IsZero() {
			r.nextTick = r.now.Truncate(r.tick).Add(r.tick)
		}
		for !r.now.Before(r.nextTick) {
			for _, k := range r.agg.All() {
				if err := r.evaluate(k, r.nextTick); err != nil {
					return err
				}
			}
			r.lastTick = r.nextTick
			r.nextTick = r.nextTick.Add(r.tick)
		}
	}
	if err := r.apply(r.state.FromEvent(ev)); err != nil {
		return err
	}
	if _, err := r.agg.Apply(ev); err != nil {
		if errors.Is(err, window.ErrLateEvent) || errors.Is(err, window.ErrInvalidEvent) || errors.Is(err, window.ErrFutureEvent) {
			r.st.Skipped++
			return nil
		}
		return fmt.Errorf("replay: %w", err)
	}
	if r.flush <= 0 {
		return r.flushDirty()
	}
	if r.nextFlush.IsZero() {
		r.nextFlush = r.now.Truncate(r.flush).Add(r.flush)
	}
	return nil
}

// Close processes the held events, flushes what the last events changed
// and returns the stats.
func (r *Runner) Close() (Stats, error) {
	if err := r.release(time.Time{}); err != nil {
		return r.st, err
	}
	err := r.flushDirty()
	return r.st, err
}

// heldEvents is a min-heap of events by event time, ties in arrival order.
type heldEvents struct {
	items []heldEvent
	seq   uint64
}

type heldEvent struct {
	at  time.Time
	seq uint64
	ev  *sgv1.Event
}

func (h *heldEvents) Len() int { return len(h.items) }

func (h *heldEvents) Less(i, j int) bool {
	a, b := &h.items[i], &h.items[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

func (h *heldEvents) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *heldEvents) Push(x any)    { h.items = append(h.items, x.(heldEvent)) }

func (h *heldEvents) Pop() any {
	last := h.items[len(h.items)-1]
	h.items[len(h.items)-1] = heldEvent{}
	h.items = h.items[:len(h.items)-1]
	return last
}

func (h *heldEvents) push(ev *sgv1.Event, at time.Time) {
	h.seq++
	heap.Push(h, heldEvent{at: at, seq: h.seq, ev: ev})
}

func (h *heldEvents) min() time.Time   { return h.items[0].at }
func (h *heldEvents) pop() *sgv1.Event { return heap.Pop(h).(heldEvent).ev }
