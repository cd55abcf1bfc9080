package app

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/classify"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/stage/normalizer"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMXOptionsConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    MXOptions
		wantErr bool
	}{
		{name: "off by default", want: MXOptions{Timeout: 2 * time.Second, CacheSize: 10000, TTL: 6 * time.Hour, NegativeTTL: 5 * time.Minute}},
		{name: "from the environment", env: map[string]string{"SENDGUARD_MX_LOOKUP": "true", "SENDGUARD_MX_TIMEOUT": "500ms", "SENDGUARD_MX_CACHE_SIZE": "50", "SENDGUARD_MX_CACHE_TTL": "1h"},
			want: MXOptions{Enabled: true, Timeout: 500 * time.Millisecond, CacheSize: 50, TTL: time.Hour, NegativeTTL: 5 * time.Minute}},
		{name: "flag beats variable", env: map[string]string{"SENDGUARD_MX_LOOKUP": "true"}, args: []string{"--mx-lookup=false"},
			want: MXOptions{Timeout: 2 * time.Second, CacheSize: 10000, TTL: 6 * time.Hour, NegativeTTL: 5 * time.Minute}},
		{name: "bad timeout when enabled", args: []string{"--mx-lookup", "--mx-timeout", "0s"}, wantErr: true},
		{name: "bad cache size when enabled", args: []string{"--mx-lookup", "--mx-cache-size", "0"}, wantErr: true},
		{name: "bounds do not matter when off", args: []string{"--mx-cache-size", "0"},
			want: MXOptions{Timeout: 2 * time.Second, TTL: 6 * time.Hour, NegativeTTL: 5 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o MXOptions
			f := service.NewFlags("normalizer", func(k string) string { return tt.env[k] })
			f.FlagSet().SetOutput(io.Discard)
			BindMX(f, &o)
			if err := f.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && o != tt.want {
				t.Errorf("options %+v, want %+v", o, tt.want)
			}
			if !o.Enabled && len(o.StageOptions(nil)) != 0 {
				t.Error("lookups off but the stage gets a resolver")
			}
		})
	}
}

type recordSink struct{ records []kafka.Record }

func (s *recordSink) Produce(_ context.Context, rs ...kafka.Record) error {
	s.records = append(s.records, rs...)
	return nil
}

type rawMsg []byte

func (m rawMsg) Topic() string        { return topics.Raw }
func (m rawMsg) Partition() int       { return 0 }
func (m rawMsg) Offset() int64        { return 0 }
func (m rawMsg) Key() []byte          { return nil }
func (m rawMsg) Value() []byte        { return m }
func (m rawMsg) Time() time.Time      { return time.Time{} }
func (m rawMsg) Header(string) []byte { return nil }

// TestMXOptionsStage: enabled options give the stage a resolver over the
// injected lookup (no network), which turns a Google Workspace domain's
// "other" into gmail.
func TestMXOptionsStage(t *testing.T) {
	lookups := 0
	lookup := classify.MXResolverFunc(func(_ context.Context, d string) ([]*net.MX, error) {
		lookups++
		return []*net.MX{{Host: "aspmx.l.google.com.", Pref: 1}}, nil
	})
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	b, err := proto.Marshal(&sgv1.RawEnvelope{EnvelopeId: "e", Tenant: "acme", Source: sgv1.Source_SOURCE_SENDGRID, ReceivedAt: timestamppb.New(now),
		Payload: []byte(`[{"email":"a@corp.example","timestamp":1795262400,"event":"delivered","sg_event_id":"x"}]`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		enabled bool
		want    sgv1.Provider
		lookups int
	}{
		{"off", false, sgv1.Provider_PROVIDER_OTHER, 0},
		{"on", true, sgv1.Provider_PROVIDER_GMAIL, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lookups = 0
			o := MXOptions{Enabled: tt.enabled, Timeout: time.Second, CacheSize: 10, TTL: time.Hour, NegativeTTL: time.Minute}
			out := &recordSink{}
			s, err := normalizer.New(out, normalize.Options{Now: func() time.Time { return now }}, nil, o.StageOptions(lookup)...)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Handle(context.Background(), rawMsg(b)); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			ev := &sgv1.Event{}
			if len(out.records) != 1 || proto.Unmarshal(out.records[0].Value, ev) != nil {
				t.Fatalf("%d records", len(out.records))
			}
			if ev.GetProvider() != tt.want || lookups != tt.lookups {
				t.Errorf("provider %v after %d lookups, want %v after %d", ev.GetProvider(), lookups, tt.want, tt.lookups)
			}
		})
	}
}
