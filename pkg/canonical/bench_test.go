package canonical

import (
	"testing"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var benchLine = []byte(`{"event_id":"e1","type":"bounced","sender":"ann@acme.io","recipient":"bob@gmail.com","occurred_at":"2026-11-01T00:00:00Z","campaign":"c1","variant":"v2","bounce":{"class":"hard","category":"invalid_mailbox","smtp_code":550,"enhanced_code":"5.1.1","diagnostic":"550 5.1.1 user unknown"}}`)

func BenchmarkDecode(b *testing.B) {
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(benchLine); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// marshalSink keeps Marshal's result alive, as a caller does: without it the
// compiler may keep the buffer on the stack.
var marshalSink []byte

func BenchmarkMarshal(b *testing.B) {
	ev, err := Decode(benchLine)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if marshalSink, err = Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendMarshal encodes the bench line into one reused buffer, as
// the load generator's sinks do.
func BenchmarkAppendMarshal(b *testing.B) {
	ev, err := Decode(benchLine)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if buf, err = AppendMarshal(buf[:0], ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMarshalGenerated encodes loadgen's events, the previous
// implementation (reference) beside Marshal and AppendMarshal.
func BenchmarkMarshalGenerated(b *testing.B) {
	evs := generatedEvents(b, 1000)
	encoders := []struct {
		name string
		enc  func(buf []byte, ev *sgv1.Event) ([]byte, error)
	}{
		{"reference", func(_ []byte, ev *sgv1.Event) ([]byte, error) { return referenceMarshal(ev) }},
		{"Marshal", func(_ []byte, ev *sgv1.Event) ([]byte, error) { return Marshal(ev) }},
		{"AppendMarshal", func(buf []byte, ev *sgv1.Event) ([]byte, error) { return AppendMarshal(buf[:0], ev) }},
	}
	for _, e := range encoders {
		b.Run(e.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var err error
				if buf, err = e.enc(buf, evs[i%len(evs)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	ev, err := Decode(benchLine)
	if err != nil {
		b.Fatal(err)
	}
	now := ev.GetOccurredAt().AsTime()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := ValidateAt(ev, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeGenerated decodes the JSON form of loadgen's events, the
// previous implementation (reference) beside Decode.
func BenchmarkDecodeGenerated(b *testing.B) {
	var lines [][]byte
	for _, ev := range generatedEvents(b, 1000) {
		line, err := AppendMarshal(nil, ev)
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, line)
	}
	decoders := []struct {
		name string
		dec  func([]byte) (*sgv1.Event, error)
	}{
		{"reference", referenceDecode},
		{"Decode", Decode},
	}
	for _, d := range decoders {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := d.dec(lines[i%len(lines)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
