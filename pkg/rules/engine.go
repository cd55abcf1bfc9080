package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/metrics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Engine evaluates window snapshots against a rule set and keeps the health
// state of every scope it has seen a rule fire for. Evaluate, Swap, Export
// and Import are safe for concurrent use. The engine reads time only from
// snapshots (event time).
type Engine struct {
	set    atomic.Pointer[RuleSet]
	mu     sync.Mutex
	states map[string]*ScopeState
}

// NewEngine returns an engine running rs.
func NewEngine(rs *RuleSet) *Engine {
	e := &Engine{states: map[string]*ScopeState{}}
	e.set.Store(rs)
	return e
}

// Swap atomically replaces the rule set. Scope states are kept; a scope
// held by a rule the new set no longer has recovers when no rule fires.
func (e *Engine) Swap(rs *RuleSet) {
	if rs != nil {
		e.set.Store(rs)
	}
}

// Watches reports whether the rule set running watches level (see
// RuleSet.Watches): snapshots of other levels need not be decoded.
func (e *Engine) Watches(level sgv1.ScopeLevel) bool { return e.set.Load().Watches(level) }

// RuleSet returns the rule set currently running.
func (e *Engine) RuleSet() *RuleSet { return e.set.Load() }

// ScopeState is the health state of one scope.
type ScopeState struct {
	Tenant string           `json:"tenant"`
	Level  sgv1.ScopeLevel  `json:"level"`
	Target string           `json:"target"`
	State  sgv1.HealthState `json:"state"`
	Rule   string           `json:"rule,omitempty"`
	Since  time.Time        `json:"since"`
	Until  time.Time        `json:"until,omitempty"`
	// LastSeen is the as_of of the newest snapshot evaluated.
	LastSeen time.Time `json:"last_seen"`
	// PriorVolume is the daily volume before the pause; ramp caps are
	// fractions of it.
	PriorVolume float64   `json:"prior_volume,omitempty"`
	RampRatio   float64   `json:"ramp_ratio,omitempty"`
	StepAt      time.Time `json:"step_at,omitempty"`
	CleanSince  time.Time `json:"clean_since,omitempty"`
	// Alerted is when each rule last emitted an alert (cooldowns).
	Alerted map[string]time.Time `json:"alerted,omitempty"`
	// ShadowUntil is when each shadow rule may emit again.
	ShadowUntil map[string]time.Time `json:"shadow_until,omitempty"`
}

func scopeKey(s *sgv1.Scope) string {
	return scopeKeyOf(s.GetTenant(), int(s.GetLevel()), s.GetTarget())
}

func scopeKeyOf(tenant string, level int, target string) string {
	return tenant + "\x00" + strconv.Itoa(level) + "\x00" + target
}

// State returns a copy of the health state of scope; a scope never seen is
// healthy and reported with ok false.
func (e *Engine) State(scope *sgv1.Scope) (ScopeState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.states[scopeKey(scope)]
	if !ok {
		return ScopeState{Tenant: scope.GetTenant(), Level: scope.GetLevel(), Target: scope.GetTarget(), State: sgv1.HealthState_HEALTH_STATE_HEALTHY}, false
	}
	return *st, true
}

// Len is the number of scopes the engine holds state for.
func (e *Engine) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.states)
}

// CountStates calls fn once per (level, state) with the number of scopes
// held in that state, counted in one pass under the engine's lock (for
// metrics: no copies).
func (e *Engine) CountStates(fn func(level sgv1.ScopeLevel, state sgv1.HealthState, n int)) {
	type key struct {
		l sgv1.ScopeLevel
		s sgv1.HealthState
	}
	counts := map[key]int{}
	e.mu.Lock()
	for _, st := range e.states {
		counts[key{st.Level, st.State}]++
	}
	e.mu.Unlock()
	for k, n := range counts {
		fn(k.l, k.s, n)
	}
}

// Prune forgets scopes last seen before cutoff that are healthy (only alert
// or shadow memory left) or held open-ended (a retired variant, a
// permanently suppressed recipient: the actuator keeps those). Timed pauses,
// cooldowns, ramps and restrictions are kept. It returns how many scopes
// were forgotten; services call it to bound memory.
func (e *Engine) Prune(cutoff time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for k, st := range e.states {
		if !st.LastSeen.Before(cutoff) {
			continue
		}
		if st.State == healthy || st.State == paused && st.Until.IsZero() {
			delete(e.states, k)
			n++
		}
	}
	return n
}

// activation resolves CEL variables from a snapshot (window.Metrics): a
// metric is derived from the snapshot's counters when a rule reads it;
// catalogue metrics a hand-built map lacks are 0 (the Postmaster scalars
// come from the snapshot's fields); rule params shadow nothing (they never
// collide with metric names).
type activation struct {
	m      window.Metrics
	snap   *sgv1.WindowSnapshot
	params map[string]float64
}

func newActivation(snap *sgv1.WindowSnapshot) (*activation, error) {
	m, err := window.MetricsOf(snap)
	if err != nil {
		return nil, err
	}
	return &activation{m: m, snap: snap}, nil
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	if v, ok := a.params[name]; ok {
		return v, true
	}
	if v, ok := a.m.Get(name); ok {
		return v, true
	}
	if !metrics.Known(name) {
		return nil, false
	}
	return 0.0, true
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) value(name string) float64 {
	if name == "" {
		return 0
	}
	v, _ := a.m.Get(name)
	return v
}

// firing is one rule that fired on a snapshot, with its explanation.
type firing struct {
	r   *compiledRule
	exp *sgv1.Explanation
}

// fire evaluates a rule; it returns the explanation of the branch that
// fired, or nil.
func (cr *compiledRule) fire(act *activation) *sgv1.Explanation {
	act.params = cr.params
	defer func() { act.params = nil }()
	bs := cr.branches
	if ms := cr.rule.MinSample; ms != nil && act.value(ms.Metric) < ms.Min {
		if ms.Fallback == "" {
			return nil
		}
		bs = cr.fallback
	}
	for _, b := range bs {
		v, _, err := b.prg.Eval(act)
		if err != nil || v != types.True {
			continue
		}
		return cr.explanation(b.explain, act, cr.cond)
	}
	return nil
}

func (cr *compiledRule) recovered(act *activation) bool {
	if cr.recovery == nil {
		return true
	}
	act.params = cr.params
	defer func() { act.params = nil }()
	v, _, err := cr.recovery.Eval(act)
	return err == nil && v == types.True
}

func (cr *compiledRule) broadHolds(act *activation) bool {
	if cr.broad == nil {
		return false
	}
	act.params = cr.params
	defer func() { act.params = nil }()
	v, _, err := cr.broad.Eval(act)
	return err == nil && v == types.True
}

func (cr *compiledRule) explanation(ex explainC, act *activation, cond string) *sgv1.Explanation {
	threshold := 0.0
	if ex.threshold != nil {
		if v, _, err := ex.threshold.Eval(act); err == nil {
			threshold, _ = toFloat(v)
		}
	}
	observed := finite(act.value(ex.metric))
	threshold = finite(threshold)
	sample := int64(math.Round(finite(act.value(ex.sample))))
	out := &sgv1.Explanation{
		Metric:                ex.metric,
		Observed:              observed,
		Threshold:             threshold,
		Comparator:            ex.comparator,
		SampleSize:            sample,
		Window:                ex.window,
		ProviderConcentration: act.value("provider_concentration_7d"),
		Condition:             cond,
		Source:                sourcesString(cr.rule.Sources),
	}
	out.Summary = fmt.Sprintf("%s %s: %s = %.6g %s %.6g (sample %d, window %s)", LevelName(cr.rule.Level), cr.rule.ID, ex.metric, observed, ex.comparator, threshold, sample, ex.window)
	return out
}

// finite maps NaN and ±Inf (a threshold over an empty baseline) to 0 so
// that decisions always serialise.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func sourcesString(src []Source) string {
	s := ""
	for i, x := range src {
		if i > 0 {
			s += "; "
		}
		s += x.String()
	}
	return s
}

// Evaluate applies the rules of the snapshot's scope level and tenant in
// priority order, advances the scope's health state and returns the
// decisions, each with an explanation. A snapshot older than one already
// evaluated for the same scope returns nil, as does one whose counters have
// a layout this version cannot read (the evaluator stage dead-letters those
// before). Decision ids are deterministic
// in (tenant, scope, rule, at, action, state), so a replay yields the same
// ids.
func (e *Engine) Evaluate(snap *sgv1.WindowSnapshot) []*sgv1.Decision {
	if snap == nil || snap.GetScope() == nil || snap.GetAsOf() == nil {
		return nil
	}
	rs := e.set.Load()
	if rs == nil {
		return nil
	}
	cs := rs.forTenant(snap.GetScope().GetTenant())
	rules := cs.byLevel[snap.GetScope().GetLevel()]
	t := snap.GetAsOf().AsTime()
	act, err := newActivation(snap)
	if err != nil {
		return nil
	}
	// Nothing keeps act past this call: its metrics' buffers are reused.
	defer act.m.Release()

	var fired, shadow []firing
	for _, cr := range rules {
		if exp := cr.fire(act); exp != nil {
			if cr.shadow {
				shadow = append(shadow, firing{cr, exp})
			} else {
				fired = append(fired, firing{cr, exp})
			}
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	key := scopeKey(snap.GetScope())
	st := e.states[key]
	if st == nil {
		if len(fired) == 0 && len(shadow) == 0 {
			return nil
		}
		st = &ScopeState{
			Tenant: snap.GetScope().GetTenant(), Level: snap.GetScope().GetLevel(), Target: snap.GetScope().GetTarget(),
			State: sgv1.HealthState_HEALTH_STATE_HEALTHY, Since: t,
		}
		e.states[key] = st
	}
	if t.Before(st.LastSeen) {
		return nil
	}
	st.LastSeen = t
	m := &machine{rs: rs, cs: cs, st: st, act: act, t: t, scope: snap.GetScope(), fired: fired}
	m.step(fired)
	m.shadows(shadow)
	if len(m.out) > 0 && scored(st.Level) {
		sc := rs.Weights.score(act)
		for _, d := range m.out {
			d.HealthScore = sc.Total
		}
	}
	if st.State == healthy {
		for id, last := range st.Alerted {
			if r := cs.byID[id]; r == nil || t.Sub(last) >= r.rule.alertCooldown() {
				delete(st.Alerted, id)
			}
		}
		if len(st.ShadowUntil) == 0 && len(st.Alerted) == 0 {
			delete(e.states, key)
		}
	}
	return m.out
}

func scored(l sgv1.ScopeLevel) bool {
	return l == sgv1.ScopeLevel_SCOPE_LEVEL_SENDER || l == sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN || l == sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT
}

func (rs *RuleSet) forTenant(tenant string) *compiledSet {
	if ts, ok := rs.tenants[tenant]; ok {
		return ts
	}
	return rs.base
}

// machine is one step of a scope's state machine.
type machine struct {
	rs    *RuleSet
	cs    *compiledSet
	st    *ScopeState
	act   *activation
	t     time.Time
	scope *sgv1.Scope
	fired []firing
	out   []*sgv1.Decision
}

func (m *machine) driver() *compiledRule { return m.cs.byID[m.st.Rule] }

// recovered reports whether the rule holding the scope has recovered: its
// recovery condition holds and it no longer fires. A rule the set no
// longer has counts as recovered.
func (m *machine) recovered() bool {
	d := m.driver()
	if d == nil {
		return true
	}
	for _, f := range m.fired {
		if f.r.rule.ID == d.rule.ID {
			return false
		}
	}
	return d.recovered(m.act)
}

// strongest is the firing rule with the strongest state; ties go to the
// higher priority (earlier in the list).
func strongest(fired []firing) *firing {
	var w *firing
	for i := range fired {
		if w == nil || rank(fired[i].r.rule.Enter) > rank(w.r.rule.Enter) {
			w = &fired[i]
		}
	}
	return w
}

// strongestBelow is the strongest firing rule whose state ranks below r.
func strongestBelow(fired []firing, r int) *firing {
	var lower []firing
	for _, f := range fired {
		if rank(f.r.rule.Enter) < r {
			lower = append(lower, f)
		}
	}
	return strongest(lower)
}

const (
	healthy    = sgv1.HealthState_HEALTH_STATE_HEALTHY
	warning    = sgv1.HealthState_HEALTH_STATE_WARNING
	risk       = sgv1.HealthState_HEALTH_STATE_RISK
	restricted = sgv1.HealthState_HEALTH_STATE_RESTRICTED
	paused     = sgv1.HealthState_HEALTH_STATE_PAUSED
	cooldown   = sgv1.HealthState_HEALTH_STATE_COOLDOWN
	ramping    = sgv1.HealthState_HEALTH_STATE_RAMP
)

func (m *machine) step(fired []firing) {
	st := m.st
	w := strongest(fired)
	emitted := map[string]bool{}
	switch st.State {
	case healthy, warning, risk, restricted:
		if w != nil && rank(w.r.rule.Enter) > rank(st.State) {
			m.enter(w)
			emitted[w.r.rule.ID] = true
			break
		}
		if st.State == healthy || m.t.Before(st.Until) {
			break
		}
		if m.recovered() {
			if w != nil && rank(w.r.rule.Enter) == rank(st.State) {
				// Another rule holds the same state: hand over to it.
				m.enter(w)
				emitted[w.r.rule.ID] = true
				break
			}
			if lw := strongestBelow(fired, rank(st.State)); lw != nil {
				m.enter(lw)
				emitted[lw.r.rule.ID] = true
			} else {
				m.release()
			}
			break
		}
		// Still bad: hold, and renew an enforcing state so its until does
		// not lapse at the actuator.
		d := m.driver()
		if st.State == restricted && d != nil {
			exp := m.holdExplanation(fired, d)
			m.setUntil(d, m.t)
			m.emitActions(d, exp, st.State, st.State, false, true)
			emitted[d.rule.ID] = true
		} else {
			st.Until = m.t.Add(m.dwell(d))
		}
	case paused:
		d := m.driver()
		if w != nil && rank(w.r.rule.Enter) >= rank(paused) && d == nil {
			m.enter(w)
			emitted[w.r.rule.ID] = true
			break
		}
		stillFiring := w != nil && rank(w.r.rule.Enter) >= rank(paused)
		if !stillFiring && m.recovered() {
			if !st.Until.IsZero() && m.t.Before(st.Until) {
				m.transition(cooldown, sgv1.Action_ACTION_PAUSE, st.Until, 0, 0, m.recoveryExplanation(d, "trigger cleared; cooldown holds the full stop until the minimum has passed"))
				break
			}
			m.afterCooldown(d)
			break
		}
		if !st.Until.IsZero() && !m.t.Before(st.Until) {
			// Minimum elapsed but the trigger persists: extend the pause.
			exp := m.holdExplanation(fired, d)
			until := m.t.Add(m.pauseDuration(d))
			m.transition(paused, sgv1.Action_ACTION_PAUSE, until, 0, 0, exp)
		}
	case cooldown:
		if w != nil && rank(w.r.rule.Enter) >= rank(paused) {
			m.enter(w)
			emitted[w.r.rule.ID] = true
			break
		}
		if m.t.Before(st.Until) {
			break
		}
		d := m.driver()
		if m.recovered() {
			m.afterCooldown(d)
			break
		}
		until := m.t.Add(m.pauseDuration(d))
		m.transition(paused, sgv1.Action_ACTION_PAUSE, until, 0, 0, m.recoveryExplanation(d, "cooldown ended but the recovery condition does not hold; pause extended"))
	case ramping:
		if w != nil && rank(w.r.rule.Enter) >= rank(paused) {
			m.enter(w)
			emitted[w.r.rule.ID] = true
			break
		}
		clean := m.recovered() && len(fired) == 0
		if !clean {
			st.CleanSince, st.StepAt = time.Time{}, m.t
			break
		}
		if st.CleanSince.IsZero() {
			st.CleanSince = m.t
		}
		d := m.driver()
		ramp := m.rs.Ramp
		switch {
		case st.RampRatio >= 1 && m.t.Sub(st.CleanSince) >= ramp.CleanFor:
			m.transition(healthy, sgv1.Action_ACTION_RESUME, time.Time{}, 0, 0, m.recoveryExplanation(d, fmt.Sprintf("clean for %s at full volume; ramp complete", ramp.CleanFor)))
			st.RampRatio, st.PriorVolume = 0, 0
		case st.RampRatio < 1 && m.t.Sub(st.StepAt) >= ramp.Every:
			st.RampRatio = math.Min(1, round2(st.RampRatio+ramp.Step))
			st.StepAt = m.t
			m.transition(ramping, sgv1.Action_ACTION_THROTTLE, time.Time{}, st.RampRatio, m.rampCap(), m.recoveryExplanation(d, fmt.Sprintf("clean for %s; ramp step to %.0f%% of prior volume", ramp.Every, st.RampRatio*100)))
		}
	}
	// Alerts of rules that did not drive a transition, under cooldown.
	for _, f := range fired {
		if emitted[f.r.rule.ID] || rank(f.r.rule.Enter) > rank(st.State) && st.State != cooldown && st.State != ramping {
			continue
		}
		last, ok := st.Alerted[f.r.rule.ID]
		if ok && m.t.Sub(last) < f.r.rule.alertCooldown() {
			continue
		}
		if m.emitActions(f.r, f.exp, st.State, st.State, true, false) {
			m.markAlert(f.r.rule.ID)
		}
	}
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func (m *machine) markAlert(id string) {
	if m.st.Alerted == nil {
		m.st.Alerted = map[string]time.Time{}
	}
	m.st.Alerted[id] = m.t
}

// afterCooldown moves a scope out of its full stop: into the ramp, or
// straight to healthy for rules without a ramp.
func (m *machine) afterCooldown(d *compiledRule) {
	if d != nil && d.rule.NoRamp {
		m.transition(healthy, resumeAction(d), time.Time{}, 0, 0, m.recoveryExplanation(d, "minimum stop elapsed and the recovery condition holds"))
		return
	}
	st := m.st
	st.RampRatio, st.StepAt, st.CleanSince = m.rs.Ramp.Start, m.t, m.t
	m.transition(ramping, sgv1.Action_ACTION_THROTTLE, time.Time{}, st.RampRatio, m.rampCap(), m.recoveryExplanation(d, fmt.Sprintf("minimum stop elapsed and the recovery condition holds; restart at %.0f%% of prior volume", st.RampRatio*100)))
}

func resumeAction(d *compiledRule) sgv1.Action {
	for _, a := range d.rule.Actions {
		if a.Type == sgv1.Action_ACTION_SUPPRESS {
			return sgv1.Action_ACTION_UNSUPPRESS
		}
	}
	return sgv1.Action_ACTION_RESUME
}

func (m *machine) rampCap() int64 {
	if m.st.PriorVolume <= 0 {
		return 0
	}
	return int64(math.Ceil(m.st.RampRatio * m.st.PriorVolume))
}

// release returns a scope to healthy from warning, risk or restricted.
func (m *machine) release() {
	d := m.driver()
	action := sgv1.Action_ACTION_ALERT
	if m.st.State == restricted {
		action = sgv1.Action_ACTION_RESUME
		if d != nil {
			action = resumeAction(d)
		}
	}
	m.transition(healthy, action, time.Time{}, 0, 0, m.recoveryExplanation(d, "recovery condition holds after the minimum dwell"))
}

func (m *machine) dwell(d *compiledRule) time.Duration {
	if d != nil {
		if x := d.rule.duration(); x > 0 {
			return x
		}
	}
	return m.rs.Ramp.Dwell
}

// pauseDuration is the minimum full stop of a pause by d: the action's
// duration (72 h when unset), lengthened to the rule's broad_duration (7
// days when unset) when broader symptoms hold.
func (m *machine) pauseDuration(d *compiledRule) time.Duration {
	dur := 72 * time.Hour
	if d == nil {
		return dur
	}
	if x := d.rule.duration(); x > 0 {
		dur = x
	}
	if d.broadHolds(m.act) {
		b := d.rule.BroadDuration
		if b == 0 {
			b = 7 * 24 * time.Hour
		}
		if b > dur {
			dur = b
		}
	}
	return dur
}

func (m *machine) setUntil(d *compiledRule, from time.Time) {
	switch {
	case d.rule.Enter == paused && d.rule.duration() == 0:
		m.st.Until = time.Time{} // open-ended: only recovery ends it
	case d.rule.Enter == paused:
		m.st.Until = from.Add(m.pauseDuration(d))
	default:
		m.st.Until = from.Add(m.dwell(d))
	}
}

// enter moves the scope into the state of the firing rule f and emits its
// actions.
func (m *machine) enter(f *firing) {
	st := m.st
	from := st.State
	d := f.r
	inIncident := from == paused || from == cooldown || from == ramping
	if !inIncident || st.PriorVolume == 0 {
		if base := d.rule.Actions[0].CapBase; base != "" {
			st.PriorVolume = m.act.value(base)
		}
	}
	st.State, st.Rule, st.Since = d.rule.Enter, d.rule.ID, m.t
	st.RampRatio, st.CleanSince = 0, time.Time{}
	m.setUntil(d, m.t)
	m.emitActions(d, f.exp, from, st.State, false, false)
	m.markAlert(d.rule.ID)
}

// emitActions emits the rule's actions (alerts only when alertsOnly) and
// reports whether anything was emitted.
//
// An alert action is not emitted beside an enforcing one: enforcement
// announces every enforcing decision with an alert command of its own
// (enforce.Commands), so emitting both would alert twice.
func (m *machine) emitActions(d *compiledRule, exp *sgv1.Explanation, from, to sgv1.HealthState, alertsOnly, enforcingOnly bool) bool {
	enforcing := false
	if !alertsOnly {
		for _, a := range d.rule.Actions {
			enforcing = enforcing || a.Type != sgv1.Action_ACTION_ALERT
		}
	}
	emitted := false
	for _, a := range d.rule.Actions {
		isAlert := a.Type == sgv1.Action_ACTION_ALERT
		if alertsOnly && !isAlert || enforcingOnly && isAlert || isAlert && enforcing {
			continue
		}
		dec := m.decision(d.rule.ID, d.rule.Severity, d.rule.Priority, a.Type, exp, from, to, d.shadow)
		if !isAlert && !m.st.Until.IsZero() && !d.shadow {
			dec.Until = timestamppb.New(m.st.Until)
		}
		if d.shadow && !isAlert {
			if dur := actionDuration(d, a); dur > 0 {
				dec.Until = timestamppb.New(m.t.Add(dur))
			}
		}
		if a.Type == sgv1.Action_ACTION_THROTTLE {
			dec.CapRatio = a.CapRatio
			dec.DailyCap = a.DailyCap
			if dec.DailyCap == 0 && a.CapRatio > 0 {
				if base := m.act.value(a.CapBase); base > 0 {
					dec.DailyCap = int64(math.Ceil(a.CapRatio * base))
				}
			}
		}
		m.out = append(m.out, dec)
		emitted = true
	}
	return emitted
}

func actionDuration(d *compiledRule, a Action) time.Duration {
	if a.Duration > 0 {
		return a.Duration
	}
	return d.rule.duration()
}

// transition records a state change caused by the engine itself (cooldown,
// ramp, resume, extension) and emits its decision.
func (m *machine) transition(to sgv1.HealthState, action sgv1.Action, until time.Time, capRatio float64, dailyCap int64, exp *sgv1.Explanation) {
	st := m.st
	from := st.State
	rule, sev, prio := st.Rule, sgv1.Severity_SEVERITY_INFO, 0
	if d := m.driver(); d != nil {
		sev, prio = d.rule.Severity, d.rule.Priority
	}
	if to != from {
		st.State, st.Since = to, m.t
	}
	st.Until = until
	dec := m.decision(rule, sev, prio, action, exp, from, to, false)
	if !until.IsZero() {
		dec.Until = timestamppb.New(until)
	}
	dec.CapRatio, dec.DailyCap = capRatio, dailyCap
	m.out = append(m.out, dec)
	if to == healthy {
		st.Rule, st.Until = "", time.Time{}
	}
}

func (m *machine) holdExplanation(fired []firing, d *compiledRule) *sgv1.Explanation {
	for _, f := range fired {
		if f.r == d {
			return f.exp
		}
	}
	return m.recoveryExplanation(d, "minimum dwell elapsed but the recovery condition does not hold; extended")
}

// recoveryExplanation explains an engine transition with the driving
// rule's metric as currently observed and its recovery condition.
func (m *machine) recoveryExplanation(d *compiledRule, why string) *sgv1.Explanation {
	if d == nil {
		return &sgv1.Explanation{
			Metric:                "",
			Condition:             "rule " + m.st.Rule + " is no longer in rule set " + m.rs.Version,
			ProviderConcentration: m.act.value("provider_concentration_7d"),
			Summary:               why,
			Window:                "latest",
		}
	}
	var ex explainC
	if len(d.branches) > 0 {
		ex = d.branches[0].explain
	}
	m.act.params = d.params
	exp := d.explanation(ex, m.act, d.recText)
	m.act.params = nil
	exp.Summary = fmt.Sprintf("%s %s: %s (%s = %.6g, recovery: %s)", LevelName(d.rule.Level), d.rule.ID, why, ex.metric, exp.Observed, d.recText)
	return exp
}

func (m *machine) decision(rule string, sev sgv1.Severity, prio int, action sgv1.Action, exp *sgv1.Explanation, from, to sgv1.HealthState, shadow bool) *sgv1.Decision {
	return &sgv1.Decision{
		DecisionId:     decisionID(m.scope, rule, m.t, action, to, shadow),
		Scope:          &sgv1.Scope{Tenant: m.scope.GetTenant(), Level: m.scope.GetLevel(), Target: m.scope.GetTarget()},
		Rule:           rule,
		RuleSetVersion: m.rs.Version,
		Severity:       sev,
		Action:         action,
		At:             timestamppb.New(m.t),
		Explanation:    exp,
		FromState:      from,
		ToState:        to,
		Shadow:         shadow,
		Priority:       int32(prio),
	}
}

// decisionID is deterministic in its inputs so that replays deduplicate.
func decisionID(scope *sgv1.Scope, rule string, at time.Time, action sgv1.Action, to sgv1.HealthState, shadow bool) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00%s\x00%d\x00%d\x00%d\x00%t", scope.GetTenant(), scope.GetLevel(), scope.GetTarget(), rule, at.UnixNano(), action, to, shadow)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// shadows emits the decisions shadow rules would have produced, at most
// once per rule per action duration (or alert cooldown).
func (m *machine) shadows(fired []firing) {
	for _, f := range fired {
		id := f.r.rule.ID
		if u, ok := m.st.ShadowUntil[id]; ok && m.t.Before(u) {
			continue
		}
		to := f.r.rule.Enter
		if rank(to) < rank(m.st.State) {
			to = m.st.State
		}
		m.emitActions(f.r, f.exp, m.st.State, to, false, false)
		hold := f.r.rule.duration()
		if c := f.r.rule.alertCooldown(); c > hold {
			hold = c
		}
		if m.st.ShadowUntil == nil {
			m.st.ShadowUntil = map[string]time.Time{}
		}
		m.st.ShadowUntil[id] = m.t.Add(hold)
	}
	for id, u := range m.st.ShadowUntil {
		if !m.t.Before(u) {
			if _, still := m.cs.byID[id]; !still || !firingHas(fired, id) {
				delete(m.st.ShadowUntil, id)
			}
		}
	}
}

func firingHas(fired []firing, id string) bool {
	for _, f := range fired {
		if f.r.rule.ID == id {
			return true
		}
	}
	return false
}
