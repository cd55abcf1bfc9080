package app

import (
	"fmt"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
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

// eventRunners adds Common.EventConsumers runners of group over
// sg.events.v1, each with its own handler from newHandler (handlers keep
// per-partition state; the group gives each its partitions).
func (e *Env) eventRunners(group, stage string, newHandler func() kafka.Handler) error {
	for range max(e.Common.EventConsumers, 1) {
		if err := e.runner(group, topics.Events, stage, newHandler()); err != nil {
			return err
		}
	}
	return nil
}
