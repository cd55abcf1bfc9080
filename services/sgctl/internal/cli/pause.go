package cli

import (
	"context"
	"io"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func init() {
	register(command{"pause", "pause --addr HOST:PORT --api-key K --level L --target T [--until TIME | --for DUR] [--actor A] --reason R", runPause})
}

func runPause(args []string, _ io.Reader, out, errOut io.Writer) int {
	return runManualCommand("pause", true, args, out, errOut, nil,
		func(ctx context.Context, c sgv1.ControlServiceClient, m *sgv1.ManualCommand) (*sgv1.ManualResult, error) {
			r, err := c.Pause(ctx, &sgv1.PauseRequest{Command: m})
			return r.GetResult(), err
		})
}
