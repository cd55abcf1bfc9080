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

	"github.com/sendguard/sendguard/pkg/canonical"
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

// Handle parses one envelope. A parse failure is permanent: the envelope
// goes to the dead-letter topic with the reason, and the events of the
// items that did parse (a batch with one bad item) are still published —
// their ids are deterministic, so re-driving the dead letter after a fix
// cannot count them twice.
func (s *Stage) Handle(_ context.Context, msg kafka.Message) error {
	env := &sgv1.RawEnvelope{}
	if err := proto.Unmarshal(msg.Value(), env); err != nil {
		return kafka.Permanent("envelope", fmt.Errorf("decode raw envelope: %w", err))
	}
	events, parseErr := normalize.Parse(env, s.opts)
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
	if parseErr != nil {
		return kafka.Permanent(canonical.SourceWord(env.GetSource()), parseErr)
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
