package app

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/stage/windows"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
)

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
