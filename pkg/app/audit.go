package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// chAudit writes decisions and commands to the ClickHouse audit tables.
type chAudit struct {
	decisions *clickhouse.BatchWriter[*sgv1.Decision]
	commands  *clickhouse.BatchWriter[*sgv1.ControlCommand]
}

var _ actuator.Audit = (*chAudit)(nil)

func newAudit(e *Env) (*chAudit, error) {
	wcfg := clickhouse.WriterConfig{Registerer: e.Registry, MaxRows: 5000, FlushInterval: time.Second}
	d, err := clickhouse.NewBatchWriter(e.ClickHouse, clickhouse.DecisionsTable, clickhouse.DecisionRow, wcfg)
	if err != nil {
		return nil, fmt.Errorf("decisions writer: %w", err)
	}
	c, err := clickhouse.NewBatchWriter(e.ClickHouse, clickhouse.CommandsTable, clickhouse.CommandRow, wcfg)
	if err != nil {
		return nil, fmt.Errorf("commands writer: %w", err)
	}
	a := &chAudit{decisions: d, commands: c}
	e.OnClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := errors.Join(d.Close(ctx), c.Close(ctx)); err != nil {
			e.Logger.Warn("close audit writers", zap.Error(err))
		}
	})
	return a, nil
}

func (a *chAudit) Decision(ctx context.Context, d *sgv1.Decision) error {
	return a.decisions.Append(ctx, d)
}

func (a *chAudit) Command(ctx context.Context, c *sgv1.ControlCommand) error {
	return a.commands.Append(ctx, c)
}

func (a *chAudit) Flush(ctx context.Context) error {
	return errors.Join(a.decisions.Flush(ctx), a.commands.Flush(ctx))
}
