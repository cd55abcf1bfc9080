package app

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// GroupDeadLetters is the consumer group of the dead-letter writer; it is
// its own group so that writing dead letters to ClickHouse never competes
// with any other reader of sg.dlq.v1.
const GroupDeadLetters = "sendguard-dead-letters"

// Headers set on a re-driven record, so that consumers, logs and operators
// can tell a re-drive from an original delivery.
const (
	// HeaderRedrivenFrom names the dead letter a record was re-driven
	// from: "sg.dlq.v1/PARTITION@OFFSET".
	HeaderRedrivenFrom = "sg-redriven-from"
	// HeaderRedrivenAt is when it was re-driven (RFC 3339, UTC).
	HeaderRedrivenAt = "sg-redriven-at"
)

// stageDeadLetterWriter names the dead-letter writer in the rows it writes
// for records of sg.dlq.v1 it cannot decode.
const stageDeadLetterWriter = "dead-letter-writer"

// AddDeadLetterWriter adds, when ClickHouse is on (e.ClickHouse != nil), a
// consumer of sg.dlq.v1 in group GroupDeadLetters that writes one
// dead_letters row per dead letter through a BatchWriter. The runner
// commits only after the writer flushed, so every dead letter reaches
// ClickHouse at least once. A record that is not a DeadLetter is written
// as a row of its own (stage "dead-letter-writer", the decode error as
// reason, the record's exact bytes), so nothing on the topic is invisible
// to analysts. Without ClickHouse it adds nothing.
func AddDeadLetterWriter(e *Env) error {
	if e.ClickHouse == nil {
		return nil
	}
	w, err := clickhouse.NewBatchWriter(e.ClickHouse, clickhouse.DeadLettersTable, clickhouse.DeadLetterRow,
		clickhouse.WriterConfig{Registerer: e.Registry, MaxRows: 1000, FlushInterval: time.Second})
	if err != nil {
		return fmt.Errorf("dead letters writer: %w", err)
	}
	e.OnClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			e.Logger.Warn("close dead letters writer", zap.Error(err))
		}
	})
	return e.runner(GroupDeadLetters, topics.DLQ, stageDeadLetterWriter, NewDeadLetterSink(w))
}

// DeadLetterAppender buffers dead letters for a store and makes them
// durable in Flush; *clickhouse.BatchWriter[*sgv1.DeadLetter] implements it.
type DeadLetterAppender interface {
	Append(ctx context.Context, d ...*sgv1.DeadLetter) error
	Flush(ctx context.Context) error
}

// DeadLetterSink is the kafka.Handler of the dead-letter writer: it decodes
// each record of sg.dlq.v1 and appends it to a DeadLetterAppender. It never
// returns a permanent error (that would dead-letter a dead letter).
type DeadLetterSink struct{ w DeadLetterAppender }

var (
	_ kafka.Handler = (*DeadLetterSink)(nil)
	_ kafka.Flusher = (*DeadLetterSink)(nil)
)

// NewDeadLetterSink returns a sink appending to w.
func NewDeadLetterSink(w DeadLetterAppender) *DeadLetterSink { return &DeadLetterSink{w: w} }

// Handle appends msg's dead letter. The tenant comes from the dead letter,
// or from the record's tenant header when the letter has none.
func (s *DeadLetterSink) Handle(ctx context.Context, msg kafka.Message) error {
	dl := &sgv1.DeadLetter{}
	if err := proto.Unmarshal(msg.Value(), dl); err != nil {
		dl = &sgv1.DeadLetter{
			Stage: stageDeadLetterWriter, Handler: "decode", Reason: fmt.Sprintf("decode dead letter: %v", err),
			Topic: msg.Topic(), Partition: int32(msg.Partition()), Offset: msg.Offset(),
			Key: msg.Key(), Value: msg.Value(), FailedAt: timestamppb.New(msg.Time()),
		}
	}
	if dl.Tenant == "" {
		dl.Tenant = string(msg.Header(kafka.HeaderTenant))
	}
	if err := s.w.Append(ctx, dl); err != nil {
		return fmt.Errorf("append dead letter: %w", err)
	}
	return nil
}

// Flush makes every appended dead letter durable.
func (s *DeadLetterSink) Flush(ctx context.Context) error { return s.w.Flush(ctx) }

// DeadLetterFilter selects dead letters; an empty field matches anything.
type DeadLetterFilter struct {
	Stage, Handler, Tenant string
	// Since (inclusive) and Until (exclusive) bound failed_at; zero is
	// unbounded.
	Since, Until time.Time
}

// Match reports whether dl passes every condition of f.
func (f DeadLetterFilter) Match(dl *sgv1.DeadLetter) bool {
	switch {
	case f.Stage != "" && dl.GetStage() != f.Stage,
		f.Handler != "" && dl.GetHandler() != f.Handler,
		f.Tenant != "" && dl.GetTenant() != f.Tenant:
		return false
	}
	at := dl.GetFailedAt().AsTime()
	if !f.Since.IsZero() && at.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !at.Before(f.Until) {
		return false
	}
	return true
}

// DeadLetterEntry is one dead letter with where it sits on sg.dlq.v1.
type DeadLetterEntry struct {
	Partition int
	Offset    int64
	Letter    *sgv1.DeadLetter
}

// Coordinates returns "sg.dlq.v1/PARTITION@OFFSET".
func (d DeadLetterEntry) Coordinates() string {
	return topics.DLQ + "/" + strconv.Itoa(d.Partition) + "@" + strconv.FormatInt(d.Offset, 10)
}

// Selection is the outcome of SelectDeadLetters.
type Selection struct {
	// Entries are the selected dead letters, oldest failure first.
	Entries []DeadLetterEntry
	// Matched counts the dead letters that passed the filter.
	Matched int
	// Duplicates counts matching letters left out because an older one
	// carries the same original record (same topic, key and value): a
	// record that failed again after a re-drive is re-driven once.
	Duplicates int
}

// SelectDeadLetters filters entries with f, orders them by failure time
// (then DLQ partition and offset), drops repeats of the same original
// record, and keeps the first limit (limit ≤ 0: all). It is pure.
func SelectDeadLetters(entries []DeadLetterEntry, f DeadLetterFilter, limit int) Selection {
	var sel Selection
	matched := make([]DeadLetterEntry, 0, len(entries))
	for _, e := range entries {
		if e.Letter != nil && f.Match(e.Letter) {
			matched = append(matched, e)
		}
	}
	sel.Matched = len(matched)
	sort.SliceStable(matched, func(i, j int) bool {
		a, b := matched[i], matched[j]
		ta, tb := a.Letter.GetFailedAt().AsTime(), b.Letter.GetFailedAt().AsTime()
		if !ta.Equal(tb) {
			return ta.Before(tb)
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
	seen := make(map[[sha256.Size]byte]bool, len(matched))
	for _, e := range matched {
		id := originalID(e.Letter)
		if seen[id] {
			sel.Duplicates++
			continue
		}
		seen[id] = true
		if limit > 0 && len(sel.Entries) >= limit {
			continue
		}
		sel.Entries = append(sel.Entries, e)
	}
	return sel
}

// originalID identifies the original record of a dead letter by content,
// not by offset: a re-driven record that fails again gets a new offset but
// the same topic, key and value.
func originalID(dl *sgv1.DeadLetter) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(dl.GetTopic()), dl.GetKey(), dl.GetValue()} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var id [sha256.Size]byte
	copy(id[:], h.Sum(nil))
	return id
}

// ReadDeadLetters reads sg.dlq.v1 up to its end at the time of the call and
// returns the entries that match f, and the number of records that are
// not dead letters (skipped). Only matching letters are kept in
// memory.
func ReadDeadLetters(ctx context.Context, brokers []string, f DeadLetterFilter) ([]DeadLetterEntry, int, error) {
	var (
		out         []DeadLetterEntry
		undecodable int
	)
	err := kafka.ReadAll(ctx, brokers, topics.DLQ, func(m kafka.Message) error {
		dl := &sgv1.DeadLetter{}
		if err := proto.Unmarshal(m.Value(), dl); err != nil {
			undecodable++
			return nil
		}
		if dl.Tenant == "" {
			dl.Tenant = string(m.Header(kafka.HeaderTenant))
		}
		if f.Match(dl) {
			out = append(out, DeadLetterEntry{Partition: m.Partition(), Offset: m.Offset(), Letter: dl})
		}
		return nil
	})
	if err != nil {
		return nil, undecodable, fmt.Errorf("read dead letters: %w", err)
	}
	return out, undecodable, nil
}

// RedriveRecord is the record that re-drives e: the original key and value
// to the original topic, with the tenant header and the HeaderRedrivenFrom
// and HeaderRedrivenAt headers. It fails for a letter without a topic.
func RedriveRecord(e DeadLetterEntry, now time.Time) (kafka.Record, error) {
	dl := e.Letter
	if dl.GetTopic() == "" {
		return kafka.Record{}, fmt.Errorf("dead letter %s: no original topic", e.Coordinates())
	}
	h := map[string][]byte{
		HeaderRedrivenFrom: []byte(e.Coordinates()),
		HeaderRedrivenAt:   []byte(now.UTC().Format(time.RFC3339)),
	}
	if dl.GetTenant() != "" {
		h[kafka.HeaderTenant] = []byte(dl.GetTenant())
	}
	return kafka.Record{Topic: dl.GetTopic(), Key: dl.GetKey(), Value: dl.GetValue(), Headers: h}, nil
}

// Producer writes records durably; *kafka.Producer implements it.
type Producer interface {
	Produce(ctx context.Context, records ...kafka.Record) error
}

// Redrive re-publishes every entry to its original topic (RedriveRecord) in
// one acknowledged produce call, and returns how many were written. The
// consuming stage then processes them again; because event ids are
// deterministic, events of a record that partly succeeded before are
// deduplicated downstream and cannot count twice.
func Redrive(ctx context.Context, p Producer, entries []DeadLetterEntry, now time.Time) (int, error) {
	recs := make([]kafka.Record, 0, len(entries))
	for _, e := range entries {
		r, err := RedriveRecord(e, now)
		if err != nil {
			return 0, err
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if err := p.Produce(ctx, recs...); err != nil {
		return 0, fmt.Errorf("redrive: %w", err)
	}
	return len(recs), nil
}
