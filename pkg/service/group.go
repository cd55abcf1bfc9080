package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/oklog/run"
	"go.uber.org/zap"
)

// Group runs long-lived actors (servers, consume loops, flushers); when the
// first returns, all are interrupted (oklog/run).
type Group struct {
	g      run.Group
	logger *zap.Logger
	// Grace bounds how long servers take to finish in-flight work.
	Grace time.Duration
}

// NewGroup returns an empty group.
func NewGroup(logger *zap.Logger) *Group { return &Group{logger: logger, Grace: 10 * time.Second} }

// Add adds an execute/interrupt pair.
func (g *Group) Add(execute func() error, interrupt func(error)) { g.g.Add(execute, interrupt) }

// AddContext adds an actor that runs until its context is cancelled; fn must
// return once ctx is done (after draining).
func (g *Group) AddContext(name string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	g.g.Add(func() error {
		if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}, func(error) { cancel() })
}

// AddSignals stops the group on SIGINT or SIGTERM, calling onSignal first
// (e.g. to set NotReady) — the first step of a graceful shutdown.
func (g *Group) AddSignals(onSignal func()) {
	ctx, cancel := context.WithCancel(context.Background())
	g.g.Add(func() error {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(c)
		select {
		case s := <-c:
			g.logger.Info("signal received, shutting down", zap.String("signal", s.String()))
			if onSignal != nil {
				onSignal()
			}
			return nil
		case <-ctx.Done():
			return nil
		}
	}, func(error) { cancel() })
}

// AddHTTP serves srv on ln until interrupted, then shuts it down gracefully.
func (g *Group) AddHTTP(name string, srv *http.Server, ln net.Listener) {
	g.g.Add(func() error {
		g.logger.Info("http listening", zap.String("server", name), zap.String("addr", ln.Addr().String()))
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s http: %w", name, err)
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), g.Grace)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			g.logger.Warn("http shutdown", zap.String("server", name), zap.Error(err))
		}
	})
}

// AddGRPC serves s on ln until interrupted, then stops it gracefully.
func (g *Group) AddGRPC(s *GRPCServer, ln net.Listener) {
	g.g.Add(func() error {
		g.logger.Info("grpc listening", zap.String("addr", ln.Addr().String()))
		if err := s.Serve(ln); err != nil {
			return fmt.Errorf("grpc: %w", err)
		}
		return nil
	}, func(error) { s.Shutdown(g.logger, g.Grace) })
}

// Run runs every actor and returns the first actor's error.
func (g *Group) Run() error { return g.g.Run() }

// Listen opens a TCP listener, naming the address in the error.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// Main runs run with a logger and exits non-zero once, from one place, when
// it fails (uber-go guide: exit in main, exit once).
func Main(logger *zap.Logger, run func() error) {
	err := run()
	_ = logger.Sync()
	if err != nil {
		logger.Error("exit", zap.Error(err))
		os.Exit(1)
	}
}

// NewHTTPServer returns an http.Server with sane timeouts for h.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}
