package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Check is a readiness dependency check, e.g. a Kafka or ClickHouse ping.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Prober tracks liveness and readiness. Healthy is set when the admin server
// starts; Ready only after every readiness check passed once and the
// service declared itself ready; NotReady is set before draining.
type Prober struct {
	healthy atomic.Bool
	ready   atomic.Bool
	mu      sync.Mutex
	checks  []Check
}

// NewProber returns a prober with readiness checks.
func NewProber(checks ...Check) *Prober { return &Prober{checks: checks} }

// AddCheck adds a readiness check.
func (p *Prober) AddCheck(c Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checks = append(p.checks, c)
}

// Healthy marks the process alive.
func (p *Prober) Healthy() { p.healthy.Store(true) }

// Ready marks the service ready (subject to its checks).
func (p *Prober) Ready() { p.ready.Store(true) }

// NotReady marks the service not ready (draining).
func (p *Prober) NotReady() { p.ready.Store(false) }

// IsHealthy reports liveness.
func (p *Prober) IsHealthy() bool { return p.healthy.Load() }

// CheckReady returns nil when the service is ready and every check passes.
func (p *Prober) CheckReady(ctx context.Context) error {
	if !p.ready.Load() {
		return errors.New("not ready")
	}
	p.mu.Lock()
	checks := append([]Check(nil), p.checks...)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, c := range checks {
		if err := c.Fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return nil
}
