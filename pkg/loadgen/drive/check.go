package drive

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sendguard/sendguard/pkg/loadgen"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// ChecksConfig configures Checks.
type ChecksConfig struct {
	// Addr is the PermissionService address; Key its API key.
	Addr, Key string
	Duration  time.Duration
	// Concurrency is the number of callers (default 16); Conns the gRPC
	// connections they share (default 2).
	Concurrency, Conns int
	// Tenant names the tenant whose senders are drawn (default "default").
	Tenant string
	Seed   uint64
	// DryRun asks without consuming throttle capacity.
	DryRun bool
	// TLS dials over TLS with this configuration; nil is plaintext.
	TLS *tls.Config
}

// ChecksResult is the summary line of sgctl bench check.
type ChecksResult struct {
	ChecksPerSec float64 `json:"checks_per_sec"`
	P50MS        float64 `json:"p50_ms"`
	P99MS        float64 `json:"p99_ms"`
	Checks       int64   `json:"checks"`
	Errors       int64   `json:"errors"`
	Allow        int64   `json:"allow"`
	Deny         int64   `json:"deny"`
	Defer        int64   `json:"defer"`
	MaxMS        float64 `json:"max_ms"`
	Seconds      float64 `json:"seconds"`
	FirstError   string  `json:"first_error,omitempty"`
}

// Checks calls PermissionService.Check from Concurrency callers for
// Duration with senders and recipients drawn like loadgen's traffic, and
// measures each call's latency.
func Checks(ctx context.Context, cfg ChecksConfig) (ChecksResult, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 2
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "default"
	}
	if cfg.Duration <= 0 || cfg.Addr == "" || cfg.Key == "" {
		return ChecksResult{}, errors.New("bench check: address, key and duration are required")
	}
	clients := make([]sgv1.PermissionServiceClient, cfg.Conns)
	for i := range clients {
		conn, err := grpc.NewClient(cfg.Addr, GRPCCredentials(cfg.TLS))
		if err != nil {
			return ChecksResult{}, fmt.Errorf("dial %s: %w", cfg.Addr, err)
		}
		defer conn.Close()
		clients[i] = sgv1.NewPermissionServiceClient(conn)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+cfg.Key)
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	type worker struct {
		lat                      []time.Duration
		allow, deny, deferred, n int64
		errs                     int64
		firstErr                 error
	}
	ws := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ws {
		w := &worker{}
		ws[i] = w
		gen, err := loadgen.New(loadgen.Config{Seed: cfg.Seed + uint64(i), Tenants: []string{cfg.Tenant}})
		if err != nil {
			return ChecksResult{}, err
		}
		cli := clients[i%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				sender, rcpt, camp := gen.Pick()
				req := &sgv1.CheckRequest{Sender: sender, Recipient: rcpt, Campaign: camp, Count: 1, DryRun: cfg.DryRun}
				t0 := time.Now()
				resp, err := cli.Check(runCtx, req)
				d := time.Since(t0)
				if err != nil {
					// A call cut off by the end of the run is not an error.
					// gRPC's own deadline timer can fire a moment before the
					// context reports it, so compare with the deadline too.
					if dl, ok := runCtx.Deadline(); runCtx.Err() != nil || ok && !time.Now().Before(dl) {
						return
					}
					w.errs++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.n++
				w.lat = append(w.lat, d)
				switch resp.GetVerdict() {
				case sgv1.Verdict_VERDICT_ALLOW:
					w.allow++
				case sgv1.Verdict_VERDICT_DENY:
					w.deny++
				default:
					w.deferred++
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var res ChecksResult
	var lat []time.Duration
	for _, w := range ws {
		res.Checks += w.n
		res.Errors += w.errs
		res.Allow += w.allow
		res.Deny += w.deny
		res.Defer += w.deferred
		lat = append(lat, w.lat...)
		if w.firstErr != nil && res.FirstError == "" {
			res.FirstError = w.firstErr.Error()
		}
	}
	res.Seconds = round(elapsed.Seconds(), 3)
	res.ChecksPerSec = round(float64(res.Checks)/elapsed.Seconds(), 0)
	res.P50MS, res.P99MS, res.MaxMS = percentileMS(lat, 0.5), percentileMS(lat, 0.99), percentileMS(lat, 1)
	if res.Checks == 0 && res.FirstError != "" {
		return res, fmt.Errorf("bench check: no check answered: %s", res.FirstError)
	}
	return res, nil
}
