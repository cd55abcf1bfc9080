// Package devstack runs the embedded default: a Kafka-protocol broker
// in-process with a persistent data dir, every pipeline stage talking to it
// over TCP, and ClickHouse when reachable.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka/embedded"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/stage/ingest"
	"github.com/sendguard/sendguard/pkg/webhooksig"
	"github.com/sendguard/sendguard/pkg/window"
)

// DefaultTenant is the tenant of the --api-key key.
const DefaultTenant = "default"

// Config is the devstack's configuration (flags of ARCHITECTURE.md).
type Config struct {
	DataDir    string
	HTTPAddr   string
	GRPCAddr   string
	KafkaAddr  string
	ClickHouse string
	// ClickHouseDB is the analytics database (created when missing).
	ClickHouseDB string
	Rules        string
	APIKey       string
	// ExtraKeys are more tenants' keys (tenant:KEY,…), for isolation tests.
	ExtraKeys  string
	Partitions int
	LogFormat  string
	LogLevel   string
	Tick       time.Duration
	// SyncWrites fsyncs every broker write (power-loss durability).
	SyncWrites bool
	// PostfixAddr serves the Postfix policy delegation protocol for the
	// default tenant; empty is off.
	PostfixAddr string
	// WebhookConfig is the per-tenant webhook signature file (YAML).
	WebhookConfig string
	// TenantRate and TenantBurst limit accepted events per tenant.
	TenantRate, TenantBurst int
	// Notifier posts alerts to webhooks (Slack-compatible).
	Notifier app.NotifierOptions
	// TLS serves the HTTP address (ingest and admin) and gRPC over TLS,
	// with mTLS for ControlService when a client CA is given.
	TLS service.TLSFiles
}

// BindFlags binds the devstack flags.
func BindFlags(f *service.Flags, c *Config) {
	f.String(&c.DataDir, "data-dir", "SENDGUARD_DATA_DIR", "./data", "directory for the broker's log and state")
	f.String(&c.HTTPAddr, "http-addr", "SENDGUARD_HTTP_ADDR", ":8080", "HTTP address: ingest API, /healthz, /readyz, /metrics")
	f.String(&c.GRPCAddr, "grpc-addr", "SENDGUARD_GRPC_ADDR", ":9090", "gRPC address: IngestService and PermissionService")
	f.String(&c.KafkaAddr, "kafka-addr", "SENDGUARD_KAFKA_ADDR", ":9092", "embedded broker address (loopback when no host is given)")
	f.String(&c.ClickHouse, "clickhouse", "SENDGUARD_CLICKHOUSE", "127.0.0.1:9000", "ClickHouse native address, or off")
	f.String(&c.ClickHouseDB, "clickhouse-db", "SENDGUARD_CLICKHOUSE_DB", "sendguard", "ClickHouse database")
	f.String(&c.Rules, "rules", "SENDGUARD_RULES", "", "rule-set file (hot-reloaded); the default pack when omitted")
	f.String(&c.APIKey, "api-key", "SENDGUARD_API_KEY", "", "API key of the default tenant; generated and printed when omitted")
	f.String(&c.ExtraKeys, "extra-keys", "SENDGUARD_API_KEYS", "", "more API keys: tenant:KEY or tenant:sha256:HEX, comma separated")
	f.Int(&c.Partitions, "partitions", "SENDGUARD_PARTITIONS", 4, "partitions per topic")
	f.String(&c.LogFormat, "log-format", "SENDGUARD_LOG_FORMAT", "console", "log format: json or console")
	f.String(&c.LogLevel, "log-level", "SENDGUARD_LOG_LEVEL", "info", "log level")
	f.Duration(&c.Tick, "snapshot-tick", "SENDGUARD_SNAPSHOT_TICK", 10*time.Second, "how often every window snapshot is re-published")
	f.Bool(&c.SyncWrites, "kafka-sync", "SENDGUARD_KAFKA_SYNC", false, "fsync every broker write")
	f.String(&c.WebhookConfig, "webhook-config", "SENDGUARD_WEBHOOK_CONFIG", "", "per-tenant webhook signature configuration (YAML)")
	f.Int(&c.TenantRate, "tenant-rate", "SENDGUARD_TENANT_RATE", ingest.DefaultTenantRate, "accepted events/s per tenant before 429 (negative: off)")
	f.Int(&c.TenantBurst, "tenant-burst", "SENDGUARD_TENANT_BURST", 0, "per-tenant burst (0: 2×rate)")
	app.BindNotifier(f, &c.Notifier)
	f.String(&c.PostfixAddr, "postfix-addr", "SENDGUARD_POSTFIX_ADDR", "", "Postfix policy server address for the default tenant, e.g. 127.0.0.1:10040; empty is off")
	app.BindTLS(f, &c.TLS)
}

// Validate checks c.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	for name, addr := range map[string]string{"--http-addr": c.HTTPAddr, "--grpc-addr": c.GRPCAddr, "--kafka-addr": c.KafkaAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		}
	}
	if c.Rules != "" {
		if _, err := os.Stat(c.Rules); err != nil {
			errs = append(errs, fmt.Errorf("--rules: %w", err))
		}
	}
	if err := c.Notifier.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.WebhookConfig != "" {
		if _, err := webhooksig.Load(c.WebhookConfig); err != nil {
			errs = append(errs, fmt.Errorf("--webhook-config: %w", err))
		}
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// apiKey returns the configured key, or the one generated on an earlier
// start (kept in the data dir so a restart keeps working for clients), or a
// new one.
func apiKey(c Config) (key string, generated bool, err error) {
	if c.APIKey != "" {
		return c.APIKey, false, nil
	}
	path := filepath.Join(c.DataDir, "api-key")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), true, nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, fmt.Errorf("generate api key: %w", err)
	}
	key = "sg_" + hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("save api key: %w", err)
	}
	return key, true, nil
}

// Run runs the stack until ctx is cancelled or SIGINT/SIGTERM, printing
// where everything listens to out.
func Run(ctx context.Context, c Config, logger *zap.Logger, out io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	key, generated, err := apiKey(c)
	if err != nil {
		return err
	}
	broker, err := embedded.Start(embedded.Config{
		Addr: c.KafkaAddr, DataDir: filepath.Join(c.DataDir, "kafka"), SyncWrites: c.SyncWrites, Partitions: c.Partitions,
	})
	if err != nil {
		return err
	}
	keys := DefaultTenant + ":" + key
	if c.ExtraKeys != "" {
		keys += "," + c.ExtraKeys
	}
	env, err := app.Bootstrap(ctx, app.Common{
		Kafka: []string{broker.Addr()}, ClickHouse: c.ClickHouse, ClickHouseDatabase: c.ClickHouseDB,
		Partitions: c.Partitions, Replication: 1, APIKeys: keys,
		LogFormat: c.LogFormat, LogLevel: c.LogLevel, Grace: 10 * time.Second, TLS: c.TLS,
		EventConsumers: 2, // as the service binaries: see app.Common
	}, logger, service.NewRegistry())
	if err != nil {
		broker.Close()
		return err
	}
	env.OnClose(broker.Close) // closes last: after every consumer committed
	if err := setup(ctx, env, c); err != nil {
		env.Close()
		return err
	}
	if err := env.Serve(c.HTTPAddr, c.GRPCAddr); err != nil {
		env.Close()
		return err
	}
	env.Group.AddContext("devstack", func(cctx context.Context) error {
		select {
		case <-ctx.Done():
		case <-cctx.Done():
		}
		return nil
	})
	analytics := "ClickHouse " + c.ClickHouse + " (database " + c.ClickHouseDB + ")"
	if env.ClickHouse == nil {
		analytics = "OFF (ClickHouse not reachable or --clickhouse=off)"
	}
	keyNote := ""
	if generated {
		keyNote = "  (generated; saved in " + filepath.Join(c.DataDir, "api-key") + ")"
	}
	scheme, grpcNote := tlsNote(c.TLS)
	fmt.Fprintf(out, `Sendguard devstack is up
  HTTP     %s://%s   POST /v1/events, /v1/webhooks/{ses,sendgrid,mailgun,postmark,sparkpost}, /v1/feedback/arf, /v1/bounces/dsn, /v1/postmaster; GET /healthz /readyz /metrics
  gRPC     %s   sendguard.v1.IngestService, PermissionService, ControlService, envoy.service.ratelimit.v3.RateLimitService (+ health, reflection)%s
  Kafka    %s   embedded broker, data in %s
  Analytics %s
  Tenant   %s
  API key  %s%s
`, scheme, c.HTTPAddr, c.GRPCAddr, grpcNote, broker.Addr(), filepath.Join(c.DataDir, "kafka"), analytics, DefaultTenant, key, keyNote)
	if c.PostfixAddr != "" {
		fmt.Fprintf(out, "  Postfix  check_policy_service inet:%s (tenant %s)\n", c.PostfixAddr, DefaultTenant)
	}
	env.MarkReady()
	return env.Run()
}

// tlsNote returns the HTTP scheme and what the banner says about gRPC
// security.
func tlsNote(t service.TLSFiles) (scheme, grpcNote string) {
	switch {
	case !t.Enabled():
		return "http", ""
	case t.Mode() == service.ClientAuthAll:
		return "https", "  (TLS; client certificate required for every call)"
	case t.Mode() == service.ClientAuthControl:
		return "https", "  (TLS; client certificate required for ControlService)"
	}
	return "https", "  (TLS)"
}

func setup(ctx context.Context, env *app.Env, c Config) error {
	if _, err := app.AddIngest(env, app.IngestOptions{
		Mux: env.AdminMux, WebhookConfig: c.WebhookConfig,
		Config: ingest.Config{TenantRate: c.TenantRate, TenantBurst: c.TenantBurst},
	}); err != nil {
		return err
	}
	if err := app.AddNormalizer(env, normalize.Options{}); err != nil {
		return err
	}
	if err := app.AddDeadLetterWriter(env); err != nil {
		return err
	}
	if _, err := app.AddWindows(ctx, env, app.WindowsOptions{Window: window.Config{}, Tick: c.Tick}); err != nil {
		return err
	}
	if _, err := app.AddEvaluator(ctx, env, app.EvaluatorOptions{RulesPath: c.Rules}); err != nil {
		return err
	}
	act, err := app.AddActuator(ctx, env, enforce.DefaultConfig())
	if err != nil {
		return err
	}
	notif := c.Notifier
	if notif.StatePath == "" {
		notif.StatePath = filepath.Join(c.DataDir, "alerts-delivered")
	}
	if _, err := app.AddNotifier(env, notif); err != nil {
		return err
	}
	return app.AddAdapters(env, app.AdapterConfig{
		PostfixAddr: c.PostfixAddr, PostfixTenant: DefaultTenant, EnvoyRLS: true, EnvoyRLSDomain: "sendguard",
	}, app.StateChecker{State: act.State()})
}
