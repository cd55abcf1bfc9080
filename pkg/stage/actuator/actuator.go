// Package actuator is the actuator stage: decisions and events in, control
// commands out (history on the control topic, current state per scope on
// the compacted control-state topic), and the PermissionService answered
// from the enforcement state in memory.
package actuator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Publisher writes records durably; *kafka.Producer implements it.
type Publisher interface {
	Produce(ctx context.Context, records ...kafka.Record) error
}

// Audit records decisions and commands for analysts (ClickHouse); Flush
// returns once what was recorded is durable.
type Audit interface {
	Decision(ctx context.Context, d *sgv1.Decision) error
	Command(ctx context.Context, c *sgv1.ControlCommand) error
	Flush(ctx context.Context) error
}

// Stage holds the enforcement state. Its Decisions and Events handlers run
// in two runners; both publish through the same state, which is safe for
// concurrent use.
type Stage struct {
	state  *enforce.State
	pub    Publisher
	keys   *auth.Keys
	audit  Audit // nil when analytics are off
	logger *zap.Logger
	now    func() time.Time

	commands    *prometheus.CounterVec
	checks      *prometheus.HistogramVec
	batches     prometheus.Histogram
	batchChecks *prometheus.CounterVec
	// newestDecision and newestEvent are the event times of the newest
	// decision and event handled (freshness gauges).
	newestDecision, newestEvent eventClock

	// unpublished holds manual commands (with their alerts) that were
	// applied but whose publishing failed, by tenant and command id, so a
	// retried call with the same request id publishes them.
	unpubMu     sync.Mutex
	unpublished map[string][]*sgv1.ControlCommand
}

// New returns the stage and registers its metrics with reg (nil: none):
// commands applied, Check latency, the enforcement state's sizes (read at
// scrape time) and the freshness of its inputs. docs/metrics.md lists them.
func New(state *enforce.State, pub Publisher, keys *auth.Keys, logger *zap.Logger, reg prometheus.Registerer) (*Stage, error) {
	s := &Stage{state: state, pub: pub, keys: keys, logger: logger, now: time.Now,
		unpublished: make(map[string][]*sgv1.ControlCommand),
	}
	if err := s.registerMetrics(reg); err != nil {
		return nil, fmt.Errorf("actuator metrics: %w", err)
	}
	return s, nil
}

// checkBuckets bound Check latency with a bucket at the 2 ms objective, so
// "share of checks within 2 ms" is exact, not interpolated.
var checkBuckets = []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 100e-3}

func (s *Stage) registerMetrics(reg prometheus.Registerer) error {
	var err error
	if s.commands, err = service.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sendguard_actuator_commands_total",
		Help: "Control commands applied and published, by action and rule.",
	}, []string{"action", "rule"})); err != nil {
		return err
	}
	if s.checks, err = service.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sendguard_permission_check_seconds",
		Help:    "PermissionService.Check latency (state lookup, without transport), by verdict.",
		Buckets: checkBuckets,
	}, []string{"verdict"})); err != nil {
		return err
	}
	if s.batches, err = service.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sendguard_permission_check_batch_seconds",
		Help:    "PermissionService.CheckBatch latency per batch (state lookups, without transport).",
		Buckets: checkBuckets,
	})); err != nil {
		return err
	}
	if s.batchChecks, err = service.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sendguard_permission_batch_checks_total",
		Help: "Checks answered inside PermissionService.CheckBatch, by verdict.",
	}, []string{"verdict"})); err != nil {
		return err
	}
	for _, c := range []prometheus.Collector{
		newStateCollector(s.state, s.state.Config().Clock),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "sendguard_actuator_newest_event_time_seconds",
			Help:        "Event time (unix seconds) of the newest input handled: input=decisions (the snapshot time a decision was taken at), input=events (occurred_at); 0 before the first. time() minus it is the stage's freshness.",
			ConstLabels: prometheus.Labels{"input": "decisions"},
		}, s.newestDecision.seconds),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "sendguard_actuator_newest_event_time_seconds",
			Help:        "Event time (unix seconds) of the newest input handled: input=decisions (the snapshot time a decision was taken at), input=events (occurred_at); 0 before the first. time() minus it is the stage's freshness.",
			ConstLabels: prometheus.Labels{"input": "events"},
		}, s.newestEvent.seconds),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sendguard_actuator_unpublished_manual_commands",
			Help: "Manual commands applied to this instance's state whose publishing failed and awaits a retry with the same request id (other instances do not enforce them yet).",
		}, s.unpublishedCount),
	} {
		if _, err := service.Register(reg, c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stage) unpublishedCount() float64 {
	s.unpubMu.Lock()
	defer s.unpubMu.Unlock()
	return float64(len(s.unpublished))
}

// SetAudit records every decision and applied command with a (nil: none).
func (s *Stage) SetAudit(a Audit) { s.audit = a }

// SetClock replaces the wall clock used for checks, manual commands and
// issued_at (tests).
func (s *Stage) SetClock(now func() time.Time) { s.now = now }

// State exposes the enforcement state.
func (s *Stage) State() *enforce.State { return s.state }

// Restore rebuilds the enforcement state from the compacted state topic.
func (s *Stage) Restore(ctx context.Context, brokers []string) error {
	// The latest record per key is the state (kafka.Latest: the topic is
	// compacted only eventually).
	var latest kafka.Latest
	err := kafka.ReadAll(ctx, brokers, topics.ControlState, func(m kafka.Message) error {
		latest.Add(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore enforcement state: %w", err)
	}
	cmds := make([]*sgv1.ControlCommand, 0, latest.Len())
	err = latest.Each(func(key string, v []byte) error {
		c := &sgv1.ControlCommand{}
		if err := proto.Unmarshal(v, c); err != nil {
			return fmt.Errorf("decode state record %s: %w", key, err)
		}
		cmds = append(cmds, c)
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore enforcement state: %w", err)
	}
	n := s.state.Restore(cmds)
	s.logger.Info("enforcement state restored", zap.Int("records", len(cmds)), zap.Int("applied", n))
	return nil
}

// batch buffers the records of one runner until its flush.
type batch struct {
	s       *Stage
	pending []kafka.Record
	decode  func(kafka.Message) ([]*sgv1.ControlCommand, error)
}

// DecisionsHandler handles the decisions topic.
func (s *Stage) DecisionsHandler() kafka.Handler {
	return &batch{s: s, decode: func(m kafka.Message) ([]*sgv1.ControlCommand, error) {
		d := &sgv1.Decision{}
		if err := proto.Unmarshal(m.Value(), d); err != nil {
			return nil, kafka.Permanent("decision", fmt.Errorf("decode decision: %w", err))
		}
		if s.audit != nil {
			if err := s.audit.Decision(context.Background(), d); err != nil {
				return nil, fmt.Errorf("audit decision: %w", err)
			}
		}
		if d.GetAt() != nil {
			s.newestDecision.observe(d.GetAt().AsTime(), s.now)
		}
		return enforce.Commands(d), nil
	}}
}

// EventsHandler handles the events topic: suppressions that must not wait
// for windows (unsubscribes, hard bounces, complaints, do-not-contact
// replies) take effect as soon as the event is read.
//
// Most events (sent, delivered, opened, …) cannot enforce anything: a
// record whose kafka.HeaderEvent names a type for which
// enforce.(*State).MayEnforce is false is not decoded; the freshness gauge
// then follows the header's time (millisecond precision). Every other
// record is decoded: enforcing types, records without the header (written
// before it existed, re-driven dead letters, other producers), and words
// this version does not know. The header is trusted: a record whose header
// says "delivered" but whose value is a complaint (a producer bug) is
// skipped, so that complaint suppresses nobody here; windows and rules,
// which decode every event, still count it.
func (s *Stage) EventsHandler() kafka.Handler {
	return &batch{s: s, decode: func(m kafka.Message) ([]*sgv1.ControlCommand, error) {
		if t, at, ok := canonical.ParseEventHeader(m.Header(kafka.HeaderEvent)); ok && !s.state.MayEnforce(t) {
			s.newestEvent.observe(at, s.now) // a zero at (no time in the header) is ignored
			return nil, nil
		}
		ev := &sgv1.Event{}
		if err := proto.Unmarshal(m.Value(), ev); err != nil {
			return nil, kafka.Permanent("event", fmt.Errorf("decode event: %w", err))
		}
		if ev.GetOccurredAt() != nil {
			s.newestEvent.observe(ev.GetOccurredAt().AsTime(), s.now)
		}
		return s.state.FromEvent(ev), nil
	}}
}

// Apply applies manual or external commands and publishes them (sgctl).
func (s *Stage) Apply(ctx context.Context, cmds ...*sgv1.ControlCommand) error {
	b := &batch{s: s}
	for _, c := range cmds {
		if err := b.apply(c); err != nil {
			return err
		}
	}
	return b.Flush(ctx)
}

func (b *batch) Handle(_ context.Context, m kafka.Message) error {
	cmds, err := b.decode(m)
	if err != nil {
		return err
	}
	for _, c := range append(cmds, b.s.state.DrainPending()...) {
		if err := b.apply(c); err != nil {
			return err
		}
	}
	return nil
}

// apply applies c to the state and, when it changed the state (or, for an
// alert, when its id is new), queues it for publishing and auditing.
func (b *batch) apply(c *sgv1.ControlCommand) error {
	if c.GetAction() == sgv1.Action_ACTION_ALERT {
		if !b.s.state.Announce(c) {
			return nil // seen before: idempotent
		}
	} else if !b.s.state.Apply(c) {
		return nil // seen before, or no change
	}
	return b.publish(c, true)
}

// publish queues c on the control topic and, except for alerts, the
// current state of its key on the control-state topic; with audit it also
// records c in the audit log.
func (b *batch) publish(c *sgv1.ControlCommand, audit bool) error {
	if c.GetIssuedAt() == nil {
		c.IssuedAt = timestampNow(b.s.now())
	}
	v, err := proto.Marshal(c)
	if err != nil {
		return kafka.Permanent("marshal", err)
	}
	key, cur := b.s.state.Current(c)
	tenant := c.GetScope().GetTenant()
	hdr := map[string][]byte{kafka.HeaderTenant: []byte(tenant)}
	b.pending = append(b.pending, kafka.Record{Topic: topics.Control, Key: []byte(key), Value: v, Headers: hdr})
	var state []byte // nil: tombstone
	if cur != nil {
		if state, err = proto.Marshal(cur); err != nil {
			return kafka.Permanent("marshal", err)
		}
	}
	if key != "" && c.GetAction() != sgv1.Action_ACTION_ALERT {
		b.pending = append(b.pending, kafka.Record{Topic: topics.ControlState, Key: []byte(key), Value: state, Headers: hdr})
	}
	if audit && b.s.audit != nil {
		if err := b.s.audit.Command(context.Background(), c); err != nil {
			return fmt.Errorf("audit command: %w", err)
		}
	}
	b.s.commands.WithLabelValues(c.GetAction().String(), c.GetRule()).Inc()
	return nil
}

// Flush publishes the pending commands and state records.
func (b *batch) Flush(ctx context.Context) error {
	if b.s.audit != nil {
		if err := b.s.audit.Flush(ctx); err != nil {
			return fmt.Errorf("flush audit: %w", err)
		}
	}
	if len(b.pending) == 0 {
		return nil
	}
	if err := b.s.pub.Produce(ctx, b.pending...); err != nil {
		return fmt.Errorf("publish commands: %w", err)
	}
	b.pending = b.pending[:0]
	return nil
}

// RegisterGRPC registers PermissionService and ControlService on srv.
func (s *Stage) RegisterGRPC(srv grpc.ServiceRegistrar) {
	sgv1.RegisterPermissionServiceServer(srv, &permission{s: s})
	sgv1.RegisterControlServiceServer(srv, &controlServer{s: s})
}

type permission struct {
	sgv1.UnimplementedPermissionServiceServer
	s *Stage
}

var _ sgv1.PermissionServiceServer = (*permission)(nil)

func (p *permission) tenant(ctx context.Context) (string, error) {
	t, err := p.s.keys.TenantFromGRPC(ctx)
	if err != nil {
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	return t, nil
}

// Check answers for one message from memory.
func (p *permission) Check(ctx context.Context, req *sgv1.CheckRequest) (*sgv1.CheckResponse, error) {
	tenant, err := p.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetSender() == "" && req.GetRecipient() == "" {
		return nil, status.Error(codes.InvalidArgument, "sender or recipient is required")
	}
	start := time.Now()
	resp := p.s.state.Check(tenant, req, p.s.now())
	p.s.checks.WithLabelValues(resp.GetVerdict().String()).Observe(time.Since(start).Seconds())
	return resp, nil
}

// CheckBatch answers for many messages, in order.
func (p *permission) CheckBatch(ctx context.Context, req *sgv1.CheckBatchRequest) (*sgv1.CheckBatchResponse, error) {
	tenant, err := p.tenant(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resps := p.s.state.CheckBatch(tenant, req.GetChecks(), p.s.now())
	p.s.batches.Observe(time.Since(start).Seconds())
	for _, r := range resps {
		p.s.batchChecks.WithLabelValues(r.GetVerdict().String()).Inc()
	}
	return &sgv1.CheckBatchResponse{Responses: resps}, nil
}

func timestampNow(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
