// Package rules is Sendguard's rule language and rule engine.
//
// A rule set is a versioned YAML document (see default.yaml, the default
// pack, for the full language). Each rule watches one scope level, has a CEL
// condition over the window metrics of pkg/metrics (every catalogue name is a
// double variable), a minimum sample, a severity, the health state it drives
// the scope into, actions, a recovery condition and a priority. Rule sets are
// parsed with line numbers so that every diagnostic points into the file.
//
// The Engine evaluates WindowSnapshots against a rule set and runs a health
// state machine per scope (healthy → warning → risk → restricted/paused →
// cooldown → ramp → healthy) with hysteresis and minimum dwell times. It uses
// event time only (the snapshot's as_of), so a replay of history decides what
// live processing would have. The package does no I/O except Load and the
// Watcher, which read one file.
package rules

import (
	"fmt"
	"strings"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// RuleSet is a parsed, compiled and linted rule set. It is immutable after
// Parse and safe for concurrent use by many Engines.
type RuleSet struct {
	// Version is the rule set's version string, copied into every decision.
	Version string
	// Name is the file name the set was parsed from.
	Name string
	// Hash is the hex SHA-256 of the source bytes.
	Hash string
	// Ramp configures the restart ramp and the default dwell times.
	Ramp Ramp
	// BroadSymptoms is the default CEL condition for "broader symptoms",
	// which lengthens a pause to the rule's broad_duration.
	BroadSymptoms string
	// Weights are the health score weights (DefaultWeights when omitted).
	Weights Weights
	// Rules in file order.
	Rules []*Rule
	// Tenants holds per-tenant overrides by tenant id.
	Tenants map[string]*Overrides

	base    *compiledSet
	tenants map[string]*compiledSet
}

// Watches reports whether a rule of the set watches level (for any tenant:
// overrides change rules, they add none). A snapshot of a level no rule
// watches produces no decision, so callers may skip building it.
func (rs *RuleSet) Watches(level sgv1.ScopeLevel) bool {
	return rs != nil && rs.base != nil && len(rs.base.byLevel[level]) > 0
}

// Ramp configures the restart after a pause (seed 002, "Phase 4: Restart
// safely") and the dwell of alert states.
type Ramp struct {
	// Start is the cap ratio the ramp begins at (0.25).
	Start float64
	// Step is added to the cap ratio every Every while clean (0.10–0.20).
	Step float64
	// Every is the step interval (48h).
	Every time.Duration
	// CleanFor is how long the scope must stay clean at full volume before
	// it returns to healthy (7 days).
	CleanFor time.Duration
	// Dwell is the minimum time in warning, risk and restricted states
	// whose rule gives no duration.
	Dwell time.Duration
}

// DefaultRamp is used for every field a rule set leaves out.
var DefaultRamp = Ramp{Start: 0.25, Step: 0.10, Every: 48 * time.Hour, CleanFor: 7 * 24 * time.Hour, Dwell: 24 * time.Hour}

// Rule is one rule as written in the rule set.
type Rule struct {
	ID        string
	Level     sgv1.ScopeLevel
	Condition string
	MinSample *MinSample
	Severity  sgv1.Severity
	// Enter is the health state the rule drives its scope into when it
	// fires. Defaults: pause/suppress → paused, throttle → restricted,
	// alert → risk when critical, else warning.
	Enter   sgv1.HealthState
	Actions []Action
	// Recovery must hold before the scope leaves the state the rule put it
	// in. Defaults to the negation of Condition.
	Recovery string
	// Priority orders rules; lower runs first and wins ties.
	Priority int
	// Shadow rules decide and audit but are never enforced.
	Shadow bool
	// Sources cite the seed documents the rule reproduces.
	Sources []Source
	// Explain names what a decision's explanation reports; derived from
	// the condition when omitted.
	Explain *Explain
	// Params are named doubles the condition may use; tenants override them.
	Params map[string]float64
	// Broad overrides the rule set's BroadSymptoms condition.
	Broad string
	// BroadDuration replaces the pause duration when Broad holds at entry.
	BroadDuration time.Duration
	// NoRamp sends the scope straight back to healthy after a pause instead
	// of through the ramp (accounts, recipients).
	NoRamp bool
	// Line is the rule's line in the file.
	Line int

	pos map[string]pos
}

// MinSample gates a rule on a sample size: below Min the rule does not
// fire, or, when Fallback is set, the fallback condition decides.
type MinSample struct {
	Metric string
	Min    float64
	// Fallback is "" (do not fire), "two_day" (the 48h window) or
	// "wilson" (the Wilson lower bound of the rates).
	Fallback string
	// Condition is the fallback condition; derived from the rule's
	// condition by rewriting metric names when omitted.
	Condition string
}

// Action is one thing a rule does when it fires.
type Action struct {
	Type sgv1.Action
	// Duration is how long the action holds (minimum dwell); 0 is
	// open-ended for pause and suppress.
	Duration time.Duration
	// Cooldown is the minimum interval between two alerts of the rule.
	Cooldown time.Duration
	// CapRatio is the fraction of prior volume a throttle allows.
	CapRatio float64
	// DailyCap is an absolute daily cap for a throttle.
	DailyCap int64
	// CapBase is the metric that measures prior volume (sent_avg_7d).
	CapBase string
}

// Source cites a seed document.
type Source struct {
	Seed  string
	Quote string
}

func (s Source) String() string {
	if s.Quote == "" {
		return s.Seed
	}
	return fmt.Sprintf("%s: %q", s.Seed, s.Quote)
}

// Explain says which metric, comparator, threshold, window and sample a
// decision's explanation reports. Threshold is a CEL expression (a number,
// a param name or e.g. "2.0 * unsubscribe_rate_7d"), evaluated on the
// snapshot. Without it the engine derives all of them from the first
// "metric <op> threshold" comparison of the condition; a condition that is
// a disjunction (a || b) is explained by the disjunct that fired, and the
// rule's Explain applies only to disjuncts that have no such comparison.
// Window defaults to the metric's window, Sample to the rate's denominator
// over the same window (complaint_rate_24h → delivered_24h).
type Explain struct {
	Metric     string
	Comparator string
	Threshold  string
	Window     string
	Sample     string
}

// Overrides are one tenant's changes to a rule set.
type Overrides struct {
	// Disable lists rule ids the tenant does not run.
	Disable []string
	// Shadow lists rule ids that run in shadow mode for the tenant.
	Shadow []string
	// Rules holds per-rule changes by rule id.
	Rules map[string]*RuleOverride
	Line  int
}

// RuleOverride changes one rule for one tenant. Empty fields keep the
// rule's own value.
type RuleOverride struct {
	Params    map[string]float64
	Condition string
	Recovery  string
	Shadow    *bool
	Line      int
	pos       map[string]pos
}

type pos struct {
	line, col int
	block     bool
	quoted    bool
}

var levelNames = map[string]sgv1.ScopeLevel{
	"tenant":          sgv1.ScopeLevel_SCOPE_LEVEL_TENANT,
	"domain":          sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN,
	"sender":          sgv1.ScopeLevel_SCOPE_LEVEL_SENDER,
	"campaign":        sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN,
	"variant":         sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT,
	"provider":        sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER,
	"account":         sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT,
	"recipient":       sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT,
	"domain_provider": sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER,
	"domain×provider": sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER,
	"segment":         sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT,
	"list_source":     sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE,
}

var actionNames = map[string]sgv1.Action{
	"pause":    sgv1.Action_ACTION_PAUSE,
	"throttle": sgv1.Action_ACTION_THROTTLE,
	"suppress": sgv1.Action_ACTION_SUPPRESS,
	"alert":    sgv1.Action_ACTION_ALERT,
}

var severityNames = map[string]sgv1.Severity{
	"info":     sgv1.Severity_SEVERITY_INFO,
	"warning":  sgv1.Severity_SEVERITY_WARNING,
	"critical": sgv1.Severity_SEVERITY_CRITICAL,
}

var enterNames = map[string]sgv1.HealthState{
	"warning":    sgv1.HealthState_HEALTH_STATE_WARNING,
	"risk":       sgv1.HealthState_HEALTH_STATE_RISK,
	"restricted": sgv1.HealthState_HEALTH_STATE_RESTRICTED,
	"paused":     sgv1.HealthState_HEALTH_STATE_PAUSED,
}

// LevelName is the rule-language word for a scope level ("domain_provider"
// for SCOPE_LEVEL_DOMAIN_PROVIDER).
func LevelName(l sgv1.ScopeLevel) string {
	return strings.ToLower(strings.TrimPrefix(l.String(), "SCOPE_LEVEL_"))
}

// StateName is the lower-case word for a health state ("cooldown").
func StateName(s sgv1.HealthState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "HEALTH_STATE_"))
}

// rank orders states by how much they restrict sending. Cooldown is a
// full stop like paused; ramp restricts like a throttle.
func rank(s sgv1.HealthState) int {
	switch s {
	case sgv1.HealthState_HEALTH_STATE_WARNING:
		return 1
	case sgv1.HealthState_HEALTH_STATE_RISK:
		return 2
	case sgv1.HealthState_HEALTH_STATE_RESTRICTED, sgv1.HealthState_HEALTH_STATE_RAMP:
		return 3
	case sgv1.HealthState_HEALTH_STATE_PAUSED, sgv1.HealthState_HEALTH_STATE_COOLDOWN:
		return 4
	default:
		return 0
	}
}

// enforces reports whether the rule has an action that restricts sending.
func (r *Rule) enforces() bool {
	for _, a := range r.Actions {
		if a.Type != sgv1.Action_ACTION_ALERT {
			return true
		}
	}
	return false
}

func (r *Rule) defaultEnter() sgv1.HealthState {
	st := sgv1.HealthState_HEALTH_STATE_WARNING
	if r.Severity == sgv1.Severity_SEVERITY_CRITICAL {
		st = sgv1.HealthState_HEALTH_STATE_RISK
	}
	for _, a := range r.Actions {
		switch a.Type {
		case sgv1.Action_ACTION_PAUSE, sgv1.Action_ACTION_SUPPRESS:
			return sgv1.HealthState_HEALTH_STATE_PAUSED
		case sgv1.Action_ACTION_THROTTLE:
			st = sgv1.HealthState_HEALTH_STATE_RESTRICTED
		}
	}
	return st
}

// duration is the dwell of the state the rule drives: the first non-alert
// action's duration.
func (r *Rule) duration() time.Duration {
	for _, a := range r.Actions {
		if a.Type != sgv1.Action_ACTION_ALERT {
			return a.Duration
		}
	}
	return 0
}

func (r *Rule) alertCooldown() time.Duration {
	for _, a := range r.Actions {
		if a.Type == sgv1.Action_ACTION_ALERT && a.Cooldown > 0 {
			return a.Cooldown
		}
	}
	return 24 * time.Hour
}

// Diagnostic is one finding of Parse or Lint, positioned in the file.
type Diagnostic struct {
	File     string
	Line     int
	Column   int
	Severity DiagSeverity
	// Rule is the rule id the finding is about, when there is one.
	Rule    string
	Message string
}

// DiagSeverity grades a Diagnostic. Errors make a rule set unusable.
type DiagSeverity int

const (
	// SeverityError makes Parse fail and the Watcher refuse the file.
	SeverityError DiagSeverity = iota
	// SeverityWarning is reported but does not block the rule set.
	SeverityWarning
)

func (s DiagSeverity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// String formats the diagnostic as file:line:col: severity: [rule] message.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	fmt.Fprintf(&b, ":%d", d.Line)
	if d.Column > 0 {
		fmt.Fprintf(&b, ":%d", d.Column)
	}
	fmt.Fprintf(&b, ": %s: ", d.Severity)
	if d.Rule != "" {
		fmt.Fprintf(&b, "rule %s: ", d.Rule)
	}
	b.WriteString(d.Message)
	return b.String()
}

// InvalidError is returned by Parse and Load when a rule set has
// error-severity diagnostics.
type InvalidError struct {
	Diagnostics []Diagnostic
}

func (e *InvalidError) Error() string {
	var errs []string
	for _, d := range e.Diagnostics {
		if d.Severity == SeverityError {
			errs = append(errs, d.String())
		}
	}
	if len(errs) == 1 {
		return "invalid rule set: " + errs[0]
	}
	return fmt.Sprintf("invalid rule set: %d errors; first: %s", len(errs), errs[0])
}
