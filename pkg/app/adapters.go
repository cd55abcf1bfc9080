package app

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/envoyrls"
	"github.com/sendguard/sendguard/pkg/postfix"
	"github.com/sendguard/sendguard/pkg/service"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// StateChecker answers permission checks from an enforcement state (the
// actuator's, stage.State()) at the wall clock; it is the Checker of the
// Postfix policy server and of the Envoy rate limit service.
type StateChecker struct {
	State *enforce.State
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var (
	_ postfix.Checker  = StateChecker{}
	_ envoyrls.Checker = StateChecker{}
)

// Check answers from the state.
func (c StateChecker) Check(_ context.Context, tenant string, req *sgv1.CheckRequest) *sgv1.CheckResponse {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return c.State.Check(tenant, req, now())
}

// AddPostfixPolicy serves the Postfix policy delegation protocol on addr for
// tenant (every request of this listener is that tenant's), answering with
// checker, as one actor of the group: on shutdown it stops accepting, lets
// requests in flight answer and closes within the env's grace period.
func AddPostfixPolicy(e *Env, addr, tenant string, checker postfix.Checker) error {
	srv, err := postfix.New(postfix.Config{
		Mapping:    postfix.Mapping{Tenant: tenant},
		Logger:     e.Logger.Named("postfix-policy"),
		Registerer: e.Registry,
	}, checker)
	if err != nil {
		return err
	}
	ln, err := service.Listen(addr)
	if err != nil {
		return err
	}
	grace := e.Common.Grace
	e.Group.Add(func() error {
		e.Logger.Info("postfix policy listening", zap.String("addr", ln.Addr().String()), zap.String("tenant", tenant))
		if err := srv.Serve(ln); err != nil && !errors.Is(err, postfix.ErrServerClosed) {
			return err
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			e.Logger.Warn("postfix policy shutdown", zap.Error(err))
		}
	})
	return nil
}

// AddEnvoyRLS registers envoy.service.ratelimit.v3.RateLimitService on the
// env's gRPC server (the one serving PermissionService), for rate limit
// domain (empty: envoyrls.DefaultDomain), with the tenant taken from the
// caller's API key and answers from checker.
func AddEnvoyRLS(e *Env, domain string, checker envoyrls.Checker) error {
	svc, err := envoyrls.New(envoyrls.Config{Domain: domain, Keys: e.Keys, Registerer: e.Registry}, checker)
	if err != nil {
		return err
	}
	svc.Register(e.GRPCServer())
	return nil
}

// AdapterConfig configures the sender-facing endpoints served from the
// actuator's enforcement state next to PermissionService.
type AdapterConfig struct {
	// PostfixAddr is the Postfix policy server address; empty is off.
	PostfixAddr string
	// PostfixTenant is the tenant of every Postfix policy request.
	PostfixTenant string
	// EnvoyRLS serves RateLimitService v3 on the gRPC address.
	EnvoyRLS bool
	// EnvoyRLSDomain is the rate limit domain answered.
	EnvoyRLSDomain string
}

// BindAdapters binds the adapter flags: --postfix-addr
// (SENDGUARD_POSTFIX_ADDR, empty: off), --postfix-tenant
// (SENDGUARD_POSTFIX_TENANT), --envoy-rls (SENDGUARD_ENVOY_RLS, on) and
// --envoy-rls-domain (SENDGUARD_ENVOY_RLS_DOMAIN, "sendguard").
func BindAdapters(f *service.Flags, c *AdapterConfig) {
	f.String(&c.PostfixAddr, "postfix-addr", "SENDGUARD_POSTFIX_ADDR", "", "Postfix policy server address (empty: off)")
	f.String(&c.PostfixTenant, "postfix-tenant", "SENDGUARD_POSTFIX_TENANT", "", "tenant of every Postfix policy request")
	f.Bool(&c.EnvoyRLS, "envoy-rls", "SENDGUARD_ENVOY_RLS", true, "serve Envoy RateLimitService v3 on the gRPC address")
	f.String(&c.EnvoyRLSDomain, "envoy-rls-domain", "SENDGUARD_ENVOY_RLS_DOMAIN", envoyrls.DefaultDomain, "Envoy rate limit domain answered")
}

// Validate checks that a Postfix listener has its tenant.
func (c AdapterConfig) Validate() error {
	if c.PostfixAddr != "" && c.PostfixTenant == "" {
		return errors.New("postfix-addr needs postfix-tenant")
	}
	return nil
}

// AddAdapters adds what c turns on, answering from checker.
func AddAdapters(e *Env, c AdapterConfig, checker StateChecker) error {
	if c.EnvoyRLS {
		if err := AddEnvoyRLS(e, c.EnvoyRLSDomain, checker); err != nil {
			return err
		}
	}
	if c.PostfixAddr != "" {
		return AddPostfixPolicy(e, c.PostfixAddr, c.PostfixTenant, checker)
	}
	return nil
}
