// Command windowed-metrics computes event-time windows per scope, publishes
// snapshots and writes events to ClickHouse.
package main

import (
	"context"
	"os"
	"time"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/service"
)

func main() {
	var opts app.WindowsOptions
	app.Main(app.Spec{
		Name: "windowed-metrics",
		Bind: func(f *service.Flags) {
			f.Duration(&opts.Window.Lateness, "lateness", "SENDGUARD_LATENESS", time.Hour, "how late an event may arrive and still count")
			f.Duration(&opts.Tick, "snapshot-tick", "SENDGUARD_SNAPSHOT_TICK", 30*time.Second, "how often every snapshot is re-published")
			f.Duration(&opts.SnapshotEvery, "snapshot-every", "SENDGUARD_SNAPSHOT_EVERY", 250*time.Millisecond, "at most how often a changed scope's snapshot is published")
		},
		Setup: func(ctx context.Context, e *app.Env) error {
			_, err := app.AddWindows(ctx, e, opts)
			return err
		},
	}, os.Args[1:], os.Getenv)
}
