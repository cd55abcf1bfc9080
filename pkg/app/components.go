package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/rules"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/stage/evaluator"
	"github.com/sendguard/sendguard/pkg/stage/ingest"
	"github.com/sendguard/sendguard/pkg/stage/normalizer"
	"github.com/sendguard/sendguard/pkg/stage/windows"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Consumer group ids of the stages.
const (
	GroupNormalizer       = "sendguard-normalizer"
	GroupWindows          = "sendguard-windowed-metrics"
	GroupEvaluator        = "sendguard-rule-evaluator"
	GroupActuatorDecision = "sendguard-actuator-decisions"
	GroupActuatorEvents   = "sendguard-actuator-events"
)

func (e *Env) runner(group, topic, stage string, h kafka.Handler) error {
	r, err := kafka.NewRunner(kafka.RunnerConfig{
		Brokers: e.Common.Kafka, GroupID: group, Topic: topic, Stage: stage, DLQTopic: topics.DLQ,
	}, h, e.Producer, e.Logger.Named(stage), e.Registry)
	if err != nil {
		return fmt.Errorf("%s runner: %w", stage, err)
	}
	e.Group.AddContext(stage+" consumer", r.Run)
	return nil
}

// IngestOptions configures the ingest component.
type IngestOptions struct {
	Config ingest.Config
	// Mux receives the ingest routes (the devstack passes the admin mux so
	// one HTTP address serves everything).
	Mux *http.ServeMux
}

// AddIngest adds HTTP routes and IngestService. Provider payloads are
// parsed at the edge, so a payload of which nothing parses gets a 400
// instead of a dead letter; a batch with some bad items is accepted (the
// normalizer publishes the good ones and dead-letters the envelope), so an
// ESP does not retry a whole batch forever for one bad item.
func AddIngest(e *Env, opts IngestOptions) (*ingest.Stage, error) {
	nopts := normalize.Options{}
	validate := func(env *sgv1.RawEnvelope) error {
		events, err := normalize.Parse(env, nopts)
		if err != nil && len(events) == 0 {
			return err
		}
		return nil
	}
	s, err := ingest.New(opts.Config, e.Keys, e.Producer, validate, e.Logger.Named("ingest"), e.Registry)
	if err != nil {
		return nil, err
	}
	s.Routes(opts.Mux)
	s.RegisterGRPC(e.GRPCServer())
	return s, nil
}

// AddNormalizer adds the raw → events consumer.
func AddNormalizer(e *Env, opts normalize.Options) error {
	s, err := normalizer.New(e.Producer, opts, e.Registry)
	if err != nil {
		return err
	}
	return e.runner(GroupNormalizer, topics.Raw, "normalizer", s)
}

// WindowsOptions configures the windowed-metrics component.
type WindowsOptions struct {
	Window window.Config
	// Tick re-publishes every snapshot this often (event-time windows
	// slide, cooldowns end) — default 30s.
	Tick time.Duration
}

// AddWindows restores window state and adds the events → snapshots
// consumer, the periodic tick and, when ClickHouse is on, the events writer.
func AddWindows(ctx context.Context, e *Env, opts WindowsOptions) (*windows.Stage, error) {
	var sink windows.EventSink
	if e.ClickHouse != nil {
		w, err := clickhouse.NewBatchWriter(e.ClickHouse, clickhouse.EventsTable, clickhouse.EventRow, clickhouse.WriterConfig{Registerer: e.Registry})
		if err != nil {
			return nil, fmt.Errorf("events writer: %w", err)
		}
		e.OnClose(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := w.Close(cctx); err != nil {
				e.Logger.Warn("close events writer", zap.Error(err))
			}
		})
		sink = w
	}
	s, err := windows.New(opts.Window, e.Producer, sink, e.Logger.Named("windows"), e.Registry)
	if err != nil {
		return nil, err
	}
	if err := s.Restore(ctx, e.Common.Kafka); err != nil {
		return nil, err
	}
	if err := e.runner(GroupWindows, topics.Events, "windowed-metrics", s); err != nil {
		return nil, err
	}
	tick := opts.Tick
	if tick <= 0 {
		tick = 30 * time.Second
	}
	e.Group.AddContext("window tick", func(ctx context.Context) error {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
					e.Logger.Warn("window tick", zap.Error(err))
				}
			}
		}
	})
	return s, nil
}

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

// AddActuator restores the enforcement state and adds the decisions and
// events consumers, PermissionService and the periodic sweep.
func AddActuator(ctx context.Context, e *Env, cfg enforce.Config) (*actuator.Stage, error) {
	s, err := actuator.New(enforce.New(cfg), e.Producer, e.Keys, e.Logger.Named("actuator"), e.Registry)
	if err != nil {
		return nil, err
	}
	if e.ClickHouse != nil {
		a, err := newAudit(e)
		if err != nil {
			return nil, err
		}
		s.SetAudit(a)
	}
	if err := s.Restore(ctx, e.Common.Kafka); err != nil {
		return nil, err
	}
	if err := e.runner(GroupActuatorDecision, topics.Decisions, "actuator", s.DecisionsHandler()); err != nil {
		return nil, err
	}
	if err := e.runner(GroupActuatorEvents, topics.Events, "actuator-events", s.EventsHandler()); err != nil {
		return nil, err
	}
	s.RegisterGRPC(e.GRPCServer())
	e.Group.AddContext("enforcement sweep", func(ctx context.Context) error {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-t.C:
				s.State().Sweep(now)
			}
		}
	})
	return s, nil
}
