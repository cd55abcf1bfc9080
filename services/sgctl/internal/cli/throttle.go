package cli

import (
	"context"
	"errors"
	"flag"
	"io"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func init() {
	register(command{"throttle", "throttle --addr HOST:PORT --api-key K --level L --target T (--cap-ratio R | --daily-cap N) [--until TIME | --for DUR] [--actor A] --reason R", runThrottle})
}

func runThrottle(args []string, _ io.Reader, out, errOut io.Writer) int {
	var ratio float64
	var daily int64
	extra := func(fs *flag.FlagSet) func() error {
		fs.Float64Var(&ratio, "cap-ratio", 0, "fraction of the scope's prior daily volume allowed, 0 < r ≤ 1")
		fs.Int64Var(&daily, "daily-cap", 0, "messages per UTC day")
		return func() error {
			if ratio < 0 || ratio > 1 || daily < 0 || (ratio == 0 && daily == 0) {
				return errors.New("--cap-ratio (0 < r ≤ 1) and/or --daily-cap (> 0) is required")
			}
			return nil
		}
	}
	return runManualCommand("throttle", true, args, out, errOut, extra,
		func(ctx context.Context, c sgv1.ControlServiceClient, m *sgv1.ManualCommand) (*sgv1.ManualResult, error) {
			r, err := c.Throttle(ctx, &sgv1.ThrottleRequest{Command: m, CapRatio: ratio, DailyCap: daily})
			return r.GetResult(), err
		})
}
