package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sendguard/sendguard/pkg/clickhouse/clickhousetest"
)

var testTable = Table{Name: "t", Columns: []string{"n"}}

func intRow(n int) []any { return []any{n} }

type sleeps struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

func newTestWriter(t *testing.T, conn *clickhousetest.Conn, cfg WriterConfig) *BatchWriter[int] {
	t.Helper()
	if cfg.Tick == nil {
		cfg.Tick = make(chan time.Time) // never fires unless the test drives it
	}
	w, err := NewBatchWriter(conn, testTable, intRow, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

func ints(rows [][]any) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = r[0].(int)
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func equalInts(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestWriterFlushChunksInOrder(t *testing.T) {
	ctx := context.Background()
	conn := &clickhousetest.Conn{}
	w := newTestWriter(t, conn, WriterConfig{MaxRows: 1000, MaxPending: 1000})
	if err := w.Append(ctx, seq(0, 7)...); err != nil {
		t.Fatal(err)
	}
	if n := len(conn.Inserts()); n != 0 {
		t.Fatalf("%d inserts before Flush, want 0", n)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ints(conn.InsertedRows("t")); !equalInts(got, seq(0, 7)) {
		t.Errorf("inserted %v, want %v", got, seq(0, 7))
	}
	if w.Pending() != 0 {
		t.Errorf("Pending = %d after Flush", w.Pending())
	}
	for _, q := range conn.Queries() {
		if q.Method == "PrepareBatch" && q.SQL != "INSERT INTO t (n)" {
			t.Errorf("batch query %q does not name its columns", q.SQL)
		}
	}
}

func TestWriterSplitsIntoMaxRowsInserts(t *testing.T) {
	ctx := context.Background()
	conn := &clickhousetest.Conn{}
	w := newTestWriter(t, conn, WriterConfig{MaxRows: 3, MaxPending: 100})
	// Append 7 rows one at a time, then flush: the size trigger may run
	// in the background meanwhile; either way inserts hold ≤ 3 rows.
	for i := range 7 {
		if err := w.Append(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, in := range conn.Inserts() {
		if len(in.Rows) > 3 {
			t.Errorf("insert of %d rows exceeds MaxRows 3", len(in.Rows))
		}
	}
	if got := ints(conn.InsertedRows("t")); !equalInts(got, seq(0, 7)) {
		t.Errorf("inserted %v, want %v", got, seq(0, 7))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriterSizeTriggerFlushesInBackground(t *testing.T) {
	conn := &clickhousetest.Conn{}
	w := newTestWriter(t, conn, WriterConfig{MaxRows: 4, MaxPending: 100})
	if err := w.Append(context.Background(), seq(0, 4)...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "size-triggered insert", func() bool { return len(conn.InsertedRows("t")) == 4 })
}

func TestWriterTickFlushes(t *testing.T) {
	conn := &clickhousetest.Conn{}
	tick := make(chan time.Time)
	w := newTestWriter(t, conn, WriterConfig{MaxRows: 100, Tick: tick})
	if err := w.Append(context.Background(), 1, 2); err != nil {
		t.Fatal(err)
	}
	tick <- time.Now()
	waitFor(t, "tick-triggered insert", func() bool { return len(conn.InsertedRows("t")) == 2 })
}

func TestWriterRetriesTransientErrors(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	fails := 2
	conn := &clickhousetest.Conn{OnSend: func(string, [][]any) error {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return io.ErrUnexpectedEOF
		}
		return nil
	}}
	sl := &sleeps{}
	reg := prometheus.NewRegistry()
	w := newTestWriter(t, conn, WriterConfig{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 150 * time.Millisecond, Sleep: sl.sleep, Registerer: reg})
	if err := w.Append(ctx, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush after transient errors: %v", err)
	}
	if got := ints(conn.InsertedRows("t")); !equalInts(got, []int{1, 2, 3}) {
		t.Errorf("inserted %v", got)
	}
	if got := sl.got(); !equalInts([]int{int(got[0] / time.Millisecond), int(got[1] / time.Millisecond)}, []int{100, 150}) || len(got) != 2 {
		t.Errorf("backoffs %v, want [100ms 150ms]", got)
	}
	if v := testutil.ToFloat64(w.m.retries); v != 2 {
		t.Errorf("retries metric = %v, want 2", v)
	}
	if v := testutil.ToFloat64(w.m.rows); v != 3 {
		t.Errorf("rows metric = %v, want 3", v)
	}
	// A second writer on the same registry shares the collectors.
	w2, err := NewBatchWriter(conn, Table{Name: "u", Columns: []string{"n"}}, intRow, WriterConfig{Registerer: reg, Tick: make(chan time.Time)})
	if err != nil {
		t.Fatalf("second writer on one registry: %v", err)
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWriterGivesUpAndKeepsRows(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	sendErr := error(&clickhouse.Exception{Code: 60, Message: "Table sendguard.t doesn't exist"})
	conn := &clickhousetest.Conn{OnSend: func(string, [][]any) error {
		mu.Lock()
		defer mu.Unlock()
		return sendErr
	}}
	sl := &sleeps{}
	w := newTestWriter(t, conn, WriterConfig{MaxAttempts: 3, Sleep: sl.sleep})
	if err := w.Append(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	err := w.Flush(ctx)
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 60 {
		t.Fatalf("Flush = %v, want the server exception", err)
	}
	if len(sl.got()) != 0 {
		t.Errorf("retried a permanent error %d times", len(sl.got()))
	}
	if w.Pending() != 2 {
		t.Errorf("Pending = %d after a failed flush, want 2", w.Pending())
	}
	// Transient error: MaxAttempts tries, then give up, rows still pending.
	mu.Lock()
	sendErr = io.EOF
	mu.Unlock()
	if err := w.Flush(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Flush = %v, want EOF", err)
	}
	if got := len(sl.got()); got != 2 {
		t.Errorf("%d sleeps for 3 attempts, want 2", got)
	}
	mu.Lock()
	sendErr = nil
	mu.Unlock()
	if err := w.Append(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ints(conn.InsertedRows("t")); !equalInts(got, []int{1, 2, 3}) {
		t.Errorf("inserted %v, want [1 2 3] in order", got)
	}
}

func TestWriterRejectsUnencodableRows(t *testing.T) {
	ctx := context.Background()
	conn := &clickhousetest.Conn{OnAppend: func(_ string, row []any) error {
		if row[0].(int) < 0 {
			return &proto.BlockError{Op: "AppendRow", Err: errors.New("bad value"), ColumnName: "n"}
		}
		return nil
	}}
	var rejected []int
	w := newTestWriter(t, conn, WriterConfig{OnReject: func(row []any, err error) {
		rejected = append(rejected, row[0].(int))
	}})
	if err := w.Append(ctx, 1, -2, 3, -4, 5); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ints(conn.InsertedRows("t")); !equalInts(got, []int{1, 3, 5}) {
		t.Errorf("inserted %v, want [1 3 5]", got)
	}
	if !equalInts(rejected, []int{-2, -4}) {
		t.Errorf("rejected %v, want [-2 -4]", rejected)
	}
	if w.Pending() != 0 {
		t.Errorf("Pending = %d", w.Pending())
	}
}

func TestWriterBackpressure(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	down := true
	conn := &clickhousetest.Conn{OnSend: func(string, [][]any) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return &clickhouse.Exception{Code: 62, Message: "syntax"}
		}
		return nil
	}}
	w := newTestWriter(t, conn, WriterConfig{MaxRows: 2, MaxPending: 4})
	if err := w.Append(ctx, 1, 2, 3, 4); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ctx, 5); err == nil {
		t.Fatal("Append past MaxPending with the server failing returned nil")
	}
	waitFor(t, "background flush attempts to settle", func() bool { return w.Pending() == 4 })
	mu.Lock()
	down = false
	mu.Unlock()
	if err := w.Append(ctx, 5); err != nil {
		t.Fatalf("Append once the server is back: %v", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ints(conn.InsertedRows("t")); !equalInts(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("inserted %v", got)
	}
}

func TestWriterCloseFlushesAndRefuses(t *testing.T) {
	ctx := context.Background()
	conn := &clickhousetest.Conn{}
	w, err := NewBatchWriter(conn, testTable, intRow, WriterConfig{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ints(conn.InsertedRows("t")); !equalInts(got, []int{1, 2}) {
		t.Errorf("inserted %v after Close", got)
	}
	if err := w.Append(ctx, 3); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := w.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestWriterConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	conn := &clickhousetest.Conn{}
	w := newTestWriter(t, conn, WriterConfig{MaxRows: 7, MaxPending: 20})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if err := w.Append(ctx, g*1000+i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := ints(conn.InsertedRows("t"))
	if len(got) != 200 {
		t.Fatalf("inserted %d rows, want 200", len(got))
	}
	seen := map[int]bool{}
	last := map[int]int{0: -1, 1: -1, 2: -1, 3: -1}
	for _, v := range got {
		if seen[v] {
			t.Errorf("row %d inserted twice", v)
		}
		seen[v] = true
		if g := v / 1000; v%1000 <= last[g] {
			t.Errorf("rows of goroutine %d out of order", g)
		} else {
			last[g] = v % 1000
		}
	}
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"eof", fmt.Errorf("read: %w", io.EOF), true},
		{"too many parts", &clickhouse.Exception{Code: 252}, true},
		{"memory limit", &clickhouse.Exception{Code: 241}, true},
		{"unknown table", &clickhouse.Exception{Code: 60}, false},
		{"no such column", fmt.Errorf("send: %w", &clickhouse.Exception{Code: 16}), false},
		{"canceled", context.Canceled, false},
		{"block error", &proto.BlockError{Op: "AppendRow", Err: errors.New("x")}, false},
		{"acquire timeout", clickhouse.ErrAcquireConnTimeout, true},
		{"unknown", errors.New("mystery"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
