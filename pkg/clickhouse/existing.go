package clickhouse

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ExistingEventsSQL looks up which of a tenant's event ids are stored; its
// arguments are the tenant and the ids (an array). The IN subquery lets the
// primary key (tenant, event_id) prune granules on 18.16 and current
// releases alike.
const ExistingEventsSQL = "SELECT DISTINCT event_id FROM events WHERE tenant = ? AND event_id IN (SELECT arrayJoin(?))"

// EventChecker answers which events are already in the events table. The
// windowed-metrics admission step asks it, after a restart, about the events
// a crashed run may have inserted without committing, so a replayed batch
// is not inserted (and rolled up) twice.
type EventChecker struct {
	conn driver.Conn
	// Chunk bounds the ids per query (default 5000).
	Chunk int
}

// NewEventChecker returns a checker over conn (opened on the Sendguard
// database).
func NewEventChecker(conn driver.Conn) *EventChecker { return &EventChecker{conn: conn, Chunk: 5000} }

// Existing returns the subset of ids stored for tenant.
func (c *EventChecker) Existing(ctx context.Context, tenant string, ids []string) (map[string]bool, error) {
	out := make(map[string]bool)
	chunk := c.Chunk
	if chunk <= 0 {
		chunk = 5000
	}
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		rows, err := c.conn.Query(ctx, ExistingEventsSQL, tenant, ids[:n])
		if err != nil {
			return nil, fmt.Errorf("look up events: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("look up events: %w", err)
			}
			out[id] = true
		}
		err = rows.Err()
		_ = rows.Close()
		if err != nil {
			return nil, fmt.Errorf("look up events: %w", err)
		}
		ids = ids[n:]
	}
	return out, nil
}
