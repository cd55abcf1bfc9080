// Package notify posts alert commands to webhooks: the notifier consumes the
// control topic (its own consumer group), takes the alert commands (every
// pause, throttle and recovery, automatic or manual, is announced by one)
// and posts each as Slack-compatible JSON to the tenant's webhook URLs (or
// the default ones).
//
// # Delivery guarantee
//
// At least once per (alert, URL), with duplicates suppressed:
//
//   - Handle returns only after every URL of the alert answered 2xx (or the
//     alert was dead-lettered), and the consumer runner commits an offset
//     only after Handle returned, so a crash before delivery re-reads the
//     alert: nothing is lost.
//   - After a 2xx the key "command_id URL-hash" is marked in the Store
//     (FileStore: appended and fsynced) before Handle returns. A redelivered
//     record, a republished command or the same alert read again after a
//     restart is not posted again to a URL that already has it; an alert
//     with several URLs re-posts only to those that failed.
//   - The one remaining duplicate: a crash between a webhook's 2xx and the
//     mark (milliseconds). The command id is in every post's fields so a
//     receiver can drop that one too. With several notifier instances a
//     partition that moves between them keeps its committed offset; only
//     records read but not yet committed by the old owner (≤ 100 ms of
//     alerts) can be posted twice, because each instance has its own store.
//
// Retries: network errors, timeouts, 5xx and 429 are retried with
// exponential backoff (Retry-After honoured) up to Config.Attempts posts per
// URL; other 4xx answers are permanent. An alert that cannot be delivered
// is returned as a permanent error, which the runner sends to the
// dead-letter topic with the reason, so one broken webhook does not stall
// every tenant's alerts and nothing vanishes. Posts to one URL are rate
// limited (Config.Rate per second, Config.Burst), waiting rather than
// dropping.
package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/kafka"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Config tunes the notifier. Zero values mean the defaults.
type Config struct {
	Routes Routes
	// Attempts is how many posts one URL gets before the alert is
	// dead-lettered (10).
	Attempts int
	// Backoff is the first retry delay (500 ms), doubling up to MaxBackoff (30 s).
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one post (10 s).
	Timeout time.Duration
	// Rate is the posts per second allowed per URL (1, Slack's limit) with
	// bursts of Burst (5).
	Rate  float64
	Burst int
	// Clock is the clock of the rate limiter (time.Now).
	Clock func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Attempts <= 0 {
		c.Attempts = 10
	}
	if c.Backoff <= 0 {
		c.Backoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 1
	}
	if c.Burst <= 0 {
		c.Burst = 5
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Notifier delivers alert commands to webhooks. It is a kafka.Handler for
// the control topic and safe for concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client
	store  Store
	logger *zap.Logger

	limMu sync.Mutex
	lims  map[string]*bucket

	alerts   *prometheus.CounterVec
	posts    *prometheus.CounterVec
	latency  prometheus.Histogram
	throttle prometheus.Counter
}

var _ kafka.Handler = (*Notifier)(nil)

// New returns a notifier posting with client (nil: a default client) and
// remembering deliveries in store (nil: a MemoryStore). reg may be nil.
func New(cfg Config, client *http.Client, store Store, logger *zap.Logger, reg prometheus.Registerer) (*Notifier, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Routes.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{}
	}
	if store == nil {
		store = NewMemoryStore(0)
	}
	n := &Notifier{
		cfg: cfg, client: client, store: store, logger: logger, lims: make(map[string]*bucket),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_notify_alerts_total",
			Help: "Alerts per webhook URL by outcome: delivered, duplicate (already delivered), unrouted (no URL), failed (dead-lettered).",
		}, []string{"outcome"}),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sendguard_notify_posts_total",
			Help: "Webhook posts by result: 2xx, 4xx, 429, 5xx, error (network or timeout).",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sendguard_notify_post_seconds",
			Help:    "Webhook post latency.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		throttle: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sendguard_notify_rate_limited_total",
			Help: "Posts delayed by the per-URL rate limit.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{n.alerts, n.posts, n.latency, n.throttle} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("notify metrics: %w", err)
			}
		}
	}
	return n, nil
}

// Handle decodes a control-topic record and notifies it (Notify). An
// undecodable record is a permanent error.
func (n *Notifier) Handle(ctx context.Context, m kafka.Message) error {
	c := &sgv1.ControlCommand{}
	if err := proto.Unmarshal(m.Value(), c); err != nil {
		return kafka.Permanent("notify", fmt.Errorf("decode command: %w", err))
	}
	return n.Notify(ctx, c)
}

// Notify posts c to its tenant's webhook URLs when c is an alert; other
// commands, and alerts of tenants without a URL, are ignored. It returns
// nil when every URL has the alert (now or before), the context's error
// when ctx ended first (retry later), and a kafka.PermanentError naming the
// URLs (redacted) that rejected it or kept failing.
func (n *Notifier) Notify(ctx context.Context, c *sgv1.ControlCommand) error {
	if c.GetAction() != sgv1.Action_ACTION_ALERT {
		return nil
	}
	urls := n.cfg.Routes.For(c.GetScope().GetTenant())
	if len(urls) == 0 {
		n.alerts.WithLabelValues("unrouted").Inc()
		return nil
	}
	body, err := Body(c)
	if err != nil {
		return kafka.Permanent("notify", err)
	}
	var errs []error
	for _, u := range urls {
		key := ""
		if id := c.GetCommandId(); id != "" {
			key = deliveryKey(c.GetScope().GetTenant(), id, u)
			if n.store.Delivered(key) {
				n.alerts.WithLabelValues("duplicate").Inc()
				continue
			}
		}
		if err := n.deliver(ctx, u, body); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("alert %s: %w", c.GetCommandId(), ctx.Err())
			}
			n.alerts.WithLabelValues("failed").Inc()
			errs = append(errs, err)
			continue
		}
		n.alerts.WithLabelValues("delivered").Inc()
		if key != "" {
			if err := n.store.Mark(key); err != nil {
				// Delivered: not worth a re-post. The mark is lost only for
				// a restart before the offset commit.
				n.logger.Warn("remember delivered alert", zap.String("command_id", c.GetCommandId()), zap.Error(err))
			}
		}
	}
	if len(errs) > 0 {
		return kafka.Permanent("webhook", fmt.Errorf("alert %s: %w", c.GetCommandId(), errors.Join(errs...)))
	}
	return nil
}

// deliveryKey identifies one delivery without storing the URL's secret.
func deliveryKey(tenant, id, u string) string {
	h := sha256.Sum256([]byte(u))
	return tenant + " " + id + " " + hex.EncodeToString(h[:8])
}

// deliver posts body to u until a 2xx, a permanent answer, Attempts posts
// or the end of ctx.
func (n *Notifier) deliver(ctx context.Context, u string, body []byte) error {
	backoff := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		if err := n.limit(ctx, u); err != nil {
			return err
		}
		code, retryAfter, err := n.post(ctx, u, body)
		switch {
		case err == nil && code/100 == 2:
			return nil
		case err == nil && code/100 == 4 && code != http.StatusTooManyRequests:
			return fmt.Errorf("webhook %s: rejected with %d", Redact(u), code)
		case err == nil:
			err = fmt.Errorf("webhook %s: answered %d", Redact(u), code)
		}
		if attempt >= n.cfg.Attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		wait := max(backoff, min(retryAfter, n.cfg.MaxBackoff))
		n.logger.Warn("webhook post failed, retrying", zap.String("webhook", Redact(u)), zap.Int("attempt", attempt),
			zap.Duration("in", wait), zap.Error(err))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		backoff = min(backoff*2, n.cfg.MaxBackoff)
	}
}

// post sends one request; it returns the status code and the Retry-After
// the server asked for, or a transport error (timeouts included).
func (n *Notifier) post(ctx context.Context, u string, body []byte) (int, time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("webhook %s: %w", Redact(u), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sendguard-notifier")
	start := time.Now()
	resp, err := n.client.Do(req)
	n.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		n.posts.WithLabelValues("error").Inc()
		return 0, 0, fmt.Errorf("webhook %s: %w", Redact(u), unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	result := strconv.Itoa(resp.StatusCode/100) + "xx"
	if resp.StatusCode == http.StatusTooManyRequests {
		result = "429"
	}
	n.posts.WithLabelValues(result).Inc()
	var ra time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		ra = time.Duration(s) * time.Second
	}
	return resp.StatusCode, ra, nil
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// URL with its secret.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// limit waits until u's bucket has a token.
func (n *Notifier) limit(ctx context.Context, u string) error {
	n.limMu.Lock()
	b := n.lims[u]
	if b == nil {
		b = newBucket(n.cfg.Rate, n.cfg.Burst, n.cfg.Clock())
		n.lims[u] = b
	}
	n.limMu.Unlock()
	for {
		wait := b.take(n.cfg.Clock())
		if wait <= 0 {
			return nil
		}
		n.throttle.Inc()
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// bucket is a token bucket: rate tokens per second up to burst.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take takes a token at now and returns 0, or takes nothing and returns
// how long until a token is available.
func (b *bucket) take(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.burst, b.tokens+el*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
