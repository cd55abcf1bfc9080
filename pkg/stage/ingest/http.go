package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/topics"
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
		mux.HandleFunc("POST /v1/webhooks/"+name, s.serve("webhooks/"+name, s.raw(src)))
	}
	mux.HandleFunc("POST /v1/feedback/arf", s.serve("feedback/arf", s.raw(sgv1.Source_SOURCE_ARF)))
	mux.HandleFunc("POST /v1/bounces/dsn", s.serve("bounces/dsn", s.raw(sgv1.Source_SOURCE_DSN)))
	mux.HandleFunc("POST /v1/postmaster", s.serve("postmaster", s.raw(sgv1.Source_SOURCE_POSTMASTER)))
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

type handlerFunc func(r *http.Request, tenant string, body []byte) (*accepted, *httpError)

func (s *Stage) serve(endpoint string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := http.StatusAccepted
		defer func() {
			s.latency.WithLabelValues(endpoint, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
		}()
		tenant, err := s.keys.TenantFromHTTP(r)
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
		s.accepted.WithLabelValues(endpoint, tenant).Add(float64(res.Accepted))
		writeJSON(w, http.StatusAccepted, res)
	}
}

func (s *Stage) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, &httpError{code: http.StatusRequestEntityTooLarge, reason: "too_large",
			msg: fmt.Sprintf("body of %d bytes exceeds %d", r.ContentLength, s.cfg.MaxBodyBytes)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
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
	if e.code >= 500 {
		s.logger.Warn("ingest refused", zap.String("endpoint", endpoint), zap.String("tenant", tenant), zap.String("error", e.msg))
	}
	body := map[string]string{"error": e.msg}
	if e.field != "" {
		body["field"] = e.field
	}
	writeJSON(w, e.code, body)
	return e.code
}

// events accepts one canonical JSON event or NDJSON; each event becomes one
// envelope holding that event's exact bytes.
func (s *Stage) events(r *http.Request, tenant string, body []byte) (*accepted, *httpError) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var lines [][]byte
	if mt == "application/x-ndjson" || mt == "application/jsonl" || mt == "application/ndjson" {
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
	envs := make([]*sgv1.RawEnvelope, len(lines))
	keys := make([][]byte, len(lines))
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
		envs[i] = s.envelope(tenant, sgv1.Source_SOURCE_GENERIC, "application/json", line, nil, r.RemoteAddr)
		id := ev.GetEventId()
		if id == "" {
			id = envs[i].GetEnvelopeId()
		}
		keys[i] = topics.Key(tenant, id)
	}
	return s.publishHTTP(r, envs, keys)
}

// raw accepts a provider payload unchanged as one envelope.
func (s *Stage) raw(src sgv1.Source) handlerFunc {
	return func(r *http.Request, tenant string, body []byte) (*accepted, *httpError) {
		headers := make(map[string]string)
		for _, h := range keptHeaders {
			if v := r.Header.Get(h); v != "" {
				headers[strings.ToLower(h)] = v
			}
		}
		env := s.envelope(tenant, src, r.Header.Get("Content-Type"), body, headers, r.RemoteAddr)
		if s.validate != nil {
			if err := s.validate(env); err != nil {
				return nil, badRequest(err)
			}
		}
		return s.publishHTTP(r, []*sgv1.RawEnvelope{env}, [][]byte{topics.Key(tenant, env.GetEnvelopeId())})
	}
}

func (s *Stage) publishHTTP(r *http.Request, envs []*sgv1.RawEnvelope, keys [][]byte) (*accepted, *httpError) {
	if err := s.publish(r.Context(), envs, keys); err != nil {
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
	return res, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
