// Package adapter is the enforcement library for senders that embed it: it
// keeps a local copy of the actuator's enforcement state, fed from Kafka, and
// answers Check in-process in microseconds, without a network round trip.
//
// # How the state is built
//
// Start/Run first notes the end offsets of the control topic
// (sg.control.v1), then reads the compacted control-state topic
// (sg.control-state.v1) from the beginning — the current state of every
// scope, without replaying history — into an enforce.State, then follows
// every partition of the control topic from the offsets noted before the
// state load, with a plain partition reader of its own (no consumer group:
// each adapter sees every command).
//
// Commands published while the state was being read are therefore read
// twice: once folded into the state topic, once from the control topic. A
// control command whose scope key was restored is skipped during this
// catch-up when it is the restored command itself or was issued before it
// (issued_at), so an older command cannot override the restored newer one;
// commands for other keys are applied in order (last writer wins, as in the
// actuator). Ready reports true once the catch-up reached the control
// topic's end offsets noted after the state load.
//
// # What Check answers
//
// Check is enforce.State.Check on the local state: pauses and suppressions
// exactly as the actuator answers them, within the control topic's delivery
// latency (a pending fetch returns as soon as a command is written). Caps
// (throttles, warm-up caps, the frequency cap) are counted locally, for the
// messages this process checks: configure enforce.Config.Instances/Index
// when several processes share a cap (see package enforce). Before Ready,
// Check answers DEFER (rule "adapter", retry_after 1 s): a sender must not
// send on a state it has not loaded.
//
// The adapter follows one tenant (Config.Tenant) or, when empty, every
// tenant. In single-tenant mode records of other tenants are skipped before
// they are decoded, and CheckTenant for another tenant is a DENY with rule
// "tenant".
package adapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Rule names of the adapter's own answers.
const (
	// RuleNotReady is the rule of the DEFER answered before the state is loaded.
	RuleNotReady = "adapter"
	// RuleTenant is the rule of the DENY answered for a tenant the adapter
	// does not follow.
	RuleTenant = "tenant"
)

// Config configures an Adapter. Brokers is required; the rest has defaults.
type Config struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	// Tenant is the one tenant to follow; empty follows every tenant.
	Tenant string
	// Enforce is the enforcement policy of the local state; nil means
	// enforce.DefaultConfig() (automatic warm-ups off: the actuator records
	// warm-ups and they arrive on the control topic).
	Enforce *enforce.Config
	// ControlTopic and StateTopic default to topics.Control and
	// topics.ControlState.
	ControlTopic, StateTopic string
	// MaxWait is the fetch deadline (2 s). A fetch returns as soon as a
	// command arrives, so it adds no latency; a short one makes a busy
	// broker's answers time out (see kafka.RunnerConfig.MaxWait).
	MaxWait time.Duration
	// SweepEvery is how often expired entries are forgotten (1 min).
	SweepEvery time.Duration
	// Clock is the time Check decides at (time.Now).
	Clock func() time.Time
	// Logger may be nil.
	Logger *zap.Logger
}

// Adapter holds a local enforcement state following the control topic. Its
// methods are safe for concurrent use.
type Adapter struct {
	cfg    Config
	state  *enforce.State
	logger *zap.Logger

	ready   atomic.Bool
	applied atomic.Int64

	mu       sync.Mutex // guards restored
	restored map[string]restoredRecord

	startMu sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	runErr  error
}

// restoredRecord is what the state topic held for a key when it was loaded.
type restoredRecord struct {
	id     string
	issued time.Time
}

// New returns an adapter; nothing is read until Start or Run.
func New(cfg Config) (*Adapter, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("adapter: no brokers")
	}
	if cfg.ControlTopic == "" {
		cfg.ControlTopic = topics.Control
	}
	if cfg.StateTopic == "" {
		cfg.StateTopic = topics.ControlState
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Second
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ec := enforce.DefaultConfig()
	if cfg.Enforce != nil {
		ec = *cfg.Enforce
	}
	if ec.Clock == nil {
		ec.Clock = cfg.Clock
	}
	return &Adapter{cfg: cfg, state: enforce.New(ec), logger: cfg.Logger}, nil
}

// State exposes the local enforcement state (read it, do not Apply to it:
// the control topic is its only writer).
func (a *Adapter) State() *enforce.State { return a.state }

// Ready reports whether the state is loaded and caught up with the control
// topic as of the load.
func (a *Adapter) Ready() bool { return a.ready.Load() }

// Applied returns how many control commands changed the local state since
// the load (restored records not included).
func (a *Adapter) Applied() int64 { return a.applied.Load() }

// Check answers for the configured tenant (Config.Tenant must be set).
func (a *Adapter) Check(req *sgv1.CheckRequest) *sgv1.CheckResponse {
	return a.CheckTenant(a.cfg.Tenant, req)
}

// CheckTenant answers whether tenant may send req now, from the local
// state: DEFER (rule "adapter") before Ready, DENY (rule "tenant") for a
// tenant this adapter does not follow, else enforce.State.Check.
func (a *Adapter) CheckTenant(tenant string, req *sgv1.CheckRequest) *sgv1.CheckResponse {
	if a.cfg.Tenant != "" && tenant != a.cfg.Tenant {
		return &sgv1.CheckResponse{Verdict: sgv1.Verdict_VERDICT_DENY, Reasons: []*sgv1.Reason{{
			Rule: RuleTenant, Target: tenant, Detail: "this adapter follows tenant " + a.cfg.Tenant + " only",
		}}}
	}
	if !a.ready.Load() {
		return &sgv1.CheckResponse{
			Verdict:    sgv1.Verdict_VERDICT_DEFER,
			Reasons:    []*sgv1.Reason{{Rule: RuleNotReady, Detail: "enforcement state not loaded yet"}},
			RetryAfter: durationpb.New(time.Second),
		}
	}
	return a.state.Check(tenant, req, a.cfg.Clock())
}

// Start runs the adapter in the background and returns once the state is
// loaded and caught up (Ready), or with the error that stopped it, or when
// ctx ends. Close stops it.
func (a *Adapter) Start(ctx context.Context) error {
	a.startMu.Lock()
	if a.done != nil {
		a.startMu.Unlock()
		return errors.New("adapter: already started")
	}
	rctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.done = make(chan struct{})
	a.startMu.Unlock()
	go func() {
		defer close(a.done)
		a.runErr = a.Run(rctx)
	}()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !a.Ready() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("adapter: wait for state: %w", ctx.Err())
		case <-a.done:
			if a.runErr != nil {
				return a.runErr
			}
			return errors.New("adapter: stopped before ready")
		case <-t.C:
		}
	}
	return nil
}

// Close stops what Start started and waits for it; it returns the error
// that stopped the adapter, if any other than the stop itself. An adapter
// that stopped on an error is not Ready, so Check answers DEFER; an Adapter
// starts once, so retry with a new one.
func (a *Adapter) Close() error {
	a.startMu.Lock()
	cancel, done := a.cancel, a.done
	a.startMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	return a.runErr
}

// Run loads the state and follows the control topic until ctx ends (nil)
// or a read fails for good (the error).
func (a *Adapter) Run(ctx context.Context) error {
	tr := &kafkago.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
	client := &kafkago.Client{Addr: kafkago.TCP(a.cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}
	start, err := endOffsets(ctx, client, a.cfg.ControlTopic)
	if err == nil {
		err = a.load(ctx)
	}
	var caughtUp map[int]int64
	if err == nil {
		caughtUp, err = endOffsets(ctx, client, a.cfg.ControlTopic)
	}
	tr.CloseIdleConnections()
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pending atomic.Int64 // partitions not caught up yet
	pending.Store(int64(len(start)))
	partitionCaughtUp := func() {
		if pending.Add(-1) != 0 {
			return
		}
		a.mu.Lock()
		a.restored = nil // every partition is past the load: no more catch-up
		a.mu.Unlock()
		a.ready.Store(true)
		a.logger.Info("enforcement state ready", zap.Int64("applied_since_load", a.applied.Load()))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(start))
	for p, off := range start {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.follow(ctx, p, off, caughtUp[p], partitionCaughtUp); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	sweep := time.NewTicker(a.cfg.SweepEvery)
	defer sweep.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-sweep.C:
			a.state.Sweep(now)
		}
	}
	cancel()
	wg.Wait()
	a.ready.Store(false)
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// load reads the state topic into the state. Until the broker compacts it,
// the topic may still hold superseded records and tombstones: the last
// record of each key wins, and a tombstone removes the key (kafka.Latest).
func (a *Adapter) load(ctx context.Context) error {
	var latest kafka.Latest
	err := kafka.ReadAll(ctx, a.cfg.Brokers, a.cfg.StateTopic, func(m kafka.Message) error {
		if a.follows(m) {
			latest.Add(m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("adapter: load state: %w", err)
	}
	cmds := make([]*sgv1.ControlCommand, 0, latest.Len())
	restored := make(map[string]restoredRecord, latest.Len())
	_ = latest.Each(func(key string, v []byte) error {
		c := &sgv1.ControlCommand{}
		if err := proto.Unmarshal(v, c); err != nil {
			a.logger.Warn("skip undecodable state record", zap.String("key", key), zap.Error(err))
			return nil
		}
		cmds = append(cmds, c)
		restored[key] = restoredRecord{id: c.GetCommandId(), issued: c.GetIssuedAt().AsTime()}
		return nil
	})
	n := a.state.Restore(cmds)
	a.mu.Lock()
	a.restored = restored
	a.mu.Unlock()
	a.logger.Info("enforcement state loaded", zap.Int("records", len(cmds)), zap.Int("applied", n))
	return nil
}

// follows reports whether a record belongs to a followed tenant, from its
// tenant header or, without one, its key's first part.
func (a *Adapter) follows(m kafka.Message) bool {
	if a.cfg.Tenant == "" {
		return true
	}
	if h := m.Header(kafka.HeaderTenant); h != nil {
		return string(h) == a.cfg.Tenant
	}
	tn, _, _ := strings.Cut(string(m.Key()), "|")
	return tn == a.cfg.Tenant
}

// follow reads one partition of the control topic from offset, calling
// caughtUp once the offset end is reached.
func (a *Adapter) follow(ctx context.Context, partition int, offset, end int64, caughtUp func()) error {
	once := sync.OnceFunc(caughtUp)
	if offset >= end {
		once()
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:   a.cfg.Brokers,
		Topic:     a.cfg.ControlTopic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		MaxWait:   a.cfg.MaxWait,
		// The reader retries broker errors itself; log them, do not fail.
		ErrorLogger: kafkago.LoggerFunc(func(f string, args ...any) {
			a.logger.Debug("control reader", zap.String("msg", fmt.Sprintf(f, args...)))
		}),
	})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		return fmt.Errorf("adapter: %s/%d: set offset: %w", a.cfg.ControlTopic, partition, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("adapter: read %s/%d: %w", a.cfg.ControlTopic, partition, err)
		}
		a.handle(m)
		if m.Offset+1 >= end {
			once()
		}
	}
}

// handle applies one control record.
func (a *Adapter) handle(m kafkago.Message) {
	if a.cfg.Tenant != "" {
		tn := ""
		for _, h := range m.Headers {
			if h.Key == kafka.HeaderTenant {
				tn = string(h.Value)
				break
			}
		}
		if tn == "" {
			tn, _, _ = strings.Cut(string(m.Key), "|")
		}
		if tn != a.cfg.Tenant {
			return
		}
	}
	c := &sgv1.ControlCommand{}
	if err := proto.Unmarshal(m.Value, c); err != nil {
		a.logger.Warn("skip undecodable control record", zap.Int("partition", m.Partition),
			zap.Int64("offset", m.Offset), zap.Error(err))
		return
	}
	if a.cfg.Tenant != "" && c.GetScope().GetTenant() != a.cfg.Tenant {
		return
	}
	if a.superseded(string(m.Key), c) {
		return
	}
	if a.state.Apply(c) {
		a.applied.Add(1)
	}
}

// superseded reports whether c is older than (or is) the record restored
// for its key; the first newer command ends the catch-up for that key.
func (a *Adapter) superseded(key string, c *sgv1.ControlCommand) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.restored[key]
	if !ok {
		return false
	}
	if c.GetCommandId() == r.id || c.GetIssuedAt().AsTime().Before(r.issued) {
		return true
	}
	delete(a.restored, key)
	return false
}

// endOffsets returns the end (next) offset of every partition of topic.
func endOffsets(ctx context.Context, client *kafkago.Client, topic string) (map[int]int64, error) {
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("adapter: %s: metadata: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("adapter: %s: topic not found", topic)
	}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, p := range meta.Topics[0].Partitions {
		req.Topics[topic] = append(req.Topics[topic], kafkago.LastOffsetOf(p.ID))
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("adapter: %s: list offsets: %w", topic, err)
	}
	out := make(map[int]int64, len(res.Topics[topic]))
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("adapter: %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}
