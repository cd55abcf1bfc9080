// Command devstack runs the embedded default: broker, all five services
// over the Kafka protocol, and ClickHouse when reachable. With --tls-cert
// and --tls-key its HTTP and gRPC addresses speak only TLS; with
// --tls-client-ca, ControlService also needs a client certificate.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/services/devstack/internal/devstack"
)

func main() {
	service.TuneGC()
	var cfg devstack.Config
	f := service.NewFlags("devstack", os.Getenv)
	devstack.BindFlags(f, &cfg)
	if err := f.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(2)
	}
	logger, err := service.NewLogger(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(2)
	}
	service.Main(logger, func() error { return devstack.Run(context.Background(), cfg, logger, os.Stdout) })
}
