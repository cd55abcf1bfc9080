// Package normalize turns raw envelopes (a payload exactly as a provider sent
// it, plus what ingest learned about the request) into canonical events.
//
// Parse dispatches on the envelope's source. Every parser is pure: no network,
// no clock except Options.Now. Every event Parse returns:
//
//   - belongs to env.Tenant (never to a tenant named in the payload);
//   - carries envelope_id, received_at and source from the envelope;
//   - has an event_id that is stable across redeliveries of the same payload:
//     the provider's own id where it has one, else canonical.EventID over
//     fields that do not change between deliveries;
//   - is enriched by classify.Enrich (domains, provider, account, role
//     account) and, for bounces, classified by classify.Bounce;
//   - passes canonical.ValidateAt(ev, opts.Now()).
//
// Items of a batch that cannot become a valid event are not dropped silently:
// Parse returns the events it could build together with a *ParseError naming
// the failed items. A caller may publish those events and dead-letter the
// envelope; because event ids are deterministic, re-driving the dead letter
// later cannot count an event twice. Provider records that carry no
// deliverability signal (SendGrid group_resubscribe, Postmark resubscribes,
// SparkPost relay events, SNS subscription confirmations, ...) yield no event
// and no error; each parser documents its list.
package normalize

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/classify"
	"github.com/sendguard/sendguard/pkg/normalize/mail"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// DefaultMaxEvents bounds the events one envelope may produce when
// Options.MaxEvents is zero.
const DefaultMaxEvents = 100_000

// DefaultCampaignHeaders are the message headers read for the campaign when
// Options.CampaignHeaders is nil (matched case-insensitively). They are the
// ones the ARF/DSN parsers use.
var DefaultCampaignHeaders = mail.DefaultCampaignHeaders

// Options tunes parsing. The zero value is usable.
type Options struct {
	// CampaignHeaders are header names whose value names the campaign, for
	// sources that report the message's headers (SES). nil means
	// DefaultCampaignHeaders.
	CampaignHeaders []string
	// Attribution names the metadata keys (SendGrid custom args, Mailgun
	// user-variables, Postmark Metadata, SparkPost rcpt_meta, SES tags) that
	// carry campaign, step, variant, segment, list source and sender. The
	// zero value means DefaultAttribution.
	Attribution Attribution
	// Now is the clock used for validation (occurred_at may not lie more
	// than 24h after it) and as the last-resort received_at. nil means
	// time.Now.
	Now func() time.Time
	// MaxEvents bounds the events one envelope may produce; 0 means
	// DefaultMaxEvents.
	MaxEvents int
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) maxEvents() int {
	if o.MaxEvents > 0 {
		return o.MaxEvents
	}
	return DefaultMaxEvents
}

// ParseError says why a payload (or some of its items) could not be turned
// into events. Every ParseError is permanent: the same bytes will fail the
// same way, so retrying cannot help; the envelope belongs in the dead-letter
// topic with Error() as the reason.
type ParseError struct {
	// Source is the source word, e.g. "sendgrid".
	Source string
	// Reason is a short human-readable summary.
	Reason string
	// Err is the underlying error; for per-item failures it joins one
	// *ItemError per failed item.
	Err error
}

// Error returns "normalize <source>: <reason>: <err>".
func (e *ParseError) Error() string {
	if e.Err == nil {
		return "normalize " + e.Source + ": " + e.Reason
	}
	return "normalize " + e.Source + ": " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// ItemError is the failure of one item of a batch payload. Unit is "item"
// (Index is the 0-based position in the provider's batch or recipient
// list) or "line" (Index is the 1-based NDJSON line).
type ItemError struct {
	Unit  string
	Index int
	Err   error
}

// Error returns "item N: <err>" or "line N: <err>".
func (e *ItemError) Error() string { return fmt.Sprintf("%s %d: %v", e.Unit, e.Index, e.Err) }

// Unwrap returns the underlying error (often a *canonical.FieldError).
func (e *ItemError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a parse failure that a retry cannot
// fix. All errors Parse returns are permanent.
func IsPermanent(err error) bool {
	var pe *ParseError
	return errors.As(err, &pe)
}

// Parse turns one raw envelope into canonical events; see the package
// documentation for the guarantees on every event. On error the events
// returned (possibly none) are the valid ones; the error is a *ParseError.
func Parse(env *sgv1.RawEnvelope, opts Options) ([]*sgv1.Event, error) {
	if env == nil {
		return nil, &ParseError{Source: "unspecified", Reason: "nil envelope"}
	}
	b := newBuilder(env, &opts)
	if strings.TrimSpace(env.GetTenant()) == "" {
		// Ingest resolves the tenant from credentials; an envelope without
		// one must not produce events that belong to nobody.
		return nil, &ParseError{Source: b.src, Reason: "envelope has no tenant"}
	}
	switch env.GetSource() {
	case sgv1.Source_SOURCE_GENERIC, sgv1.Source_SOURCE_GRPC:
		parseGeneric(b)
	case sgv1.Source_SOURCE_SES:
		parseSES(b)
	case sgv1.Source_SOURCE_SENDGRID:
		parseSendGrid(b)
	case sgv1.Source_SOURCE_MAILGUN:
		parseMailgun(b)
	case sgv1.Source_SOURCE_POSTMARK:
		parsePostmark(b)
	case sgv1.Source_SOURCE_SPARKPOST:
		parseSparkPost(b)
	case sgv1.Source_SOURCE_POSTMASTER:
		parsePostmaster(b)
	case sgv1.Source_SOURCE_ARF, sgv1.Source_SOURCE_DSN:
		parseMail(b)
	default:
		return nil, &ParseError{Source: b.src, Reason: fmt.Sprintf("unsupported source %v", env.GetSource())}
	}
	return b.finish()
}

// builder collects the events of one envelope and the failures of its items.
type builder struct {
	env    *sgv1.RawEnvelope
	opts   *Options
	src    string
	now    time.Time
	events []*sgv1.Event
	items  []int  // item index of each event, for error reports
	unit   string // ItemError.Unit; "" picks it by source
	errs   []error
	fatal  *ParseError
}

func newBuilder(env *sgv1.RawEnvelope, opts *Options) *builder {
	src := canonical.SourceWord(env.GetSource())
	if src == "" || src == "unspecified" {
		src = fmt.Sprintf("source(%d)", int32(env.GetSource()))
	}
	return &builder{env: env, opts: opts, src: src, now: opts.now()}
}

// payloadErr records a failure of the whole payload.
func (b *builder) payloadErr(reason string, err error) {
	if b.fatal == nil {
		b.fatal = &ParseError{Source: b.src, Reason: reason, Err: err}
	}
}

// add records the event built from item index.
func (b *builder) add(index int, ev *sgv1.Event) {
	if len(b.events) >= b.opts.maxEvents() {
		b.payloadErr(fmt.Sprintf("more than %d events in one payload", b.opts.maxEvents()), canonical.ErrTooManyEvents)
		return
	}
	b.events = append(b.events, ev)
	b.items = append(b.items, index)
}

// fail records that item index could not be parsed.
func (b *builder) fail(index int, err error) {
	unit := b.unit
	if unit == "" {
		unit = "item"
		if b.env.GetSource() == sgv1.Source_SOURCE_GENERIC || b.env.GetSource() == sgv1.Source_SOURCE_GRPC {
			unit = "line"
		}
	}
	b.errs = append(b.errs, &ItemError{Unit: unit, Index: index, Err: err})
}

// failf records a formatted item failure.
func (b *builder) failf(index int, format string, args ...any) {
	b.fail(index, fmt.Errorf(format, args...))
}

// finish stamps, enriches and validates every event and builds the error.
func (b *builder) finish() ([]*sgv1.Event, error) {
	if b.fatal != nil {
		return nil, b.fatal
	}
	receivedAt := b.env.GetReceivedAt()
	if receivedAt == nil || receivedAt.CheckValid() != nil {
		receivedAt = timestamppb.New(b.now)
	}
	out := b.events[:0]
	// Each event gets timestamps of its own, allocated together.
	stamps := make([]timestamppb.Timestamp, 2*len(b.events))
	recv := receivedAt.AsTime()
	for i, ev := range b.events {
		if ev.EventId == "" {
			ev.EventId = contentID(b.src, ev)
		}
		ev.Tenant = b.env.GetTenant()
		ev.EnvelopeId = b.env.GetEnvelopeId()
		ev.Source = b.env.GetSource()
		ev.ReceivedAt = stamp(&stamps[2*i], recv.Unix(), int32(recv.Nanosecond()))
		if ev.OccurredAt == nil {
			ev.OccurredAt = stamp(&stamps[2*i+1], recv.Unix(), int32(recv.Nanosecond()))
		} else {
			// Parsers may share one timestamp between the events of a
			// multi-recipient record; give each event its own.
			ev.OccurredAt = stamp(&stamps[2*i+1], ev.OccurredAt.GetSeconds(), ev.OccurredAt.GetNanos())
		}
		classify.Enrich(ev)
		if err := canonical.ValidateAt(ev, b.now); err != nil {
			b.fail(b.items[i], err)
			continue
		}
		out = append(out, ev)
	}
	b.events = out
	if len(b.errs) == 0 {
		return out, nil
	}
	reason := fmt.Sprintf("%d item(s) rejected", len(b.errs))
	return out, &ParseError{Source: b.src, Reason: reason, Err: errors.Join(b.errs...)}
}

// stamp sets ts to seconds and nanos and returns it.
func stamp(ts *timestamppb.Timestamp, seconds int64, nanos int32) *timestamppb.Timestamp {
	ts.Seconds, ts.Nanos = seconds, nanos
	return ts
}

// contentID derives an event id from the event's own content, for sources
// with no id of their own. It runs before the envelope's fields are stamped,
// so redeliveries of the same payload get the same id.
func contentID(src string, ev *sgv1.Event) string {
	data, err := canonical.Marshal(ev)
	if err != nil {
		// Unrepresentable content fails validation later; any id will do.
		data = []byte(ev.String())
	}
	return canonical.EventID(src, string(data))
}

// nativeID formats a provider's own event id, namespaced by source.
func nativeID(src, id string) string { return src + ":" + strings.TrimSpace(id) }

// cloneEvent deep-copies an event.
func cloneEvent(ev *sgv1.Event) *sgv1.Event {
	return proto.Clone(ev).(*sgv1.Event)
}

// parseMail hands ARF and DSN messages to package mail and holds its events
// to the same guarantees as every other source.
func parseMail(b *builder) {
	mo := mail.Options{CampaignHeaders: b.opts.CampaignHeaders}
	var (
		evs []*sgv1.Event
		err error
	)
	if b.env.GetSource() == sgv1.Source_SOURCE_ARF {
		evs, err = mail.ParseARF(b.env, mo)
	} else {
		evs, err = mail.ParseDSN(b.env, mo)
	}
	if err != nil {
		b.payloadErr("unparsable "+b.src+" message", err)
		return
	}
	for i, ev := range evs {
		b.add(i, ev)
	}
}
