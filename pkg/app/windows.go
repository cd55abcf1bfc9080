package app

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/stage/windows"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
)

// GroupWindowsAggregate is the consumer group of the aggregating step of
// windowed-metrics (sg.scoped-events.v1); the admission step keeps
// GroupWindows on sg.events.v1.
const GroupWindowsAggregate = "sendguard-windowed-metrics-aggregate"

// WindowsOptions configures the windowed-metrics component.
type WindowsOptions struct {
	Window window.Config
	// Tick re-publishes every snapshot this often (event-time windows
	// slide, cooldowns end) — default 30s.
	Tick time.Duration
	// SnapshotEvery bounds how often a changed scope's snapshot is
	// published (windows.DefaultSnapshotEvery when zero).
	SnapshotEvery time.Duration
}

// AddWindows adds the two steps of windowed-metrics: admission
// (sg.events.v1 → sg.scoped-events.v1, ClickHouse events) and aggregation
// (sg.scoped-events.v1 → sg.metrics.v1), plus the periodic tick. State is
// restored per partition when a step first receives it (see
// pkg/stage/windows), so any number of instances may run.
func AddWindows(ctx context.Context, e *Env, opts WindowsOptions) (*windows.Stage, error) {
	var (
		sink    windows.EventSink
		checker windows.ExistingChecker
	)
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
		sink, checker = w, clickhouse.NewEventChecker(e.ClickHouse)
	}
	read := windows.BrokerStateReader(e.Common.Kafka)
	newAdmit := func() kafka.Handler {
		return windows.NewAdmit(window.AdmitConfig{Lateness: opts.Window.Lateness, MaxFuture: opts.Window.MaxFuture},
			e.Producer, sink, checker, read, windows.BrokerPartitions(e.Common.Kafka), e.Logger.Named("admit"))
	}
	if err := e.eventRunners(GroupWindows, "windowed-metrics", newAdmit); err != nil {
		return nil, err
	}
	s, err := windows.New(opts.Window, e.Producer, read, e.Logger.Named("windows"), e.Registry, opts.SnapshotEvery)
	if err != nil {
		return nil, err
	}
	const stage = "windowed-metrics-aggregate"
	r, err := kafka.NewRunner(kafka.RunnerConfig{
		Brokers: e.Common.Kafka, GroupID: GroupWindowsAggregate, Topic: topics.ScopedEvents, Stage: stage,
		DLQTopic: topics.DLQ,
		// A flush checkpoints every scope changed since the last one, and
		// snapshots reach the rules through PublishSnapshots on their own
		// clock, so this step commits once a second rather than every
		// 100 ms: ten times fewer checkpoints (they were 2.5 % of the CPU
		// at 50k events/s) for at most a second more to replay, exactly,
		// after a crash.
		CommitInterval:   AggregateCommitInterval,
		CaughtUpInterval: -1,
	}, s, e.Producer, e.Logger.Named(stage), e.Registry)
	if err != nil {
		return nil, fmt.Errorf("%s runner: %w", stage, err)
	}
	e.Group.AddContext(stage+" consumer", r.Run)
	snapEvery := opts.SnapshotEvery
	if snapEvery <= 0 {
		snapEvery = windows.DefaultSnapshotEvery
	}
	// Urgent changes go out at every call, the others every snapEvery.
	e.Every("window snapshots", min(snapEvery, windows.UrgentSnapshotEvery), s.PublishSnapshots)
	tick := opts.Tick
	if tick <= 0 {
		tick = 30 * time.Second
	}
	e.Every("window tick", tick, s.Tick)
	return s, nil
}

// AggregateCommitInterval is how often the aggregating step of
// windowed-metrics flushes (checkpoints) and commits.
const AggregateCommitInterval = time.Second
