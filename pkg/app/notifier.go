package app

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/notify"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/topics"
)

// GroupNotifier is the notifier's consumer group on the control topic.
const GroupNotifier = "sendguard-notifier"

// NotifierOptions configure AddNotifier.
type NotifierOptions struct {
	// Webhooks is the SENDGUARD_ALERT_WEBHOOKS form: "URL", "*=URL" (every
	// tenant without its own) and "TENANT=URL", comma separated.
	Webhooks string
	// WebhooksFile is a YAML file {default: [URL…], tenants: {T: [URL…]}}.
	WebhooksFile string
	// StatePath is the file remembering delivered alerts across restarts;
	// empty: memory only (a restart may re-post alerts read but not yet
	// committed).
	StatePath string
	// Interval is the mean interval between posts to one webhook URL (the
	// per-URL rate limit; bursts of 5 allowed).
	Interval time.Duration
	// Attempts is how many posts one URL gets before the alert is
	// dead-lettered.
	Attempts int
	// Timeout bounds one post.
	Timeout time.Duration
}

// BindNotifier binds the notifier's flags and variables.
func BindNotifier(f *service.Flags, o *NotifierOptions) {
	f.String(&o.Webhooks, "alert-webhooks", "SENDGUARD_ALERT_WEBHOOKS", "", "alert webhook URLs: URL, *=URL (default) or TENANT=URL, comma separated; none: no notifier")
	f.String(&o.WebhooksFile, "alert-webhooks-file", "SENDGUARD_ALERT_WEBHOOKS_FILE", "", "YAML file of alert webhooks: {default: [URL], tenants: {TENANT: [URL]}}")
	f.String(&o.StatePath, "alert-state", "SENDGUARD_ALERT_STATE", "", "file remembering delivered alerts across restarts (empty: memory only)")
	f.Duration(&o.Interval, "alert-interval", "SENDGUARD_ALERT_INTERVAL", time.Second, "rate limit: mean interval between posts to one webhook URL")
	f.Int(&o.Attempts, "alert-attempts", "SENDGUARD_ALERT_ATTEMPTS", 10, "posts per URL before an alert is dead-lettered")
	f.Duration(&o.Timeout, "alert-timeout", "SENDGUARD_ALERT_TIMEOUT", 10*time.Second, "timeout of one webhook post")
}

// Routes parses and merges the configured webhooks.
func (o NotifierOptions) Routes() (notify.Routes, error) {
	r, err := notify.ParseRoutes(o.Webhooks)
	if err != nil {
		return notify.Routes{}, fmt.Errorf("alert webhooks: %w", err)
	}
	if o.WebhooksFile != "" {
		f, err := notify.LoadRoutes(o.WebhooksFile)
		if err != nil {
			return notify.Routes{}, err
		}
		r = r.Merge(f)
	}
	return r, nil
}

// Validate checks o before anything starts.
func (o NotifierOptions) Validate() error {
	var errs []error
	if _, err := o.Routes(); err != nil {
		errs = append(errs, err)
	}
	if o.Interval < 0 {
		errs = append(errs, fmt.Errorf("alert interval %v: must not be negative", o.Interval))
	}
	return errors.Join(errs...)
}

// AddNotifier adds the alert notifier: a consumer of the control topic in
// its own group that posts every alert command to the configured webhooks
// (pkg/notify: retries with backoff, per-URL rate limit, no duplicates,
// offsets committed only after delivery, undeliverable alerts
// dead-lettered). Without any webhook configured it adds nothing and
// returns nil.
func AddNotifier(e *Env, o NotifierOptions) (*notify.Notifier, error) {
	routes, err := o.Routes()
	if err != nil {
		return nil, err
	}
	logger := e.Logger.Named("notifier")
	if routes.Empty() {
		logger.Info("alert notifier off: no webhook configured (--alert-webhooks)")
		return nil, nil
	}
	var store notify.Store
	if o.StatePath != "" {
		fs, err := notify.OpenFileStore(o.StatePath, 0)
		if err != nil {
			return nil, err
		}
		e.OnClose(func() {
			if err := fs.Close(); err != nil {
				logger.Warn("close alert store", zap.Error(err))
			}
		})
		store = fs
	}
	cfg := notify.Config{Routes: routes, Attempts: o.Attempts, Timeout: o.Timeout}
	if o.Interval > 0 {
		cfg.Rate = float64(time.Second) / float64(o.Interval)
	}
	n, err := notify.New(cfg,
		&http.Client{}, store, logger, e.Registry)
	if err != nil {
		return nil, err
	}
	if err := e.runner(GroupNotifier, topics.Control, "notifier", n); err != nil {
		return nil, err
	}
	return n, nil
}
