package devstack

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestEnvelopeLargerThanOneMegabyte: a provider batch larger than Kafka's
// default message size is accepted as one envelope (the embedded broker and
// the envelope producer allow the configured body limit) and all its events
// are normalized.
func TestEnvelopeLargerThanOneMegabyte(t *testing.T) {
	s := startStack(t, t.TempDir())
	defer s.stop(t)
	const n = 6000
	ts := time.Now().Add(-time.Minute).Unix()
	var items []string
	for i := range n {
		items = append(items, fmt.Sprintf(`{"email":"r%d@example.com","timestamp":%d,"event":"delivered","sg_event_id":"big-%d","sg_message_id":"m%d.filter0001","smtp-id":"<m%d@acme.io>","response":"250 2.0.0 OK queued as %d; padding to make the batch realistic"}`, i, ts, i, i, i, i))
	}
	body := "[" + strings.Join(items, ",") + "]"
	if len(body) <= 1<<20 {
		t.Fatalf("batch is only %d bytes", len(body))
	}
	code, resp := post(t, "http://"+s.http+"/v1/webhooks/sendgrid", testKey, "application/json", body)
	if code != http.StatusAccepted {
		t.Fatalf("post %d-byte batch: %d %s", len(body), code, resp)
	}
	eventually(t, fmt.Sprintf("%d events from one %d-byte envelope", n, len(body)), 60*time.Second, func() bool {
		return len(readTopic(t, []string{s.kafka}, topics.Events, func() *sgv1.Event { return &sgv1.Event{} })) >= n
	})
}
