package postfix

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config configures a Server.
type Config struct {
	Mapping
	// Limits bound one request (4096-byte lines, 128 attributes; Postfix
	// sends about 30 short attributes).
	Limits
	// IdleTimeout closes a connection with no request for this long (5 min;
	// Postfix's smtpd_policy_service_max_idle is 300 s).
	IdleTimeout time.Duration
	// RequestTimeout bounds reading the rest of a started request and
	// writing its reply (10 s).
	RequestTimeout time.Duration
	// CheckTimeout bounds one Check (5 s; Postfix's own timeout is 100 s).
	CheckTimeout time.Duration
	// MaxConns bounds concurrent connections (1024); more are closed at once.
	MaxConns int
	// Logger may be nil; Registerer may be nil.
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Server serves the policy protocol. Serve and Shutdown are safe for
// concurrent use.
type Server struct {
	cfg     Config
	checker Checker
	logger  *zap.Logger

	requests *prometheus.CounterVec
	errs     *prometheus.CounterVec
	latency  prometheus.Histogram
	conns    prometheus.Gauge

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	active    map[*conn]struct{}
	closing   bool
	wg        sync.WaitGroup
}

type conn struct {
	c  net.Conn
	mu sync.Mutex
	// busy is true between reading a request's first line and writing its
	// reply; Shutdown closes idle connections at once and lets busy ones
	// answer first.
	busy bool
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("postfix policy server closed")

// New returns a server answering with checker. cfg.Tenant is required.
func New(cfg Config, checker Checker) (*Server, error) {
	if cfg.Tenant == "" {
		return nil, errors.New("postfix policy server: tenant is required")
	}
	if checker == nil {
		return nil, errors.New("postfix policy server: checker is required")
	}
	cfg.Mapping = cfg.Mapping.withDefaults()
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = 4096
	}
	if cfg.MaxAttrs <= 0 {
		cfg.MaxAttrs = 128
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 5 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	labels := prometheus.Labels{"tenant": cfg.Tenant}
	s := &Server{
		cfg: cfg, checker: checker, logger: cfg.Logger,
		listeners: map[net.Listener]struct{}{}, active: map[*conn]struct{}{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_postfix_policy_requests_total", ConstLabels: labels,
			Help: "Policy requests answered, by action (DUNNO, DEFER_IF_PERMIT, REJECT).",
		}, []string{"action"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_postfix_policy_errors_total", ConstLabels: labels,
			Help: "Connections closed on a protocol error or timeout, by kind.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sendguard_postfix_policy_seconds", ConstLabels: labels,
			Help:    "Time from a complete request to its reply written.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sendguard_postfix_policy_connections", ConstLabels: labels,
			Help: "Open policy connections.",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.errs, s.latency, s.conns} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("postfix policy metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown (ErrServerClosed) or an
// accept error. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("postfix policy accept: %w", err)
		}
		delay = 0
		c := &conn{c: nc}
		s.mu.Lock()
		if s.closing || len(s.active) >= s.cfg.MaxConns {
			s.mu.Unlock()
			s.errs.WithLabelValues("too_many_connections").Inc()
			_ = nc.Close()
			continue
		}
		s.active[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Shutdown stops accepting, closes idle connections, lets connections in
// the middle of a request write their reply, and waits for them until ctx
// ends, when it closes the rest (ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.active {
		c.mu.Lock()
		if !c.busy {
			_ = c.c.Close()
		}
		c.mu.Unlock()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.active {
			_ = c.c.Close()
		}
		s.mu.Unlock()
		<-done
		return fmt.Errorf("postfix policy shutdown: %w", ctx.Err())
	}
}

func (s *Server) serveConn(c *conn) {
	s.conns.Inc()
	defer func() {
		_ = c.c.Close()
		s.mu.Lock()
		delete(s.active, c)
		s.mu.Unlock()
		s.conns.Dec()
		s.wg.Done()
	}()
	r := NewReader(c.c, s.cfg.Limits)
	w := bufio.NewWriter(c.c)
	for {
		// Idle until the first byte of the next request.
		_ = c.c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if _, err := r.Peek(1); err != nil {
			s.countClose(err, false)
			return
		}
		if !c.setBusy(true, s) {
			return // shutting down: do not start a new request
		}
		_ = c.c.SetDeadline(time.Now().Add(s.cfg.RequestTimeout))
		req, err := ReadRequest(r, s.cfg.Limits)
		if err != nil {
			s.countClose(err, true)
			s.logger.Debug("policy connection closed", zap.Stringer("remote", c.c.RemoteAddr()), zap.Error(err))
			return
		}
		start := time.Now()
		reply := s.Answer(context.Background(), req)
		// Counted before the reply is written, so a client that has its
		// answer also sees it in the metrics.
		s.requests.WithLabelValues(reply.Verb()).Inc()
		if err := reply.Write(w); err == nil {
			err = w.Flush()
		}
		if err != nil {
			s.countClose(err, true)
			return
		}
		s.latency.Observe(time.Since(start).Seconds())
		if !c.setBusy(false, s) {
			return
		}
	}
}

// setBusy marks the connection busy or idle; it reports false when the
// server is shutting down and the connection must close.
func (c *conn) setBusy(busy bool, s *Server) bool {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if closing {
		return false
	}
	c.busy = busy
	return true
}

// countClose counts why a connection ended; a clean EOF between requests,
// or the idle timeout, is no error.
func (s *Server) countClose(err error, inRequest bool) {
	kind := ""
	switch {
	case errors.Is(err, io.EOF) && !inRequest:
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !inRequest {
			kind = "idle_timeout"
		} else {
			kind = "request_timeout"
		}
	case errors.Is(err, net.ErrClosed):
		return // Shutdown
	case errors.Is(err, ErrLineTooLong):
		kind = "line_too_long"
	case errors.Is(err, ErrTooManyAttrs):
		kind = "too_many_attributes"
	case errors.Is(err, ErrMalformedLine):
		kind = "malformed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		kind = "truncated"
	default:
		kind = "io"
	}
	s.errs.WithLabelValues(kind).Inc()
}

// Answer maps one request to its reply: DUNNO for requests not to check,
// else the Check's answer (see ReplyFor).
func (s *Server) Answer(ctx context.Context, req Request) Reply {
	cr := s.cfg.Mapping.CheckRequest(req)
	if cr == nil {
		return Reply{Action: ActionDunno}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	return ReplyFor(s.checker.Check(ctx, s.cfg.Tenant, cr))
}
