// Package window folds canonical events into event-time windows per scope
// and derives the metric catalogue of pkg/metrics from them. It is pure: no
// Kafka, no wall clock (the clock is injected and only bounds future events),
// no goroutines.
//
// # Scopes
//
// Scopes(ev) lists the scopes an event counts in: tenant, domain
// (sending_domain, else the sender's domain), sender, campaign, variant
// (target "campaign/variant"), provider, domain_provider (target
// "domain|provider"), account, segment and list_source; empty ids are
// skipped. Postmaster stats count only on domain and "domain|gmail". The
// recipient level is not aggregated (one scope per address would not be
// bounded).
//
// # Windows
//
// Every window is evaluated at the scope's as_of, the newest event time
// folded into it (SnapshotAt may evaluate later, never earlier). Rolling
// windows are slot-aligned: they hold the slot containing as_of and the
// slots before it, so they never reach further back than their length and
// are at most one slot shorter.
//
//	window    slots                             covers
//	1h        60 one-minute slots               [floor_min(as_of) − 59 min, as_of]
//	24h       the UTC day of as_of              [00:00 UTC, as_of]
//	prev_24h  the UTC day before                [00:00 − 24 h, 00:00)
//	48h       48 one-hour slots                 [floor_h(as_of) − 47 h, as_of]
//	3d        72 one-hour slots                 [floor_h(as_of) − 71 h, as_of]
//	7d        7 UTC days ending today           [00:00 − 6 d, as_of]
//	prev_7d   the 7 UTC days before those       [00:00 − 13 d, 00:00 − 6 d)
//	28d       28 UTC days ending today          [00:00 − 27 d, as_of]
//
// Baselines: <count>_avg_7d and _avg_28d are the daily averages of the 7 and
// 28 complete UTC days before today (today is excluded, so "sent_24h > 3 ×
// sent_avg_7d" compares today with a clean baseline); a scope younger than
// that averages over zeros. _dod_change is (24h − prev_24h) ÷ prev_24h and
// _wow_change (7d − prev_7d) ÷ prev_7d, both 0 when the denominator is 0;
// for rates they compare the rates. Because 24h and 7d include the current
// (partial) day, both changes lean negative early in a UTC day.
// <rate>_wilson_<window> is the 95 % Wilson lower bound (WilsonLower) of the
// rate's numerator over its denominator. A rate with a zero denominator is
// 0. complaints_per_1000 is 1000 × complaints ÷ delivered.
//
// # Event → counters
//
//	event           counters
//	sent            sent
//	delivered       delivered
//	deferred        deferred
//	bounced         hard_bounces or soft_bounces, and delivery_errors. The class
//	                decides; an unspecified class is hard for an SMTP 5xx reply
//	                or a 5.x.x enhanced code, else soft. A hard bounce is a
//	                negative signal of its provider (provider_concentration_7d).
//	rejected        rejected and delivery_errors
//	complained      complaints; a negative signal of its provider. An ARF
//	                not-spam report is not a complaint and counts nowhere.
//	unsubscribed    unsubscribes
//	opened          opens
//	clicked         clicks
//	replied         replies and replies_by_category[word]; positive_replies for
//	                interested and referral; negative_replies for not_a_fit,
//	                unsubscribe, complaint and hostile; ooo_replies for ooo. An
//	                unspecified category counts as "unspecified".
//	placement_test  placement_tests and placement["provider|folder"];
//	                placement_inbox for inbox; placement_spam for spam, missing
//	                and an unspecified folder; promotions is neither.
//	auth_check      an auth check (the denominator of auth_failure_rate);
//	                auth_failures when SPF or DKIM fails, DMARC is missing, or
//	                neither aligns.
//	postmaster_stats the latest postmaster values only (no counter).
//
// # Scalars
//
// postmaster_*: the postmaster stats with the newest event time (ties: the
// worse figures win), reputation 4 high … 1 bad, 0 unknown;
// postmaster_age_hours is as_of minus their time, −1 when none.
// placement_spam_rate_max_provider: results of the 2 newest placement tests
// (by test_id; results without one group by tool and UTC hour; a test's time
// is its newest result, tests older than 28 d are not read) are added per
// seed provider and the highest spam-or-missing share is taken;
// placement_tests_recent is how many tests that read (0–2). A scope keeps its
// 8 newest tests. provider_concentration_7d: the top provider's share of 7d
// complaints + hard bounces. active_days: whole days from the scope's first
// event to as_of. auth_fail_latest: 1 when the newest auth check failed
// (ties: failure wins). negative_contacts_14d: complaints + negative
// replies + unsubscribes over today and the 13 days before.
//
// # Lateness, watermarks and duplicates
//
// Each tenant has a watermark, the newest event time the aggregator
// accepted for it (postmaster stats excluded). An event older than
// watermark − Lateness is rejected with a *LateEventError (Stats.Late);
// postmaster stats are exempt, since they only replace a latest value and
// arrive a day or two late by nature. An event within the lateness updates
// exactly the slots of its own time; the slots of a tier it falls before are
// out of every window of that tier for good and are skipped. The snapshot
// does not depend on the arrival order of events within the lateness
// (tested by shuffling). Events more than MaxFuture ahead of the clock are
// rejected (ErrFutureEvent) so one bad timestamp cannot push the watermark
// and make every later event late.
//
// Duplicates (same tenant and event_id) are ignored (Stats.Duplicates) by
// the Deduper. MemDeduper keeps ids for Lateness + 1 h of event time behind
// its watermark, so every duplicate of a countable event is recognised and
// older duplicates are rejected as late first. (A redelivered postmaster
// stats event older than that is not recognised, which is harmless: it
// only replaces the latest value with itself.) It exports and imports its
// state (MarshalBinary/UnmarshalBinary) for the service to persist with the
// scope checkpoints, so a restart and a replay never count twice.
//
// # State layout and memory
//
// Per scope: three tiers of sparse, time-sorted slots, each slot 88 bytes
// (slot number + 20 uint32 counters), with breakdown counters (reply
// categories, placement provider|folder, per-provider negatives on the day
// tier) as 16-byte (slot, key, count) entries beside them, only when
// non-zero:
//
//	tier     resolution  slots kept (max)       serves
//	minute   1 min       60                     1h
//	hour     1 h         72                     48h, 3d
//	day      1 UTC day   29 (today + 28 before) 24h, prev_24h, 7d, prev_7d, 28d, avg_7d, avg_28d, 14d
//
// plus the scope key, version, as_of, first-seen, postmaster and auth
// latest values and up to 8 placement tests (~300 bytes). Slots a tier can
// no longer read are dropped as as_of moves, so a scope is bounded whatever
// its volume: at most 161 slots (14 KB) plus breakdown entries. Measured
// with runtime.MemStats (BenchmarkBytesPerScope, Go 1.26, amd64): a scope
// that saw one event holds about 840 bytes; a scope with traffic in every
// slot of every tier and reply categories spread over them about 20 KB;
// TestScopeMemoryBound keeps a 40-day busy scope under 40 KB. Counters are
// uint32 per slot and saturate. Scopes idle (as_of older than now −
// IdleExpiry, default 29 days, the longest look-back) are dropped by Expire.
//
// # Snapshots, checkpoints, merging
//
// Apply marks the scopes it changed dirty; Dirty drains that set so the
// caller publishes one snapshot per changed scope per flush however many
// events changed it, and All lists every scope for a periodic tick.
// Snapshot.version counts the events folded into the scope and only grows.
//
// MarshalScope/RestoreScope encode one scope compactly (varints, non-zero
// counters only; a busy scope is about 5 KB) for a compacted topic keyed by
// ScopeKey.String(); restoring moves the tenant watermark up to the scope's
// newest counted event. Merge adds another aggregator's partial state slot by
// slot, so disjoint shares of a stream merged equal the whole stream
// (tested with arbitrary splits).
//
// # Exact with many partitions and instances
//
// The service runs two steps. Admission (per source partition of events
// keyed tenant|event_id, so every copy of an event meets the same
// Admission state) decides lateness against the partition's per-tenant
// watermark, future events against the record's log time (so a replay
// decides the same) and duplicates by exact id; its state is checkpointed
// incrementally as segments of newly admitted ids (TakeSegment) and
// rebuilt with Restore, keeping only ids below the resume offset. Admitted
// events are fanned out to one record per scope (ScopeKeys), keyed by the
// scope, and each scope's single owner folds them with ApplyScoped, which
// remembers per source partition the newest source offset folded in (24
// bytes per source partition feeding the scope, checkpointed with the
// scope): a replayed record at or below it changes nothing.
// TestExactAcrossPartitionsInstancesAndReplays proves the combination
// (crash and replay of every partition, hand-over between instances)
// equal to one aggregator fed the stream in order.
package window
