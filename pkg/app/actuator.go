package app

import (
	"context"
	"time"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/topics"
)

// AddActuator restores the enforcement state and adds the decisions and
// events consumers, PermissionService and ControlService (manual pause,
// resume, throttle, suppress, unsuppress and status; tenant from the API
// key) on the env's gRPC server, and the periodic sweep.
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
