package normalize

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// benchParse parses payload b.N times and reports events per second.
func benchParse(b *testing.B, src sgv1.Source, payload []byte) {
	env := envelope(src, payload)
	opts := testOptions()
	evs, err := Parse(env, opts)
	if err != nil || len(evs) == 0 {
		b.Fatalf("benchmark payload: %d events, %v", len(evs), err)
	}
	per := len(evs)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(env, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(per*b.N)/b.Elapsed().Seconds(), "events/s")
}

func readSample(b *testing.B, rel string) []byte {
	data, err := os.ReadFile(filepath.Join(samplesDir, rel))
	if err != nil {
		b.Skipf("sample %s: %v", rel, err)
	}
	return data
}

func BenchmarkParseSES(b *testing.B) {
	benchParse(b, sgv1.Source_SOURCE_SES, readSample(b, "webhooks/ses/anymail_sns-notification-bounce.json"))
}

func BenchmarkParseSendGrid(b *testing.B) {
	benchParse(b, sgv1.Source_SOURCE_SENDGRID, readSample(b, "webhooks/sendgrid/stronggrid_signed-test-event-batch.json"))
}

func BenchmarkParseMailgun(b *testing.B) {
	benchParse(b, sgv1.Source_SOURCE_MAILGUN, readSample(b, "webhooks/mailgun/mgdocs_failed-temporary.json"))
}

func BenchmarkParsePostmark(b *testing.B) {
	benchParse(b, sgv1.Source_SOURCE_POSTMARK, readSample(b, "webhooks/postmark/anymail_bounce-hard.json"))
}

// BenchmarkParseSparkPost parses one batch holding every gosparkpost sample.
func BenchmarkParseSparkPost(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(samplesDir, "webhooks/sparkpost/gosparkpost-samples_*.json"))
	if len(files) == 0 {
		b.Skip("no SparkPost samples")
	}
	var parts [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		parts = append(parts, bytes.TrimSuffix(bytes.TrimPrefix(bytes.TrimSpace(data), []byte("[")), []byte("]")))
	}
	benchParse(b, sgv1.Source_SOURCE_SPARKPOST, append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']'))
}

func BenchmarkParsePostmaster(b *testing.B) {
	benchParse(b, sgv1.Source_SOURCE_POSTMASTER, []byte(`{"name":"domains/acme.io/trafficStats/20261101","userReportedSpamRatio":0.0031,"domainReputation":"MEDIUM","spfSuccessRatio":1,"dkimSuccessRatio":0.99,"dmarcSuccessRatio":0.98,"inboundEncryptionRatio":1,"deliveryErrors":[{"errorClass":"PERMANENT_ERROR","errorType":"REJECTED_CONTENT","errorRatio":0.01}]}`))
}

// BenchmarkParseGeneric parses 100 NDJSON lines.
func BenchmarkParseGeneric(b *testing.B) {
	line := `{"type":"bounced","sender":"ann@acme.io","recipient":"bob@gmail.com","occurred_at":"2026-11-01T00:00:00Z","campaign":"c1","bounce":{"class":"hard","category":"invalid_mailbox","smtp_code":550,"enhanced_code":"5.1.1","diagnostic":"550 5.1.1 user unknown"}}` + "\n"
	benchParse(b, sgv1.Source_SOURCE_GENERIC, []byte(strings.Repeat(line, 100)))
}
