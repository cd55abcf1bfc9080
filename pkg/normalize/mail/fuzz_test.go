package mail

import (
	"os"
	"path/filepath"
	"testing"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func addSeeds(f *testing.F, kind string) {
	files, _ := filepath.Glob(filepath.Join(samplesDir, kind, "*.eml"))
	for i, p := range files {
		if i%4 != 0 { // a quarter of the samples keeps the corpus small
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("From: a@b.c\r\nContent-Type: multipart/report; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; @\r\nAction: failed\r\n\r\n--x--"))
	f.Add([]byte(""))
}

// checkEvents asserts the properties every successful parse must keep.
func checkEvents(t *testing.T, evs []*sgv1.Event, err error) {
	if err != nil {
		if _, ok := err.(*ParseError); !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if len(evs) != 0 {
			t.Fatalf("events with an error")
		}
		return
	}
	if len(evs) == 0 {
		t.Fatal("no events and no error")
	}
	for _, ev := range evs {
		if ev.GetEventId() == "" || ev.GetType() == sgv1.EventType_EVENT_TYPE_UNSPECIFIED {
			t.Fatalf("incomplete event %v", ev)
		}
	}
}

func FuzzParseDSN(f *testing.F) {
	addSeeds(f, "dsn")
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := ParseDSN(&sgv1.RawEnvelope{Tenant: "t", Payload: b}, Options{})
		checkEvents(t, evs, err)
	})
}

func FuzzParseARF(f *testing.F) {
	addSeeds(f, "arf")
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := ParseARF(&sgv1.RawEnvelope{Tenant: "t", Payload: b}, Options{})
		checkEvents(t, evs, err)
	})
}

func benchParse(b *testing.B, kind string, parse func(*sgv1.RawEnvelope, Options) ([]*sgv1.Event, error)) {
	files, _ := filepath.Glob(filepath.Join(samplesDir, kind, "*.eml"))
	var envs []*sgv1.RawEnvelope
	var bytes int64
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		envs = append(envs, &sgv1.RawEnvelope{Tenant: "t", Payload: raw})
		bytes += int64(len(raw))
	}
	if len(envs) == 0 {
		b.Skip("no samples")
	}
	b.SetBytes(bytes / int64(len(envs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = parse(envs[i%len(envs)], Options{})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkParseDSN(b *testing.B) { benchParse(b, "dsn", ParseDSN) }

func BenchmarkParseARF(b *testing.B) { benchParse(b, "arf", ParseARF) }
