package app

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/adapter"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/topics"
)

// AddActuator loads the enforcement state and adds the decisions and
// events consumers, PermissionService and ControlService (manual pause,
// resume, throttle, suppress, unsuppress and status; tenant from the API
// key) on the env's gRPC server.
//
// The state is that of a pkg/adapter follower: it loads the compacted
// sg.control-state.v1 and then follows sg.control.v1, so every instance
// applies the commands of every other instance (its own are no-ops, by
// command id) within the follower's fetch wait. Any instance can therefore
// answer Check; throttle capacity is split between instances by
// enforce.Config.Instances/Index (see pkg/enforce).
func AddActuator(ctx context.Context, e *Env, cfg enforce.Config) (*actuator.Stage, error) {
	follower, err := adapter.New(adapter.Config{
		Brokers: e.Common.Kafka, Enforce: &cfg,
		Logger: e.Logger.Named("control-follower"),
	})
	if err != nil {
		return nil, fmt.Errorf("control follower: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := follower.Start(sctx); err != nil {
		return nil, fmt.Errorf("load enforcement state: %w", err)
	}
	e.OnClose(func() {
		if err := follower.Close(); err != nil {
			e.Logger.Warn("control follower stopped", zap.Error(err))
		}
	})
	s, err := actuator.New(follower.State(), e.Producer, e.Keys, e.Logger.Named("actuator"), e.Registry)
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
	if err := e.runner(GroupActuatorDecision, topics.Decisions, "actuator", s.DecisionsHandler()); err != nil {
		return nil, err
	}
	if err := e.eventRunners(GroupActuatorEvents, "actuator-events", s.EventsHandler); err != nil {
		return nil, err
	}
	s.RegisterGRPC(e.GRPCServer())
	return s, nil
}
