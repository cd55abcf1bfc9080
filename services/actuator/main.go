// Command actuator turns decisions into control commands and answers
// PermissionService checks from its enforcement state.
package main

import (
	"context"
	"os"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/service"
)

func main() {
	var grpcAddr string
	app.Main(app.Spec{
		Name: "actuator",
		Bind: func(f *service.Flags) {
			f.String(&grpcAddr, "grpc-addr", "SENDGUARD_GRPC_ADDR", ":9090", "PermissionService gRPC address")
		},
		GRPCAddr: &grpcAddr,
		Setup: func(ctx context.Context, e *app.Env) error {
			_, err := app.AddActuator(ctx, e, enforce.DefaultConfig())
			return err
		},
	}, os.Args[1:], os.Getenv)
}
