package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/clickhouse/clickhousetest"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// dlqMsg is a record of sg.dlq.v1.
type dlqMsg struct {
	offset int64
	value  []byte
	tenant string
}

func (m dlqMsg) Topic() string   { return topics.DLQ }
func (m dlqMsg) Partition() int  { return 1 }
func (m dlqMsg) Offset() int64   { return m.offset }
func (m dlqMsg) Key() []byte     { return []byte("k") }
func (m dlqMsg) Value() []byte   { return m.value }
func (m dlqMsg) Time() time.Time { return time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC) }
func (m dlqMsg) Header(name string) []byte {
	if name == kafka.HeaderTenant && m.tenant != "" {
		return []byte(m.tenant)
	}
	return nil
}

// TestDeadLetterSink writes dead letters through a real BatchWriter to a
// fake connection: nothing is inserted before Flush, every record becomes
// one row after it, and a record that is not a dead letter is a row too.
func TestDeadLetterSink(t *testing.T) {
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	good, err := proto.Marshal(&sgv1.DeadLetter{Stage: "normalizer", Handler: "sendgrid", Reason: "1 item(s) rejected",
		Topic: topics.Raw, Partition: 3, Offset: 42, Key: []byte("acme|env"), Value: []byte{0, 0xff}, FailedAt: timestamppb.New(at)})
	if err != nil {
		t.Fatal(err)
	}
	conn := &clickhousetest.Conn{}
	tick := make(chan time.Time)
	w, err := clickhouse.NewBatchWriter(conn, clickhouse.DeadLettersTable, clickhouse.DeadLetterRow, clickhouse.WriterConfig{Tick: tick})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	s := NewDeadLetterSink(w)
	ctx := context.Background()
	for _, m := range []dlqMsg{{offset: 0, value: good, tenant: "acme"}, {offset: 1, value: []byte{0xff, 0x01}, tenant: "other"}} {
		if err := s.Handle(ctx, m); err != nil {
			t.Fatalf("Handle: %v", err)
		}
	}
	if n := len(conn.InsertedRows(clickhouse.DeadLettersTable.Name)); n != 0 {
		t.Fatalf("%d rows inserted before Flush", n)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows := conn.InsertedRows(clickhouse.DeadLettersTable.Name)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	col := func(row []any, name string) any {
		for i, c := range clickhouse.DeadLetterColumns {
			if c == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return nil
	}
	tests := []struct {
		name string
		row  []any
		want map[string]any
	}{
		{"dead letter, tenant from the header", rows[0], map[string]any{
			"tenant": "acme", "stage": "normalizer", "handler": "sendgrid", "kafka_topic": topics.Raw,
			"kafka_partition": int32(3), "kafka_offset": int64(42), "value": "\x00\xff", "failed_at": at}},
		{"undecodable record", rows[1], map[string]any{
			"tenant": "other", "stage": "dead-letter-writer", "handler": "decode", "kafka_topic": topics.DLQ,
			"kafka_partition": int32(1), "kafka_offset": int64(1), "value": "\xff\x01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for c, want := range tt.want {
				if got := col(tt.row, c); got != want {
					t.Errorf("%s = %#v, want %#v", c, got, want)
				}
			}
		})
	}
}

// TestDeadLetterSinkFlushFails: a failed INSERT fails Flush (so the runner
// does not commit) and the rows are inserted by the next Flush.
func TestDeadLetterSinkFlushFails(t *testing.T) {
	down := true
	conn := &clickhousetest.Conn{OnSend: func(string, [][]any) error {
		if down {
			return errors.New("connection refused")
		}
		return nil
	}}
	w, err := clickhouse.NewBatchWriter(conn, clickhouse.DeadLettersTable, clickhouse.DeadLetterRow, clickhouse.WriterConfig{
		Tick: make(chan time.Time), MaxAttempts: 1, Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close(context.Background()) }()
	s := NewDeadLetterSink(w)
	b, _ := proto.Marshal(&sgv1.DeadLetter{Stage: "normalizer", Reason: "x", FailedAt: timestamppb.Now()})
	if err := s.Handle(context.Background(), dlqMsg{value: b}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("Flush succeeded while ClickHouse is down")
	}
	down = false
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(conn.InsertedRows(clickhouse.DeadLettersTable.Name)); n != 1 {
		t.Fatalf("%d rows after recovery, want 1", n)
	}
}

func TestSelectDeadLetters(t *testing.T) {
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	letter := func(p int, off int64, handler string, hour int, value string) DeadLetterEntry {
		return DeadLetterEntry{Partition: p, Offset: off, Letter: &sgv1.DeadLetter{Stage: "normalizer", Handler: handler, Tenant: "acme",
			Topic: topics.Raw, Key: []byte("k"), Value: []byte(value), FailedAt: timestamppb.New(base.Add(time.Duration(hour) * time.Hour))}}
	}
	entries := []DeadLetterEntry{
		letter(1, 5, "ses", 3, "b"),
		letter(0, 9, "sendgrid", 1, "a"),
		letter(0, 2, "sendgrid", 2, "a"), // the same original, failed again
		letter(1, 1, "ses", 3, "c"),      // same time as (1,5): partition, offset order
		{Partition: 0, Offset: 0},        // no letter: never selected
	}
	tests := []struct {
		name      string
		filter    DeadLetterFilter
		limit     int
		want      []int64 // offsets
		matched   int
		duplicate int
	}{
		{"all, oldest first, repeats folded", DeadLetterFilter{}, 0, []int64{9, 1, 5}, 4, 1},
		{"limit", DeadLetterFilter{}, 2, []int64{9, 1}, 4, 1},
		{"handler", DeadLetterFilter{Handler: "ses"}, 0, []int64{1, 5}, 2, 0},
		{"window", DeadLetterFilter{Since: base.Add(2 * time.Hour), Until: base.Add(3 * time.Hour)}, 0, []int64{2}, 1, 0},
		{"tenant", DeadLetterFilter{Tenant: "other"}, 0, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := SelectDeadLetters(entries, tt.filter, tt.limit)
			var got []int64
			for _, e := range sel.Entries {
				got = append(got, e.Offset)
			}
			if len(got) != len(tt.want) || sel.Matched != tt.matched || sel.Duplicates != tt.duplicate {
				t.Fatalf("offsets %v matched %d duplicates %d; want %v, %d, %d", got, sel.Matched, sel.Duplicates, tt.want, tt.matched, tt.duplicate)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("offsets %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestRedriveRecord(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	e := DeadLetterEntry{Partition: 2, Offset: 7, Letter: &sgv1.DeadLetter{Topic: topics.Raw, Key: []byte("acme|env"), Value: []byte{1, 2}, Tenant: "acme"}}
	r, err := RedriveRecord(e, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Topic != topics.Raw || string(r.Key) != "acme|env" || string(r.Value) != "\x01\x02" ||
		string(r.Headers[kafka.HeaderTenant]) != "acme" || string(r.Headers[HeaderRedrivenFrom]) != "sg.dlq.v1/2@7" ||
		string(r.Headers[HeaderRedrivenAt]) != "2026-11-22T12:00:00Z" {
		t.Errorf("record %+v", r)
	}
	if _, err := RedriveRecord(DeadLetterEntry{Letter: &sgv1.DeadLetter{}}, now); err == nil {
		t.Error("a letter without topic was re-driven")
	}
}
