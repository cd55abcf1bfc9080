// Command actuator turns decisions into control commands, posts alerts to
// the configured webhooks, serves ControlService (manual pause, resume,
// throttle, suppress, status) and answers PermissionService checks from its
// enforcement state; the same state also
// answers Envoy rate limit calls (RateLimitService v3, on the gRPC address,
// on by default) and, when --postfix-addr is set, Postfix's
// check_policy_service.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/service"
)

func main() {
	var grpcAddr string
	var adapters app.AdapterConfig
	var notif app.NotifierOptions
	app.Main(app.Spec{
		Name: "actuator",
		Bind: func(f *service.Flags) {
			f.String(&grpcAddr, "grpc-addr", "SENDGUARD_GRPC_ADDR", ":9090", "PermissionService and ControlService gRPC address")
			app.BindAdapters(f, &adapters)
			app.BindNotifier(f, &notif)
		},
		Validate: func() error { return errors.Join(adapters.Validate(), notif.Validate()) },
		GRPCAddr: &grpcAddr,
		Setup: func(ctx context.Context, e *app.Env) error {
			stage, err := app.AddActuator(ctx, e, enforce.DefaultConfig())
			if err != nil {
				return err
			}
			if _, err := app.AddNotifier(e, notif); err != nil {
				return err
			}
			return app.AddAdapters(e, adapters, app.StateChecker{State: stage.State()})
		},
	}, os.Args[1:], os.Getenv)
}
