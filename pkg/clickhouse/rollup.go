package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Counter is one rollup counter: a column of every rollup table and the
// per-event 0/1 condition (a ClickHouse boolean expression over the events
// columns) that it sums.
type Counter struct {
	Name string
	Expr string
}

// Counters are the rollup counters, the counts of pkg/metrics (Counts) plus
// auth_checks, the denominator of auth_failure_rate. Choices the catalogue
// leaves open: a bounce without a class counts in delivery_errors only;
// an ARF "not_spam" report is not a complaint; an auth check fails on SPF
// or DKIM fail, DMARC policy missing, or no alignment. The rollup tables
// and their materialized views are created from this list by migration
// 004: changing it requires a new migration (Migrate refuses to start when
// an applied migration renders differently).
var Counters = []Counter{
	{"sent", "type = 'sent'"},
	{"delivered", "type = 'delivered'"},
	{"deferred", "type = 'deferred'"},
	{"hard_bounces", "type = 'bounced' AND bounce_class = 'hard'"},
	{"soft_bounces", "type = 'bounced' AND bounce_class = 'soft'"},
	{"delivery_errors", "type IN ('bounced', 'rejected')"},
	{"complaints", "type = 'complained' AND complaint_feedback_type != 'not_spam'"},
	{"unsubscribes", "type = 'unsubscribed'"},
	{"opens", "type = 'opened'"},
	{"clicks", "type = 'clicked'"},
	{"replies", "type = 'replied'"},
	{"positive_replies", "type = 'replied' AND reply_category IN ('interested', 'referral')"},
	{"negative_replies", "type = 'replied' AND reply_category IN ('not_a_fit', 'unsubscribe', 'complaint', 'hostile')"},
	{"ooo_replies", "type = 'replied' AND reply_category = 'ooo'"},
	{"placement_tests", "type = 'placement_test'"},
	{"placement_inbox", "type = 'placement_test' AND placement_folder = 'inbox'"},
	{"placement_spam", "type = 'placement_test' AND placement_folder IN ('spam', 'missing')"},
	{"auth_checks", "type = 'auth_check'"},
	{"auth_failures", "type = 'auth_check' AND (auth_spf = 'fail' OR auth_dkim = 'fail' OR auth_dmarc_policy = 'missing' OR auth_aligned = 0)"},
	{"rejected", "type = 'rejected'"},
}

// RollupLevel is one scope level the rollups are kept for, with the
// expression over the events columns that gives the scope's target.
// Events whose target is empty (no campaign, say) do not contribute to that
// level.
type RollupLevel struct {
	Level sgv1.ScopeLevel
	Expr  string
}

// RollupLevels are the levels with rollups. The recipient level has none
// (one row per address per bucket would be as large as events itself).
// The tenant level's target is the tenant id; domain_provider's is
// "sending_domain|provider", as in sgv1.ScopeLevel; variant's is
// "campaign/variant", as in pkg/window, so that variants of different
// campaigns never merge.
var RollupLevels = []RollupLevel{
	{sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, "tenant"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, "sending_domain"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, "sender"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, "campaign"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, "if(variant = '', '', concat(campaign, '/', variant))"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER, "provider"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, "if(sending_domain = '' OR provider = '', '', concat(sending_domain, '|', provider))"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, "account"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_SEGMENT, "segment"},
	{sgv1.ScopeLevel_SCOPE_LEVEL_LIST_SOURCE, "list_source"},
}

// Name is the level's word as stored in the rollups' level column
// ("domain", "domain_provider", …), the same word as the JSON form.
func (l RollupLevel) Name() string { return EnumWord(l.Level) }

func rollupLevel(level sgv1.ScopeLevel) (RollupLevel, bool) {
	for _, l := range RollupLevels {
		if l.Level == level {
			return l, true
		}
	}
	return RollupLevel{}, false
}

// Granularity is the bucket size of a rollup table.
type Granularity int

// Granularities of the rollup tables.
const (
	Minute Granularity = iota + 1
	Hour
	Day
)

// Table is the rollup table of granularity g.
func (g Granularity) Table() string {
	switch g {
	case Minute:
		return "rollup_minute"
	case Hour:
		return "rollup_hour"
	case Day:
		return "rollup_day"
	default:
		return ""
	}
}

// Counts maps a counter name (Counters) to its value.
type Counts map[string]uint64

// ScopeQuery names one scope and a half-open time range [From, To).
type ScopeQuery struct {
	Tenant string
	Level  sgv1.ScopeLevel
	Target string
	From   time.Time
	To     time.Time
}

func (q ScopeQuery) validate() (RollupLevel, error) {
	l, ok := rollupLevel(q.Level)
	if !ok {
		return l, fmt.Errorf("scope level %s has no rollup", q.Level)
	}
	if q.Tenant == "" || q.Target == "" {
		return l, fmt.Errorf("scope query needs tenant and target")
	}
	if !q.From.Before(q.To) {
		return l, fmt.Errorf("scope query range [%s, %s) is empty", q.From, q.To)
	}
	return l, nil
}

// RollupCountsSQL is the query RollupCounts runs; its arguments are tenant,
// level word, target, from, to.
func RollupCountsSQL(g Granularity) string {
	sums := make([]string, len(Counters))
	for i, c := range Counters {
		sums[i] = fmt.Sprintf("sum(%s)", c.Name)
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE tenant = ? AND level = ? AND target = ? AND bucket >= ? AND bucket < ?",
		strings.Join(sums, ", "), g.Table())
}

// EventCountsSQL is the query EventCounts runs for level; its arguments
// are tenant, target, from, to.
func EventCountsSQL(level sgv1.ScopeLevel) (string, error) {
	l, ok := rollupLevel(level)
	if !ok {
		return "", fmt.Errorf("scope level %s has no rollup", level)
	}
	sums := make([]string, len(Counters))
	for i, c := range Counters {
		sums[i] = fmt.Sprintf("toUInt64(countIf(%s))", c.Expr)
	}
	return fmt.Sprintf("SELECT %s FROM events FINAL WHERE tenant = ? AND %s = ? AND occurred_at >= ? AND occurred_at < ?",
		strings.Join(sums, ", "), l.Expr), nil
}

// RollupCounts sums the rollup table of granularity g for one scope over
// buckets starting in [From, To). It is fast, and exact as long as every
// event was inserted once (see the package doc on replays); bucket bounds
// are truncated to g (Day buckets are dates in UTC).
func RollupCounts(ctx context.Context, conn driver.Conn, g Granularity, q ScopeQuery) (Counts, error) {
	l, err := q.validate()
	if err != nil {
		return nil, err
	}
	if g.Table() == "" {
		return nil, fmt.Errorf("unknown granularity %d", g)
	}
	from, to := q.From.UTC(), q.To.UTC()
	var args []any
	if g == Day {
		args = []any{q.Tenant, l.Name(), q.Target, from.Format(time.DateOnly), to.Format(time.DateOnly)}
	} else {
		args = []any{q.Tenant, l.Name(), q.Target, from, to}
	}
	return scanCounts(ctx, conn, RollupCountsSQL(g), args)
}

// EventCounts computes the same counters as the rollups from events FINAL,
// so an event inserted more than once (a replayed batch) counts once. It
// reads raw events: use it for audits and reconciliation, not dashboards.
func EventCounts(ctx context.Context, conn driver.Conn, q ScopeQuery) (Counts, error) {
	if _, err := q.validate(); err != nil {
		return nil, err
	}
	query, err := EventCountsSQL(q.Level)
	if err != nil {
		return nil, err
	}
	return scanCounts(ctx, conn, query, []any{q.Tenant, q.Target, q.From.UTC(), q.To.UTC()})
}

func scanCounts(ctx context.Context, conn driver.Conn, query string, args []any) (Counts, error) {
	vals := make([]uint64, len(Counters))
	dest := make([]any, len(Counters))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := conn.QueryRow(ctx, query, args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("query counts: %w", err)
	}
	out := make(Counts, len(Counters))
	for i, c := range Counters {
		out[c.Name] = vals[i]
	}
	return out, nil
}
