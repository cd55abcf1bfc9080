// Package normalizer is the normalizer stage: raw envelopes in, canonical
// events out (keyed tenant|event_id so a duplicate lands on the partition of
// its original), unparsable envelopes to the dead-letter topic with the
// parser and the reason.
package normalizer

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/classify"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Publisher writes records durably; *kafka.Producer implements it.
type Publisher interface {
	Produce(ctx context.Context, records ...kafka.Record) error
}

// Stage is a kafka.Handler and kafka.Flusher: events produced for the
// envelopes handled since the last flush are written in Flush, before the
// runner commits those envelopes.
type Stage struct {
	pub     Publisher
	opts    normalize.Options
	topic   string
	pending []kafka.Record
	events  *prometheus.CounterVec
}

var (
	_ kafka.Handler = (*Stage)(nil)
	_ kafka.Flusher = (*Stage)(nil)
)

// New returns the stage. reg may be nil.
func New(pub Publisher, opts normalize.Options, reg prometheus.Registerer) (*Stage, error) {
	s := &Stage{pub: pub, opts: opts, topic: topics.Events,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_normalizer_events_total",
			Help: "Canonical events produced, by source and type.",
		}, []string{"source", "type"}),
	}
	if reg != nil {
		if err := reg.Register(s.events); err != nil {
			return nil, fmt.Errorf("normalizer metrics: %w", err)
		}
	}
	return s, nil
}

// Parse turns one envelope into canonical events: canonical events
// published over gRPC are taken as they are; every other source goes
// through pkg/normalize. Every event gets the envelope's tenant.
func Parse(env *sgv1.RawEnvelope, opts normalize.Options) ([]*sgv1.Event, error) {
	if env.GetSource() != sgv1.Source_SOURCE_GRPC {
		return normalize.Parse(env, opts)
	}
	ev := &sgv1.Event{}
	if err := proto.Unmarshal(env.GetPayload(), ev); err != nil {
		return nil, fmt.Errorf("grpc event: %w", err)
	}
	ev.Tenant = env.GetTenant()
	ev.Source = sgv1.Source_SOURCE_GRPC
	ev.EnvelopeId = env.GetEnvelopeId()
	ev.ReceivedAt = env.GetReceivedAt()
	if ev.GetEventId() == "" {
		ev.EventId = "grpc-" + env.GetEnvelopeId()
	}
	classify.Enrich(ev)
	return []*sgv1.Event{ev}, nil
}

// Handle parses one envelope; a parse failure is permanent (dead letter).
func (s *Stage) Handle(_ context.Context, msg kafka.Message) error {
	env := &sgv1.RawEnvelope{}
	if err := proto.Unmarshal(msg.Value(), env); err != nil {
		return kafka.Permanent("envelope", fmt.Errorf("decode raw envelope: %w", err))
	}
	events, err := Parse(env, s.opts)
	if err != nil {
		return kafka.Permanent(env.GetSource().String(), err)
	}
	for _, ev := range events {
		ev.Tenant = env.GetTenant() // the key decides the tenant, never the payload
		b, err := proto.Marshal(ev)
		if err != nil {
			return kafka.Permanent("marshal", err)
		}
		s.pending = append(s.pending, kafka.Record{
			Topic:   s.topic,
			Key:     topics.Key(ev.GetTenant(), ev.GetEventId()),
			Value:   b,
			Headers: map[string][]byte{kafka.HeaderTenant: []byte(ev.GetTenant())},
		})
		s.events.WithLabelValues(env.GetSource().String(), ev.GetType().String()).Inc()
	}
	return nil
}

// Flush writes the pending events; on failure they stay pending and the
// runner retries without committing.
func (s *Stage) Flush(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	if err := s.pub.Produce(ctx, s.pending...); err != nil {
		return fmt.Errorf("publish events: %w", err)
	}
	s.pending = s.pending[:0]
	return nil
}
