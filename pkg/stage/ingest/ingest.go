// Package ingest is the ingest stage: HTTP and gRPC intake that turns each
// accepted request into raw envelopes on the raw topic. It answers 202 (or
// ACCEPTED) only after the broker acknowledged every envelope of the request
// with acks=all; when the broker does not, the caller gets 503 with
// Retry-After and must retry (downstream deduplicates by event id).
//
// The tenant always comes from the API key. When the tenant configured a
// provider's webhook secret (Config.Webhooks, see package webhooksig), HTTP
// webhooks of that provider must carry a valid signature or credentials:
// 401 when missing, 403 when wrong, stale or replayed. Verified SNS
// SubscriptionConfirmation messages are confirmed (when allowed) and
// answered 200 without publishing. gRPC raw items come from API clients,
// not from the providers, and carry no provider signature to check.
//
// Accepted events are rate-limited per tenant with a token bucket
// (Config.TenantRate, TenantBurst): above it, 429 with Retry-After (gRPC
// items UNAVAILABLE); events the broker refused give their tokens back.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/webhooksig"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Publisher writes records durably (acks=all); *kafka.Producer implements it.
type Publisher interface {
	Produce(ctx context.Context, records ...kafka.Record) error
}

// Validator checks a raw envelope before it is accepted, so bad input gets
// a 4xx at the edge rather than a dead letter later. It returns the number
// of events the envelope holds (what the tenant's rate limit counts), or a
// *canonical.FieldError or any error whose text explains the problem.
type Validator func(env *sgv1.RawEnvelope) (events int, err error)

// DefaultMaxBodyBytes is the default largest request body (5 MiB).
const DefaultMaxBodyBytes = 5 << 20

// Config configures the stage.
type Config struct {
	// MaxBodyBytes bounds a request body (413 above it).
	MaxBodyBytes int64
	// MaxEvents bounds the events of one NDJSON request or gRPC batch.
	MaxEvents int
	// MaxInFlight bounds concurrent publishes; above it callers get 429.
	MaxInFlight int
	// PublishTimeout bounds how long a request waits for the broker.
	PublishTimeout time.Duration
	// RawTopic is where envelopes go (default topics.Raw).
	RawTopic string
	// TenantRate is the sustained rate of accepted events per second per
	// tenant (token bucket); above it callers get 429 with Retry-After.
	// 0 means DefaultTenantRate; negative turns the limit off.
	TenantRate int
	// TenantBurst is the bucket size in events (default 2×TenantRate).
	TenantBurst int
	// Webhooks holds per-tenant signature verification (nil: none).
	Webhooks *webhooksig.Set
	// ConfirmTimeout bounds the GET of an SNS SubscribeURL.
	ConfirmTimeout time.Duration
	// ConfirmClient fetches SNS SubscribeURLs (default: a client with
	// ConfirmTimeout).
	ConfirmClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultTenantRate is the default per-tenant limit of accepted events per
// second: generous (above what one instance accepts on a small machine),
// so it only stops a runaway client. Limits are per ingest instance: N
// instances behind a balancer allow a tenant about N times the rate.
const DefaultTenantRate = 100000

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 10000
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 512
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.RawTopic == "" {
		c.RawTopic = topics.Raw
	}
	if c.TenantRate == 0 {
		c.TenantRate = DefaultTenantRate
	}
	if c.TenantBurst <= 0 && c.TenantRate > 0 {
		c.TenantBurst = 2 * c.TenantRate
	}
	if c.ConfirmTimeout <= 0 {
		c.ConfirmTimeout = 10 * time.Second
	}
	if c.ConfirmClient == nil {
		c.ConfirmClient = &http.Client{Timeout: c.ConfirmTimeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Stage serves ingest over HTTP (Routes) and gRPC (RegisterGRPC).
type Stage struct {
	cfg      Config
	keys     *auth.Keys
	pub      Publisher
	validate Validator
	logger   *zap.Logger
	inflight chan struct{}
	limits   *limiter

	accepted    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	sigFailures *prometheus.CounterVec
	limited     *prometheus.CounterVec
}

// New returns the stage. validate may be nil (no edge validation beyond the
// canonical event checks).
func New(cfg Config, keys *auth.Keys, pub Publisher, validate Validator, logger *zap.Logger, reg prometheus.Registerer) (*Stage, error) {
	cfg.defaults()
	if keys == nil || pub == nil {
		return nil, errors.New("ingest: keys and publisher are required")
	}
	s := &Stage{
		cfg: cfg, keys: keys, pub: pub, validate: validate, logger: logger,
		inflight: make(chan struct{}, cfg.MaxInFlight),
		limits:   newLimiter(float64(cfg.TenantRate), cfg.TenantBurst),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_ingest_accepted_total",
			Help: "Items acknowledged by the broker, by endpoint and tenant.",
		}, []string{"endpoint", "tenant"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_ingest_rejected_total",
			Help: "Requests refused, by endpoint, tenant (empty when unknown) and reason.",
		}, []string{"endpoint", "tenant", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sendguard_ingest_request_seconds",
			Help:    "Request latency by endpoint and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"endpoint", "code"}),
		sigFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_ingest_signature_failures_total",
			Help: "Webhooks refused by signature or credential checks, by endpoint, tenant and reason (missing, bad_signature, stale, replay, topic, bad_credentials, malformed).",
		}, []string{"endpoint", "tenant", "reason"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_ingest_rate_limited_events_total",
			Help: "Events refused with 429 by the per-tenant rate limit, by tenant.",
		}, []string{"tenant"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.accepted, s.rejected, s.latency, s.sigFailures, s.limited} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("ingest metrics: %w", err)
			}
		}
	}
	return s, nil
}

// errBusy means too many publishes are in flight.
var errBusy = errors.New("too many requests in flight")

// publish writes envelopes and returns once all are acknowledged.
func (s *Stage) publish(ctx context.Context, envs []*sgv1.RawEnvelope, keys [][]byte) error {
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	default:
		return errBusy
	}
	recs := make([]kafka.Record, len(envs))
	for i, env := range envs {
		b, err := proto.Marshal(env)
		if err != nil {
			return fmt.Errorf("marshal envelope: %w", err)
		}
		recs[i] = kafka.Record{Topic: s.cfg.RawTopic, Key: keys[i], Value: b,
			Headers: map[string][]byte{kafka.HeaderTenant: []byte(env.GetTenant())}}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	return s.pub.Produce(ctx, recs...)
}

func (s *Stage) envelope(tenant string, src sgv1.Source, contentType string, payload []byte, headers map[string]string, remote string) *sgv1.RawEnvelope {
	now := s.cfg.Now()
	return &sgv1.RawEnvelope{
		EnvelopeId:  newEnvelopeID(now),
		Tenant:      tenant,
		Source:      src,
		ReceivedAt:  timestamppb.New(now),
		ContentType: contentType,
		Headers:     headers,
		Payload:     payload,
		RemoteAddr:  remote,
	}
}

// newEnvelopeID returns a time-ordered unique id: 48 bits of milliseconds
// and 80 random bits, hex encoded.
func newEnvelopeID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS entropy source failing is not recoverable
	}
	return hex.EncodeToString(b[:])
}

// BindFlags binds the stage's limits to flags and SENDGUARD_* variables.
func BindFlags(f *service.Flags, c *Config) {
	f.Int64(&c.MaxBodyBytes, "max-body-bytes", "SENDGUARD_MAX_BODY_BYTES", DefaultMaxBodyBytes, "largest request body accepted (413 above)")
	f.Int(&c.MaxEvents, "max-events", "SENDGUARD_MAX_EVENTS", 10000, "most events per NDJSON request or gRPC batch")
	f.Int(&c.MaxInFlight, "max-in-flight", "SENDGUARD_MAX_IN_FLIGHT", 512, "concurrent publishes before 429")
	f.Duration(&c.PublishTimeout, "publish-timeout", "SENDGUARD_PUBLISH_TIMEOUT", 10*time.Second, "how long a request waits for the broker before 503")
	f.Int(&c.TenantRate, "tenant-rate", "SENDGUARD_TENANT_RATE", DefaultTenantRate, "accepted events per second per tenant before 429 (negative: no limit)")
	f.Int(&c.TenantBurst, "tenant-burst", "SENDGUARD_TENANT_BURST", 0, "per-tenant burst in events (0: twice the rate)")
	f.Duration(&c.ConfirmTimeout, "sns-confirm-timeout", "SENDGUARD_SNS_CONFIRM_TIMEOUT", 10*time.Second, "timeout of the GET that confirms an SNS subscription")
}
