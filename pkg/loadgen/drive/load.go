package drive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sendguard/sendguard/pkg/loadgen"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// LoadConfig configures Load.
type LoadConfig struct {
	Gen  loadgen.Config
	Sink Sink
	// Rate is the target in events per second; 0 sends as fast as possible.
	Rate float64
	// Duration and Events bound the run; the first reached stops it (at
	// least one must be set, or ctx must end).
	Duration time.Duration
	Events   int64
	// Batch is the events per request (default 500); Concurrency the
	// requests in flight (default 4).
	Batch, Concurrency int
	// Progress receives a JSON progress line every ProgressEvery (default
	// 1s); nil is quiet.
	Progress      io.Writer
	ProgressEvery time.Duration
	// OnAck is called (from worker goroutines) with every batch once it is
	// accepted, and the time it was.
	OnAck func(evs []*sgv1.Event, at time.Time)
}

// LoadResult is Load's summary (the final JSON line of sgctl load).
type LoadResult struct {
	Events       int64   `json:"events"`
	Accepted     int64   `json:"accepted"`
	Rejected     int64   `json:"rejected"`
	Retries      int64   `json:"retries"`
	Batches      int64   `json:"batches"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	BatchP50MS   float64 `json:"batch_p50_ms"`
	BatchP99MS   float64 `json:"batch_p99_ms"`
	FirstError   string  `json:"first_error,omitempty"`
}

type job struct {
	tenant string
	evs    []*sgv1.Event
}

// Load generates events with cfg.Gen and sends them through cfg.Sink until
// the duration or event count is reached or ctx ends. Batches refused as
// retryable are resent (same ids) until accepted or ctx ends; batches refused
// as invalid are counted as rejected.
func Load(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.Duration <= 0 && cfg.Events <= 0 && ctx.Done() == nil {
		return LoadResult{}, errors.New("load: set a duration or an event count")
	}
	gen, err := loadgen.New(cfg.Gen)
	if err != nil {
		return LoadResult{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		res              LoadResult
		accepted, retrys atomic.Int64
		rejected, nbatch atomic.Int64
		mu               sync.Mutex
		lat              []time.Duration
		firstErr         error
	)
	start := time.Now()
	jobs := make(chan job, cfg.Concurrency)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				t0 := time.Now()
				for {
					_, err := cfg.Sink.Send(ctx, j.tenant, j.evs)
					var re *RetryableError
					if errors.As(err, &re) && ctx.Err() == nil {
						retrys.Add(1)
						sleep(ctx, re.After)
						continue
					}
					now := time.Now()
					switch {
					case err == nil:
						accepted.Add(int64(len(j.evs)))
						nbatch.Add(1)
						if cfg.OnAck != nil {
							cfg.OnAck(j.evs, now)
						}
						mu.Lock()
						lat = append(lat, now.Sub(t0))
						mu.Unlock()
					case ctx.Err() == nil:
						rejected.Add(int64(len(j.evs)))
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
					break
				}
			}
		}()
	}
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		tk := time.NewTicker(cfg.ProgressEvery)
		defer tk.Stop()
		var last int64
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				a := accepted.Load()
				b, _ := json.Marshal(map[string]any{"progress": true, "seconds": round(time.Since(start).Seconds(), 1),
					"accepted": a, "rate": round(float64(a-last)/cfg.ProgressEvery.Seconds(), 0), "retries": retrys.Load()})
				fmt.Fprintf(cfg.Progress, "%s\n", b)
				last = a
			}
		}
	}()

	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		tm := time.NewTimer(cfg.Duration)
		defer tm.Stop()
		deadline = tm.C
	}
	pending := map[string][]*sgv1.Event{}
	var offered int64
	dispatch := func(tenant string) bool {
		evs := pending[tenant]
		if len(evs) == 0 {
			return true
		}
		delete(pending, tenant)
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(offered) / cfg.Rate * float64(time.Second)))
			if !sleepUntil(ctx, deadline, due) {
				return false
			}
		}
		select {
		case jobs <- job{tenant: tenant, evs: evs}:
			offered += int64(len(evs))
			return true
		case <-ctx.Done():
			return false
		case <-deadline:
			return false
		}
	}
	tenantOf := func(ev *sgv1.Event) string { return ev.GetTenant() }
	if cfg.Gen.OmitTenant {
		tenantOf = func(*sgv1.Event) string { return "" }
	}
	stopped := false
	for cfg.Events <= 0 || offered+int64(countPending(pending)) < cfg.Events {
		ev := gen.Next()
		t := tenantOf(ev)
		pending[t] = append(pending[t], ev)
		if len(pending[t]) >= cfg.Batch && !dispatch(t) {
			stopped = true
			break
		}
	}
	if !stopped && ctx.Err() == nil {
		for _, t := range slices.Sorted(mapKeys(pending)) {
			if !dispatch(t) {
				break
			}
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-progressDone

	res.Events = offered
	res.Accepted, res.Rejected, res.Retries, res.Batches = accepted.Load(), rejected.Load(), retrys.Load(), nbatch.Load()
	res.Seconds = round(elapsed.Seconds(), 3)
	res.EventsPerSec = round(float64(res.Accepted)/elapsed.Seconds(), 0)
	res.BatchP50MS, res.BatchP99MS = percentileMS(lat, 0.50), percentileMS(lat, 0.99)
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	return res, nil
}

func countPending(p map[string][]*sgv1.Event) int {
	n := 0
	for _, evs := range p {
		n += len(evs)
	}
	return n
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sleepUntil waits until t; false when ctx or stop ended first.
func sleepUntil(ctx context.Context, stop <-chan time.Time, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

func sleep(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// percentileMS returns the q-quantile of ds in milliseconds (0 when empty).
func percentileMS(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return millis(s[i])
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return round(float64(d)/float64(time.Millisecond), 3)
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func sortStrings(s []string) { sort.Strings(s) }
