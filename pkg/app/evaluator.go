package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

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
	}
}

// healthCounts counts the engine's scopes by level and health state.
//
// It goes through Export (a copy of every state, JSON), which costs
// O(scopes) allocations under the engine's lock; rules.Engine has no
// counting accessor yet. The collector calls it at most every 10 s.
func healthCounts(engine *rules.Engine) map[evaluator.HealthKey]int {
	data, err := engine.Export()
	if err != nil {
		return nil
	}
	var doc struct {
		Scopes []struct {
			Level sgv1.ScopeLevel  `json:"level"`
			State sgv1.HealthState `json:"state"`
		} `json:"scopes"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil
	}
	out := map[evaluator.HealthKey]int{}
	for _, s := range doc.Scopes {
		out[evaluator.HealthKey{Level: s.Level, State: s.State}]++
	}
	return out
}
