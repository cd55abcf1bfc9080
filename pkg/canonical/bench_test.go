package canonical

import "testing"

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

func BenchmarkMarshal(b *testing.B) {
	ev, err := Decode(benchLine)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
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
