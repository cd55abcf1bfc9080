package cli

import (
	"context"
	"io"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func init() {
	register(command{"unsuppress", "unsuppress --addr HOST:PORT --api-key K --level L --target T [--actor A] --reason R", runUnsuppress})
}

func runUnsuppress(args []string, _ io.Reader, out, errOut io.Writer) int {
	return runManualCommand("unsuppress", false, args, out, errOut, nil,
		func(ctx context.Context, c sgv1.ControlServiceClient, m *sgv1.ManualCommand) (*sgv1.ManualResult, error) {
			r, err := c.Unsuppress(ctx, &sgv1.UnsuppressRequest{Command: m})
			return r.GetResult(), err
		})
}
