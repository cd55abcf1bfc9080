package cli

import (
	"context"
	"io"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func init() {
	register(command{"suppress", "suppress --addr HOST:PORT --api-key K --level recipient|account|… --target T [--until TIME | --for DUR] [--actor A] --reason R", runSuppress})
}

func runSuppress(args []string, _ io.Reader, out, errOut io.Writer) int {
	return runManualCommand("suppress", true, args, out, errOut, nil,
		func(ctx context.Context, c sgv1.ControlServiceClient, m *sgv1.ManualCommand) (*sgv1.ManualResult, error) {
			r, err := c.Suppress(ctx, &sgv1.SuppressRequest{Command: m})
			return r.GetResult(), err
		})
}
