// Package replay runs the whole decision logic offline — normalization of
// canonical events, windows, rules and enforcement — in event-time order,
// with the same packages the services run. It is what `sgctl replay` and
// the scenario suite use to backtest a rule set on history.
package replay

import (
	"bufio"
	"bytes"
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
	// publishes one snapshot per changed scope per flush. Zero means one
	// minute; negative evaluates after every event.
	Flush time.Duration
	// ArrivalOrder processes the events in the order given, as live
	// processing sees them in arrival order: an event more than
	// Window.Lateness behind the newest one is refused as late (counted
	// in Stats.Skipped). By default events are sorted by event time first
	// (a backtest of history exported in any order).
	ArrivalOrder bool
	// OnDecision, when set, sees every decision of the engine before its
	// commands are applied (audits, property tests).
	OnDecision func(*sgv1.Decision)
}

// Stats summarises a replay.
type Stats struct {
	Events    int // events read
	Skipped   int // events refused by the windows (late, invalid)
	Decisions int
	Commands  int
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
// state are not repeated).
func Run(events []*sgv1.Event, cfg Config, emit func(*sgv1.ControlCommand) error) (Stats, error) {
	var st Stats
	sorted := events
	if !cfg.ArrivalOrder {
		sorted = append([]*sgv1.Event(nil), events...)
		sort.SliceStable(sorted, func(i, j int) bool {
			return sorted[i].GetOccurredAt().AsTime().Before(sorted[j].GetOccurredAt().AsTime())
		})
	}
	var now time.Time
	clock := func() time.Time { return now }
	wcfg := cfg.Window
	wcfg.Now, wcfg.MaxFuture = clock, -1
	agg := window.New(wcfg)
	ecfg := cfg.Enforce
	ecfg.Clock = clock
	state := enforce.New(ecfg)
	rs := cfg.Rules
	if rs == nil {
		rs = rules.Default()
	}
	engine := rules.NewEngine(rs)
	tick := cfg.Tick
	if tick == 0 {
		tick = time.Hour
	}
	flush := cfg.Flush
	if flush == 0 {
		flush = time.Minute
	}
	var nextTick, nextFlush time.Time

	// apply publishes what the actuator would: a command that changed the
	// enforcement state, or an alert not announced before.
	apply := func(cmds []*sgv1.ControlCommand) error {
		for _, c := range cmds {
			if c.GetAction() == sgv1.Action_ACTION_ALERT {
				if !state.Announce(c) {
					continue
				}
			} else if !state.Apply(c) {
				continue
			}
			st.Commands++
			if err := emit(c); err != nil {
				return err
			}
		}
		return nil
	}
	evaluate := func(snap *sgv1.WindowSnapshot) error {
		for _, d := range engine.Evaluate(snap) {
			st.Decisions++
			if cfg.OnDecision != nil {
				cfg.OnDecision(d)
			}
			if err := apply(enforce.Commands(d)); err != nil {
				return err
			}
		}
		return nil
	}
	// Scopes of a level no rule watches yield no decision: their snapshots
	// are not built (the windows still count them).
	flushDirty := func() error {
		for _, k := range agg.Dirty() {
			if !rs.Watches(k.Level) {
				continue
			}
			if err := evaluate(agg.Snapshot(k)); err != nil {
				return err
			}
		}
		return apply(state.DrainPending())
	}
	for _, ev := range sorted {
		st.Events++
		at := ev.GetOccurredAt().AsTime()
		if at.After(now) {
			now = at
		}
		// Flush what earlier events changed before time moves on: their
		// snapshots are older than the tick's.
		if flush > 0 && !nextFlush.IsZero() && !now.Before(nextFlush) {
			if err := flushDirty(); err != nil {
				return st, err
			}
			nextFlush = now.Truncate(flush).Add(flush)
		}
		if tick > 0 {
			if nextTick.IsZero() {
				nextTick = now.Truncate(tick).Add(tick)
			}
			for !now.Before(nextTick) {
				for _, k := range agg.All() {
					if !rs.Watches(k.Level) {
						continue
					}
					if err := evaluate(agg.SnapshotAt(k, nextTick)); err != nil {
						return st, err
					}
				}
				nextTick = nextTick.Add(tick)
			}
		}
		if err := apply(state.FromEvent(ev)); err != nil {
			return st, err
		}
		if _, err := agg.Apply(ev); err != nil {
			if errors.Is(err, window.ErrLateEvent) || errors.Is(err, window.ErrInvalidEvent) || errors.Is(err, window.ErrFutureEvent) {
				st.Skipped++
				continue
			}
			return st, err
		}
		if flush <= 0 {
			if err := flushDirty(); err != nil {
				return st, err
			}
		} else if nextFlush.IsZero() {
			nextFlush = now.Truncate(flush).Add(flush)
		}
	}
	if err := flushDirty(); err != nil {
		return st, err
	}
	return st, nil
}
