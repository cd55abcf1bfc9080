// Package envoyrls serves Envoy's rate limit service API
// (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit) from the
// permission check, so that Envoy, and any client written for an
// Envoy-style rate limit service, can ask Sendguard "may I send this now?".
//
// # Request mapping
//
// Each descriptor of the request is one message: its entries with keys
// "sender", "recipient", "campaign" and "variant" fill a CheckRequest
// (other keys are ignored, so descriptors may carry extra context), and the
// descriptor's hits_addend, else the request's, is the count (0 means 1).
// A descriptor with neither sender nor recipient is an InvalidArgument
// error: the client's descriptors are misconfigured.
//
// The tenant comes from the caller's API key — metadata
// "authorization: Bearer KEY" or "x-api-key", exactly as PermissionService —
// never from the request: the domain and descriptors are data the client
// chooses, and a tenant taken from them would let one tenant's key ask about
// (and consume the caps of) another. In Envoy the key goes into the rate
// limit cluster's grpc_service.initial_metadata. No key, or an unknown one,
// is Unauthenticated.
//
// The domain must be Config.Domain ("sendguard"); as in
// envoyproxy/ratelimit, a domain the service has no limits for is answered
// OK without a check.
//
// # Response mapping
//
// ALLOW is OK; DENY and DEFER are OVER_LIMIT (there is no "deferred" code in
// the API). Per descriptor the status carries the code and, for DEFER,
// duration_until_reset = retry_after. When any descriptor is over the limit
// the response adds headers for the downstream client —
// x-sendguard-verdict (DENY or DEFER), x-sendguard-reason (the first
// reason, one line), retry-after (seconds, DEFER only) — and raw_body holds
// the CheckResponses as JSON.
package envoyrls

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sendguard/sendguard/pkg/auth"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Checker answers a permission check for a tenant. It must not fail: an
// unreachable backend answers DEFER.
type Checker interface {
	Check(ctx context.Context, tenant string, req *sgv1.CheckRequest) *sgv1.CheckResponse
}

// Header names added to OVER_LIMIT responses.
const (
	HeaderVerdict    = "x-sendguard-verdict"
	HeaderReason     = "x-sendguard-reason"
	HeaderRetryAfter = "retry-after"
)

// Descriptor entry keys understood.
const (
	KeySender    = "sender"
	KeyRecipient = "recipient"
	KeyCampaign  = "campaign"
	KeyVariant   = "variant"
)

// DefaultDomain is the rate limit domain answered when Config.Domain is empty.
const DefaultDomain = "sendguard"

// Config configures the service.
type Config struct {
	// Domain is the rate limit domain answered (DefaultDomain).
	Domain string
	// Keys resolves the caller's API key to its tenant (required).
	Keys *auth.Keys
	// Registerer may be nil.
	Registerer prometheus.Registerer
}

// Service implements RateLimitService.
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer
	cfg      Config
	checker  Checker
	requests *prometheus.CounterVec
}

var _ rlsv3.RateLimitServiceServer = (*Service)(nil)

// New returns the service.
func New(cfg Config, checker Checker) (*Service, error) {
	if cfg.Keys == nil {
		return nil, errors.New("envoy rls: keys are required")
	}
	if checker == nil {
		return nil, errors.New("envoy rls: checker is required")
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	s := &Service{cfg: cfg, checker: checker, requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sendguard_envoy_rls_requests_total",
		Help: "ShouldRateLimit calls by overall code (OK, OVER_LIMIT, unknown_domain, invalid, unauthenticated).",
	}, []string{"code"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.requests); err != nil {
			return nil, fmt.Errorf("envoy rls metrics: %w", err)
		}
	}
	return s, nil
}

// Register registers the service on srv.
func (s *Service) Register(srv grpc.ServiceRegistrar) { rlsv3.RegisterRateLimitServiceServer(srv, s) }

// ShouldRateLimit answers for every descriptor (see the package doc).
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	tenant, err := s.cfg.Keys.TenantFromGRPC(ctx)
	if err != nil {
		s.requests.WithLabelValues("unauthenticated").Inc()
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if req.GetDomain() != s.cfg.Domain {
		s.requests.WithLabelValues("unknown_domain").Inc()
		return &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}, nil
	}
	checks, err := CheckRequests(req)
	if err != nil {
		s.requests.WithLabelValues("invalid").Inc()
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	answers := make([]*sgv1.CheckResponse, len(checks))
	for i, c := range checks {
		answers[i] = s.checker.Check(ctx, tenant, c)
	}
	resp := Response(answers)
	s.requests.WithLabelValues(resp.GetOverallCode().String()).Inc()
	return resp, nil
}

// CheckRequests maps the descriptors of req to one CheckRequest each.
func CheckRequests(req *rlsv3.RateLimitRequest) ([]*sgv1.CheckRequest, error) {
	if len(req.GetDescriptors()) == 0 {
		return nil, errors.New("no descriptors")
	}
	out := make([]*sgv1.CheckRequest, 0, len(req.GetDescriptors()))
	for i, d := range req.GetDescriptors() {
		c := &sgv1.CheckRequest{}
		for _, e := range d.GetEntries() {
			v := strings.TrimSpace(e.GetValue())
			switch e.GetKey() {
			case KeySender:
				c.Sender = v
			case KeyRecipient:
				c.Recipient = v
			case KeyCampaign:
				c.Campaign = v
			case KeyVariant:
				c.Variant = v
			}
		}
		if c.Sender == "" && c.Recipient == "" {
			return nil, fmt.Errorf("descriptor %d: no %q or %q entry", i, KeySender, KeyRecipient)
		}
		hits := uint64(req.GetHitsAddend())
		if h := d.GetHitsAddend(); h != nil {
			hits = h.GetValue()
		}
		c.Count = int32(min(hits, math.MaxInt32))
		out = append(out, c)
	}
	return out, nil
}

// Response maps the Check answers, one per descriptor in order, to the rate
// limit response.
func Response(answers []*sgv1.CheckResponse) *rlsv3.RateLimitResponse {
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}
	var first *sgv1.CheckResponse // the first answer over the limit
	var retry time.Duration
	for _, a := range answers {
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		if a.GetVerdict() != sgv1.Verdict_VERDICT_ALLOW {
			st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
			if first == nil {
				first = a
			}
			if a.GetVerdict() == sgv1.Verdict_VERDICT_DEFER && a.GetRetryAfter() != nil {
				st.DurationUntilReset = a.GetRetryAfter()
				retry = max(retry, a.GetRetryAfter().AsDuration())
			}
		}
		resp.Statuses = append(resp.Statuses, st)
	}
	if first == nil {
		return resp
	}
	verdict := strings.TrimPrefix(first.GetVerdict().String(), "VERDICT_")
	resp.ResponseHeadersToAdd = []*corev3.HeaderValue{
		{Key: HeaderVerdict, Value: verdict},
		{Key: HeaderReason, Value: reasonLine(first)},
	}
	if retry > 0 {
		secs := int64(math.Ceil(retry.Seconds()))
		resp.ResponseHeadersToAdd = append(resp.ResponseHeadersToAdd,
			&corev3.HeaderValue{Key: HeaderRetryAfter, Value: strconv.FormatInt(secs, 10)})
	}
	body := &sgv1.CheckBatchResponse{Responses: answers}
	if b, err := protojson.Marshal(body); err == nil {
		resp.RawBody = b
	}
	return resp
}

// reasonLine is the first reason as one printable-ASCII line (a header value).
func reasonLine(a *sgv1.CheckResponse) string {
	if len(a.GetReasons()) == 0 {
		return ""
	}
	r := a.GetReasons()[0]
	s := r.GetDetail()
	if s == "" {
		s = r.GetRule()
	}
	if r.GetLevel() != "" && r.GetTarget() != "" {
		s += " (" + r.GetLevel() + " " + r.GetTarget() + ")"
	}
	b := make([]byte, 0, min(len(s), 256))
	for i := 0; i < len(s) && len(b) < 256; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}
