package window_test

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/window"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func ExampleAggregator() {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	agg := window.New(window.Config{Lateness: time.Hour, Now: func() time.Time { return now }})
	for i, typ := range []sgv1.EventType{
		sgv1.EventType_EVENT_TYPE_DELIVERED, sgv1.EventType_EVENT_TYPE_DELIVERED,
		sgv1.EventType_EVENT_TYPE_DELIVERED, sgv1.EventType_EVENT_TYPE_DELIVERED,
		sgv1.EventType_EVENT_TYPE_COMPLAINED,
	} {
		ev := &sgv1.Event{
			EventId: fmt.Sprint("ev", i), Tenant: "acme", Type: typ,
			OccurredAt: timestamppb.New(now.Add(time.Duration(i-5) * time.Minute)),
			Sender:     "ann@example.com", Provider: sgv1.Provider_PROVIDER_GMAIL,
		}
		if _, err := agg.Apply(ev); err != nil {
			fmt.Println(err)
		}
	}
	// One flush: one snapshot per changed scope.
	for _, k := range agg.Dirty() {
		s := agg.Snapshot(k)
		fmt.Printf("%s v%d complaint_rate_1h=%.2f complaints_per_1000_24h=%.0f\n",
			k, s.GetVersion(), s.GetMetrics()["complaint_rate_1h"], s.GetMetrics()["complaints_per_1000_24h"])
	}
	// Output:
	// acme/tenant/acme v5 complaint_rate_1h=0.25 complaints_per_1000_24h=250
	// acme/domain/example.com v5 complaint_rate_1h=0.25 complaints_per_1000_24h=250
	// acme/sender/ann@example.com v5 complaint_rate_1h=0.25 complaints_per_1000_24h=250
	// acme/provider/gmail v5 complaint_rate_1h=0.25 complaints_per_1000_24h=250
	// acme/domain_provider/example.com%7Cgmail v5 complaint_rate_1h=0.25 complaints_per_1000_24h=250
}
