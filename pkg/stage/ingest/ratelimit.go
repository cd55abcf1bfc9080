package ingest

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per tenant over accepted events: each bucket
// holds up to burst tokens and refills at rate per second. It is pure: the
// caller passes the time.
type limiter struct {
	rate, burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newLimiter returns a limiter, or nil (no limit) when rate ≤ 0.
func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = int(math.Ceil(rate))
	}
	return &limiter{rate: rate, burst: float64(burst), buckets: make(map[string]*bucket)}
}

// cost is what n events take from a bucket: a request larger than the
// burst costs the whole burst, so it can still pass once the bucket is full
// (the body and event limits bound it).
func (l *limiter) cost(n int) float64 { return math.Min(float64(n), l.burst) }

// take removes the tokens for n events at now and returns 0, or, when the
// bucket does not hold them, takes nothing and returns how long until it
// will.
func (l *limiter) take(tenant string, n int, now time.Time) time.Duration {
	if l == nil || n <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(tenant, now)
	c := l.cost(n)
	if b.tokens >= c {
		b.tokens -= c
		return 0
	}
	wait := time.Duration((c - b.tokens) / l.rate * float64(time.Second))
	return max(wait, time.Millisecond)
}

// refund gives back the tokens of n events that were taken but not
// accepted (the broker refused them).
func (l *limiter) refund(tenant string, n int, now time.Time) {
	if l == nil || n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(tenant, now)
	b.tokens = math.Min(l.burst, b.tokens+l.cost(n))
}

func (l *limiter) refill(tenant string, now time.Time) *bucket {
	b, ok := l.buckets[tenant]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[tenant] = b
		return b
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt.Seconds()*l.rate)
		b.last = now
	}
	return b
}
