package app

import (
	"context"
	"fmt"
	"time"

	"github.com/sendguard/sendguard/pkg/rules"
	"github.com/sendguard/sendguard/pkg/stage/evaluator"
	"github.com/sendguard/sendguard/pkg/topics"
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
	s, err := evaluator.New(engine, e.Producer, e.Registry)
	if err != nil {
		return nil, err
	}
	if err := s.Restore(ctx, e.Common.Kafka); err != nil {
		return nil, err
	}
	return engine, e.runner(GroupEvaluator, topics.Metrics, "rule-evaluator", s)
}
