// Package drive sends loadgen traffic to a running Sendguard and measures
// it: HTTP NDJSON, gRPC PublishStream or raw envelopes straight to Kafka
// (Load); the pipeline benchmark with detection latency, exactly-once
// accounting and consumer lag (Pipeline); and PermissionService.Check load
// (Checks). It is the transport shell around the pure loadgen package; sgctl
// load and sgctl bench are thin flag parsers over it.
package drive

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Sink delivers one batch of events of one tenant and reports how many were
// accepted. A *RetryableError means nothing (or not everything) was
// acknowledged and the same batch may be sent again (ids make it
// idempotent); any other error means the batch was refused as invalid.
type Sink interface {
	Send(ctx context.Context, tenant string, evs []*sgv1.Event) (accepted int, err error)
	Close() error
}

// RetryableError is a refusal the caller should retry after After.
type RetryableError struct {
	After time.Duration
	Err   error
}

func (e *RetryableError) Error() string { return "retryable: " + e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Keys maps tenants to API keys. The empty tenant is the key used for events
// without a tenant (ingest takes the tenant from the key).
type Keys map[string]string

// ParseKeys parses "KEY" (one key, events without tenant) or
// "tenant:KEY,tenant2:KEY2".
func ParseKeys(s string) (Keys, error) {
	k := Keys{}
	if s == "" {
		return nil, errors.New("no API key")
	}
	if !strings.Contains(s, ":") {
		k[""] = s
		return k, nil
	}
	for _, part := range strings.Split(s, ",") {
		t, key, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || t == "" || key == "" {
			return nil, fmt.Errorf("api key %q: want tenant:KEY", part)
		}
		k[t] = key
	}
	return k, nil
}

// Tenants returns the tenants of k (nil for a single tenantless key).
func (k Keys) Tenants() []string {
	var out []string
	for t := range k {
		if t != "" {
			out = append(out, t)
		}
	}
	sortStrings(out)
	return out
}

func (k Keys) key(tenant string) (string, error) {
	if v, ok := k[tenant]; ok {
		return v, nil
	}
	if v, ok := k[""]; ok {
		return v, nil
	}
	return "", fmt.Errorf("no API key for tenant %q", tenant)
}

// SinkOption configures a sink's transport.
type SinkOption func(*sinkOptions)

type sinkOptions struct {
	tls *tls.Config
}

// WithTLS makes the sink connect over TLS with cfg (server verification
// and, for mTLS, a client certificate); nil keeps plaintext.
func WithTLS(cfg *tls.Config) SinkOption { return func(o *sinkOptions) { o.tls = cfg } }

func applySinkOptions(opts []SinkOption) sinkOptions {
	var o sinkOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// GRPCCredentials returns the dial option for cfg: TLS, or plaintext when
// cfg is nil.
func GRPCCredentials(cfg *tls.Config) grpc.DialOption {
	if cfg == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

// HTTPSink posts NDJSON batches to POST /v1/events.
type HTTPSink struct {
	base   string
	keys   Keys
	client *http.Client
	// bytesPerEvent is the last body's size per event, to size the next.
	bytesPerEvent atomic.Int64
}

// NewHTTPSink returns a sink for the ingest HTTP address (host:port or
// URL; a bare address is https:// with WithTLS, http:// otherwise).
func NewHTTPSink(addr string, keys Keys, conns int, opts ...SinkOption) *HTTPSink {
	o := applySinkOptions(opts)
	base := addr
	if !strings.Contains(base, "://") {
		scheme := "http://"
		if o.tls != nil {
			scheme = "https://"
		}
		base = scheme + base
	}
	// HTTP/1.1 over TLS as in plaintext: conns connections decrypt in
	// parallel on the server, where one HTTP/2 connection would not.
	tr := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: 30 * time.Second,
		TLSClientConfig: o.tls}
	return &HTTPSink{base: strings.TrimRight(base, "/"), keys: keys, client: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// Send implements Sink.
func (s *HTTPSink) Send(ctx context.Context, tenant string, evs []*sgv1.Event) (int, error) {
	key, err := s.keys.key(tenant)
	if err != nil {
		return 0, err
	}
	body := make([]byte, 0, int64(len(evs))*(s.bytesPerEvent.Load()+16))
	for _, ev := range evs {
		if body, err = canonical.AppendMarshal(body, ev); err != nil {
			return 0, fmt.Errorf("marshal %s: %w", ev.GetEventId(), err)
		}
		body = append(body, '\n')
	}
	if len(evs) > 0 {
		s.bytesPerEvent.Store(int64(len(body) / len(evs)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, &RetryableError{After: 500 * time.Millisecond, Err: fmt.Errorf("post: %w", err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusAccepted:
		var a struct{ Accepted int }
		if err := json.Unmarshal(b, &a); err != nil {
			return 0, fmt.Errorf("202 body %q: %w", b, err)
		}
		return a.Accepted, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		after := time.Second
		if d, err := time.ParseDuration(resp.Header.Get("Retry-After") + "s"); err == nil {
			after = d
		}
		return 0, &RetryableError{After: after, Err: fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))}
	default:
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
}

// Close implements Sink.
func (s *HTTPSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// GRPCSink publishes batches over IngestService.PublishStream: one stream
// per batch, in chunks of Chunk items, acknowledged when the stream closes.
type GRPCSink struct {
	conn  *grpc.ClientConn
	cli   sgv1.IngestServiceClient
	keys  Keys
	Chunk int
}

// NewGRPCSink dials addr (plaintext unless WithTLS).
func NewGRPCSink(addr string, keys Keys, opts ...SinkOption) (*GRPCSink, error) {
	conn, err := grpc.NewClient(addr, GRPCCredentials(applySinkOptions(opts).tls))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &GRPCSink{conn: conn, cli: sgv1.NewIngestServiceClient(conn), keys: keys, Chunk: 500}, nil
}

// Send implements Sink.
func (s *GRPCSink) Send(ctx context.Context, tenant string, evs []*sgv1.Event) (int, error) {
	key, err := s.keys.key(tenant)
	if err != nil {
		return 0, err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	stream, err := s.cli.PublishStream(ctx)
	if err != nil {
		return 0, &RetryableError{After: 500 * time.Millisecond, Err: fmt.Errorf("publish stream: %w", err)}
	}
	for i := 0; i < len(evs); i += s.Chunk {
		req := &sgv1.PublishStreamRequest{}
		for _, ev := range evs[i:min(i+s.Chunk, len(evs))] {
			req.Items = append(req.Items, &sgv1.PublishItem{Item: &sgv1.PublishItem_Event{Event: ev}})
		}
		if err := stream.Send(req); err != nil {
			break // the error comes with CloseAndRecv
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return 0, &RetryableError{After: 500 * time.Millisecond, Err: fmt.Errorf("publish stream: %w", err)}
	}
	var unavailable int
	var invalid error
	for _, r := range resp.GetResults() {
		switch r.GetStatus() {
		case sgv1.ItemStatus_ITEM_STATUS_UNAVAILABLE:
			unavailable++
		case sgv1.ItemStatus_ITEM_STATUS_INVALID:
			if invalid == nil {
				invalid = fmt.Errorf("item %d: %s", r.GetIndex(), r.GetError())
			}
		}
	}
	if unavailable > 0 {
		return int(resp.GetAccepted()), &RetryableError{After: time.Second, Err: fmt.Errorf("%d items unavailable", unavailable)}
	}
	return int(resp.GetAccepted()), invalid
}

// Close implements Sink.
func (s *GRPCSink) Close() error { return s.conn.Close() }

// KafkaSink writes raw envelopes to sg.raw.v1 exactly as ingest does for
// the generic endpoint: one envelope per event holding its canonical JSON,
// keyed tenant|event_id, with the tenant header. Events need a tenant.
type KafkaSink struct {
	p   *kafka.Producer
	now func() time.Time
}

// NewKafkaSink returns a sink writing to brokers.
func NewKafkaSink(brokers []string) (*KafkaSink, error) {
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, BatchSize: 5000}, nil)
	if err != nil {
		return nil, err
	}
	return &KafkaSink{p: p, now: time.Now}, nil
}

// Send implements Sink.
func (s *KafkaSink) Send(ctx context.Context, tenant string, evs []*sgv1.Event) (int, error) {
	if tenant == "" {
		return 0, errors.New("kafka sink: events need a tenant")
	}
	now := s.now()
	recs := make([]kafka.Record, len(evs))
	var line []byte // reused: proto.Marshal copies the payload
	for i, ev := range evs {
		var err error
		if line, err = canonical.AppendMarshal(line[:0], ev); err != nil {
			return 0, fmt.Errorf("marshal %s: %w", ev.GetEventId(), err)
		}
		env := &sgv1.RawEnvelope{
			EnvelopeId: envelopeID(now), Tenant: tenant, Source: sgv1.Source_SOURCE_GENERIC,
			ReceivedAt: timestamppb.New(now), ContentType: "application/json", Payload: line,
		}
		b, err := proto.Marshal(env)
		if err != nil {
			return 0, fmt.Errorf("marshal envelope: %w", err)
		}
		recs[i] = kafka.Record{Topic: topics.Raw, Key: topics.Key(tenant, ev.GetEventId()), Value: b,
			Headers: map[string][]byte{kafka.HeaderTenant: []byte(tenant)}}
	}
	if err := s.p.Produce(ctx, recs...); err != nil {
		return 0, &RetryableError{After: time.Second, Err: err}
	}
	return len(evs), nil
}

// Close implements Sink.
func (s *KafkaSink) Close() error { return s.p.Close() }

// envelopeID is ingest's id form: 48 bits of milliseconds, 80 random bits.
func envelopeID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
