// Command ingest is the front door: HTTP webhooks and canonical events, and
// gRPC IngestService, into the raw topic with acks=all.
package main

import (
	"context"
	"net/http"
	"os"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/stage/ingest"
)

func main() {
	var httpAddr, grpcAddr string
	var cfg ingest.Config
	app.Main(app.Spec{
		Name: "ingest",
		Bind: func(f *service.Flags) {
			f.String(&httpAddr, "http-addr", "SENDGUARD_HTTP_ADDR", ":8080", "ingest HTTP address")
			f.String(&grpcAddr, "grpc-addr", "SENDGUARD_GRPC_ADDR", ":9090", "IngestService gRPC address")
			ingest.BindFlags(f, &cfg)
		},
		GRPCAddr: &grpcAddr,
		Setup: func(_ context.Context, e *app.Env) error {
			mux := http.NewServeMux()
			if _, err := app.AddIngest(e, app.IngestOptions{Config: cfg, Mux: mux}); err != nil {
				return err
			}
			return e.AddHTTP("ingest", httpAddr, mux)
		},
	}, os.Args[1:], os.Getenv)
}
