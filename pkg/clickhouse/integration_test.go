package clickhouse_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/clickhouse"
	"github.com/sendguard/sendguard/pkg/clickhouse/clickhousetest"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// openTest opens a migrated fresh database on the real test server.
func openTest(t testing.TB) driver.Conn {
	t.Helper()
	addr, db := clickhousetest.Server(t)
	ctx := context.Background()
	conn, err := clickhouse.Open(ctx, clickhouse.Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := clickhouse.Migrate(ctx, conn); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return conn
}

func TestIntegrationMigrateTwice(t *testing.T) {
	conn := openTest(t)
	ctx := context.Background()
	v, err := clickhouse.ServerVersion(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server %s, features %+v", v, clickhouse.FeaturesOf(v))
	showCreate := func() string {
		var tables []string
		rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		_ = rows.Close()
		var b strings.Builder
		for _, tb := range tables {
			var stmt string
			if err := conn.QueryRow(ctx, "SHOW CREATE TABLE "+tb).Scan(&stmt); err != nil {
				t.Fatalf("show create %s: %v", tb, err)
			}
			b.WriteString(stmt + "\n")
		}
		return b.String()
	}
	before := showCreate()
	for _, want := range []string{"events", "events_final", "decisions", "commands", "dead_letters", "rollup_minute", "rollup_hour", "rollup_day", "rollup_minute_mv", "rollup_hour_mv", "rollup_day_mv", "schema_migrations"} {
		if !strings.Contains(before, "."+want+" ") && !strings.Contains(before, "."+want+"\n") {
			t.Errorf("table %s missing after Migrate", want)
		}
	}
	if err := clickhouse.Migrate(ctx, conn); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if after := showCreate(); after != before {
		t.Errorf("second Migrate changed the schema:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	ms, err := clickhouse.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(ms)) {
		t.Errorf("schema_migrations has %d rows after two runs, want %d", n, len(ms))
	}
}

// rng is a small deterministic generator (xorshift64) for test data.
type rng uint64

func (r *rng) intn(n int) int {
	*r ^= *r << 13
	*r ^= *r >> 7
	*r ^= *r << 17
	return int(uint64(*r) % uint64(n))
}

func pick[T any](r *rng, xs ...T) T { return xs[r.intn(len(xs))] }

var providerWords = map[sgv1.Provider]string{
	sgv1.Provider_PROVIDER_GMAIL: "gmail", sgv1.Provider_PROVIDER_MICROSOFT: "microsoft", sgv1.Provider_PROVIDER_YAHOO: "yahoo",
}

// genEvents makes n varied events of two tenants over four days that cross
// a month boundary, with whole-second times (18.16 stores seconds).
func genEvents(n int, seed uint64) []*sgv1.Event { return genEventsEvery(n, seed, 0) }

// genEventsEvery is genEvents with event i at start + i×every (truncated to
// seconds) instead of a random time, like a live stream; 0 means random.
func genEventsEvery(n int, seed uint64, every time.Duration) []*sgv1.Event {
	r := rng(seed)
	start := time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC)
	types := []sgv1.EventType{
		sgv1.EventType_EVENT_TYPE_SENT, sgv1.EventType_EVENT_TYPE_SENT, sgv1.EventType_EVENT_TYPE_SENT,
		sgv1.EventType_EVENT_TYPE_DELIVERED, sgv1.EventType_EVENT_TYPE_DELIVERED, sgv1.EventType_EVENT_TYPE_DEFERRED,
		sgv1.EventType_EVENT_TYPE_BOUNCED, sgv1.EventType_EVENT_TYPE_BOUNCED, sgv1.EventType_EVENT_TYPE_COMPLAINED,
		sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, sgv1.EventType_EVENT_TYPE_OPENED, sgv1.EventType_EVENT_TYPE_CLICKED,
		sgv1.EventType_EVENT_TYPE_REPLIED, sgv1.EventType_EVENT_TYPE_REPLIED, sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST,
		sgv1.EventType_EVENT_TYPE_AUTH_CHECK, sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS, sgv1.EventType_EVENT_TYPE_REJECTED,
	}
	out := make([]*sgv1.Event, n)
	for i := range out {
		domain := pick(&r, "a.example", "b.example", "c.example")
		prov := pick(&r, sgv1.Provider_PROVIDER_GMAIL, sgv1.Provider_PROVIDER_MICROSOFT, sgv1.Provider_PROVIDER_YAHOO, sgv1.Provider_PROVIDER_UNSPECIFIED)
		rdomain := "corp" + fmt.Sprint(r.intn(5)) + ".example"
		e := &sgv1.Event{
			EventId:         fmt.Sprintf("ev-%d-%d", seed, i),
			Tenant:          pick(&r, "t1", "t1", "t2"),
			Type:            pick(&r, types...),
			OccurredAt:      timestamppb.New(start.Add(time.Duration(r.intn(4*24*3600)) * time.Second)),
			Sender:          pick(&r, "ann@", "bob@") + domain,
			SendingDomain:   domain,
			Recipient:       fmt.Sprintf("u%d@%s", r.intn(50), rdomain),
			RecipientDomain: rdomain,
			Provider:        prov,
			Account:         pick(&r, rdomain, ""),
			Campaign:        pick(&r, "c1", "c2", ""),
			Variant:         pick(&r, "v1", "v2", ""),
			Segment:         pick(&r, "smb", "ent", ""),
			ListSource:      pick(&r, "apollo", "zoominfo", ""),
			Source:          sgv1.Source_SOURCE_GENERIC,
			ReceivedAt:      timestamppb.New(start.Add(5 * 24 * time.Hour)),
		}
		switch e.Type {
		case sgv1.EventType_EVENT_TYPE_BOUNCED:
			e.Bounce = &sgv1.Bounce{Class: pick(&r, sgv1.BounceClass_BOUNCE_CLASS_HARD, sgv1.BounceClass_BOUNCE_CLASS_SOFT, sgv1.BounceClass_BOUNCE_CLASS_UNSPECIFIED), SmtpCode: 550, EnhancedCode: "5.1.1"}
		case sgv1.EventType_EVENT_TYPE_COMPLAINED:
			e.Complaint = &sgv1.Complaint{Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL, FeedbackType: pick(&r, sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE, sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM)}
		case sgv1.EventType_EVENT_TYPE_REPLIED:
			e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory(r.intn(10))}
		case sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST:
			e.Placement = &sgv1.Placement{Provider: sgv1.Provider_PROVIDER_GMAIL, Folder: sgv1.PlacementFolder(r.intn(5))}
		case sgv1.EventType_EVENT_TYPE_AUTH_CHECK:
			e.Auth = &sgv1.Auth{Spf: sgv1.AuthResult(1 + r.intn(3)), Dkim: sgv1.AuthResult(1 + r.intn(3)), DmarcPolicy: sgv1.DmarcPolicy(1 + r.intn(4)), Aligned: r.intn(4) != 0}
		case sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS:
			e.Postmaster = &sgv1.Postmaster{SpamRate: 0.002, DomainReputation: sgv1.DomainReputation_DOMAIN_REPUTATION_HIGH}
		}
		if every > 0 {
			e.OccurredAt = timestamppb.New(start.Add(time.Duration(i) * every).Truncate(time.Second))
		}
		out[i] = e
	}
	return out
}

// expectedCounts is the counter semantics of pkg/metrics written in Go,
// independently of the SQL expressions the rollups use.
func expectedCounts(e *sgv1.Event) map[string]uint64 {
	c := map[string]uint64{}
	switch e.Type {
	case sgv1.EventType_EVENT_TYPE_SENT:
		c["sent"]++
	case sgv1.EventType_EVENT_TYPE_DELIVERED:
		c["delivered"]++
	case sgv1.EventType_EVENT_TYPE_DEFERRED:
		c["deferred"]++
	case sgv1.EventType_EVENT_TYPE_BOUNCED:
		c["delivery_errors"]++
		switch e.GetBounce().GetClass() {
		case sgv1.BounceClass_BOUNCE_CLASS_HARD:
			c["hard_bounces"]++
		case sgv1.BounceClass_BOUNCE_CLASS_SOFT:
			c["soft_bounces"]++
		}
	case sgv1.EventType_EVENT_TYPE_REJECTED:
		c["delivery_errors"]++
		c["rejected"]++
	case sgv1.EventType_EVENT_TYPE_COMPLAINED:
		if e.GetComplaint().GetFeedbackType() != sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM {
			c["complaints"]++
		}
	case sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED:
		c["unsubscribes"]++
	case sgv1.EventType_EVENT_TYPE_OPENED:
		c["opens"]++
	case sgv1.EventType_EVENT_TYPE_CLICKED:
		c["clicks"]++
	case sgv1.EventType_EVENT_TYPE_REPLIED:
		c["replies"]++
		switch e.GetReply().GetCategory() {
		case sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED, sgv1.ReplyCategory_REPLY_CATEGORY_REFERRAL:
			c["positive_replies"]++
		case sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT, sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE,
			sgv1.ReplyCategory_REPLY_CATEGORY_COMPLAINT, sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE:
			c["negative_replies"]++
		case sgv1.ReplyCategory_REPLY_CATEGORY_OOO:
			c["ooo_replies"]++
		}
	case sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST:
		c["placement_tests"]++
		switch e.GetPlacement().GetFolder() {
		case sgv1.PlacementFolder_PLACEMENT_FOLDER_INBOX:
			c["placement_inbox"]++
		case sgv1.PlacementFolder_PLACEMENT_FOLDER_SPAM, sgv1.PlacementFolder_PLACEMENT_FOLDER_MISSING:
			c["placement_spam"]++
		}
	case sgv1.EventType_EVENT_TYPE_AUTH_CHECK:
		c["auth_checks"]++
		a := e.GetAuth()
		if a.GetSpf() == sgv1.AuthResult_AUTH_RESULT_FAIL || a.GetDkim() == sgv1.AuthResult_AUTH_RESULT_FAIL ||
			a.GetDmarcPolicy() == sgv1.DmarcPolicy_DMARC_POLICY_MISSING || !a.GetAligned() {
			c["auth_failures"]++
		}
	}
	return c
}

type scopeKey struct {
	tenant string
	level  sgv1.ScopeLevel
	target string
}

func scopesOf(e *sgv1.Event) []scopeKey {
	prov := providerWords[e.Provider]
	dp := ""
	if e.SendingDomain != "" && prov != "" {
		dp = e.SendingDomain + "|" + prov
	}
	variant := ""
	if e.Variant != "" {
		variant = e.Campaign + "/" + e.Variant // as pkg/window keys variants
	}
	all := []scopeKey{
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, e.Tenant},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, e.SendingDomain},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, e.Sender},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, e.Campaign},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, variant},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER, prov},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, dp},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, e.Account},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT, e.Segment},
		{e.Tenant, sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE, e.ListSource},
	}
	return slices.DeleteFunc(all, func(k scopeKey) bool { return k.target == "" })
}

func writeEvents(t testing.TB, conn driver.Conn, events []*sgv1.Event) {
	t.Helper()
	ctx := context.Background()
	w, err := clickhouse.NewBatchWriter(conn, clickhouse.EventsTable, clickhouse.EventRow, clickhouse.WriterConfig{MaxRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ctx, events...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestIntegrationEventsAndRollups(t *testing.T) {
	conn := openTest(t)
	ctx := context.Background()
	events := genEvents(5000, 7)
	writeEvents(t, conn, events)

	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(events)) {
		t.Fatalf("events has %d rows, want %d", n, len(events))
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE tenant = ? AND event_id = ?", events[42].Tenant, events[42].EventId).Scan(&n); err != nil || n != 1 {
		t.Fatalf("event %s found %d times (%v), want once", events[42].EventId, n, err)
	}

	want := map[scopeKey]map[string]uint64{}
	for _, e := range events {
		for _, k := range scopesOf(e) {
			if want[k] == nil {
				want[k] = map[string]uint64{}
			}
			for name, v := range expectedCounts(e) {
				want[k][name] += v
			}
		}
	}
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	levels := map[sgv1.ScopeLevel]int{}
	for k, exp := range want {
		levels[k.level]++
		q := clickhouse.ScopeQuery{Tenant: k.tenant, Level: k.level, Target: k.target, From: from, To: to}
		day, err := clickhouse.RollupCounts(ctx, conn, clickhouse.Day, q)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := clickhouse.EventCounts(ctx, conn, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range clickhouse.Counters {
			if day[c.Name] != exp[c.Name] || raw[c.Name] != exp[c.Name] {
				t.Errorf("%v %s: day rollup %d, events FINAL %d, expected %d", k, c.Name, day[c.Name], raw[c.Name], exp[c.Name])
			}
		}
	}
	if len(levels) != len(clickhouse.RollupLevels) {
		t.Errorf("test data covers %d levels, want all %d", len(levels), len(clickhouse.RollupLevels))
	}

	// Plain SQL over raw events agrees with the day rollup (what an
	// analyst would cross-check), for several scopes.
	checks := []struct {
		name, where, level, target string
	}{
		{"domain sent", "sending_domain = 'a.example' AND type = 'sent'", "domain", "a.example"},
		{"sender delivered", "sender = 'ann@b.example' AND type = 'delivered'", "sender", "ann@b.example"},
		{"campaign hard bounces", "campaign = 'c1' AND type = 'bounced' AND bounce_class = 'hard'", "campaign", "c1"},
		{"domain_provider complaints", "sending_domain = 'c.example' AND provider = 'gmail' AND type = 'complained' AND complaint_feedback_type != 'not_spam'", "domain_provider", "c.example|gmail"},
		{"tenant replies", "type = 'replied'", "tenant", "t1"},
	}
	col := map[string]string{"domain sent": "sent", "sender delivered": "delivered", "campaign hard bounces": "hard_bounces", "domain_provider complaints": "complaints", "tenant replies": "replies"}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			var raw, rolled uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM events WHERE tenant = 't1' AND "+c.where).Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRow(ctx, "SELECT sum("+col[c.name]+") FROM rollup_day WHERE tenant = 't1' AND level = ? AND target = ?", c.level, c.target).Scan(&rolled); err != nil {
				t.Fatal(err)
			}
			if raw == 0 || raw != rolled {
				t.Errorf("raw count %d, day rollup %d", raw, rolled)
			}
		})
	}

	// Minute and hour rollups hold the same totals as the day rollup, and a
	// bounded range only counts its buckets.
	for _, k := range []scopeKey{{"t1", sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, "a.example"}, {"t2", sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER, "gmail"}} {
		q := clickhouse.ScopeQuery{Tenant: k.tenant, Level: k.level, Target: k.target, From: from, To: to}
		day, _ := clickhouse.RollupCounts(ctx, conn, clickhouse.Day, q)
		for _, g := range []clickhouse.Granularity{clickhouse.Minute, clickhouse.Hour} {
			got, err := clickhouse.RollupCounts(ctx, conn, g, q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, day) {
				t.Errorf("%v %s totals %v, day %v", k, g.Table(), got, day)
			}
		}
		q.From = time.Date(2026, 10, 31, 6, 0, 0, 0, time.UTC)
		q.To = time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)
		var exp uint64
		for _, e := range events {
			at := e.OccurredAt.AsTime()
			if !at.Before(q.From) && at.Before(q.To) && slices.Contains(scopesOf(e), k) {
				exp += expectedCounts(e)["sent"]
			}
		}
		for _, g := range []clickhouse.Granularity{clickhouse.Minute, clickhouse.Hour} {
			got, err := clickhouse.RollupCounts(ctx, conn, g, q)
			if err != nil {
				t.Fatal(err)
			}
			if got["sent"] != exp {
				t.Errorf("%v %s sent in [%s, %s) = %d, want %d", k, g.Table(), q.From, q.To, got["sent"], exp)
			}
		}
	}
}

func TestIntegrationReplayedBatch(t *testing.T) {
	conn := openTest(t)
	ctx := context.Background()
	events := genEvents(2000, 11)
	writeEvents(t, conn, events)
	writeEvents(t, conn, events[:500]) // a replayed batch

	var final, distinct uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events_final").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(tenant, event_id) FROM events").Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if final != 2000 || distinct != 2000 {
		t.Errorf("events_final %d rows, distinct ids %d, want 2000", final, distinct)
	}
	// After merging, the ReplacingMergeTree itself holds each event once.
	if err := conn.Exec(ctx, "OPTIMIZE TABLE events FINAL"); err != nil {
		t.Fatal(err)
	}
	var rows uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2000 {
		t.Errorf("events has %d rows after OPTIMIZE FINAL, want 2000", rows)
	}

	// EventCounts stays exact; the rollups count the replay again, as the
	// package doc says.
	var exp, replayed uint64
	for i, e := range events {
		if e.Tenant == "t1" {
			exp += expectedCounts(e)["sent"]
			if i < 500 {
				replayed += expectedCounts(e)["sent"]
			}
		}
	}
	q := clickhouse.ScopeQuery{Tenant: "t1", Level: sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, Target: "t1",
		From: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	raw, err := clickhouse.EventCounts(ctx, conn, q)
	if err != nil {
		t.Fatal(err)
	}
	day, err := clickhouse.RollupCounts(ctx, conn, clickhouse.Day, q)
	if err != nil {
		t.Fatal(err)
	}
	if raw["sent"] != exp {
		t.Errorf("EventCounts sent = %d, want %d", raw["sent"], exp)
	}
	if day["sent"] != exp+replayed {
		t.Errorf("day rollup sent = %d, want %d + %d replayed (documented double count)", day["sent"], exp, replayed)
	}
}

// normalize makes scanned and written values comparable.
func normalize(v any) string {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "<nil>"
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return "<nil>"
	}
	if tm, ok := rv.Interface().(time.Time); ok {
		return tm.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(rv.Interface())
}

// roundTrip reads one row back by key and compares it with what was written.
func roundTrip(t *testing.T, conn driver.Conn, table clickhouse.Table, keyCol, key string, written []any) {
	t.Helper()
	final := " FINAL"
	if table.Name == clickhouse.DeadLettersTable.Name {
		final = "" // plain MergeTree
	}
	rows, err := conn.Query(context.Background(),
		"SELECT "+strings.Join(table.Columns, ", ")+" FROM "+table.Name+final+" WHERE "+keyCol+" = ?", key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	if !rows.Next() {
		t.Fatalf("%s %s not found", table.Name, key)
	}
	dest := make([]any, len(table.Columns))
	for i, ct := range rows.ColumnTypes() {
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	if err := rows.Scan(dest...); err != nil {
		t.Fatal(err)
	}
	for i, c := range table.Columns {
		if got, want := normalize(dest[i]), normalize(written[i]); got != want {
			t.Errorf("%s.%s = %q, wrote %q", table.Name, c, got, want)
		}
	}
	if rows.Next() {
		t.Errorf("%s %s found more than once", table.Name, key)
	}
}

func TestIntegrationRoundTrips(t *testing.T) {
	conn := openTest(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	scope := &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, Target: "send.example|gmail"}
	expl := &sgv1.Explanation{
		Metric: "complaint_rate_24h", Observed: 0.0042, Threshold: 0.003, Comparator: ">=", SampleSize: 5000, Window: "24h",
		ProviderConcentration: 0.8, TopProvider: "gmail", Condition: "complaint_rate_24h >= 0.003", Summary: "too many complaints", Source: "seed 001",
	}
	decisions := []*sgv1.Decision{
		{DecisionId: "d1", Scope: scope, Rule: "complaints-24h", RuleSetVersion: "v3", Severity: sgv1.Severity_SEVERITY_CRITICAL,
			Action: sgv1.Action_ACTION_PAUSE, At: timestamppb.New(at), Until: timestamppb.New(at.Add(48 * time.Hour)), Explanation: expl,
			FromState: sgv1.HealthState_HEALTH_STATE_RISK, ToState: sgv1.HealthState_HEALTH_STATE_PAUSED, HealthScore: 31.5, Priority: 10},
		{DecisionId: "d2", Scope: scope, Rule: "throttle", Action: sgv1.Action_ACTION_THROTTLE, At: timestamppb.New(at), CapRatio: 0.7, DailyCap: 500, Shadow: true},
	}
	commands := []*sgv1.ControlCommand{
		{CommandId: "c1", Scope: scope, Action: sgv1.Action_ACTION_PAUSE, Rule: "complaints-24h", At: timestamppb.New(at),
			Until: timestamppb.New(at.Add(48 * time.Hour)), Explanation: expl, DecisionId: "d1", IssuedAt: timestamppb.New(at.Add(time.Second)), Severity: sgv1.Severity_SEVERITY_CRITICAL},
		{CommandId: "c2", Scope: &sgv1.Scope{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, Target: "x@y.example"},
			Action: sgv1.Action_ACTION_SUPPRESS, Rule: "manual", At: timestamppb.New(at), Actor: "ops@acme", Reason: "asked to stop", IssuedAt: timestamppb.New(at)},
	}
	dls := []*sgv1.DeadLetter{{Stage: "normalizer", Handler: "sendgrid", Reason: "unexpected token", Topic: "sg.raw.v1", Partition: 2, Offset: 99,
		Key: []byte("acme|x"), Value: []byte{'{', 0xff, 0x00, '}'}, FailedAt: timestamppb.New(at), Tenant: "acme"}}

	dw, err := clickhouse.NewBatchWriter(conn, clickhouse.DecisionsTable, clickhouse.DecisionRow, clickhouse.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cw, err := clickhouse.NewBatchWriter(conn, clickhouse.CommandsTable, clickhouse.CommandRow, clickhouse.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lw, err := clickhouse.NewBatchWriter(conn, clickhouse.DeadLettersTable, clickhouse.DeadLetterRow, clickhouse.WriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return dw.Append(ctx, decisions...) },
		func() error { return dw.Append(ctx, decisions[0]) }, // replayed decision
		func() error { return cw.Append(ctx, commands...) },
		func() error { return lw.Append(ctx, dls...) },
		func() error { return dw.Close(ctx) },
		func() error { return cw.Close(ctx) },
		func() error { return lw.Close(ctx) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range decisions {
		roundTrip(t, conn, clickhouse.DecisionsTable, "decision_id", d.DecisionId, clickhouse.DecisionRow(d))
	}
	for _, c := range commands {
		roundTrip(t, conn, clickhouse.CommandsTable, "command_id", c.CommandId, clickhouse.CommandRow(c))
	}
	roundTrip(t, conn, clickhouse.DeadLettersTable, "stage", "normalizer", clickhouse.DeadLetterRow(dls[0]))

	events := genEvents(20, 3)
	writeEvents(t, conn, events)
	for _, e := range events[:5] {
		roundTrip(t, conn, clickhouse.EventsTable, "event_id", e.EventId, clickhouse.EventRow(e))
	}
}

func TestIntegrationOpenCreatesDatabase(t *testing.T) {
	addr, db := clickhousetest.Server(t)
	ctx := context.Background()
	fresh := db + "_created"
	conn, err := clickhouse.Open(ctx, clickhouse.Config{Addr: addr, Database: fresh})
	if err != nil {
		t.Fatalf("Open of a missing database: %v", err)
	}
	defer func() {
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+fresh+"`")
		_ = conn.Close()
	}()
	var cur string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if cur != fresh {
		t.Errorf("current database %q, want %q", cur, fresh)
	}
}

func TestIntegrationOpenBadAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := clickhouse.Open(ctx, clickhouse.Config{Addr: "127.0.0.1:1", DialTimeout: time.Second})
	if err == nil {
		t.Fatal("Open of a closed port returned nil")
	}
	if _, err := clickhouse.Open(ctx, clickhouse.Config{Addr: "127.0.0.1:9000", Database: "x; DROP"}); err == nil {
		t.Fatal("Open accepted a database name that is not an identifier")
	}
}

// BenchmarkBatchWriterEvents measures events/s through BatchWriter into the
// events table with the three rollup views attached: "stream" has event
// times in arrival order (10 000 events per second of event time, as a live
// stream), "scattered" spreads each batch over four days (a backfill, the
// worst case for the views' GROUP BY).
func BenchmarkBatchWriterEvents(b *testing.B) {
	for _, bc := range []struct {
		name  string
		every time.Duration
	}{{"stream", 100 * time.Microsecond}, {"scattered", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			conn := openTest(b)
			events := genEventsEvery(b.N, 5, bc.every)
			ctx := context.Background()
			w, err := clickhouse.NewBatchWriter(conn, clickhouse.EventsTable, clickhouse.EventRow, clickhouse.WriterConfig{MaxRows: 10000})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < len(events); i += 1000 {
				if err := w.Append(ctx, events[i:min(i+1000, len(events))]...); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkBatchWriterDeadLetters measures rows/s into a table without
// materialized views, the writer's and driver's own ceiling.
func BenchmarkBatchWriterDeadLetters(b *testing.B) {
	conn := openTest(b)
	ctx := context.Background()
	dls := make([]*sgv1.DeadLetter, b.N)
	for i := range dls {
		dls[i] = &sgv1.DeadLetter{Stage: "normalizer", Handler: "ses", Reason: "bad", Topic: "sg.raw.v1", Offset: int64(i), Value: []byte(`{"x":1}`), FailedAt: timestamppb.Now()}
	}
	w, err := clickhouse.NewBatchWriter(conn, clickhouse.DeadLettersTable, clickhouse.DeadLetterRow, clickhouse.WriterConfig{MaxRows: 10000})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(dls); i += 1000 {
		if err := w.Append(ctx, dls[i:min(i+1000, len(dls))]...); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
}
