package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/sendguard/sendguard/pkg/service"
)

// Spec describes one service binary for Main.
type Spec struct {
	// Name is the binary's name (logger name, usage).
	Name string
	// Bind binds the service's own flags next to the common ones.
	Bind func(f *service.Flags)
	// Validate checks the service's own configuration; may be nil.
	Validate func() error
	// GRPCAddr points at the gRPC listen address, for services that serve
	// gRPC; nil otherwise.
	GRPCAddr *string
	// Setup adds the service's components to the env.
	Setup func(ctx context.Context, e *Env) error
}

// Main is the whole life of a service binary: configuration from flags and
// SENDGUARD_* variables (validated before anything starts), logger,
// registry, bootstrap, components, serving, graceful shutdown. It exits
// non-zero from one place on failure.
func Main(spec Spec, args []string, getenv func(string) string) {
	service.TuneGC()
	var c Common
	f := service.NewFlags(spec.Name, getenv)
	BindCommon(f, &c)
	if spec.Bind != nil {
		spec.Bind(f)
	}
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		os.Exit(2)
	}
	err := c.Validate()
	if err == nil && spec.Validate != nil {
		err = spec.Validate()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid configuration: %v\n", spec.Name, err)
		os.Exit(2)
	}
	logger, err := service.NewLogger(c.LogFormat, c.LogLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		os.Exit(2)
	}
	logger = logger.Named(spec.Name)
	service.Main(logger, func() error {
		ctx := context.Background()
		env, err := Bootstrap(ctx, c, logger, service.NewRegistry())
		if err != nil {
			return err
		}
		if err := spec.Setup(ctx, env); err != nil {
			env.Close()
			return err
		}
		grpcAddr := ""
		if spec.GRPCAddr != nil {
			grpcAddr = *spec.GRPCAddr
		}
		if err := env.Serve(c.AdminAddr, grpcAddr); err != nil {
			env.Close()
			return err
		}
		env.MarkReady()
		return env.Run()
	})
}
