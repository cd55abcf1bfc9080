package drive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/loadgen"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// PipelineConfig configures Pipeline.
type PipelineConfig struct {
	// Sink carries the load and the spikes (HTTP, gRPC or Kafka).
	Sink Sink
	// Kafka is the cluster the stack runs on (for the topics it reads).
	Kafka []string
	// Tenant is the API key's tenant (default "default").
	Tenant   string
	Duration time.Duration
	// Rate is the target in events per second; 0 is as fast as possible.
	Rate               float64
	Batch, Concurrency int
	// Spikes is how many complaint spikes are injected over the duration
	// (default 5), each on a fresh domain.
	Spikes int
	Seed   uint64
	// Drain bounds the wait, after the load, for every acknowledged event to
	// be counted and every spike detected (default 60s).
	Drain time.Duration
	// Progress receives progress lines; nil is quiet.
	Progress io.Writer
	// OnDetect, when set, is called as each spike's pause is read, with
	// the spike's index and its detection latency (e.g. to save an
	// execution trace of a slow one while it is still recent). It runs on
	// the control topic's reader: it must return quickly.
	OnDetect func(spike int, latency time.Duration)
}

// PipelineResult is the benchmark's summary; its first six fields are the
// final JSON line issue 8 asks for.
type PipelineResult struct {
	EventsPerSec   float64 `json:"events_per_sec"`
	DetectP50MS    float64 `json:"detect_latency_p50_ms"`
	DetectP99MS    float64 `json:"detect_latency_p99_ms"`
	Lost           int64   `json:"lost"`
	Duplicated     int64   `json:"duplicated"`
	ConsumerLagMax int64   `json:"consumer_lag_max"`

	Acked              int64   `json:"acked"`
	IngestEventsPerSec float64 `json:"ingest_events_per_sec"`
	LoadSeconds        float64 `json:"load_seconds"`
	DrainSeconds       float64 `json:"drain_seconds"`
	Drained            bool    `json:"drained"`
	Spikes             int     `json:"spikes"`
	SpikesDetected     int     `json:"spikes_detected"`
	DetectMaxMS        float64 `json:"detect_latency_max_ms"`
	// SnapshotP50MS and SnapshotP99MS split the detection latency: from the
	// acknowledgement of the crossing batch to the first snapshot of the
	// spike's domain counting the crossing complaint on sg.metrics.v1
	// (ingest, normalizer and both windows steps); the rest is the rule
	// evaluator and the actuator.
	SnapshotP50MS float64 `json:"detect_snapshot_p50_ms"`
	SnapshotP99MS float64 `json:"detect_snapshot_p99_ms"`
	// EventsTopicP50MS and EventsTopicP99MS run from the acknowledgement to
	// the moment the bench read the crossing complaint on sg.events.v1
	// (ingest and normalizer); DetectLatenciesMS is each spike's detection
	// latency in the order they were injected (0: not detected).
	EventsTopicP50MS  float64   `json:"detect_events_topic_p50_ms"`
	EventsTopicP99MS  float64   `json:"detect_events_topic_p99_ms"`
	DetectLatenciesMS []float64 `json:"detect_latencies_ms"`
	// DetectHops splits each detected spike's latency by the broker
	// timestamps of the records on its path (see SpikeHops), in the order
	// the spikes were injected.
	DetectHops []SpikeHops `json:"detect_hops"`
	// EventsMissing and EventsRepeated compare acknowledged ids with
	// sg.events.v1; WindowExpected and WindowCounted compare acknowledged
	// events with the growth of the tenant scope's 28d counts.
	EventsMissing  int64 `json:"events_topic_missing"`
	EventsRepeated int64 `json:"events_topic_repeated"`
	WindowExpected int64 `json:"window_expected"`
	WindowCounted  int64 `json:"window_counted"`
	// LagEndOfLoad and LagAfterDrain are the largest group lag when the load
	// stopped and at the end; LagSamples one sample a second (largest group).
	LagEndOfLoad  int64   `json:"consumer_lag_end_of_load"`
	LagAfterDrain int64   `json:"consumer_lag_after_drain"`
	LagSamples    []int64 `json:"consumer_lag_samples"`
	// LagMaxByGroup is the largest lag of each consumer group: the stage
	// that falls behind.
	LagMaxByGroup map[string]int64 `json:"consumer_lag_max_by_group"`
	Retries       int64            `json:"retries"`
	Rejected      int64            `json:"rejected"`
	FirstError    string           `json:"first_error,omitempty"`
}

// SpikeHops is where one spike's detection time went, in milliseconds
// since the acknowledgement of its crossing batch, read from the timestamps
// the producers of each hop gave their records (kafka-go stamps a record
// when it encodes its batch for the broker: the end of the hop's
// consuming, handling and batching, the start of its write). Events is the
// crossing complaint on sg.events.v1 (ingest and the normalizer), Snapshot
// the first snapshot of the spike's domain counting it on sg.metrics.v1
// (admission and aggregation), Control the pause on sg.control.v1 (the rule
// evaluator and the actuator), Read when the bench read that pause (the
// broker's delivery to a consumer). Millisecond resolution; a hop can read
// earlier than the acknowledgement (tens of milliseconds on a busy
// machine), which the client stamps when its goroutine got the response.
// Nil (null): the record was not seen.
type SpikeHops struct {
	Events   *float64 `json:"events"`
	Snapshot *float64 `json:"snapshot"`
	Control  *float64 `json:"control"`
	Read     *float64 `json:"read"`
}

// countedMetrics are the tenant-scope counts every generated event type
// adds one to (bounced → delivery_errors).
var countedMetrics = map[sgv1.EventType]string{
	sgv1.EventType_EVENT_TYPE_SENT:         "sent_28d",
	sgv1.EventType_EVENT_TYPE_DELIVERED:    "delivered_28d",
	sgv1.EventType_EVENT_TYPE_DEFERRED:     "deferred_28d",
	sgv1.EventType_EVENT_TYPE_BOUNCED:      "delivery_errors_28d",
	sgv1.EventType_EVENT_TYPE_COMPLAINED:   "complaints_28d",
	sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED: "unsubscribes_28d",
	sgv1.EventType_EVENT_TYPE_OPENED:       "opens_28d",
	sgv1.EventType_EVENT_TYPE_CLICKED:      "clicks_28d",
	sgv1.EventType_EVENT_TYPE_REPLIED:      "replies_28d",
}

func windowTotal(sn *sgv1.WindowSnapshot) int64 {
	if sn == nil {
		return 0
	}
	var n float64
	for _, m := range countedMetrics {
		n += window.MetricValue(sn, m)
	}
	return int64(math.Round(n))
}

// tracker accounts for every event of the run by id: acknowledged by ingest,
// seen on sg.events.v1.
type tracker struct {
	prefix string
	mu     sync.Mutex
	acked  []bool
	seen   []uint8
	other  map[string]*[2]uint8 // spike ids: acked (0/1), times seen
	nAcked int64
	nByTyp map[sgv1.EventType]int64
}

func newTracker(prefix string) *tracker {
	return &tracker{prefix: prefix, other: map[string]*[2]uint8{}, nByTyp: map[sgv1.EventType]int64{}}
}

// index parses a generated id prefix-N; ok is false for other ids.
func (t *tracker) index(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, t.prefix+"-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

func grow[T any](s []T, n int) []T {
	if n < len(s) {
		return s
	}
	return append(s, make([]T, n+1-len(s)+len(s)/2)...)
}

func (t *tracker) ack(evs []*sgv1.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ev := range evs {
		id := ev.GetEventId()
		first := false
		if n, ok := t.index(id); ok {
			t.acked = grow(t.acked, n)
			first, t.acked[n] = !t.acked[n], true
		} else {
			o := t.other[id]
			if o == nil {
				o = &[2]uint8{}
				t.other[id] = o
			}
			first, o[0] = o[0] == 0, 1
		}
		if first {
			t.nAcked++
			if _, ok := countedMetrics[ev.GetType()]; ok {
				t.nByTyp[ev.GetType()]++
			}
		}
	}
}

func (t *tracker) see(id string) {
	if !strings.HasPrefix(id, t.prefix) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.index(id); ok {
		t.seen = grow(t.seen, n)
		if t.seen[n] < 255 {
			t.seen[n]++
		}
		return
	}
	o := t.other[id]
	if o == nil {
		o = &[2]uint8{}
		t.other[id] = o
	}
	if o[1] < 255 {
		o[1]++
	}
}

// tally returns acknowledged ids not seen, ids seen more than once, and the
// count of acknowledged events the windows should count.
func (t *tracker) tally() (missing, repeated, expected int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, a := range t.acked {
		var s uint8
		if i < len(t.seen) {
			s = t.seen[i]
		}
		if a && s == 0 {
			missing++
		}
		if s > 1 {
			repeated++
		}
	}
	for _, o := range t.other {
		if o[0] == 1 && o[1] == 0 {
			missing++
		}
		if o[1] > 1 {
			repeated++
		}
	}
	for _, n := range t.nByTyp {
		expected += n
	}
	return missing, repeated, expected
}

// spike is one injected complaint spike.
type spike struct {
	index   int // in the order of injection
	domain  string
	key     string // sg.metrics.v1 / sg.control.v1 key of its domain scope
	warmup  []*sgv1.Event
	events  []*sgv1.Event
	warmed  atomic.Int64 // delivered_24h seen in its domain snapshots
	ackedAt atomic.Int64 // unix nanos the crossing batch was acknowledged
	counted atomic.Int64 // unix nanos a domain snapshot first counted the crossing complaint
	// normalized is the unix nanos the crossing complaint was read on
	// sg.events.v1.
	normalized atomic.Int64
	paused     atomic.Int64 // unix nanos the pause command was read
	// The producers' timestamps (unix nanos) of the records behind
	// normalized, counted and paused (SpikeHops).
	normalizedStamp, countedStamp, pausedStamp atomic.Int64
}

const spikeDelivered, spikeComplaints = 600, 6

// spikeCrossing is the spike's complaint that crosses the default pack's
// 0.2 % domain complaint rule over spikeDelivered deliveries.
const spikeCrossing = 2

// Pipeline drives sustained load through a running stack and measures it:
// throughput end to end, detection latency of injected complaint spikes
// (acknowledgement of the batch holding the crossing complaint → the pause
// command for the domain read from sg.control.v1), every acknowledged event
// counted once (sg.events.v1 by id, and the tenant scope's window counts),
// and consumer-group lag sampled from the broker every second.
func Pipeline(ctx context.Context, cfg PipelineConfig) (PipelineResult, error) {
	if cfg.Tenant == "" {
		cfg.Tenant = "default"
	}
	if cfg.Spikes <= 0 {
		cfg.Spikes = 5
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 60 * time.Second
	}
	if cfg.Duration <= 0 || cfg.Sink == nil || len(cfg.Kafka) == 0 {
		return PipelineResult{}, errors.New("bench pipeline: duration, sink and kafka are required")
	}
	b := newBroker(cfg.Kafka)
	defer b.close()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	prefix := "bench" + run
	tr := newTracker(prefix)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tails sync.WaitGroup
	tailErr := make(chan error, 64)
	// startTail tails topic from its end offsets; only the partitions of
	// keys when keys are given (the metrics topic is large: reading only
	// what the bench needs keeps its own cost off the measurement).
	startTail := func(topic string, fn func(record), keys ...string) error {
		_, end, err := b.offsets(ctx, topic)
		if err != nil {
			return err
		}
		want := map[int]bool{}
		for _, k := range keys {
			want[partitionOf([]byte(k), len(end))] = true
		}
		for p, off := range end {
			if len(keys) > 0 && !want[p] {
				continue
			}
			tails.Add(1)
			go func() {
				defer tails.Done()
				if err := b.tail(ctx, topic, p, off, -1, fn); err != nil {
					tailErr <- err
				}
			}()
		}
		return nil
	}
	defer func() { cancel(); tails.Wait() }()

	// Spikes: fresh domains, warmed up before the load starts.
	now := time.Now().UTC()
	spikes := make([]*spike, cfg.Spikes)
	byKey := map[string]*spike{}
	byCrossingID := map[string]*spike{} // read-only once built
	var spikeKeys []string
	for i := range spikes {
		d := fmt.Sprintf("spike%d-%s.example", i, run)
		w, e := loadgen.DomainSpike(cfg.Tenant, d, now, spikeDelivered, spikeComplaints, fmt.Sprintf("%ss%d", prefix, i))
		s := &spike{index: i, domain: d, key: string(topics.Key(cfg.Tenant, "domain", d)), warmup: w, events: e}
		spikes[i], byKey[s.key] = s, s
		byCrossingID[e[spikeCrossing-1].GetEventId()] = s
		spikeKeys = append(spikeKeys, s.key)
	}

	var (
		byGroupMu sync.Mutex
		byGroup   = map[string]int64{}
	)
	sampleLag := func() int64 {
		lags, err := b.lag(ctx, nil)
		if err != nil {
			return -1
		}
		var m int64
		byGroupMu.Lock()
		defer byGroupMu.Unlock()
		for g, l := range lags {
			m = max(m, l)
			byGroup[g] = max(byGroup[g], l)
		}
		return m
	}
	// Start from a quiet pipeline, so the baseline holds everything sent
	// before the run (what is still in flight would count as duplicated).
	for quiet := time.Now().Add(cfg.Drain); sampleLag() != 0 && time.Now().Before(quiet); {
		sleep(ctx, 200*time.Millisecond)
	}

	// The tenant scope's latest snapshot before the run is the baseline.
	tenantKey := string(topics.Key(cfg.Tenant, "tenant", cfg.Tenant))
	baseline, err := latestSnapshot(ctx, b, topics.Metrics, tenantKey)
	if err != nil {
		return PipelineResult{}, err
	}
	var (
		snapMu sync.Mutex
		latest = baseline
	)
	err = startTail(topics.Metrics, func(r record) {
		k := string(r.key)
		s, isSpike := byKey[k]
		if k != tenantKey && !isSpike {
			return
		}
		sn := &sgv1.WindowSnapshot{}
		if proto.Unmarshal(r.value, sn) != nil {
			return
		}
		if isSpike {
			if v := int64(window.MetricValue(sn, "delivered_24h")); v > s.warmed.Load() {
				s.warmed.Store(v)
			}
			if window.MetricValue(sn, "complaints_24h") >= spikeCrossing && s.counted.CompareAndSwap(0, time.Now().UnixNano()) {
				s.countedStamp.Store(r.at.UnixNano())
			}
			return
		}
		snapMu.Lock()
		if latest == nil || sn.GetVersion() > latest.GetVersion() {
			latest = sn
		}
		snapMu.Unlock()
	}, append(spikeKeys, tenantKey)...)
	if err == nil {
		err = startTail(topics.Control, func(r record) {
			s := byKey[string(r.key)]
			if s == nil || s.paused.Load() != 0 {
				return
			}
			c := &sgv1.ControlCommand{}
			now := time.Now().UnixNano()
			if proto.Unmarshal(r.value, c) == nil && c.GetAction() == sgv1.Action_ACTION_PAUSE && s.paused.CompareAndSwap(0, now) {
				s.pausedStamp.Store(r.at.UnixNano())
				if a := s.ackedAt.Load(); cfg.OnDetect != nil && a != 0 {
					cfg.OnDetect(s.index, time.Duration(now-a))
				}
			}
		})
	}
	if err == nil {
		err = startTail(topics.Events, func(r record) {
			_, id, ok := strings.Cut(string(r.key), "|")
			if ok {
				tr.see(id)
				if s := byCrossingID[id]; s != nil && s.normalized.CompareAndSwap(0, time.Now().UnixNano()) {
					s.normalizedStamp.Store(r.at.UnixNano())
				}
			}
		})
	}
	if err != nil {
		return PipelineResult{}, err
	}

	// Lag sampler.
	var (
		lagMu      sync.Mutex
		lagSamples []int64
		lagNow     atomic.Int64
	)
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-lagCtx.Done():
				return
			case <-tk.C:
				if l := sampleLag(); l >= 0 {
					lagNow.Store(l)
					lagMu.Lock()
					lagSamples = append(lagSamples, l)
					lagMu.Unlock()
				}
			}
		}
	}()

	for _, s := range spikes {
		if err := sendAll(ctx, cfg.Sink, cfg.Tenant, s.warmup, tr); err != nil {
			stopLag()
			return PipelineResult{}, fmt.Errorf("spike warm-up: %w", err)
		}
	}

	// The load, with the spikes injected at even intervals.
	start := time.Now()
	var spikeWG sync.WaitGroup
	spikeWG.Add(1)
	go func() {
		defer spikeWG.Done()
		for i, s := range spikes {
			at := start.Add(cfg.Duration * time.Duration(i+1) / time.Duration(cfg.Spikes+1))
			if !sleepUntil(ctx, nil, at) {
				return
			}
			// The crossing complaint must be the one that crosses: wait
			// (bounded) until the warm-up deliveries are counted.
			for deadline := time.Now().Add(15 * time.Second); s.warmed.Load() < spikeDelivered && time.Now().Before(deadline); {
				sleep(ctx, 20*time.Millisecond)
			}
			if err := sendAll(ctx, cfg.Sink, cfg.Tenant, s.events, tr); err != nil {
				return
			}
			s.ackedAt.Store(time.Now().UnixNano())
		}
	}()
	genCfg := loadgen.Config{
		Seed: cfg.Seed, Start: time.Now().UTC(), Tenants: []string{cfg.Tenant}, IDPrefix: prefix,
		MessagesPerSecond: max(cfg.Rate, 1000) / 2.2, // ~2.2 events per message
		MaxDelay:          2 * time.Second,
	}
	loadRes, err := Load(ctx, LoadConfig{
		Gen: genCfg, Sink: cfg.Sink, Rate: cfg.Rate, Duration: cfg.Duration,
		Batch: cfg.Batch, Concurrency: cfg.Concurrency, Progress: cfg.Progress,
		OnAck: func(evs []*sgv1.Event, _ time.Time) { tr.ack(evs) },
	})
	spikeWG.Wait()
	if err != nil {
		stopLag()
		return PipelineResult{}, err
	}
	loadEnd := time.Now()
	lagEndOfLoad := lagNow.Load()

	// Drain: until every acknowledged event is on sg.events.v1 and counted in
	// the tenant's windows, and every spike detected.
	res := PipelineResult{Spikes: cfg.Spikes, Retries: loadRes.Retries, Rejected: loadRes.Rejected, FirstError: loadRes.FirstError}
	var counted int64
	drainDeadline := loadEnd.Add(cfg.Drain)
	for {
		select {
		case err := <-tailErr:
			stopLag()
			return PipelineResult{}, err
		default:
		}
		missing, _, expected := tr.tally()
		snapMu.Lock()
		counted = windowTotal(latest) - windowTotal(baseline)
		snapMu.Unlock()
		detected := 0
		for _, s := range spikes {
			if s.paused.Load() != 0 {
				detected++
			}
		}
		if missing == 0 && counted >= expected && detected == len(spikes) {
			res.Drained = true
			break
		}
		if time.Now().After(drainDeadline) || ctx.Err() != nil {
			break
		}
		sleep(ctx, 50*time.Millisecond)
	}
	drainEnd := time.Now()
	stopLag()
	<-lagDone
	res.LagAfterDrain = sampleLag()
	byGroupMu.Lock()
	res.LagMaxByGroup = byGroup
	byGroupMu.Unlock()

	missing, repeated, expected := tr.tally()
	tr.mu.Lock()
	res.Acked = tr.nAcked
	tr.mu.Unlock()
	res.EventsMissing, res.EventsRepeated = missing, repeated
	res.WindowExpected, res.WindowCounted = expected, counted
	res.Lost = max(missing, expected-counted)
	res.Duplicated = max(repeated, counted-expected)
	res.LoadSeconds = round(loadEnd.Sub(start).Seconds(), 3)
	res.DrainSeconds = round(drainEnd.Sub(loadEnd).Seconds(), 3)
	res.IngestEventsPerSec = round(float64(res.Acked)/loadEnd.Sub(start).Seconds(), 0)
	res.EventsPerSec = round(float64(res.Acked)/drainEnd.Sub(start).Seconds(), 0)
	var lat, toSnapshot, toEvents []time.Duration
	res.DetectLatenciesMS = make([]float64, len(spikes))
	res.DetectHops = []SpikeHops{}
	for i, s := range spikes {
		p, a := s.paused.Load(), s.ackedAt.Load()
		if p == 0 || a == 0 {
			continue
		}
		since := func(at int64) *float64 {
			if at == 0 {
				return nil
			}
			ms := millis(time.Duration(at - a))
			return &ms
		}
		res.DetectHops = append(res.DetectHops, SpikeHops{
			Events: since(s.normalizedStamp.Load()), Snapshot: since(s.countedStamp.Load()),
			Control: since(s.pausedStamp.Load()), Read: since(p),
		})
		res.SpikesDetected++
		d := max(0, time.Duration(p-a))
		lat = append(lat, d)
		res.DetectLatenciesMS[i] = millis(d)
		if c := s.counted.Load(); c != 0 {
			toSnapshot = append(toSnapshot, max(0, time.Duration(c-a)))
		}
		if n := s.normalized.Load(); n != 0 {
			toEvents = append(toEvents, max(0, time.Duration(n-a)))
		}
	}
	res.EventsTopicP50MS, res.EventsTopicP99MS = percentileMS(toEvents, 0.5), percentileMS(toEvents, 0.99)
	res.DetectP50MS, res.DetectP99MS, res.DetectMaxMS = percentileMS(lat, 0.5), percentileMS(lat, 0.99), percentileMS(lat, 1)
	res.SnapshotP50MS, res.SnapshotP99MS = percentileMS(toSnapshot, 0.5), percentileMS(toSnapshot, 0.99)
	lagMu.Lock()
	res.LagSamples = lagSamples
	lagMu.Unlock()
	res.LagEndOfLoad = lagEndOfLoad
	res.ConsumerLagMax = max(res.LagAfterDrain, lagEndOfLoad)
	for _, l := range res.LagSamples {
		res.ConsumerLagMax = max(res.ConsumerLagMax, l)
	}
	if res.LagSamples == nil {
		res.LagSamples = []int64{}
	}
	return res, nil
}

// sendAll sends evs as one batch, retrying retryable refusals, and records
// the acknowledgement.
func sendAll(ctx context.Context, sink Sink, tenant string, evs []*sgv1.Event, tr *tracker) error {
	for {
		_, err := sink.Send(ctx, tenant, evs)
		var re *RetryableError
		if errors.As(err, &re) && ctx.Err() == nil {
			sleep(ctx, re.After)
			continue
		}
		if err != nil {
			return err
		}
		tr.ack(evs)
		return nil
	}
}

// latestSnapshot returns the highest-version snapshot with key on topic, by
// reading the key's partition backwards in chunks; nil when there is none.
func latestSnapshot(ctx context.Context, b *broker, topic, key string) (*sgv1.WindowSnapshot, error) {
	first, end, err := b.offsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	p := partitionOf([]byte(key), len(end))
	const chunk = 5000
	for hi := end[p]; hi > first[p]; hi -= chunk {
		lo := max(first[p], hi-chunk)
		var best *sgv1.WindowSnapshot
		var decodeErr error
		err := b.tail(ctx, topic, p, lo, hi, func(r record) {
			if string(r.key) != key {
				return
			}
			sn := &sgv1.WindowSnapshot{}
			if err := proto.Unmarshal(r.value, sn); err != nil {
				decodeErr = err
				return
			}
			if best == nil || sn.GetVersion() > best.GetVersion() {
				best = sn
			}
		})
		if err != nil {
			return nil, err
		}
		if decodeErr != nil {
			return nil, fmt.Errorf("snapshot %s: %w", key, decodeErr)
		}
		if best != nil {
			return best, nil
		}
	}
	return nil, nil
}

// MarshalLine renders v as one JSON line.
func MarshalLine(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	return append(b, '\n')
}
