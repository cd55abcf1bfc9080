package windows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// HeaderPartition, on a window checkpoint (sg.window-state.v1), names the
// sg.scoped-events.v1 partition that owns the scope.
const HeaderPartition = "sg-partition"

// StateReader reads a whole compacted topic (kafka.ReadAll bound to the
// brokers).
type StateReader func(ctx context.Context, topic string, fn func(kafka.Message) error) error

// BrokerStateReader returns a StateReader over brokers.
func BrokerStateReader(brokers []string) StateReader {
	return func(ctx context.Context, topic string, fn func(kafka.Message) error) error {
		return kafka.ReadAll(ctx, brokers, topic, fn)
	}
}

// ExistingChecker tells which of ids of tenant are already stored;
// *clickhouse.EventChecker implements it.
type ExistingChecker interface {
	Existing(ctx context.Context, tenant string, ids []string) (map[string]bool, error)
}

type pendingRow struct {
	partition int32
	ev        *sgv1.Event
	check     bool // may already be in ClickHouse: look before inserting
}

// Admit is the first step of the windowed-metrics component (a
// kafka.Handler and kafka.Flusher over sg.events.v1): per source partition
// it decides which events count (window.Admission: lateness, future, exact
// id dedup), fans every admitted event out to the owners of the scopes it
// counts in (sg.scoped-events.v1 batches, each for the partition that the
// key tenant|level|target of some of the event's scopes hashes to, so each
// scope has one owner downstream; the event is reduced to what windows read
// and stamped with its source partition and offset, so the owner skips
// replays exactly), appends admitted events to
// ClickHouse, and checkpoints the admitted ids incrementally to
// sg.admit-state.v1.
//
// Partition state is restored lazily: when a record of a partition arrives
// and is not the successor of the last one handled from it (the first
// record after start, or after a rebalance gave the partition back), the
// partition's segments are read from the state topic and only ids below
// that record's offset are kept.
//
// Flush order: segments and scoped records are produced first, then
// ClickHouse is flushed, then the runner commits. Ids of a segment at or
// above the resume offset were therefore possibly inserted by the run that
// crashed before its commit: those events are looked up in ClickHouse
// before they are inserted again (ExistingChecker), which closes the
// insert→commit window for crashes and restarts.
type Admit struct {
	adm     *window.Admission
	pub     Publisher
	sink    EventSink       // nil when analytics are off
	checker ExistingChecker // nil: no look-up (rollups may double after a crash)
	read    StateReader
	logger  *zap.Logger

	next   map[int32]int64
	ahead  map[int32]map[string]bool // partition -> tenant\x00id possibly in ClickHouse
	out    []kafka.Record
	rows   []pendingRow
	keys   []window.ScopeKey
	keyBuf []byte

	// Scoped updates not yet published, by sg.scoped-events.v1 partition.
	partitions PartitionCounter
	nScoped    int       // partitions of sg.scoped-events.v1
	nScopedAt  time.Time // when nScoped was read
	batches    map[int]*scopedBatch
	sealedLen  map[int]int         // length of each partition's last sealed batch
	levelsOf   [][]sgv1.ScopeLevel // addScoped's scratch, by partition
	touched    []int               // addScoped's scratch
	counted    []byte              // addScoped's scratch

	unflushed func(context.Context) error // Flush's failed flush, run first next time
}

// PartitionCounter returns the number of partitions of sg.scoped-events.v1.
type PartitionCounter func(ctx context.Context) (int, error)

// BrokerPartitions returns a PartitionCounter asking brokers.
func BrokerPartitions(brokers []string) PartitionCounter {
	return func(ctx context.Context) (int, error) { return kafka.Partitions(ctx, brokers, topics.ScopedEvents) }
}

// FixedPartitions returns a PartitionCounter of n partitions (tests).
func FixedPartitions(n int) PartitionCounter {
	return func(context.Context) (int, error) { return n, nil }
}

// partitionsTTL is how long the partition count of sg.scoped-events.v1 is
// trusted, as long as the producer trusts its metadata.
const partitionsTTL = 10 * time.Second

// maxBatchBytes bounds one sg.scoped-events.v1 record, well under the
// producer's and broker's 1 MB defaults.
const maxBatchBytes = 256 << 10

// scopedBatch is one sg.scoped-events.v1 record being built.
type scopedBatch struct {
	key   []byte // the key of one of its scopes: routes it to its partition
	value []byte // a ScopedBatch on the wire: its scoped entries so far
}

var (
	_ kafka.Handler  = (*Admit)(nil)
	_ kafka.Flusher  = (*Admit)(nil)
	_ kafka.Detacher = (*Admit)(nil)
)

// NewAdmit returns the admission step. sink and checker may be nil;
// partitions tells how many partitions sg.scoped-events.v1 has, so the
// step groups each scope's updates into a record of the partition that
// scope's key hashes to.
func NewAdmit(cfg window.AdmitConfig, pub Publisher, sink EventSink, checker ExistingChecker, read StateReader, partitions PartitionCounter, logger *zap.Logger) *Admit {
	return &Admit{
		adm: window.NewAdmission(cfg), pub: pub, sink: sink, checker: checker, read: read, logger: logger,
		next: make(map[int32]int64), ahead: make(map[int32]map[string]bool),
		partitions: partitions, batches: make(map[int]*scopedBatch),
	}
}

// Admission exposes the admission state (tests, status).
func (s *Admit) Admission() *window.Admission { return s.adm }

// Handle admits one event. Late, future and invalid events are permanent
// failures (dead letters with the reason); duplicates are dropped.
func (s *Admit) Handle(ctx context.Context, msg kafka.Message) error {
	p, off := int32(msg.Partition()), msg.Offset()
	if n, ok := s.next[p]; !ok || n != off {
		if err := s.restore(ctx, p, off); err != nil {
			return err
		}
	}
	s.next[p] = off + 1
	ev := &sgv1.Event{}
	if err := proto.Unmarshal(msg.Value(), ev); err != nil {
		return kafka.Permanent("event", fmt.Errorf("decode event: %w", err))
	}
	v, err := s.adm.Admit(p, off, msg.Time(), ev)
	if err != nil {
		if errors.Is(err, window.ErrLateEvent) || errors.Is(err, window.ErrFutureEvent) || errors.Is(err, window.ErrInvalidEvent) {
			return kafka.Permanent("window", err)
		}
		return err
	}
	if v != window.Admitted {
		return nil
	}
	if window.CountsSomewhere(ev) {
		if err := s.addScoped(ctx, ev, p, off); err != nil {
			return err
		}
	}
	if s.sink != nil {
		check := s.ahead[p][ev.GetTenant()+"\x00"+ev.GetEventId()]
		s.rows = append(s.rows, pendingRow{partition: p, ev: ev, check: check})
	}
	return nil
}

// addScoped adds ev, reduced to what the windows read (window.Counted),
// to the batches of the partitions its scopes hash to, with the levels of
// the scopes each partition owns, sealing a batch that grew past
// maxBatchBytes.
func (s *Admit) addScoped(ctx context.Context, ev *sgv1.Event, p int32, off int64) error {
	if s.nScoped == 0 || len(s.batches) == 0 && time.Since(s.nScopedAt) > partitionsTTL {
		// Read the count only between flushes: one flush's updates are
		// grouped by one count.
		n, err := s.partitions(ctx)
		if err != nil {
			return fmt.Errorf("scoped events partitions: %w", err)
		}
		if n < 1 {
			return fmt.Errorf("scoped events partitions: %d", n)
		}
		s.nScoped, s.nScopedAt = n, time.Now()
		s.levelsOf = make([][]sgv1.ScopeLevel, n)
	}
	// The levels of ev's scopes, by the partition each scope's key hashes
	// to, partitions in the order first met.
	s.keys = window.ScopeKeys(ev, s.keys[:0])
	s.touched = s.touched[:0]
	for _, k := range s.keys {
		s.keyBuf = topics.AppendKey(s.keyBuf[:0], k.Tenant, window.LevelWord(k.Level), k.Target)
		q := kafka.PartitionOf(s.keyBuf, s.nScoped)
		if len(s.levelsOf[q]) == 0 {
			s.touched = append(s.touched, q)
			if s.batches[q] == nil {
				s.batches[q] = &scopedBatch{key: bytes.Clone(s.keyBuf), value: make([]byte, 0, s.batchCap(q))}
			}
		}
		s.levelsOf[q] = append(s.levelsOf[q], k.Level)
	}
	var err error
	if s.counted, err = countedMarshal.MarshalAppend(s.counted[:0], window.Counted(ev)); err != nil {
		return fmt.Errorf("marshal scoped event: %w", err)
	}
	for _, q := range s.touched {
		b := s.batches[q]
		b.value = appendScopedEvent(b.value, s.counted, s.levelsOf[q], p, off)
		s.levelsOf[q] = s.levelsOf[q][:0]
		if len(b.value) >= maxBatchBytes {
			s.seal(q)
		}
	}
	return nil
}

// batchCap is the capacity a new batch of partition q starts with: a
// quarter more than its last one (batches of consecutive flushes are alike
// at a steady rate), within 32 KB and maxBatchBytes plus room for the
// entry that crosses it, so the buffer is rarely grown and copied.
func (s *Admit) batchCap(q int) int {
	return min(max(s.sealedLen[q]+s.sealedLen[q]/4, 32<<10), maxBatchBytes+16<<10)
}

// countedMarshal encodes the reduced events.
var countedMarshal = proto.MarshalOptions{}

// seal turns partition q's batch into a record to publish.
func (s *Admit) seal(q int) {
	b := s.batches[q]
	if b == nil || len(b.value) == 0 {
		return
	}
	delete(s.batches, q)
	if s.sealedLen == nil {
		s.sealedLen = make(map[int]int)
	}
	s.sealedLen[q] = len(b.value)
	s.out = append(s.out, kafka.Record{Topic: topics.ScopedEvents, Key: b.key, Value: b.value})
}

// restore rebuilds partition p's admission state for consumption resuming
// at offset from.
func (s *Admit) restore(ctx context.Context, p int32, from int64) error {
	var segs kafka.Latest
	err := s.read(ctx, topics.AdmitState, func(m kafka.Message) error {
		if sp, ok := window.ParseSegmentKey(string(m.Key())); ok && sp == p {
			segs.Add(m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore admission %d: %w", p, err)
	}
	ahead, err := s.adm.Restore(p, from, segs.Map())
	if err != nil {
		return fmt.Errorf("restore admission %d: %w", p, err)
	}
	set := make(map[string]bool, len(ahead))
	for _, e := range ahead {
		set[e.Tenant+"\x00"+e.EventID] = true
	}
	s.ahead[p] = set
	// Rows of p handled before the discontinuity may be handled again by
	// this or another instance: look them up before inserting.
	for i := range s.rows {
		if s.rows[i].partition == p {
			s.rows[i].check = true
		}
	}
	s.logger.Info("admission state restored", zap.Int32("partition", p), zap.Int64("from", from),
		zap.Int("segments", segs.Len()), zap.Int("ahead", len(ahead)))
	return nil
}

// Flush makes the admitted events durable downstream: segments and scoped
// records first, then ClickHouse rows (looked up first when they may
// already be there).
func (s *Admit) Flush(ctx context.Context) error {
	return kafka.FlushDetached(ctx, &s.unflushed, s)
}

// Detach takes what was admitted since the previous Detach (sealed scoped
// batches, the partitions' new segments and expired ones, the pending
// ClickHouse rows) and returns the function that makes it durable, in
// Flush's order (kafka.Detacher): the runner runs it while the step admits
// the next events. Retried after a failure, the function publishes the
// records again (segments and scoped records are idempotent: same keys,
// same source offsets) but appends the rows to the sink only once.
func (s *Admit) Detach(context.Context) (func(context.Context) error, error) {
	for q := range s.batches {
		s.seal(q)
	}
	for _, p := range s.adm.Partitions() {
		if key, val, ok := s.adm.TakeSegment(p); ok {
			s.out = append(s.out, kafka.Record{Topic: topics.AdmitState, Key: []byte(key), Value: val})
		}
		for _, key := range s.adm.ExpiredSegments(p) {
			s.out = append(s.out, kafka.Record{Topic: topics.AdmitState, Key: []byte(key)})
		}
	}
	out := s.out
	s.out = nil
	var rows []pendingRow
	if s.sink != nil {
		rows = s.rows
		s.rows = nil
		// A row that may already be stored is looked up once: the id
		// leaves the partition's ahead set now.
		for _, r := range rows {
			if r.check {
				delete(s.ahead[r.partition], r.ev.GetTenant()+"\x00"+r.ev.GetEventId())
			}
		}
		for p, set := range s.ahead {
			if len(set) == 0 {
				delete(s.ahead, p)
			}
		}
	}
	published, appended := len(out) == 0, len(rows) == 0
	return func(ctx context.Context) error {
		if !published {
			if err := s.pub.Produce(ctx, out...); err != nil {
				return fmt.Errorf("publish scoped events: %w", err)
			}
			published = true
		}
		if !appended {
			evs, err := s.insertable(ctx, rows)
			if err != nil {
				return err
			}
			if len(evs) > 0 {
				if err := s.sink.Append(ctx, evs...); err != nil {
					return fmt.Errorf("analytics: %w", err)
				}
			}
			// Appended rows are the writer's now: a retry flushes the
			// writer's buffer without appending them again.
			appended = true
		}
		if s.sink == nil {
			return nil
		}
		if err := s.sink.Flush(ctx); err != nil {
			return fmt.Errorf("flush analytics: %w", err)
		}
		return nil
	}, nil
}

// insertable returns the events of rows minus those the checker finds
// already stored.
func (s *Admit) insertable(ctx context.Context, rows []pendingRow) ([]*sgv1.Event, error) {
	byTenant := make(map[string][]string)
	for _, r := range rows {
		if r.check && s.checker != nil {
			byTenant[r.ev.GetTenant()] = append(byTenant[r.ev.GetTenant()], r.ev.GetEventId())
		}
	}
	stored := make(map[string]bool)
	for tenant, ids := range byTenant {
		got, err := s.checker.Existing(ctx, tenant, ids)
		if err != nil {
			return nil, fmt.Errorf("look up stored events: %w", err)
		}
		for id := range got {
			stored[tenant+"\x00"+id] = true
		}
	}
	evs := make([]*sgv1.Event, 0, len(rows))
	for _, r := range rows {
		if r.check && stored[r.ev.GetTenant()+"\x00"+r.ev.GetEventId()] {
			continue
		}
		evs = append(evs, r.ev)
	}
	return evs, nil
}
