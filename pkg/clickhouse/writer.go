package clickhouse

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/sendguard/sendguard/pkg/service"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrClosed is returned by Append and Flush after Close.
var ErrClosed = errors.New("batch writer closed")

// WriterConfig tunes a BatchWriter. Zero fields take the defaults.
type WriterConfig struct {
	// MaxRows starts a background flush when this many rows are pending and
	// bounds the rows of one INSERT; default 10 000.
	MaxRows int
	// FlushInterval is how often the background flusher sends what is
	// pending; default 1 s.
	FlushInterval time.Duration
	// MaxPending bounds the buffer: an Append that would exceed it first
	// flushes synchronously (backpressure); default 10 × MaxRows.
	MaxPending int
	// MaxAttempts bounds the tries of one INSERT on transient errors;
	// default 5.
	MaxAttempts int
	// InitialBackoff doubles after each failed try up to MaxBackoff;
	// defaults 100 ms and 5 s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Tick, when set, replaces the FlushInterval ticker (tests drive it).
	Tick <-chan time.Time
	// Sleep waits between tries; default a timer that honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnReject receives each row the driver cannot encode for the table (a
	// value of the wrong type): the row is left out of the INSERT, never
	// retried, and handed here (to dead-letter it); default: only counted.
	OnReject func(row []any, err error)
	// OnError receives errors of background flushes (the rows stay pending
	// and are retried by the next flush); default: only counted.
	OnError func(err error)
	// Registerer, when set, receives the writer's Prometheus metrics,
	// labelled with the table name.
	Registerer prometheus.Registerer
}

func (c WriterConfig) withDefaults() WriterConfig {
	if c.MaxRows <= 0 {
		c.MaxRows = 10000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 10 * c.MaxRows
	}
	if c.MaxPending < c.MaxRows {
		c.MaxPending = c.MaxRows
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.InitialBackoff {
		c.MaxBackoff = 5 * time.Second
		if c.MaxBackoff < c.InitialBackoff {
			c.MaxBackoff = c.InitialBackoff
		}
	}
	if c.Sleep == nil {
		c.Sleep = sleepCtx
	}
	return c
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// BatchWriter buffers rows for one table and writes them with batch
// INSERTs that name their columns. Rows are sent when MaxRows are pending,
// every FlushInterval, and on Flush and Close.
//
// Durability contract: Append only buffers. Flush returns nil only after
// every row appended before the call was inserted (the server acknowledged
// the INSERT), so a Kafka consumer commits its offsets after a nil Flush and
// never before. Rows of a failed INSERT stay buffered, in order, and are
// retried by the next flush; rows the driver cannot encode are handed to
// OnReject instead (they would fail forever). It is safe for concurrent use.
type BatchWriter[T any] struct {
	conn  driver.Conn
	table Table
	row   func(T) []any
	cfg   WriterConfig
	m     *writerMetrics

	mu      sync.Mutex
	pending [][]any
	closed  bool

	flushMu sync.Mutex // serialises INSERTs so rows keep their order

	kick   chan struct{}
	quit   chan struct{}      // closed by Close: the flusher ends after its current flush
	stop   context.CancelFunc // cancels a background flush still running when Close's ctx ends
	bgCtx  context.Context
	doneBg chan struct{}
}

// NewBatchWriter starts a writer for table whose rows row makes (EventRow
// with EventsTable, …). Close stops its background flusher.
func NewBatchWriter[T any](conn driver.Conn, table Table, row func(T) []any, cfg WriterConfig) (*BatchWriter[T], error) {
	if conn == nil || row == nil || table.Name == "" || len(table.Columns) == 0 {
		return nil, errors.New("new batch writer: conn, table and row func are required")
	}
	cfg = cfg.withDefaults()
	m, err := newWriterMetrics(cfg.Registerer, table.Name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &BatchWriter[T]{
		conn: conn, table: table, row: row, cfg: cfg, m: m,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), stop: cancel, bgCtx: ctx, doneBg: make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

func (w *BatchWriter[T]) loop() {
	defer close(w.doneBg)
	tick := w.cfg.Tick
	if tick == nil {
		t := time.NewTicker(w.cfg.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-w.quit:
			return
		case <-tick:
		case <-w.kick:
		}
		if err := w.flush(w.bgCtx); err != nil && w.bgCtx.Err() == nil {
			if w.cfg.OnError != nil {
				w.cfg.OnError(err)
			}
		}
	}
}

// Append maps items to rows and buffers them. A nil error means they are
// buffered (not yet durable: see Flush). When the buffer would exceed
// MaxPending, Append first flushes synchronously with ctx; if that fails,
// it returns the error and buffers nothing.
func (w *BatchWriter[T]) Append(ctx context.Context, items ...T) error {
	rows := make([][]any, len(items))
	for i, it := range items {
		rows[i] = w.row(it)
	}
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if len(w.pending) == 0 || len(w.pending)+len(rows) <= w.cfg.MaxPending {
			w.pending = append(w.pending, rows...)
			n := len(w.pending)
			w.m.pending.Set(float64(n))
			w.mu.Unlock()
			if n >= w.cfg.MaxRows {
				select {
				case w.kick <- struct{}{}:
				default:
				}
			}
			return nil
		}
		w.mu.Unlock()
		if err := w.flush(ctx); err != nil {
			return fmt.Errorf("append to %s: buffer full: %w", w.table.Name, err)
		}
	}
}

// Pending is the number of buffered rows not yet inserted.
func (w *BatchWriter[T]) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Flush inserts every buffered row and returns nil once all rows appended
// before the call are durable in ClickHouse. On error the rows not inserted
// stay buffered.
func (w *BatchWriter[T]) Flush(ctx context.Context) error {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return w.flush(ctx)
}

// Close stops the background flusher, flushes what is buffered with ctx and
// refuses further rows. Rows it could not insert are reported in the error
// (and lost with the writer: callers must not commit them).
func (w *BatchWriter[T]) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	// Let a running background INSERT finish (cancelling it could leave the
	// server with rows the writer then sends again), unless ctx ends first.
	close(w.quit)
	select {
	case <-w.doneBg:
	case <-ctx.Done():
		w.stop()
		<-w.doneBg
	}
	w.stop()
	if err := w.flush(ctx); err != nil {
		return fmt.Errorf("close %s writer with %d rows pending: %w", w.table.Name, w.Pending(), err)
	}
	return nil
}

func (w *BatchWriter[T]) flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	for {
		w.mu.Lock()
		n := min(len(w.pending), w.cfg.MaxRows)
		chunk := w.pending[:n:n]
		w.mu.Unlock()
		if n == 0 {
			return nil
		}
		err := w.insertWithRetry(ctx, chunk)
		if err != nil {
			return err
		}
		w.mu.Lock()
		// Only flush removes rows and it holds flushMu: the first n rows
		// are still the chunk just inserted.
		w.pending = w.pending[n:]
		if len(w.pending) == 0 {
			w.pending = nil
		}
		w.m.pending.Set(float64(len(w.pending)))
		w.mu.Unlock()
	}
}

func (w *BatchWriter[T]) insertWithRetry(ctx context.Context, rows [][]any) error {
	backoff := w.cfg.InitialBackoff
	skip := map[int]bool{} // rejected rows stay rejected across tries
	var err error
	for attempt := 1; ; attempt++ {
		start := time.Now()
		var written int
		written, err = w.insert(ctx, rows, skip)
		w.m.duration.Observe(time.Since(start).Seconds())
		if err == nil {
			w.m.rows.Add(float64(written))
			w.m.batches.Inc()
			return nil
		}
		w.m.failures.Inc()
		if ctx.Err() != nil || !IsTransient(err) || attempt >= w.cfg.MaxAttempts {
			return fmt.Errorf("insert %d rows into %s (try %d): %w", len(rows), w.table.Name, attempt, err)
		}
		w.m.retries.Inc()
		if serr := w.cfg.Sleep(ctx, backoff); serr != nil {
			return fmt.Errorf("insert %d rows into %s (try %d): %w", len(rows), w.table.Name, attempt, err)
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// insert sends rows in one INSERT, leaving out rows the driver cannot
// encode (handed to OnReject). It returns how many rows were written.
func (w *BatchWriter[T]) insert(ctx context.Context, rows [][]any, skip map[int]bool) (int, error) {
	for {
		batch, err := w.conn.PrepareBatch(ctx, w.table.InsertSQL())
		if err != nil {
			return 0, fmt.Errorf("prepare batch: %w", err)
		}
		rejected := -1
		var rejectErr error
		n := 0
		for i, r := range rows {
			if skip[i] {
				continue
			}
			if err := batch.Append(r...); err != nil {
				var be *proto.BlockError
				if errors.As(err, &be) {
					rejected, rejectErr = i, err
					break
				}
				_ = batch.Abort()
				return 0, fmt.Errorf("append row: %w", err)
			}
			n++
		}
		if rejected >= 0 {
			_ = batch.Abort()
			skip[rejected] = true
			w.m.rejected.Inc()
			if w.cfg.OnReject != nil {
				w.cfg.OnReject(rows[rejected], rejectErr)
			}
			continue
		}
		if n == 0 {
			_ = batch.Abort()
			return 0, nil
		}
		if err := batch.Send(); err != nil {
			_ = batch.Close()
			return 0, fmt.Errorf("send batch: %w", err)
		}
		return n, nil
	}
}

// permanentCodes are server error codes an identical retry cannot fix
// (schema or permission problems).
var permanentCodes = map[int32]bool{
	10:  true, // NOT_FOUND_COLUMN_IN_BLOCK
	16:  true, // NO_SUCH_COLUMN_IN_TABLE
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	47:  true, // UNKNOWN_IDENTIFIER
	53:  true, // TYPE_MISMATCH
	60:  true, // UNKNOWN_TABLE
	62:  true, // SYNTAX_ERROR
	81:  true, // UNKNOWN_DATABASE
	164: true, // READONLY
	192: true, // UNKNOWN_USER
	193: true, // WRONG_PASSWORD
	497: true, // ACCESS_DENIED
	516: true, // AUTHENTICATION_FAILED
}

// IsTransient reports whether retrying the same INSERT may succeed: network
// and I/O errors, timeouts, pool exhaustion and server errors such as
// TOO_MANY_PARTS or MEMORY_LIMIT_EXCEEDED are; schema, syntax and
// permission errors and context cancellation are not.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return !permanentCodes[ex.Code]
	}
	var be *proto.BlockError
	if errors.As(err, &be) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout) || errors.Is(err, clickhouse.ErrConnectionClosed) ||
		errors.Is(err, sqldriver.ErrBadConn)
}

type writerMetrics struct {
	rows, batches, failures, retries, rejected prometheus.Counter
	pending                                    prometheus.Gauge
	duration                                   prometheus.Observer
}

func newWriterMetrics(reg prometheus.Registerer, table string) (*writerMetrics, error) {
	rows := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sendguard", Subsystem: "clickhouse", Name: "rows_written_total",
		Help: "Rows inserted into ClickHouse by batch writers.",
	}, []string{"table"})
	batches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sendguard", Subsystem: "clickhouse", Name: "inserts_total",
		Help: "Successful batch INSERTs.",
	}, []string{"table"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sendguard", Subsystem: "clickhouse", Name: "insert_failures_total",
		Help: "Failed INSERT tries (each retry counts).",
	}, []string{"table"})
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sendguard", Subsystem: "clickhouse", Name: "insert_retries_total",
		Help: "INSERT retries after transient errors.",
	}, []string{"table"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sendguard", Subsystem: "clickhouse", Name: "rows_rejected_total",
		Help: "Rows the driver could not encode, left out of INSERTs.",
	}, []string{"table"})
	pending := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "sendguard", Subsystem: "clickhouse", Name: "rows_pending",
		Help: "Rows buffered by batch writers, not yet inserted.",
	}, []string{"table"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "sendguard", Subsystem: "clickhouse", Name: "insert_duration_seconds",
		Help: "Duration of INSERT tries.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	}, []string{"table"})
	if reg != nil {
		var err error
		rows, err = service.Register(reg, rows)
		if err == nil {
			batches, err = service.Register(reg, batches)
		}
		if err == nil {
			failures, err = service.Register(reg, failures)
		}
		if err == nil {
			retries, err = service.Register(reg, retries)
		}
		if err == nil {
			rejected, err = service.Register(reg, rejected)
		}
		if err == nil {
			pending, err = service.Register(reg, pending)
		}
		if err == nil {
			duration, err = service.Register(reg, duration)
		}
		if err != nil {
			return nil, fmt.Errorf("register clickhouse writer metrics: %w", err)
		}
	}
	return &writerMetrics{
		rows: rows.WithLabelValues(table), batches: batches.WithLabelValues(table),
		failures: failures.WithLabelValues(table), retries: retries.WithLabelValues(table),
		rejected: rejected.WithLabelValues(table), pending: pending.WithLabelValues(table),
		duration: duration.WithLabelValues(table),
	}, nil
}
