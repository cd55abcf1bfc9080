// Package clickhousetest provides a fake driver.Conn that records what it is
// asked to run, for unit tests of code that writes to ClickHouse, and Server,
// which hands integration tests a fresh database on the real test server.
package clickhousetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// Query is one Exec, Query, QueryRow or PrepareBatch call.
type Query struct {
	Method string
	SQL    string
	Args   []any
}

// Insert is one batch that was sent successfully.
type Insert struct {
	SQL  string
	Rows [][]any
}

// Conn is a fake driver.Conn. It records every statement and every sent
// batch; hooks decide what reads return and which calls fail. Methods it
// does not implement panic (through the embedded nil interface), so a test
// notices when code under test starts using them. Safe for concurrent use.
type Conn struct {
	driver.Conn

	// Version is what ServerVersion returns; default 18.16.1.
	Version proto.Version
	// OnQuery answers Query and QueryRow: rows of values whose
	// types must be assignable (or convertible) to the Scan destinations.
	// Default: no rows.
	OnQuery func(query string, args []any) ([][]any, error)
	// OnExec decides Exec's error; default nil.
	OnExec func(query string, args []any) error
	// OnAppend decides a batch Append's error for a row; default nil.
	OnAppend func(query string, row []any) error
	// OnSend decides a batch Send's error; default nil. A failed batch is
	// not recorded as an Insert.
	OnSend func(query string, rows [][]any) error

	mu      sync.Mutex
	queries []Query
	inserts []Insert
	closed  bool
}

var _ driver.Conn = (*Conn)(nil)

// Queries returns the calls recorded so far, in order.
func (c *Conn) Queries() []Query {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Query(nil), c.queries...)
}

// Inserts returns the successfully sent batches, in order.
func (c *Conn) Inserts() []Insert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Insert(nil), c.inserts...)
}

// InsertedRows returns the rows of every sent batch whose INSERT names
// table (as "INSERT INTO <table> " or "INSERT INTO `db`.<table> ").
func (c *Conn) InsertedRows(table string) [][]any {
	var out [][]any
	for _, in := range c.Inserts() {
		if insertTable(in.SQL) == table {
			out = append(out, in.Rows...)
		}
	}
	return out
}

func insertTable(sql string) string {
	rest, ok := strings.CutPrefix(sql, "INSERT INTO ")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, " ")
	if i := strings.LastIndex(name, "."); i >= 0 {
		name = name[i+1:]
	}
	return strings.Trim(name, "`")
}

// Closed reports whether Close was called.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *Conn) record(method, query string, args []any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries = append(c.queries, Query{Method: method, SQL: query, Args: args})
}

// ServerVersion returns Version.
func (c *Conn) ServerVersion() (*driver.ServerVersion, error) {
	v := c.Version
	if v == (proto.Version{}) {
		v = proto.Version{Major: 18, Minor: 16, Patch: 1}
	}
	return &driver.ServerVersion{Name: "ClickHouse", DisplayName: "fake", Version: v}, nil
}

// Ping succeeds unless the context is done.
func (c *Conn) Ping(ctx context.Context) error { return ctx.Err() }

// Close marks the connection closed.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Exec records the statement and returns OnExec's verdict.
func (c *Conn) Exec(ctx context.Context, query string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.record("Exec", query, args)
	if c.OnExec != nil {
		return c.OnExec(query, args)
	}
	return nil
}

func (c *Conn) answer(query string, args []any) ([][]any, error) {
	if c.OnQuery == nil {
		return nil, nil
	}
	return c.OnQuery(query, args)
}

// Query records the query and returns OnQuery's rows.
func (c *Conn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.record("Query", query, args)
	rows, err := c.answer(query, args)
	if err != nil {
		return nil, err
	}
	return &Rows{values: rows, pos: -1}, nil
}

// QueryRow records the query and returns the first of OnQuery's rows
// (sql.ErrNoRows when there is none).
func (c *Conn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	if err := ctx.Err(); err != nil {
		return &row{err: err}
	}
	c.record("QueryRow", query, args)
	rows, err := c.answer(query, args)
	if err != nil {
		return &row{err: err}
	}
	if len(rows) == 0 {
		return &row{err: sql.ErrNoRows}
	}
	return &row{values: rows[0]}
}

// PrepareBatch records the statement and returns a Batch that buffers rows
// until Send.
func (c *Conn) PrepareBatch(ctx context.Context, query string, _ ...driver.PrepareBatchOption) (driver.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.record("PrepareBatch", query, nil)
	return &Batch{conn: c, ctx: ctx, query: query}, nil
}

// Batch is the fake driver.Batch of Conn.
type Batch struct {
	driver.Batch

	conn  *Conn
	ctx   context.Context
	query string
	rows  [][]any
	err   error
	sent  bool
}

// Append buffers a copy of the row unless OnAppend refuses it; a refused
// row invalidates the batch, as in the real driver.
func (b *Batch) Append(v ...any) error {
	if b.sent {
		return errors.New("clickhousetest: batch already sent")
	}
	if b.err != nil {
		return b.err
	}
	if b.conn.OnAppend != nil {
		if err := b.conn.OnAppend(b.query, v); err != nil {
			b.err = err
			return err
		}
	}
	b.rows = append(b.rows, append([]any(nil), v...))
	return nil
}

// Send records the batch as an Insert unless OnSend fails it or the
// context given to PrepareBatch is done.
func (b *Batch) Send() error {
	if b.sent {
		return errors.New("clickhousetest: batch already sent")
	}
	if b.err != nil {
		return b.err
	}
	b.sent = true
	if err := b.ctx.Err(); err != nil {
		return err
	}
	if b.conn.OnSend != nil {
		if err := b.conn.OnSend(b.query, b.rows); err != nil {
			return err
		}
	}
	b.conn.mu.Lock()
	b.conn.inserts = append(b.conn.inserts, Insert{SQL: b.query, Rows: b.rows})
	b.conn.mu.Unlock()
	return nil
}

// Abort discards the batch.
func (b *Batch) Abort() error { b.sent = true; b.rows = nil; return nil }

// Close discards the batch if it was not sent.
func (b *Batch) Close() error { b.sent = true; return nil }

// Flush is a no-op: the fake sends everything on Send.
func (b *Batch) Flush() error { return nil }

// IsSent reports whether Send, Abort or Close was called.
func (b *Batch) IsSent() bool { return b.sent }

// Rows is the number of buffered rows.
func (b *Batch) Rows() int { return len(b.rows) }

// Columns is not known to the fake.
func (b *Batch) Columns() []column.Interface { return nil }

// Rows is the fake driver.Rows of Conn.
type Rows struct {
	driver.Rows

	values [][]any
	pos    int
}

// Next advances to the next row.
func (r *Rows) Next() bool {
	r.pos++
	return r.pos < len(r.values)
}

// Scan copies the current row into dest.
func (r *Rows) Scan(dest ...any) error {
	if r.pos < 0 || r.pos >= len(r.values) {
		return errors.New("clickhousetest: Scan without a current row")
	}
	return scanInto(r.values[r.pos], dest)
}

// Close is a no-op.
func (r *Rows) Close() error { return nil }

// Err is always nil.
func (r *Rows) Err() error { return nil }

type row struct {
	driver.Row

	values []any
	err    error
}

func (r *row) Err() error { return r.err }

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return scanInto(r.values, dest)
}

func scanInto(values, dest []any) error {
	if len(values) != len(dest) {
		return fmt.Errorf("clickhousetest: row has %d columns, Scan got %d destinations", len(values), len(dest))
	}
	for i := range dest {
		if err := assign(dest[i], values[i]); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return nil
}

func assign(dest, value any) error {
	dv := reflect.ValueOf(dest)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return fmt.Errorf("clickhousetest: destination %T is not a non-nil pointer", dest)
	}
	el := dv.Elem()
	vv := reflect.ValueOf(value)
	switch {
	case !vv.IsValid():
		el.Set(reflect.Zero(el.Type()))
	case vv.Type().AssignableTo(el.Type()):
		el.Set(vv)
	case vv.Type().ConvertibleTo(el.Type()) && vv.Kind() != reflect.String && el.Kind() != reflect.String:
		el.Set(vv.Convert(el.Type()))
	default:
		return fmt.Errorf("clickhousetest: cannot scan %T into %T", value, dest)
	}
	return nil
}
