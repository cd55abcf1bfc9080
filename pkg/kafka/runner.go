package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sendguard/sendguard/pkg/service"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Handler processes one consumed message. A PermanentError (see Permanent)
// sends the message to the dead-letter topic; any other error is retried.
type Handler interface {
	Handle(ctx context.Context, msg Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, msg Message) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, msg Message) error { return f(ctx, msg) }

// Flusher is implemented by handlers that buffer their output (produced
// records, ClickHouse rows). The runner calls Flush before each commit and
// commits only when it succeeded, so nothing is committed that is not durable
// downstream.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Detacher is implemented by handlers whose flush can run while the runner
// goes on handling the next messages (the runner prefers it to Flusher).
// Detach takes, synchronously, everything handled since the previous
// Detach, so the handler starts afresh, and returns the function that makes
// it durable. The runner runs that function in the background, one at a
// time and in order, retries it on transient errors (so it must keep what
// it writes until it returns nil, and write again only what failed or is
// idempotent), and commits the messages it covers only after it returned
// nil. Handle may run while the function does, never while Detach does.
// When the next flush is due while one is still in flight, the runner goes
// on fetching and handling (up to CommitEvery messages pending) and
// detaches as soon as the flush in flight lands: a slow write holds up
// the stage's output, never its intake.
// Before it handles a message that does not follow the previous one of its
// partition (the first after start, or after the group gave the partition
// back), the runner waits for the flush in flight to land, so a handler
// restoring state from what its flushes wrote sees all of it.
type Detacher interface {
	Detach(ctx context.Context) (flush func(ctx context.Context) error, err error)
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Brokers []string
	GroupID string
	Topic   string
	// Stage names the consuming service in dead letters and metrics.
	Stage string
	// DLQTopic receives permanent failures; empty disables the DLQ, and a
	// permanent failure then stops the runner (nothing vanishes silently).
	DLQTopic string
	// CommitEvery commits after this many handled messages (default 10000)...
	CommitEvery int
	// ...or after this much time with uncommitted messages (default 100ms)...
	CommitInterval time.Duration
	// ...or, when every partition read was at its end as of the last fetch
	// (the consumer keeps up), after this much time (default 20 ms): a
	// consumer that keeps up passes its output on at once, one that is
	// behind still flushes in batches of CommitInterval. Negative: never
	// (a step whose flush is costly and off the latency path).
	CaughtUpInterval time.Duration
	// RetryBackoff is the first delay after a transient error (default
	// 100ms); it doubles up to MaxBackoff (default 5s).
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// MaxWait is the reader's fetch deadline (default 2 s). A fetch
	// returns as soon as a record arrives, so it costs no latency; the
	// broker is asked to hold an empty fetch for MaxWait less kafka-go's
	// round-trip allowance (1 s, or a quarter of a MaxWait under 1 s) and
	// the reader drops the connection when no answer came by MaxWait. A
	// short MaxWait therefore leaves a busy broker a few milliseconds: at
	// 50 ms the readers timed out, reconnected and fetched the same
	// batches again, up to 30 times, as the load grew.
	MaxWait time.Duration
}

func (c *RunnerConfig) defaults() {
	if c.CommitEvery <= 0 {
		c.CommitEvery = 10000
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.CaughtUpInterval == 0 {
		c.CaughtUpInterval = 20 * time.Millisecond
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 2 * time.Second
	}
}

// Runner consumes one topic in a consumer group and drives a Handler.
type Runner struct {
	cfg     RunnerConfig
	handler Handler
	dlq     *Producer
	logger  *zap.Logger
	reader  *kafkago.Reader

	handled   *prometheus.CounterVec
	failed    *prometheus.CounterVec
	deadLetts *prometheus.CounterVec
	lag       *prometheus.GaugeVec
	flushes   *prometheus.HistogramVec
	// From the reader's own statistics, added at each commit.
	fetches, dials, readErrs, rebalances *prometheus.CounterVec
}

// NewRunner returns a runner; dlq may be nil only when cfg.DLQTopic is empty.
func NewRunner(cfg RunnerConfig, h Handler, dlq *Producer, logger *zap.Logger, reg prometheus.Registerer) (*Runner, error) {
	cfg.defaults()
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("kafka runner: no brokers")
	case cfg.GroupID == "" || cfg.Topic == "":
		return nil, errors.New("kafka runner: group id and topic are required")
	case cfg.DLQTopic != "" && dlq == nil:
		return nil, errors.New("kafka runner: dead-letter topic without a producer")
	}
	r := &Runner{
		cfg: cfg, handler: h, dlq: dlq, logger: logger.With(zap.String("topic", cfg.Topic), zap.String("group", cfg.GroupID)),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_kafka_consumed_messages_total",
			Help: "Messages handled successfully, by stage and topic.",
		}, []string{"stage", "topic"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_kafka_transient_failures_total",
			Help: "Transient handler or flush failures (retried), by stage and topic.",
		}, []string{"stage", "topic"}),
		deadLetts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_kafka_dead_letters_total",
			Help: "Messages sent to the dead-letter topic, by stage and topic.",
		}, []string{"stage", "topic"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_kafka_fetches_total",
			Help: "Fetch requests the consumer's reader sent, by stage and topic.",
		}, []string{"stage", "topic"}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_kafka_reader_connects_total",
			Help: "Connections the consumer's reader opened to brokers (one per partition it reads, plus one after each error), by stage and topic.",
		}, []string{"stage", "topic"}),
		readErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_kafka_reader_errors_total",
			Help: "Errors of the consumer's reader (each drops its connection and fetches again), by stage and topic.",
		}, []string{"stage", "topic"}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_kafka_rebalances_total",
			Help: "Consumer group generations the consumer's reader joined, by stage and topic.",
		}, []string{"stage", "topic"}),
	}
	var err error
	for _, c := range []**prometheus.CounterVec{&r.handled, &r.failed, &r.deadLetts, &r.fetches, &r.dials, &r.readErrs, &r.rebalances} {
		if *c, err = service.Register(reg, *c); err != nil {
			return nil, err
		}
		(*c).WithLabelValues(cfg.Stage, cfg.Topic) // present from the start, at 0
	}
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sendguard_kafka_consumer_lag",
		Help: "Messages between the last fetched offset and the partition end, by stage, topic and partition.",
	}, []string{"stage", "topic", "partition"})
	if r.lag, err = service.Register(reg, lag); err != nil {
		return nil, err
	}
	flushes := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sendguard_kafka_flush_seconds",
		Help:    "Time a flush took to make the stage's output durable before the commit (retries included), by stage and topic.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"stage", "topic"})
	if r.flushes, err = service.Register(reg, flushes); err != nil {
		return nil, err
	}
	return r, nil
}

// newReader creates the group reader; it joins the group at once, so Run
// creates it (a Runner that never runs holds no connection).
func (r *Runner) newReader() *kafkago.Reader {
	cfg := r.cfg
	return kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:        cfg.Brokers,
		GroupID:        cfg.GroupID,
		Topic:          cfg.Topic,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        cfg.MaxWait,
		StartOffset:    kafkago.FirstOffset,
		CommitInterval: 0, // synchronous commits, only through commit()
		// A member killed without leaving holds its partitions until its
		// session times out: 10 s instead of kafka-go's 30 s bounds the
		// stall after a crash (heartbeats go every 3 s).
		SessionTimeout:   10 * time.Second,
		RebalanceTimeout: 10 * time.Second,
		ReadBackoffMin:   10 * time.Millisecond,
		ReadBackoffMax:   500 * time.Millisecond,
		// The reader retries by itself (reconnects, rejoins the group); its
		// errors are the only trace of why a partition or the group stalls.
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
			r.logger.Info("kafka reader", zap.String("error", fmt.Sprintf(format, args...)))
		}),
	})
}

// Run consumes until ctx is cancelled, then commits what was handled and
// flushed, and closes the reader. It returns nil on cancellation and an
// error only when it cannot go on (e.g. a permanent failure without DLQ).
func (r *Runner) Run(ctx context.Context) error {
	r.reader = r.newReader()
	defer func() {
		r.observeReader()
		if err := r.reader.Close(); err != nil {
			r.logger.Warn("close reader", zap.Error(err))
		}
	}()
	var (
		pending   []kafkago.Message // handled, not yet flushed
		lastFlush = time.Now()
		inflight  *detachedFlush // a Detacher's flush running in the background
		next      = map[int]int64{}
		lagOf     = map[int]prometheus.Gauge{} // the lag gauge per partition read
		lagging   = map[int]struct{}{}         // partitions behind their end as of the last fetch
	)
	detacher, detaches := r.handler.(Detacher)
	var cycle fetchDeadline
	defer cycle.stop()
	// wait waits for the flush in flight, if any, and forgets it once it
	// succeeded (flushed and committed).
	wait := func(ctx context.Context) error {
		if inflight == nil {
			return nil
		}
		select {
		case <-inflight.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if inflight.err != nil {
			return inflight.err
		}
		inflight = nil
		return nil
	}
	commit := func(ctx context.Context) error {
		if err := wait(ctx); err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		if detaches {
			var flush func(context.Context) error
			if err := r.retry(ctx, "flush", func() (err error) { flush, err = detacher.Detach(ctx); return err }); err != nil {
				return err
			}
			inflight = r.startFlush(ctx, flush, pending)
			pending, lastFlush = nil, time.Now()
			return nil
		}
		start := time.Now()
		if err := r.retry(ctx, "flush", func() error { return r.flush(ctx) }); err != nil {
			return err
		}
		r.observeFlush(start)
		if err := r.commitFlushed(ctx, pending); err != nil {
			return err
		}
		pending = pending[:0]
		lastFlush = time.Now()
		return nil
	}
	// drain commits what is pending with a fresh, bounded context after the
	// run context is cancelled: stop intake, drain, commit, close. A
	// detached flush the cancellation interrupted is run again first.
	drain := func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if inflight != nil {
			<-inflight.done
			if inflight.err != nil {
				if err := inflight.finish(dctx, r); err != nil {
					return fmt.Errorf("drain %s: %w", r.cfg.Topic, err)
				}
			}
			inflight = nil
		}
		if err := commit(dctx); err != nil {
			return fmt.Errorf("drain %s: %w", r.cfg.Topic, err)
		}
		if err := wait(dctx); err != nil {
			return fmt.Errorf("drain %s: %w", r.cfg.Topic, err)
		}
		return nil
	}
	for {
		interval := r.cfg.CommitInterval
		if r.cfg.CaughtUpInterval > 0 && len(lagOf) > 0 && len(lagging) == 0 {
			interval = min(interval, r.cfg.CaughtUpInterval)
		}
		due := len(pending) > 0 && (len(pending) >= r.cfg.CommitEvery || time.Since(lastFlush) >= interval)
		// landing ends when the flush in flight lands: while it is being
		// written the next one waits for it, but the runner goes on
		// handling, short of CommitEvery pending messages.
		var landing context.Context
		if due && inflight != nil && len(pending) < r.cfg.CommitEvery && !inflight.landed() {
			landing = inflight.landing
		}
		if due && landing == nil {
			if err := commit(ctx); err != nil {
				if ctx.Err() != nil {
					return drain()
				}
				return err
			}
		}
		fetchCtx := ctx
		switch {
		case landing != nil:
			fetchCtx = landing
		case len(pending) > 0:
			fetchCtx = cycle.until(ctx, lastFlush.Add(interval))
		}
		m, err := r.reader.FetchMessage(fetchCtx)
		if err != nil {
			if ctx.Err() != nil {
				return drain()
			}
			if errors.Is(err, context.DeadlineExceeded) || landing != nil && landing.Err() != nil {
				continue // time to commit what is pending
			}
			r.logger.Warn("fetch", zap.Error(err))
			r.failed.WithLabelValues(r.cfg.Stage, r.cfg.Topic).Inc()
			if !sleepCtx(ctx, r.cfg.RetryBackoff) {
				return drain()
			}
			continue
		}
		if m.HighWaterMark > 0 {
			lag := m.HighWaterMark - m.Offset - 1
			g := lagOf[m.Partition]
			if g == nil {
				g = r.lag.WithLabelValues(r.cfg.Stage, r.cfg.Topic, strconv.Itoa(m.Partition))
				lagOf[m.Partition] = g
			}
			g.Set(float64(lag))
			if lag > 0 {
				lagging[m.Partition] = struct{}{}
			} else {
				delete(lagging, m.Partition)
			}
		}
		if n, ok := next[m.Partition]; !ok || n != m.Offset {
			// Not the successor of the last message of its partition: the
			// group gave the partition (back) to this runner, and the
			// handler may restore state from what its flushes wrote, so
			// the flush in flight must have landed.
			if err := wait(ctx); err != nil {
				if ctx.Err() != nil {
					return drain()
				}
				return err
			}
		}
		next[m.Partition] = m.Offset + 1
		if err := r.handle(ctx, m); err != nil {
			if ctx.Err() != nil {
				return drain()
			}
			return err
		}
		pending = append(pending, m)
	}
}

// FlushDetached is Flush for a Detacher, for callers that flush
// synchronously (a handler's Flush, tests): it runs the flush that failed
// last time (*failed), if any, then detaches and runs a new one, keeping
// it in *failed when it fails, so a retried FlushDetached writes
// everything in order.
func FlushDetached(ctx context.Context, failed *func(context.Context) error, d Detacher) error {
	if *failed != nil {
		if err := (*failed)(ctx); err != nil {
			return err
		}
		*failed = nil
	}
	flush, err := d.Detach(ctx)
	if err != nil {
		return err
	}
	if err := flush(ctx); err != nil {
		*failed = flush
		return err
	}
	return nil
}

// fetchDeadline is the context bounding fetches by the time the pending
// messages are due to be committed: one per commit cycle rather than one
// per message (a context and a timer per message cost 2 % of the CPU at
// 50k events/s).
type fetchDeadline struct {
	ctx    context.Context
	at     time.Time
	cancel context.CancelFunc
}

// until returns a context of parent ending at at, the same one as long as
// at does not change.
func (d *fetchDeadline) until(parent context.Context, at time.Time) context.Context {
	if d.ctx == nil || !d.at.Equal(at) {
		d.stop()
		d.ctx, d.cancel = context.WithDeadline(parent, at)
		d.at = at
	}
	return d.ctx
}

// stop releases the context's timer.
func (d *fetchDeadline) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// detachedFlush is a Detacher's flush and the commit of the messages it
// covers, running in the background.
type detachedFlush struct {
	flush   func(context.Context) error
	msgs    []kafkago.Message
	flushed bool // flush returned nil; only the commit is left
	done    chan struct{}
	err     error // set before done is closed
	// landing is cancelled with done, for a fetch to end when it lands.
	landing context.Context
}

// landed reports whether d is over (done is closed).
func (d *detachedFlush) landed() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// startFlush runs flush, then commits msgs, in the background; each step
// is retried until it succeeds or ctx ends.
func (r *Runner) startFlush(ctx context.Context, flush func(context.Context) error, msgs []kafkago.Message) *detachedFlush {
	landing, landed := context.WithCancel(ctx)
	d := &detachedFlush{flush: flush, msgs: msgs, done: make(chan struct{}), landing: landing}
	go func() {
		defer landed()
		defer close(d.done)
		d.err = d.finish(ctx, r)
	}()
	return d
}

// finish does what is left of d: the flush unless it succeeded, then the
// commit.
func (d *detachedFlush) finish(ctx context.Context, r *Runner) error {
	if !d.flushed {
		start := time.Now()
		if err := r.retry(ctx, "flush", func() error { return d.flush(ctx) }); err != nil {
			return err
		}
		r.observeFlush(start)
		d.flushed = true
	}
	return r.commitFlushed(ctx, d.msgs)
}

// observeFlush records a flush that started at start and has succeeded.
func (r *Runner) observeFlush(start time.Time) {
	r.flushes.WithLabelValues(r.cfg.Stage, r.cfg.Topic).Observe(time.Since(start).Seconds())
}

// commitFlushed commits msgs, whose output is durable.
func (r *Runner) commitFlushed(ctx context.Context, msgs []kafkago.Message) error {
	if err := r.retry(ctx, "commit", func() error { return r.reader.CommitMessages(ctx, msgs...) }); err != nil {
		return err
	}
	r.handled.WithLabelValues(r.cfg.Stage, r.cfg.Topic).Add(float64(len(msgs)))
	r.observeReader()
	return nil
}

// observeReader adds the reader's statistics since the last call (kafka-go
// resets them on each Stats) to the runner's counters.
func (r *Runner) observeReader() {
	st := r.reader.Stats()
	for _, c := range []struct {
		vec *prometheus.CounterVec
		n   int64
	}{{r.fetches, st.Fetches}, {r.dials, st.Dials}, {r.readErrs, st.Errors}, {r.rebalances, st.Rebalances}} {
		if c.n > 0 {
			c.vec.WithLabelValues(r.cfg.Stage, r.cfg.Topic).Add(float64(c.n))
		}
	}
}

// handle runs the handler on m, retrying transient errors until success or
// cancellation, and dead-lettering permanent ones.
func (r *Runner) handle(ctx context.Context, m kafkago.Message) error {
	return r.retry(ctx, "handle", func() error {
		err := r.handler.Handle(ctx, message{m})
		if err == nil || !IsPermanent(err) {
			return err
		}
		if r.dlq == nil {
			return fmt.Errorf("permanent failure at %s/%d@%d and no dead-letter topic: %w", m.Topic, m.Partition, m.Offset, err)
		}
		return r.deadLetter(ctx, m, err)
	})
}

func (r *Runner) deadLetter(ctx context.Context, m kafkago.Message, cause error) error {
	var pe *PermanentError
	handler := ""
	if errors.As(cause, &pe) {
		handler = pe.Handler
	}
	dl := &sgv1.DeadLetter{
		Stage:     r.cfg.Stage,
		Handler:   handler,
		Reason:    cause.Error(),
		Topic:     m.Topic,
		Partition: int32(m.Partition),
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
		FailedAt:  timestamppb.Now(),
		Tenant:    string(message{m}.Header(HeaderTenant)),
	}
	b, err := proto.Marshal(dl)
	if err != nil {
		return fmt.Errorf("marshal dead letter: %w", err)
	}
	r.logger.Warn("dead letter", zap.String("handler", handler), zap.Int("partition", m.Partition),
		zap.Int64("offset", m.Offset), zap.String("reason", cause.Error()))
	if err := r.dlq.Produce(ctx, Record{
		Topic: r.cfg.DLQTopic,
		Key:   m.Key,
		Value: b,
		Headers: map[string][]byte{
			HeaderTenant: []byte(dl.Tenant),
		},
	}); err != nil {
		return fmt.Errorf("dead letter: %w", err) // transient: retried, not committed
	}
	r.deadLetts.WithLabelValues(r.cfg.Stage, r.cfg.Topic).Inc()
	return nil
}

func (r *Runner) flush(ctx context.Context) error {
	if f, ok := r.handler.(Flusher); ok {
		return f.Flush(ctx)
	}
	return nil
}

// retry calls fn until it returns nil or a PermanentError, or ctx ends.
func (r *Runner) retry(ctx context.Context, what string, fn func() error) error {
	backoff := r.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || IsPermanent(err) {
			return err
		}
		r.failed.WithLabelValues(r.cfg.Stage, r.cfg.Topic).Inc()
		if attempt == 1 || attempt%10 == 0 {
			r.logger.Warn("transient failure, retrying", zap.String("op", what), zap.Int("attempt", attempt), zap.Error(err))
		}
		if !sleepCtx(ctx, backoff) {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		}
		backoff = min(backoff*2, r.cfg.MaxBackoff)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// HeaderTenant is the record header carrying the tenant, so dead letters and
// tools can attribute a record without decoding it.
const HeaderTenant = "sg-tenant"

// HeaderEvent is set by the normalizer on every sg.events.v1 record,
// beside HeaderTenant: the event's type as its canonical word and its
// occurred_at in unix milliseconds, separated by a space
// ("bounced 1795341600123"; the word alone when the event has no
// occurred_at; canonical.EventHeader and ParseEventHeader). It lets a
// consumer skip records it does not need, and still follow event time,
// without decoding them. One header rather than two because kafka-go
// allocates three times per header of every record it reads, in every
// consumer group of the topic. A record without it
// (written before it existed, re-driven from the dead-letter topic, or by
// another producer) must be decoded as usual.
const HeaderEvent = "sg-event"
