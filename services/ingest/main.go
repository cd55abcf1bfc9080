// Command ingest is the front door: HTTP webhooks and canonical events, and
// gRPC IngestService, into the raw topic with acks=all. Webhook signatures
// are verified per tenant when SENDGUARD_WEBHOOK_CONFIG names a
// configuration; accepted events are rate-limited per tenant
// (SENDGUARD_TENANT_RATE, SENDGUARD_TENANT_BURST).
package main

import (
	"context"
	"net/http"
	"os"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/service"
)

func main() {
	var httpAddr, grpcAddr string
	var opts app.IngestOptions
	app.Main(app.Spec{
		Name: "ingest",
		Bind: func(f *service.Flags) {
			f.String(&httpAddr, "http-addr", "SENDGUARD_HTTP_ADDR", ":8080", "ingest HTTP address")
			f.String(&grpcAddr, "grpc-addr", "SENDGUARD_GRPC_ADDR", ":9090", "IngestService gRPC address")
			app.BindIngest(f, &opts)
		},
		// Loads the webhook configuration: bad key material refuses the
		// start before anything connects.
		Validate: opts.Validate,
		GRPCAddr: &grpcAddr,
		Setup: func(_ context.Context, e *app.Env) error {
			opts.Mux = http.NewServeMux()
			if _, err := app.AddIngest(e, opts); err != nil {
				return err
			}
			return e.AddHTTP("ingest", httpAddr, opts.Mux)
		},
	}, os.Args[1:], os.Getenv)
}
