package windows

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/topics"
	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// capture keeps what a step produced.
type capture struct{ recs []kafka.Record }

func (c *capture) Produce(_ context.Context, rs ...kafka.Record) error {
	c.recs = append(c.recs, rs...)
	return nil
}

// benchMsg is a consumed record.
type benchMsg struct {
	partition int
	offset    int64
	rec       kafka.Record
}

func (m benchMsg) Topic() string             { return m.rec.Topic }
func (m benchMsg) Partition() int            { return m.partition }
func (m benchMsg) Offset() int64             { return m.offset }
func (m benchMsg) Key() []byte               { return m.rec.Key }
func (m benchMsg) Value() []byte             { return m.rec.Value }
func (m benchMsg) Time() time.Time           { return time.Time{} }
func (m benchMsg) Header(name string) []byte { return m.rec.Headers[name] }

func noState(context.Context, string, func(kafka.Message) error) error { return nil }

// BenchmarkStepsInProcess measures both steps' CPU per event on one core,
// without the broker: decode, admission, fan-out records (about 8 per
// event), then decode and fold of every scoped record, flushes (snapshots
// and checkpoints of dirty scopes) every 1000 events. The broker's cost of
// the fan-out comes on top; see the README figures.
func BenchmarkStepsInProcess(b *testing.B) {
	start := time.Now().Add(-time.Hour)
	vals := make([][]byte, 50_000)
	for i := range vals {
		e := &sgv1.Event{EventId: fmt.Sprint("b", i), Tenant: "acme", Type: sgv1.EventType(1 + i%9),
			OccurredAt: timestamppb.New(start.Add(time.Duration(i) * time.Millisecond)),
			Sender:     fmt.Sprintf("s%d@d%d.com", i%200, i%5), SendingDomain: fmt.Sprintf("d%d.com", i%5),
			Provider: sgv1.Provider(1 + i%5), Campaign: fmt.Sprintf("c%d", i%20), Variant: []string{"A", "B"}[i%2],
			Account: fmt.Sprintf("acct%d.com", i%500)}
		switch e.Type {
		case sgv1.EventType_EVENT_TYPE_BOUNCED:
			e.Bounce = &sgv1.Bounce{SmtpCode: 550}
		case sgv1.EventType_EVENT_TYPE_REPLIED:
			e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED}
		}
		vals[i], _ = proto.Marshal(e)
	}
	out := &capture{}
	admit := NewAdmit(window.AdmitConfig{}, out, nil, nil, noState, FixedPartitions(8), zap.NewNop())
	snaps := &capture{}
	agg, err := New(window.Config{}, snaps, noState, zap.NewNop(), nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var scopedOff int64
	fanout := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := vals[i%len(vals)]
		if i >= len(vals) { // a new id: past one pass everything would be a duplicate
			e := &sgv1.Event{}
			_ = proto.Unmarshal(v, e)
			e.EventId = fmt.Sprint("x", i)
			v, _ = proto.Marshal(e)
		}
		if err := admit.Handle(ctx, benchMsg{offset: int64(i), rec: kafka.Record{Value: v}}); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 || i == b.N-1 {
			if err := admit.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			for _, r := range out.recs {
				if r.Topic != topics.ScopedEvents {
					continue // segments
				}
				fanout++
				if err := agg.Handle(ctx, benchMsg{offset: scopedOff, rec: r}); err != nil {
					b.Fatal(err)
				}
				scopedOff++
			}
			out.recs = out.recs[:0]
			if err := agg.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			snaps.recs = snaps.recs[:0]
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(fanout)/float64(b.N), "records/event")
}
