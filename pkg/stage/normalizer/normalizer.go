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
	"github.com/sendguard/sendguard/pkg/classify"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Publisher writes records durably; *kafka.Producer implements it.
type Publisher interface {
	Produce(ctx context.Context, records ...kafka.Record) error
}

// ProviderEnricher sets the provider of an event from the MX records of its
// recipient domain; *classify.ProviderResolver implements it.
type ProviderEnricher interface {
	Enrich(ctx context.Context, ev *sgv1.Event) error
}

var _ ProviderEnricher = (*classify.ProviderResolver)(nil)

// Option configures a Stage.
type Option func(*Stage)

// WithProviderResolver enables MX-based provider detection: events whose
// provider the static list says is "other" (business domains) are enriched
// through r (cached, with a timeout). A failed lookup keeps "other" and is
// counted, never failing the envelope. Without this option the stage never
// touches the network.
func WithProviderResolver(r ProviderEnricher) Option {
	return func(s *Stage) { s.mx = r }
}

// HeaderRedrivenFrom is the header `sgctl dlq replay` sets on a re-driven
// envelope (see app.HeaderRedrivenFrom); the stage counts such envelopes.
const HeaderRedrivenFrom = "sg-redriven-from"

// Stage is a kafka.Handler and kafka.Detacher: events produced for the
// envelopes handled since the last flush are written before the runner
// commits those envelopes (Detach; Flush does the same at once).
//
// Events that can trip a stop rule on their own (window.UrgentType:
// complaints, unsubscribes, rejections, …; a few per thousand) do not wait
// for the flush: Handle starts writing an envelope's urgent events at once,
// and the flush covering the envelope waits for that write (and writes
// them again if it failed). A complaint reaches sg.events.v1 one write
// after it was read, not behind the flush in flight and the next one; it
// may land before events of the same envelope, which no reader depends on
// (windows follow event time, admission drops repeats by id).
type Stage struct {
	pub       Publisher
	opts      normalize.Options
	topic     string
	mx        ProviderEnricher
	pending   []kafka.Record
	urgent    []*urgentWrite              // started since the last Detach
	unflushed func(context.Context) error // Flush's failed write
	events    *prometheus.CounterVec
	counters  map[[2]int32]prometheus.Counter // events' children by source and type
	lookups   *prometheus.CounterVec
	redriven  prometheus.Counter
}

var (
	_ kafka.Handler  = (*Stage)(nil)
	_ kafka.Flusher  = (*Stage)(nil)
	_ kafka.Detacher = (*Stage)(nil)
)

// New returns the stage. reg may be nil.
func New(pub Publisher, opts normalize.Options, reg prometheus.Registerer, options ...Option) (*Stage, error) {
	s := &Stage{pub: pub, opts: opts, topic: topics.Events, counters: make(map[[2]int32]prometheus.Counter),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_normalizer_events_total",
			Help: "Canonical events produced, by source and type.",
		}, []string{"source", "type"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_normalizer_mx_enrichments_total",
			Help: "MX-based provider enrichments of business-domain events, by result (gmail, microsoft, yahoo, apple, other, error).",
		}, []string{"result"}),
		redriven: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sendguard_normalizer_redriven_envelopes_total",
			Help: "Envelopes handled that were re-driven from the dead-letter topic (sgctl dlq replay).",
		}),
	}
	for _, o := range options {
		o(s)
	}
	// Several stages of one process (one per consumer) share the metrics.
	var err error
	if s.events, err = service.Register(reg, s.events); err != nil {
		return nil, fmt.Errorf("normalizer metrics: %w", err)
	}
	if s.lookups, err = service.Register(reg, s.lookups); err != nil {
		return nil, fmt.Errorf("normalizer metrics: %w", err)
	}
	if s.redriven, err = service.Register(reg, s.redriven); err != nil {
		return nil, fmt.Errorf("normalizer metrics: %w", err)
	}
	return s, nil
}

// Handle parses one envelope. A parse failure is permanent: the envelope
// goes to the dead-letter topic with the reason, and the events of the
// items that did parse (a batch with one bad item) are still published —
// their ids are deterministic, so re-driving the dead letter after a fix
// cannot count them twice.
func (s *Stage) Handle(ctx context.Context, msg kafka.Message) error {
	if msg.Header(HeaderRedrivenFrom) != nil {
		s.redriven.Inc()
	}
	env := &sgv1.RawEnvelope{}
	if err := proto.Unmarshal(msg.Value(), env); err != nil {
		return kafka.Permanent("envelope", fmt.Errorf("decode raw envelope: %w", err))
	}
	events, parseErr := normalize.Parse(env, s.opts)
	tenant := []byte(env.GetTenant()) // shared by the events' headers, read-only
	// The events' encodings share one buffer per envelope (sub-slices;
	// the records own it until they are written).
	var (
		buf    []byte
		urgent []kafka.Record
	)
	for _, ev := range events {
		ev.Tenant = env.GetTenant() // the key decides the tenant, never the payload
		s.enrichProvider(ctx, ev)
		if n := marshalEvent.Size(ev); cap(buf)-len(buf) < n {
			buf = make([]byte, 0, max(64<<10, 2*n))
		}
		start := len(buf)
		var err error
		if buf, err = marshalEvent.MarshalAppend(buf, ev); err != nil {
			return kafka.Permanent("marshal", err)
		}
		rec := kafka.Record{
			Topic:   s.topic,
			Key:     topics.Key(ev.GetTenant(), ev.GetEventId()),
			Value:   buf[start:len(buf):len(buf)],
			Headers: eventHeaders(ev, tenant),
		}
		if window.UrgentType(ev.GetType()) {
			urgent = append(urgent, rec)
		} else {
			s.pending = append(s.pending, rec)
		}
		s.eventCounter(env.GetSource(), ev.GetType()).Inc()
	}
	if len(urgent) > 0 {
		s.urgent = append(s.urgent, s.startUrgent(ctx, urgent))
	}
	if parseErr != nil {
		return kafka.Permanent(canonical.SourceWord(env.GetSource()), parseErr)
	}
	return nil
}

// EventHeaders returns the headers of ev's record on sg.events.v1:
// kafka.HeaderTenant (the tenant) and kafka.HeaderEvent
// (canonical.EventHeader: the type's word and occurred_at in unix
// milliseconds, e.g. "bounced 1795341600123"; absent for a type number
// this version does not define). A producer of sg.events.v1 records sets the
// headers with this function or not at all (the normalizer is the only one
// today; sgctl dlq replay re-drives records without them, so they are
// decoded): consumers trust kafka.HeaderEvent instead of decoding, and a
// type that disagrees with the value would make the actuator skip the
// event's suppressions.
func EventHeaders(ev *sgv1.Event) map[string][]byte {
	return eventHeaders(ev, []byte(ev.GetTenant()))
}

// eventHeaders is EventHeaders with the tenant header's value given.
func eventHeaders(ev *sgv1.Event, tenant []byte) map[string][]byte {
	h := make(map[string][]byte, 2)
	h[kafka.HeaderTenant] = tenant
	if v, ok := canonical.EventHeader(ev); ok {
		h[kafka.HeaderEvent] = v
	}
	return h
}

// marshalEvent encodes the events; its Size before MarshalAppend sizes
// the buffer and caches the size for the encoding.
var marshalEvent = proto.MarshalOptions{UseCachedSize: true}

// eventCounter returns the events counter of source and type, looked up
// in the vector once per pair.
func (s *Stage) eventCounter(src sgv1.Source, typ sgv1.EventType) prometheus.Counter {
	k := [2]int32{int32(src), int32(typ)}
	c, ok := s.counters[k]
	if !ok {
		c = s.events.WithLabelValues(src.String(), typ.String())
		s.counters[k] = c
	}
	return c
}

// enrichProvider asks the MX resolver, when there is one, for events the
// static list could only call "other" (business domains). The event id is
// computed from the source's fields, never from the provider, so the
// enrichment does not change it.
func (s *Stage) enrichProvider(ctx context.Context, ev *sgv1.Event) {
	if s.mx == nil || ev.GetProvider() != sgv1.Provider_PROVIDER_OTHER || ev.GetRecipientDomain() == "" {
		return
	}
	if err := s.mx.Enrich(ctx, ev); err != nil {
		s.lookups.WithLabelValues("error").Inc()
		return
	}
	s.lookups.WithLabelValues(canonical.ProviderWord(ev.GetProvider())).Inc()
}

// Detach takes the events produced since the previous Detach and returns
// the function that writes them (kafka.Detacher): the runner writes them
// while the stage normalizes the next envelopes, and commits those
// envelopes once they are written. A failed write is retried whole; the
// events' keys and ids make a repeat harmless downstream (admission drops
// it).
func (s *Stage) Detach(context.Context) (func(context.Context) error, error) {
	recs, urgent := s.pending, s.urgent
	s.pending, s.urgent = nil, nil
	return func(ctx context.Context) error {
		for _, u := range urgent {
			if err := u.land(ctx, s.pub); err != nil {
				return err
			}
		}
		if len(recs) == 0 {
			return nil
		}
		if err := s.pub.Produce(ctx, recs...); err != nil {
			return fmt.Errorf("publish events: %w", err)
		}
		return nil
	}, nil
}

// urgentWrite is the write of one envelope's urgent events, started by
// Handle and landed by the flush covering the envelope.
type urgentWrite struct {
	recs []kafka.Record
	done chan struct{}
	err  error // the write's result, set before done is closed; nil once landed
}

// startUrgent starts writing recs in the background.
func (s *Stage) startUrgent(ctx context.Context, recs []kafka.Record) *urgentWrite {
	u := &urgentWrite{recs: recs, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		u.err = s.pub.Produce(ctx, recs...)
	}()
	return u
}

// land waits for u's write and writes the records again if it failed
// (the run's context ended, the broker refused): once it returned nil they
// are acknowledged. Flushes run one at a time, so u.err has one writer
// after done.
func (u *urgentWrite) land(ctx context.Context, pub Publisher) error {
	select {
	case <-u.done:
	case <-ctx.Done():
		return fmt.Errorf("publish urgent events: %w", ctx.Err())
	}
	if u.err == nil {
		return nil
	}
	if err := pub.Produce(ctx, u.recs...); err != nil {
		return fmt.Errorf("publish urgent events: %w", err)
	}
	u.err = nil
	return nil
}

// Flush is Detach and the returned function, run at once; a write that
// failed is run again, first, by the next Flush.
func (s *Stage) Flush(ctx context.Context) error {
	return kafka.FlushDetached(ctx, &s.unflushed, s)
}
