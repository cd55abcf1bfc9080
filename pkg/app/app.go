// Package app wires the pipeline stages into runnable services. Each
// service binary (services/*) and the embedded devstack compose the same
// components here, so what runs in a test, in the devstack and in
// production is one piece of code:
//
//	env, err := app.Bootstrap(ctx, common, logger, reg)   // Kafka, topics, ClickHouse
//	app.AddIngest(env, ...)                               // HTTP + gRPC intake
//	app.AddNormalizer(env, ...)                           // consumers
//	env.Run()                                             // until SIGTERM or a failure
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/topics"
)

// Common is the configuration every service shares.
type Common struct {
	// Kafka is the broker list (SENDGUARD_KAFKA).
	Kafka []string
	// ClickHouse is the native address, or "off" (SENDGUARD_CLICKHOUSE).
	ClickHouse string
	// ClickHouseDatabase is the database (SENDGUARD_CLICKHOUSE_DB).
	ClickHouseDatabase string
	// RequireClickHouse fails the start when ClickHouse does not answer;
	// otherwise analytics are turned off with a loud warning.
	RequireClickHouse bool
	// Partitions of the topics created at start (SENDGUARD_PARTITIONS).
	Partitions int
	// Replication factor of created topics (SENDGUARD_REPLICATION).
	Replication int
	// AdminAddr serves /healthz, /readyz, /metrics (SENDGUARD_ADMIN_ADDR).
	AdminAddr string
	// APIKeys: "tenant:sha256:HEX,…" or "tenant:KEY,…" (SENDGUARD_API_KEYS).
	APIKeys string
	// LogFormat json|console and LogLevel (SENDGUARD_LOG_FORMAT/LEVEL).
	LogFormat, LogLevel string
	// Grace bounds graceful shutdown (SENDGUARD_SHUTDOWN_GRACE).
	Grace time.Duration
	// EventConsumers is how many consumers of sg.events.v1 each component
	// that reads it (windowed-metrics admission, actuator events) runs in
	// this process, in its consumer group (SENDGUARD_EVENT_CONSUMERS): one
	// event per record, so a consumer spends most of its cycle waiting on
	// its flush and commit, and two overlap those waits. Zero means one.
	EventConsumers int
	// TLS serves ingest HTTP and every gRPC service over TLS when a
	// certificate is given (SENDGUARD_TLS_CERT, SENDGUARD_TLS_KEY), with
	// client certificates verified against SENDGUARD_TLS_CLIENT_CA and
	// required for ControlService ("control", the default) or for every
	// connection ("all") per SENDGUARD_TLS_CLIENT_AUTH. The admin address
	// stays plaintext when it is separate (probes and scrapers); in the
	// devstack, whose one HTTP address also serves ingest, it is TLS too.
	TLS service.TLSFiles
}

// BindCommon binds the shared flags and variables.
func BindCommon(f *service.Flags, c *Common) {
	f.List(&c.Kafka, "kafka", "SENDGUARD_KAFKA", "127.0.0.1:9092", "Kafka brokers, comma separated")
	f.String(&c.ClickHouse, "clickhouse", "SENDGUARD_CLICKHOUSE", "127.0.0.1:9000", "ClickHouse native address, or off")
	f.String(&c.ClickHouseDatabase, "clickhouse-db", "SENDGUARD_CLICKHOUSE_DB", "sendguard", "ClickHouse database")
	f.Bool(&c.RequireClickHouse, "require-clickhouse", "SENDGUARD_REQUIRE_CLICKHOUSE", false, "fail when ClickHouse is unreachable instead of running without analytics")
	f.Int(&c.Partitions, "partitions", "SENDGUARD_PARTITIONS", 8, "partitions of topics created at start")
	f.Int(&c.Replication, "replication", "SENDGUARD_REPLICATION", 1, "replication factor of topics created at start")
	f.String(&c.AdminAddr, "admin-addr", "SENDGUARD_ADMIN_ADDR", ":8081", "admin HTTP address (/healthz, /readyz, /metrics)")
	f.String(&c.APIKeys, "api-keys", "SENDGUARD_API_KEYS", "", "API keys: tenant:sha256:HEX or tenant:KEY, comma separated")
	f.String(&c.LogFormat, "log-format", "SENDGUARD_LOG_FORMAT", "json", "log format: json or console")
	f.String(&c.LogLevel, "log-level", "SENDGUARD_LOG_LEVEL", "info", "log level")
	f.Duration(&c.Grace, "shutdown-grace", "SENDGUARD_SHUTDOWN_GRACE", 10*time.Second, "graceful shutdown bound")
	f.Int(&c.EventConsumers, "event-consumers", "SENDGUARD_EVENT_CONSUMERS", 2, "consumers of sg.events.v1 per component in this process")
	BindTLS(f, &c.TLS)
}

// BindTLS binds the server TLS flags and variables (also used by the
// devstack, which does not bind the other common flags).
func BindTLS(f *service.Flags, t *service.TLSFiles) {
	f.String(&t.Cert, "tls-cert", "SENDGUARD_TLS_CERT", "", "PEM certificate chain: serve ingest HTTP and gRPC over TLS (with --tls-key; reloaded when the file changes)")
	f.String(&t.Key, "tls-key", "SENDGUARD_TLS_KEY", "", "PEM private key of --tls-cert")
	f.String(&t.ClientCA, "tls-client-ca", "SENDGUARD_TLS_CLIENT_CA", "", "PEM CA bundle verifying client certificates (mTLS); empty: none asked for")
	f.String(&t.ClientAuth, "tls-client-auth", "SENDGUARD_TLS_CLIENT_AUTH", service.ClientAuthControl, "with --tls-client-ca: control (ControlService needs a client certificate) or all (every connection does)")
}

// Validate checks c before anything starts.
func (c *Common) Validate() error {
	var errs []error
	if len(c.Kafka) == 0 {
		errs = append(errs, errors.New("kafka: at least one broker is required"))
	}
	if c.ClickHouse == "" {
		errs = append(errs, errors.New("clickhouse: an address or off is required"))
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		errs = append(errs, fmt.Errorf("partitions %d: want 1..1024", c.Partitions))
	}
	if c.Replication < 1 {
		errs = append(errs, fmt.Errorf("replication %d: want ≥ 1", c.Replication))
	}
	if c.EventConsumers < 0 || c.EventConsumers > 64 {
		errs = append(errs, fmt.Errorf("event consumers %d: want 1..64 (0: one)", c.EventConsumers))
	}
	if c.Grace <= 0 {
		errs = append(errs, errors.New("shutdown grace must be positive"))
	}
	if c.APIKeys != "" {
		if err := auth.NewKeys().Parse(c.APIKeys); err != nil {
			errs = append(errs, fmt.Errorf("api keys: %w", err))
		}
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// AnalyticsOff reports whether ClickHouse is disabled by configuration.
func (c *Common) AnalyticsOff() bool { return strings.EqualFold(c.ClickHouse, "off") }

// Env is what components are added to: shared connections, the run group,
// the admin mux and the gRPC server.
type Env struct {
	Common   Common
	Logger   *zap.Logger
	Registry *prometheus.Registry
	Prober   *service.Prober
	Producer *kafka.Producer
	// ClickHouse is nil when analytics are off.
	ClickHouse driver.Conn
	Keys       *auth.Keys
	Group      *service.Group
	// AdminMux serves the admin endpoints; ingest adds its routes to it in
	// the devstack (one HTTP address), or to its own mux in the service.
	AdminMux *http.ServeMux
	// GRPC is created on first use by a component that serves gRPC.
	GRPC *service.GRPCServer
	// TLS serves the configured certificate (nil: plaintext).
	TLS *service.TLSReloader

	// adminTLS: ingest routes were added to AdminMux, so the admin address
	// is an intake address and is served over TLS like the others.
	adminTLS bool
	closers  []func()
}

// Bootstrap connects to Kafka (waiting until it answers), creates the
// topics, opens ClickHouse and applies migrations (or turns analytics off
// with a warning), and returns the Env.
func Bootstrap(ctx context.Context, c Common, logger *zap.Logger, reg *prometheus.Registry) (*Env, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	env := &Env{
		Common: c, Logger: logger, Registry: reg, Prober: service.NewProber(),
		Keys: auth.NewKeys(), Group: service.NewGroup(logger), AdminMux: http.NewServeMux(),
	}
	env.Group.Grace = c.Grace
	if err := env.Keys.Parse(c.APIKeys); err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	if c.TLS.Enabled() {
		r, err := service.NewTLSReloader(c.TLS, service.TLSReloaderOptions{Logger: logger})
		if err != nil {
			return nil, err
		}
		env.TLS = r
		fields := []zap.Field{zap.String("cert", c.TLS.Cert), zap.String("client_auth", c.TLS.Mode())}
		if leaf, err := r.Leaf(); err == nil {
			fields = append(fields, zap.String("subject", leaf.Subject.String()), zap.Time("not_after", leaf.NotAfter))
		}
		logger.Info("TLS on for ingest HTTP and gRPC", fields...)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := kafka.WaitReady(wctx, c.Kafka); err != nil {
		return nil, err
	}
	if err := kafka.EnsureTopics(ctx, c.Kafka, c.Replication, topics.Specs(c.Partitions)...); err != nil {
		return nil, err
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: c.Kafka}, reg)
	if err != nil {
		return nil, err
	}
	env.Producer = prod
	env.closers = append(env.closers, func() {
		if err := prod.Close(); err != nil {
			logger.Warn("close producer", zap.Error(err))
		}
	})
	brokers := c.Kafka
	env.Prober.AddCheck(service.Check{Name: "kafka", Fn: func(ctx context.Context) error { return kafka.Ping(ctx, brokers) }})
	if !c.AnalyticsOff() {
		conn, err := openClickHouse(ctx, c)
		switch {
		case err != nil && c.RequireClickHouse:
			env.Close()
			return nil, err
		case err != nil:
			logger.Warn("ANALYTICS OFF: ClickHouse is unreachable; events are processed but not stored for analysts",
				zap.String("clickhouse", c.ClickHouse), zap.Error(err))
		default:
			env.ClickHouse = conn
			env.closers = append(env.closers, func() { _ = conn.Close() })
			env.Prober.AddCheck(service.Check{Name: "clickhouse", Fn: func(ctx context.Context) error { return conn.Ping(ctx) }})
		}
	} else {
		logger.Warn("ANALYTICS OFF: --clickhouse=off; nothing is stored for analysts")
	}
	service.RegisterAdmin(env.AdminMux, env.Prober, reg)
	return env, nil
}

func openClickHouse(ctx context.Context, c Common) (driver.Conn, error) {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(octx, clickhouse.Config{Addr: c.ClickHouse, Database: c.ClickHouseDatabase})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	if err := clickhouse.Migrate(ctx, conn); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("migrate clickhouse: %w", err)
	}
	return conn, nil
}

// ControlServicePrefix is the method prefix of the control plane: the
// calls that need a verified client certificate when a client CA is
// configured.
const ControlServicePrefix = "/sendguard.v1.ControlService/"

// GRPCServer returns the env's gRPC server, creating it on first use: over
// TLS when configured, and then, with a client CA, refusing ControlService
// calls without a verified client certificate (codes.Unauthenticated).
func (e *Env) GRPCServer() *service.GRPCServer {
	if e.GRPC == nil {
		e.GRPC = service.NewGRPCServer(e.grpcOptions()...)
	}
	return e.GRPC
}

func (e *Env) grpcOptions() []grpc.ServerOption {
	if e.TLS == nil {
		return nil
	}
	files := e.TLS.Files()
	clientAuth := tls.NoClientCert
	switch files.Mode() {
	case service.ClientAuthControl:
		clientAuth = tls.VerifyClientCertIfGiven
	case service.ClientAuthAll:
		clientAuth = tls.RequireAndVerifyClientCert
	}
	opts := []grpc.ServerOption{grpc.Creds(credentials.NewTLS(e.TLS.ServerConfig(clientAuth, "h2")))}
	if files.Mode() != "" {
		unary, stream := service.RequireClientCert(ControlServicePrefix)
		opts = append(opts, grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
	}
	return opts
}

// httpListener wraps ln in TLS when configured: client certificates are
// required in mode "all" and not asked for otherwise (HTTP carries no
// control plane).
func (e *Env) httpListener(ln net.Listener) net.Listener {
	if e.TLS == nil {
		return ln
	}
	clientAuth := tls.NoClientCert
	if e.TLS.Files().Mode() == service.ClientAuthAll {
		clientAuth = tls.RequireAndVerifyClientCert
	}
	return tls.NewListener(ln, e.TLS.ServerConfig(clientAuth, "h2", "http/1.1"))
}

// OnClose registers fn to run when the env closes (after the group stopped),
// in reverse order of registration.
func (e *Env) OnClose(fn func()) { e.closers = append(e.closers, fn) }

// Close releases connections in reverse order.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// Serve adds the admin HTTP server on addr (with extra routes already added
// to AdminMux) and, when a component created one, the gRPC server on
// grpcAddr; then adds the signal handler. With TLS configured, gRPC is
// served over TLS, and so is the admin address once ingest routes were
// added to AdminMux (the devstack); a separate admin address stays
// plaintext for probes and scrapers.
func (e *Env) Serve(adminAddr, grpcAddr string) error {
	ln, err := service.Listen(adminAddr)
	if err != nil {
		return err
	}
	if e.adminTLS {
		ln = e.httpListener(ln)
	}
	e.Group.AddHTTP("admin", service.NewHTTPServer(e.AdminMux), ln)
	if e.GRPC != nil {
		gln, err := service.Listen(grpcAddr)
		if err != nil {
			_ = ln.Close()
			return err
		}
		e.Group.AddGRPC(e.GRPC, gln)
	}
	e.Group.AddSignals(e.drainStart)
	e.Prober.Healthy()
	return nil
}

// drainStart is the first step of shutdown: stop being ready.
func (e *Env) drainStart() {
	e.Prober.NotReady()
	if e.GRPC != nil {
		e.GRPC.SetServing(false)
	}
}

// MarkReady declares the service ready (readiness checks still apply).
func (e *Env) MarkReady() {
	e.Prober.Healthy()
	e.Prober.Ready()
	if e.GRPC != nil {
		e.GRPC.SetServing(true)
	}
}

// Run runs the group until a signal or the first failure, then closes.
func (e *Env) Run() error {
	defer e.Close()
	return e.Group.Run()
}

// AddHTTP serves h on addr as one more actor of the group, over TLS when
// configured.
func (e *Env) AddHTTP(name, addr string, h http.Handler) error {
	ln, err := service.Listen(addr)
	if err != nil {
		return err
	}
	e.Group.AddHTTP(name, service.NewHTTPServer(h), e.httpListener(ln))
	return nil
}

// Every adds an actor that calls fn every interval until the group stops;
// an error is logged and the next call happens as scheduled.
func (e *Env) Every(name string, interval time.Duration, fn func(ctx context.Context) error) {
	e.Group.AddContext(name, func(ctx context.Context) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if err := fn(ctx); err != nil && ctx.Err() == nil {
					e.Logger.Warn(name, zap.Error(err))
				}
			}
		}
	})
}
