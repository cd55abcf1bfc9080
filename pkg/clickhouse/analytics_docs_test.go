package clickhouse_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// analyticsSeed returns events of tenant default over the last days that
// give every dashboard query of docs/analytics.md something to show.
func analyticsSeed(now time.Time) []*sgv1.Event {
	var out []*sgv1.Event
	add := func(typ sgv1.EventType, at time.Time, f func(*sgv1.Event)) {
		e := &sgv1.Event{
			EventId: fmt.Sprintf("doc-%d", len(out)), Tenant: "default", Type: typ,
			OccurredAt: timestamppb.New(at.Truncate(time.Second)), Sender: "ann@a.example", SendingDomain: "a.example",
			Recipient: fmt.Sprintf("u%d@gmail.com", len(out)), RecipientDomain: "gmail.com", Provider: sgv1.Provider_PROVIDER_GMAIL,
			Campaign: "c1", Variant: "v1", Segment: "smb", ListSource: "apollo", Source: sgv1.Source_SOURCE_GENERIC,
			ReceivedAt: timestamppb.New(at.Truncate(time.Second)),
		}
		if f != nil {
			f(e)
		}
		out = append(out, e)
	}
	for d := range 10 {
		day := now.Add(-time.Duration(d) * 24 * time.Hour)
		for range 20 {
			add(sgv1.EventType_EVENT_TYPE_SENT, day, nil)
			add(sgv1.EventType_EVENT_TYPE_DELIVERED, day, nil)
		}
		add(sgv1.EventType_EVENT_TYPE_COMPLAINED, day, func(e *sgv1.Event) {
			e.Complaint = &sgv1.Complaint{Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL, FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE}
		})
		add(sgv1.EventType_EVENT_TYPE_BOUNCED, day, func(e *sgv1.Event) {
			e.Bounce = &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, SmtpCode: 550}
		})
		add(sgv1.EventType_EVENT_TYPE_REPLIED, day, func(e *sgv1.Event) {
			e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT}
		})
		add(sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS, day, func(e *sgv1.Event) {
			e.Postmaster = &sgv1.Postmaster{SpamRate: 0.001 * float64(d+1), DomainReputation: sgv1.DomainReputation_DOMAIN_REPUTATION_MEDIUM}
		})
		for i, f := range []sgv1.PlacementFolder{sgv1.PlacementFolder_PLACEMENT_FOLDER_INBOX, sgv1.PlacementFolder_PLACEMENT_FOLDER_SPAM} {
			add(sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST, day, func(e *sgv1.Event) {
				e.Placement = &sgv1.Placement{TestId: fmt.Sprintf("t%d", d), Tool: "glockapps",
					Provider: []sgv1.Provider{sgv1.Provider_PROVIDER_GMAIL, sgv1.Provider_PROVIDER_MICROSOFT}[i], Folder: f}
			})
		}
	}
	return out
}

// TestIntegrationAnalyticsDocs runs every ```sql block of
// docs/analytics.md against the real server on seeded events and audit
// rows; each must succeed and return rows.
func TestIntegrationAnalyticsDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 14 {
		t.Fatalf("%d sql blocks in docs/analytics.md, want at least 14", len(blocks))
	}
	conn := openTest(t)
	ctx := context.Background()
	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ew, err := clickhouse.NewBatchWriter(conn, clickhouse.EventsTable, clickhouse.EventRow, clickhouse.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ew.Append(ctx, analyticsSeed(now)...); err != nil {
		t.Fatal(err)
	}
	if err := ew.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d).Truncate(time.Second)) }
	domain := &sgv1.Scope{Tenant: "default", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "a.example"}
	campaign := &sgv1.Scope{Tenant: "default", Level: sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, Target: "c1"}
	expl := &sgv1.Explanation{Metric: "complaint_rate_24h", Observed: 0.004, Threshold: 0.003, SampleSize: 900, Window: "24h", Summary: "complaints over 0.3%"}
	cw, err := clickhouse.NewBatchWriter(conn, clickhouse.CommandsTable, clickhouse.CommandRow, clickhouse.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cw.Append(ctx,
		&sgv1.ControlCommand{CommandId: "p1", Scope: domain, Action: sgv1.Action_ACTION_PAUSE, Rule: "domain-complaint-2days", At: ts(-5 * time.Hour), IssuedAt: ts(-5 * time.Hour), Until: ts(67 * time.Hour), Explanation: expl},
		&sgv1.ControlCommand{CommandId: "r1", Scope: domain, Action: sgv1.Action_ACTION_RESUME, Rule: "manual", Actor: "ops@acme", Reason: "fixed list", At: ts(-2 * time.Hour), IssuedAt: ts(-2 * time.Hour)},
		&sgv1.ControlCommand{CommandId: "p2", Scope: campaign, Action: sgv1.Action_ACTION_PAUSE, Rule: "campaign-complaints", At: ts(-time.Hour), IssuedAt: ts(-time.Hour), Until: ts(23 * time.Hour), Explanation: expl},
	); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	dw, err := clickhouse.NewBatchWriter(conn, clickhouse.DecisionsTable, clickhouse.DecisionRow, clickhouse.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dw.Append(ctx, &sgv1.Decision{DecisionId: "d1", Scope: domain, Rule: "domain-complaint-2days", Action: sgv1.Action_ACTION_PAUSE,
		At: ts(-5 * time.Hour), FromState: sgv1.HealthState_HEALTH_STATE_WARNING, ToState: sgv1.HealthState_HEALTH_STATE_PAUSED, Explanation: expl}); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(ctx); err != nil {
		t.Fatal(err)
	}

	for i, b := range blocks {
		query := strings.TrimSpace(strings.ReplaceAll(b[1], "sendguard.", "`"+db+"`."))
		query = strings.TrimSuffix(query, ";")
		name := strings.SplitN(strings.TrimSpace(b[1]), "\n", 2)[0]
		t.Run(fmt.Sprintf("%02d %s", i, name), func(t *testing.T) {
			rows, err := conn.Query(ctx, query)
			if err != nil {
				t.Fatalf("query:\n%s\n%v", query, err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatalf("no rows from:\n%s", query)
			}
		})
	}
}
