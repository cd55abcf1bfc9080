// Package ingest is the ingest stage: HTTP and gRPC intake that turns each
// accepted request into raw envelopes on the raw topic. It answers 202 (or
// ACCEPTED) only after the broker acknowledged every envelope of the request
// with acks=all; when the broker does not, the caller gets 503 with
// Retry-After and must retry (downstream deduplicates by event id).
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Publisher writes records durably (acks=all); *kafka.Producer implements it.
type Publisher interface {
	Produce(ctx context.Context, records ...kafka.Record) error
}

// Validator checks a raw envelope before it is accepted, so bad input gets
// a 4xx at the edge rather than a dead letter later. It returns a
// *canonical.FieldError or any error whose text explains the problem.
type Validator func(env *sgv1.RawEnvelope) error

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
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 5 << 20
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

	accepted *prometheus.CounterVec
	rejected *prometheus.CounterVec
	latency  *prometheus.HistogramVec
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
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.accepted, s.rejected, s.latency} {
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
	f.Int64(&c.MaxBodyBytes, "max-body-bytes", "SENDGUARD_MAX_BODY_BYTES", 5<<20, "largest request body accepted (413 above)")
	f.Int(&c.MaxEvents, "max-events", "SENDGUARD_MAX_EVENTS", 10000, "most events per NDJSON request or gRPC batch")
	f.Int(&c.MaxInFlight, "max-in-flight", "SENDGUARD_MAX_IN_FLIGHT", 512, "concurrent publishes before 429")
	f.Duration(&c.PublishTimeout, "publish-timeout", "SENDGUARD_PUBLISH_TIMEOUT", 10*time.Second, "how long a request waits for the broker before 503")
}
