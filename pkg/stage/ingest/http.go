package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/webhooksig"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// webhookSources maps /v1/webhooks/{provider} to a source.
var webhookSources = map[string]sgv1.Source{
	"ses":       sgv1.Source_SOURCE_SES,
	"sendgrid":  sgv1.Source_SOURCE_SENDGRID,
	"mailgun":   sgv1.Source_SOURCE_MAILGUN,
	"postmark":  sgv1.Source_SOURCE_POSTMARK,
	"sparkpost": sgv1.Source_SOURCE_SPARKPOST,
}

// keptHeaders are the request headers recorded in the envelope: what
// parsing, signature verification and audit need, never credentials.
var keptHeaders = []string{
	"Content-Type", "User-Agent",
	"X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp",
	"X-Amz-Sns-Message-Type", "X-Amz-Sns-Message-Id", "X-Amz-Sns-Topic-Arn", "X-Amz-Sns-Subscription-Arn",
	"X-Messagesystems-Batch-Id", "X-Mailgun-Signature",
}

// Routes registers the ingest endpoints of ARCHITECTURE.md on mux.
func (s *Stage) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/events", s.serve("events", s.events))
	for name, src := range webhookSources {
		s.route(mux, "webhooks/"+name, src)
	}
	s.route(mux, "feedback/arf", sgv1.Source_SOURCE_ARF)
	s.route(mux, "bounces/dsn", sgv1.Source_SOURCE_DSN)
	s.route(mux, "postmaster", sgv1.Source_SOURCE_POSTMASTER)
}

func (s *Stage) route(mux *http.ServeMux, endpoint string, src sgv1.Source) {
	mux.HandleFunc("POST /v1/"+endpoint, s.serve(endpoint, s.raw(endpoint, src)))
}

// httpError is a refusal with its status code and JSON body.
type httpError struct {
	code       int
	reason     string // metric label
	msg, field string
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.msg }

func badRequest(err error) *httpError {
	he := &httpError{code: http.StatusBadRequest, reason: "invalid", msg: err.Error()}
	var fe *canonical.FieldError
	if errors.As(err, &fe) {
		he.field = fe.Field
	}
	return he
}

// accepted is the 202 body.
type accepted struct {
	Accepted    int      `json:"accepted"`
	EnvelopeIDs []string `json:"envelope_ids"`
}

// reply is a handler's answer: status, JSON body, and the number of items
// accepted (for metrics).
type reply struct {
	code     int
	body     any
	accepted int
}

type handlerFunc func(r *http.Request, tenant string, body []byte) (*reply, *httpError)

// apiKey returns the request's API key: "Authorization: Bearer KEY", else
// the "key" query parameter, else the password of HTTP basic auth. The
// query parameter comes before basic auth so that a webhook whose basic
// auth carries the provider's own credentials (Postmark, SparkPost) can
// give the key in its URL.
func apiKey(r *http.Request) string {
	if key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(key)
	}
	if key := r.URL.Query().Get("key"); key != "" {
		return key
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return ""
}

func (s *Stage) serve(endpoint string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := http.StatusAccepted
		defer func() {
			s.latency.WithLabelValues(endpoint, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
		}()
		tenant, err := s.keys.Tenant(apiKey(r))
		if err != nil {
			reason := "no_credentials"
			if errors.Is(err, auth.ErrUnknownKey) {
				reason = "unknown_key"
			}
			code = s.fail(w, endpoint, "", &httpError{code: http.StatusUnauthorized, reason: reason, msg: err.Error()})
			return
		}
		body, herr := s.readBody(w, r)
		if herr != nil {
			code = s.fail(w, endpoint, tenant, herr)
			return
		}
		res, herr := h(r, tenant, body)
		if herr != nil {
			code = s.fail(w, endpoint, tenant, herr)
			return
		}
		code = res.code
		if res.accepted > 0 {
			s.accepted.WithLabelValues(endpoint, tenant).Add(float64(res.accepted))
		}
		writeJSON(w, res.code, res.body)
	}
}

func (s *Stage) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, &httpError{code: http.StatusRequestEntityTooLarge, reason: "too_large",
			msg: fmt.Sprintf("body of %d bytes exceeds %d", r.ContentLength, s.cfg.MaxBodyBytes)}
	}
	// Sized from Content-Length when there is one: io.ReadAll would grow
	// from 512 bytes, copying a large batch's body a dozen times.
	buf := bytes.NewBuffer(make([]byte, 0, max(r.ContentLength, 0)+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	body := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{code: http.StatusRequestEntityTooLarge, reason: "too_large",
				msg: fmt.Sprintf("body exceeds %d bytes", s.cfg.MaxBodyBytes)}
		}
		return nil, &httpError{code: http.StatusBadRequest, reason: "read", msg: "read body: " + err.Error()}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &httpError{code: http.StatusBadRequest, reason: "empty", msg: "empty body"}
	}
	return body, nil
}

func (s *Stage) fail(w http.ResponseWriter, endpoint, tenant string, e *httpError) int {
	s.rejected.WithLabelValues(endpoint, tenant, e.reason).Inc()
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.retryAfter.Seconds()+0.999)))
	}
	if e.code >= 500 || e.code == http.StatusTooManyRequests {
		s.logger.Warn("ingest refused", zap.String("endpoint", endpoint), zap.String("tenant", tenant),
			zap.Int("code", e.code), zap.String("reason", e.reason), zap.String("error", e.msg))
	}
	body := map[string]string{"error": e.msg}
	if e.field != "" {
		body["field"] = e.field
	}
	writeJSON(w, e.code, body)
	return e.code
}

// events accepts one canonical JSON event or NDJSON. Every line is decoded
// and validated first (a bad line refuses the request, naming it). A single
// event becomes one envelope holding its exact bytes (application/json),
// keyed tenant|event_id. The events of NDJSON lines, already decoded, are
// published as length-delimited protobuf (canonical.DelimitedEventsContentType,
// the form of IngestService's events) in envelopes of consecutive events of
// at most maxEventsEnvelope bytes, keyed tenant|envelope_id, so the
// normalizer decodes protobuf instead of the JSON again; sg.events.v1 is
// keyed by event id whatever the envelope. Before, NDJSON envelopes held the
// lines' JSON (application/x-ndjson): the normalizer still reads those, and
// an oversized event whose protobuf form would outgrow its line still
// travels that way (see eventPayloads).
func (s *Stage) events(r *http.Request, tenant string, body []byte) (*reply, *httpError) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var lines [][]byte
	ndjson := mt == "application/x-ndjson" || mt == "application/jsonl" || mt == "application/ndjson"
	if ndjson {
		for _, line := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				lines = append(lines, bytes.TrimRight(line, "\r"))
			}
		}
	} else {
		lines = [][]byte{body}
	}
	if len(lines) > s.cfg.MaxEvents {
		return nil, &httpError{code: http.StatusRequestEntityTooLarge, reason: "too_many_events",
			msg: fmt.Sprintf("%d events exceed the limit of %d per request", len(lines), s.cfg.MaxEvents)}
	}
	now := s.cfg.Now()
	evs := make([]*sgv1.Event, len(lines))
	for i, line := range lines {
		ev, err := canonical.Decode(line)
		if err == nil {
			err = canonical.ValidateAt(ev, now)
		}
		if err == nil && ev.GetTenant() != "" && ev.GetTenant() != tenant {
			err = &canonical.FieldError{Field: "tenant", Msg: "does not match the API key's tenant"}
		}
		if err != nil {
			he := badRequest(err)
			if len(lines) > 1 {
				he.msg = fmt.Sprintf("line %d: %s", i+1, he.msg)
			}
			if he.field == "tenant" {
				he.code, he.reason = http.StatusForbidden, "tenant_mismatch"
			}
			return nil, he
		}
		evs[i] = ev
	}
	var envs []*sgv1.RawEnvelope
	var keys [][]byte
	if ndjson {
		payloads, err := eventPayloads(evs, lines, maxEventsEnvelope)
		if err != nil {
			he := badRequest(err)
			var ee *encodeError
			if errors.As(err, &ee) {
				he.msg = fmt.Sprintf("line %d: %v", ee.index+1, ee.err)
			}
			return nil, he
		}
		for _, p := range payloads {
			ct := canonical.DelimitedEventsContentType
			if p.json {
				ct = "application/x-ndjson"
			}
			env := s.envelope(tenant, sgv1.Source_SOURCE_GENERIC, ct, p.data, nil, r.RemoteAddr)
			envs, keys = append(envs, env), append(keys, topics.Key(tenant, env.GetEnvelopeId()))
		}
	} else {
		env := s.envelope(tenant, sgv1.Source_SOURCE_GENERIC, "application/json", lines[0], nil, r.RemoteAddr)
		id := evs[0].GetEventId()
		if id == "" {
			id = env.GetEnvelopeId()
		}
		envs, keys = append(envs, env), append(keys, topics.Key(tenant, id))
	}
	res, herr := s.publishHTTP(r, tenant, envs, keys, len(lines))
	if res != nil {
		// Accepted counts events here, however many envelopes hold them.
		res.body.(*accepted).Accepted, res.accepted = len(lines), len(lines)
	}
	return res, herr
}

// raw accepts a provider payload unchanged as one envelope, after the
// tenant's signature check for the provider when it configured one.
func (s *Stage) raw(endpoint string, src sgv1.Source) handlerFunc {
	return func(r *http.Request, tenant string, body []byte) (*reply, *httpError) {
		v, herr := s.verify(r, endpoint, tenant, src, body)
		if herr != nil {
			return nil, herr
		}
		if v.sns != nil && v.sns.Type != webhooksig.SNSNotification {
			return s.snsHousekeeping(r, tenant, v.sns, v.snsConf)
		}
		if src == sgv1.Source_SOURCE_SES && v.snsConf == nil {
			s.warnUnverifiedConfirmation(tenant, body)
		}
		headers := make(map[string]string)
		for _, h := range keptHeaders {
			if hv := r.Header.Get(h); hv != "" {
				headers[strings.ToLower(h)] = hv
			}
		}
		env := s.envelope(tenant, src, r.Header.Get("Content-Type"), body, headers, r.RemoteAddr)
		events := 1
		if s.validate != nil {
			n, err := s.validate(env)
			if err != nil {
				v.undo()
				return nil, badRequest(err)
			}
			events = max(n, 1)
		}
		res, herr := s.publishHTTP(r, tenant, []*sgv1.RawEnvelope{env}, [][]byte{topics.Key(tenant, env.GetEnvelopeId())}, events)
		if herr != nil {
			v.undo()
		}
		return res, herr
	}
}

// publishHTTP applies the tenant's rate limit to events, then publishes
// envs and answers 202 once the broker acknowledged all of them.
func (s *Stage) publishHTTP(r *http.Request, tenant string, envs []*sgv1.RawEnvelope, keys [][]byte, events int) (*reply, *httpError) {
	if wait := s.limits.take(tenant, events, s.cfg.Now()); wait > 0 {
		s.limited.WithLabelValues(tenant).Add(float64(events))
		return nil, &httpError{code: http.StatusTooManyRequests, reason: "rate_limited", retryAfter: wait,
			msg: fmt.Sprintf("tenant rate limit of %d events/s exceeded; retry after %s", s.cfg.TenantRate, wait.Round(time.Millisecond))}
	}
	if err := s.publish(r.Context(), envs, keys); err != nil {
		s.limits.refund(tenant, events, s.cfg.Now())
		if errors.Is(err, errBusy) {
			return nil, &httpError{code: http.StatusTooManyRequests, reason: "busy", msg: err.Error(), retryAfter: time.Second}
		}
		s.logger.Warn("publish", zap.Int("envelopes", len(envs)), zap.Error(err))
		return nil, &httpError{code: http.StatusServiceUnavailable, reason: "unavailable",
			msg: "not accepted: the event log did not acknowledge the request; retry", retryAfter: 2 * time.Second}
	}
	res := &accepted{Accepted: len(envs)}
	for _, e := range envs {
		res.EnvelopeIDs = append(res.EnvelopeIDs, e.GetEnvelopeId())
	}
	return &reply{code: http.StatusAccepted, body: res, accepted: len(envs)}, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
