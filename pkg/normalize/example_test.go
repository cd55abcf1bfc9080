package normalize_test

import (
	"fmt"
	"time"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/normalize"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func ExampleParse() {
	env := &sgv1.RawEnvelope{
		EnvelopeId: "env-1",
		Tenant:     "acme",
		Source:     sgv1.Source_SOURCE_SENDGRID,
		ReceivedAt: timestamppb.New(time.Date(2026, 11, 1, 10, 0, 5, 0, time.UTC)),
		Payload: []byte(`[{"event":"bounce","email":"Bob@Gmail.com","timestamp":1793527200,"sg_event_id":"e1",
			"type":"bounce","status":"5.1.1","reason":"550 5.1.1 The email account that you tried to reach does not exist.",
			"category":["spring-launch"],"variant":"B","from":"ann@acme.io"}]`),
	}
	evs, err := normalize.Parse(env, normalize.Options{Now: func() time.Time { return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) }})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range evs {
		out, _ := canonical.Marshal(ev)
		fmt.Println(string(out))
	}
	// Output:
	// {"event_id":"sendgrid:e1","tenant":"acme","type":"bounced","occurred_at":"2026-11-01T10:00:00Z","sender":"ann@acme.io","sending_domain":"acme.io","recipient":"bob@gmail.com","recipient_domain":"gmail.com","provider":"gmail","campaign":"spring-launch","variant":"B","bounce":{"class":"hard","category":"invalid_mailbox","smtp_code":550,"enhanced_code":"5.1.1","diagnostic":"550 5.1.1 The email account that you tried to reach does not exist."},"source":"sendgrid","envelope_id":"env-1","received_at":"2026-11-01T10:00:05Z","source_event":"bounce"}
}
