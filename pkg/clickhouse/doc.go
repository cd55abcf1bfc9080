// Package clickhouse is Sendguard's ClickHouse layer: it opens connections
// (native protocol, LZ4), migrates the analytics schema, maps canonical
// events, decisions, control commands and dead letters to rows, and writes
// them with a buffering, retrying BatchWriter. It imports the upstream
// driver github.com/ClickHouse/clickhouse-go/v2 and depends only on its
// driver.Conn interface, so tests use clickhousetest's fake.
//
// # Versions
//
// The same schema runs on Debian's ClickHouse 18.16 and on current
// releases. Each schema/NNN_name.sql is a text/template rendered with
// Features (TTL, LowCardinality, DateTime64), derived from the server's
// version: on 18.16 enum-like columns are String, timestamps
// DateTime('UTC') (whole seconds) and rollups never expire; on current
// releases they are LowCardinality(String), DateTime64(3, 'UTC'), and
// minute/hour rollups expire after 35/400 days. No statement uses
// toStartOfInterval (18.16 lacks it), and every batch INSERT names its
// columns (18.16 rejects a batch without a column list).
//
// # Schema
//
//	events          one row per canonical event; ReplacingMergeTree(inserted_at),
//	                PARTITION BY month, ORDER BY (tenant, event_id)
//	events_final    view: SELECT * FROM events FINAL
//	decisions       rule-evaluator decisions with flattened explanations (audit)
//	commands        actuator control commands, incl. actor and reason (audit)
//	dead_letters    messages a stage gave up on, exact bytes and reason
//	rollup_minute   SummingMergeTree, bucket toStartOfMinute(occurred_at)
//	rollup_hour     SummingMergeTree, bucket toStartOfHour(occurred_at)
//	rollup_day      SummingMergeTree, bucket toDate(occurred_at)
//	schema_migrations  applied migration versions and checksums
//
// Each rollup table is fed by its own materialized view (rollup_*_mv, "TO"
// the table) that reads every block inserted into events, fans each event
// out with ARRAY JOIN to the scope levels of RollupLevels (tenant, domain,
// sender, campaign, variant, provider, domain_provider, account, segment,
// list_source; empty targets dropped) and counts the Counters, the counts
// of pkg/metrics plus auth_checks, per (tenant, level, target, bucket).
// All three views read events: 18.16 does not pass a view's insert on to
// the views of its target table, so hour and day cannot be derived from
// minute. SummingMergeTree sums rows with the same key only when parts
// merge, so readers always aggregate: SELECT sum(sent) … GROUP BY, or
// RollupCounts.
//
// # Replays and double counting: what is guaranteed
//
// Kafka delivery is at-least-once, so a batch of events can reach the
// writer twice (a consumer that inserted but crashed before committing).
// ClickHouse 18.16 does not deduplicate identical blocks on non-replicated
// MergeTree tables, so nothing in the server stops a second INSERT.
//
//   - events: exactly once per (tenant, event_id) after merges. It is a
//     ReplacingMergeTree on that key, so duplicates collapse when parts
//     merge; until then SELECT … FROM events counts them, and
//     events_final (FINAL) never does. Counting distinct events is always
//     exact through events_final, uniqExact(tenant, event_id), or
//     EventCounts.
//   - rollups: exactly once only if each event is inserted once. The views
//     see every INSERT, so a re-inserted event is counted again and no
//     merge takes it back out (TestIntegrationReplayedBatch shows both
//     behaviours). The writer, the windowed-metrics stage, must therefore
//     append only events that passed its exactly-once dedup by event_id,
//     and commit its Kafka offsets only after BatchWriter.Flush returned
//     nil. What remains open is the crash between a successful INSERT and
//     the offset commit: the batch is delivered again, and it is counted
//     again unless the writer's dedup state already knew those ids (i.e.
//     the state outlives the crash). EventChecker closes it for crashes
//     and restarts: the windows admission step checkpoints the ids it
//     admits before it inserts them, and after a restart looks up, with
//     ExistingEventsSQL, the ids a crashed run may have inserted without
//     committing, inserting only those missing. A consumer that lost its
//     partitions but still flushes (a "zombie" racing a rebalance) can
//     still insert a batch twice; EventCounts below detects it.
//   - For numbers that must be exact regardless (audits, reconciliation,
//     billing), use EventCounts, which computes the same counters from
//     events FINAL on demand, and compare with RollupCounts: a
//     difference means a replay reached the rollups.
//
// decisions and commands are ReplacingMergeTrees keyed by their
// deterministic ids, so replayed audit rows collapse too (read with FINAL
// for exact counts). dead_letters keeps every row.
//
// # Migrations
//
// Migrate applies the embedded migrations in version order and records each
// in schema_migrations with a checksum; running it again changes nothing,
// and it refuses (ErrMigrationChanged) when an applied migration's text
// changed. Schema changes go into a new file.
package clickhouse
