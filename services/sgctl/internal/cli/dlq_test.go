package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/stage/normalizer"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var dlqTestNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestParseWhen(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "", want: time.Time{}},
		{in: "2026-11-20T10:00:00Z", want: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)},
		{in: "24h", want: dlqTestNow.Add(-24 * time.Hour)},
		{in: "90m", want: dlqTestNow.Add(-90 * time.Minute)},
		{in: "-1h", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseWhen(tt.in, dlqTestNow)
			if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
				t.Errorf("parseWhen(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDLQUsage(t *testing.T) {
	tests := [][]string{
		{"dlq"},
		{"dlq", "purge"},
		{"dlq", "list", "--since", "soon"},
		{"dlq", "list", "--since", "1h", "--until", "2h"},
		{"dlq", "replay", "--limit", "-1"},
		{"dlq", "list", "--dry-run"}, // only replay has --dry-run
		{"dlq", "list", "extra"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, _, _ := run(t, "", args...); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
		})
	}
}

// sendgridEnvelope is a raw envelope holding a SendGrid batch.
func sendgridEnvelope(t *testing.T, tenant, id, payload string) []byte {
	t.Helper()
	b, err := proto.Marshal(&sgv1.RawEnvelope{EnvelopeId: id, Tenant: tenant, Source: sgv1.Source_SOURCE_SENDGRID,
		ReceivedAt: timestamppb.New(dlqTestNow), Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lines[T any](t *testing.T, out string) []T {
	t.Helper()
	var res []T
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		res = append(res, v)
	}
	return res
}

// TestDLQListAndReplay runs list and replay against a broker holding dead
// letters of two stages and tenants, one of them failed twice.
func TestDLQListAndReplay(t *testing.T) {
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, brokers, 1, topics.Specs(2)...); err != nil {
		t.Fatal(err)
	}
	prev := dlqNow
	dlqNow = func() time.Time { return dlqTestNow }
	t.Cleanup(func() { dlqNow = prev })

	// The envelope's batch has two good items; a stage with a limit of one
	// event per payload (the bug) dead-lettered it.
	batch := `[{"email":"a@acme.io","timestamp":1795262400,"event":"delivered","sg_event_id":"e1"},
	           {"email":"b@acme.io","timestamp":1795262400,"event":"delivered","sg_event_id":"e2"}]`
	envA := sendgridEnvelope(t, "acme", "env-a", batch)
	keyA := topics.Key("acme", "env-a")
	letters := []*sgv1.DeadLetter{
		{Stage: "normalizer", Handler: "sendgrid", Reason: "sendgrid: more than 1 events in one payload", Topic: topics.Raw,
			Partition: 1, Offset: 10, Key: keyA, Value: envA, Tenant: "acme", FailedAt: timestamppb.New(dlqTestNow.Add(-2 * time.Hour))},
		{Stage: "normalizer", Handler: "ses", Reason: "ses: not json", Topic: topics.Raw,
			Partition: 0, Offset: 3, Key: []byte("other|env-b"), Value: []byte("x"), Tenant: "other", FailedAt: timestamppb.New(dlqTestNow.Add(-time.Hour))},
		{Stage: "windowed-metrics", Handler: "decode", Reason: "bad event", Topic: topics.Events,
			Partition: 0, Offset: 5, Key: []byte("acme|e9"), Value: []byte("y"), Tenant: "acme", FailedAt: timestamppb.New(dlqTestNow.Add(-30 * time.Minute))},
		// The first one again: re-driven once and failed again (new offset).
		{Stage: "normalizer", Handler: "sendgrid", Reason: "sendgrid: more than 1 events in one payload", Topic: topics.Raw,
			Partition: 1, Offset: 42, Key: keyA, Value: envA, Tenant: "acme", FailedAt: timestamppb.New(dlqTestNow.Add(-10 * time.Minute))},
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range letters {
		b, err := proto.Marshal(dl)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Produce(ctx, kafka.Record{Topic: topics.DLQ, Key: dl.Key, Value: b,
			Headers: map[string][]byte{kafka.HeaderTenant: []byte(dl.Tenant)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Produce(ctx, kafka.Record{Topic: topics.DLQ, Key: []byte("junk"), Value: []byte{0xff}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("list filters", func(t *testing.T) {
		tests := []struct {
			args        []string
			wantHandler []string // in output order
		}{
			{nil, []string{"sendgrid", "ses", "decode"}}, // the repeat of the sendgrid letter is folded
			{[]string{"--stage", "normalizer"}, []string{"sendgrid", "ses"}},
			{[]string{"--tenant", "acme"}, []string{"sendgrid", "decode"}},
			{[]string{"--handler", "ses"}, []string{"ses"}},
			{[]string{"--since", "45m"}, []string{"decode", "sendgrid"}}, // the repeat is the oldest match now
			{[]string{"--until", "2026-11-22T11:00:00Z"}, []string{"sendgrid"}},
			{[]string{"--limit", "1"}, []string{"sendgrid"}},
		}
		for _, tt := range tests {
			t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
				code, out, errOut := run(t, "", append([]string{"dlq", "list", "--kafka", addr}, tt.args...)...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				var got []string
				for _, l := range lines[dlqLine](t, out) {
					got = append(got, l.Handler)
					if l.Reason == "" || l.Tenant == "" || l.Stage == "" || l.Topic == "" {
						t.Errorf("line without reason, tenant, stage or topic: %+v", l)
					}
				}
				if strings.Join(got, ",") != strings.Join(tt.wantHandler, ",") {
					t.Errorf("handlers %v, want %v", got, tt.wantHandler)
				}
				if sum := lines[dlqSummary](t, errOut); len(sum) != 1 || sum[0].Undecodable != 1 {
					t.Errorf("summary %q: want one line counting the undecodable record", errOut)
				}
			})
		}
	})

	replay := func(t *testing.T, args ...string) ([]dlqLine, dlqSummary) {
		t.Helper()
		code, out, errOut := run(t, "", append([]string{"dlq", "replay", "--kafka", addr, "--stage", "normalizer", "--tenant", "acme"}, args...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		ls := lines[json.RawMessage](t, out)
		if len(ls) == 0 {
			t.Fatal("no summary line")
		}
		var sum dlqSummary
		if err := json.Unmarshal(ls[len(ls)-1], &sum); err != nil {
			t.Fatal(err)
		}
		return lines[dlqLine](t, out[:len(out)-len(ls[len(ls)-1])-1]), sum
	}
	redriven := func(t *testing.T) []kafka.Message {
		t.Helper()
		var ms []kafka.Message
		if err := kafka.ReadAll(ctx, brokers, topics.Raw, func(m kafka.Message) error {
			ms = append(ms, m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ms
	}

	ls, sum := replay(t, "--dry-run")
	if len(ls) != 1 || ls[0].Offset != 10 || ls[0].DLQOffset < 0 || !sum.DryRun || sum.Redriven != 0 || sum.Duplicates != 1 {
		t.Fatalf("dry run: %+v %+v; want the oldest sendgrid letter, one duplicate, nothing re-driven", ls, sum)
	}
	if ms := redriven(t); len(ms) != 0 {
		t.Fatalf("dry run wrote %d records", len(ms))
	}

	// Re-drive twice: the fixed stage gets the original envelope each time,
	// with its key, tenant and the re-drive header, and publishes the same
	// two event ids both times.
	fixed := &collect{}
	stage, err := normalizer.New(fixed, normalize.Options{Now: func() time.Time { return dlqTestNow }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, sum := replay(t); sum.Redriven != 1 || sum.Selected != 1 {
			t.Fatalf("replay %d: %+v, want one re-driven", i, sum)
		}
	}
	ms := redriven(t)
	if len(ms) != 2 {
		t.Fatalf("%d records on %s, want 2", len(ms), topics.Raw)
	}
	for _, m := range ms {
		if string(m.Key()) != string(keyA) || string(m.Value()) != string(envA) || string(m.Header(kafka.HeaderTenant)) != "acme" {
			t.Errorf("re-driven record key %q tenant %q: want the original key, value and tenant", m.Key(), m.Header(kafka.HeaderTenant))
		}
		if from := string(m.Header(app.HeaderRedrivenFrom)); !strings.HasPrefix(from, topics.DLQ+"/") {
			t.Errorf("re-drive header %q", from)
		}
		if err := stage.Handle(ctx, m); err != nil {
			t.Fatalf("fixed stage: %v", err)
		}
	}
	if err := stage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range fixed.records {
		ids[string(r.Key)]++
	}
	if len(fixed.records) != 4 || len(ids) != 2 || ids["acme|sendgrid:e1"] != 2 {
		t.Errorf("events keyed %v, want e1 and e2 twice each (same ids: counted once downstream)", ids)
	}
}

type collect struct{ records []kafka.Record }

func (c *collect) Produce(_ context.Context, rs ...kafka.Record) error {
	c.records = append(c.records, rs...)
	return nil
}
