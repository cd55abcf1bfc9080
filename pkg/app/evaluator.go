package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/rules"
	"github.com/sendguard/sendguard/pkg/stage/evaluator"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// EvaluatorOptions configures the rule-evaluator component.
type EvaluatorOptions struct {
	// RulesPath is a rule-set file, hot-reloaded; empty means the default
	// pack.
	RulesPath string
	// Reload is the rule-file poll interval (default 5s).
	Reload time.Duration
}

// pruneIdle is how long a scope's health state outlives its last snapshot
// when nothing holds it: longer than the 28-day windows and the alert
// cooldowns.
const pruneIdle = 35 * 24 * time.Hour

// AddEvaluator loads the rule set, restores the health states and adds the
// snapshots → decisions consumer (and the rule-file watcher).
func AddEvaluator(ctx context.Context, e *Env, opts EvaluatorOptions) (*rules.Engine, error) {
	rs := rules.Default()
	if opts.RulesPath != "" {
		var err error
		if rs, err = rules.Load(opts.RulesPath); err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
	}
	engine := rules.NewEngine(rs)
	if opts.RulesPath != "" {
		w := rules.NewWatcher(opts.RulesPath, engine, opts.Reload, e.Logger.Named("rules"))
		e.Group.AddContext("rules watcher", w.Run)
	}
	eval, err := evaluator.Instrument(engine, engineMetrics(engine), e.Registry)
	if err != nil {
		return nil, err
	}
	s, err := evaluator.New(eval, e.Producer, e.Registry)
	if err != nil {
		return nil, err
	}
	if err := s.Restore(ctx, e.Common.Kafka); err != nil {
		return nil, err
	}
	// Bound memory: forget scopes idle for longer than the longest window
	// that are healthy or held open-ended (Engine.Prune).
	e.Every("prune health states", 10*time.Minute, func(context.Context) error {
		cutoff := time.Now().Add(-pruneIdle)
		if n := engine.Prune(cutoff); n > 0 {
			e.Logger.Info("health states pruned", zap.Int("scopes", n))
		}
		s.Prune(cutoff)
		return nil
	})
	return engine, e.runner(GroupEvaluator, topics.Metrics, "rule-evaluator", s)
}

// engineMetrics reads the engine for the evaluator's metrics: rules per
// level (cached per rule set, since it is read once per snapshot), the
// running rule set, and the health states by level.
func engineMetrics(engine *rules.Engine) evaluator.MetricsOptions {
	type counted struct {
		set *rules.RuleSet
		n   map[sgv1.ScopeLevel]int
	}
	var cache atomic.Pointer[counted]
	count := func() *counted {
		rs := engine.RuleSet()
		if c := cache.Load(); c != nil && c.set == rs {
			return c
		}
		c := &counted{set: rs, n: map[sgv1.ScopeLevel]int{}}
		if rs != nil {
			for _, r := range rs.Rules {
				c.n[r.Level]++
			}
		}
		cache.Store(c)
		return c
	}
	return evaluator.MetricsOptions{
		RulesAt: func(l sgv1.ScopeLevel) int { return count().n[l] },
		RuleSet: func() evaluator.RuleSetInfo {
			c := count()
			info := evaluator.RuleSetInfo{RulesByLevel: c.n}
			if c.set != nil {
				info.Version, info.Hash = c.set.Version, c.set.Hash
				if len(info.Hash) > 12 {
					info.Hash = info.Hash[:12]
				}
			}
			return info
		},
		HealthCounts: func() map[evaluator.HealthKey]int { return healthCounts(engine) },
		HealthEvery:  10 * time.Second,
	}
}

// healthCounts counts the engine's scopes by level and health state.
func healthCounts(engine *rules.Engine) map[evaluator.HealthKey]int {
	out := map[evaluator.HealthKey]int{}
	engine.CountStates(func(l sgv1.ScopeLevel, st sgv1.HealthState, n int) {
		out[evaluator.HealthKey{Level: l, State: st}] += n
	})
	return out
}
