// Package enforce is the actuator's enforcement state and permission check:
// it turns rule decisions and deliverability events into control commands
// (Commands, (*State).FromEvent), applies control commands to an in-memory
// state ((*State).Apply), and answers "may I send this message now?" from
// that state ((*State).Check) with ALLOW, DENY or DEFER and the reasons.
//
// The package is pure: no Kafka, gRPC or storage. Time comes from the
// caller (Check's now, FromEvent's event time) or from Config.Clock.
//
// # What the state holds, per tenant
//
//   - gates: one pause or throttle per scope (tenant, domain, sender,
//     campaign, variant, provider, domain_provider, …), replaced by the next
//     pause/throttle and removed by resume. A throttle carries a daily_cap
//     (a UTC-day counter) and/or a cap_ratio (a token bucket whose capacity
//     is the day's allowance, cap_ratio × the scope's prior-day volume, and
//     which refills evenly over 24 h — a rolling day, so there is no double
//     burst at midnight).
//   - suppressions: recipients and accounts (company domains) with reason
//     and until; the longest of overlapping suppressions wins, unsuppress
//     removes. Account cooldowns are account suppressions with rule
//     "cooldown".
//   - warm-ups: per sender, the first UTC day; the daily cap follows
//     Config.Warmup (seed: 20–30/day days 1–3, 40–60 days 4–7, 60–100 in
//     week 2, linear within each stage), frozen at the day's cap after a
//     complaint. The record outlives the schedule so the sender is known.
//   - counters: admitted volume per sender, domain and campaign per UTC day,
//     and per-recipient send times for the frequency cap ("annoyance level":
//     Config.FrequencyCap messages per Config.FrequencyWindow, across
//     campaigns and senders).
//
// # Durability and the state topic
//
// Every change is a ControlCommand on the control topic with a deterministic
// command_id (decision_id + action, event_id + scope), so a redelivered or
// replayed command is applied once (Apply remembers the last Config.SeenIDs
// ids). After applying a command the actuator publishes Current(cmd) — the
// scope's live command, or a tombstone — under CommandKey(cmd) on a
// compacted state topic. A new or restarted instance reads the state topic
// (Restore), which equals Export of the state that wrote it, then follows
// the control topic from the committed offset: nothing is lost on kill -9
// because a command is only committed after it is applied, and re-applying
// is harmless. Counters are not in the state topic; a restarted instance
// seeds them from window snapshots with ObserveVolume (sent_24h and
// sent_prev_24h per sender, domain and campaign).
//
// # Several instances: how caps stay within 1 %
//
// Pauses and suppressions need no coordination: every instance consumes the
// whole control topic (each with its own consumer group), so all hold the
// same state within the topic's delivery latency (well under a second), and
// any instance can answer.
//
// Caps (daily caps, ratio allowances, warm-up caps) are split, not shared:
// instance Index of Instances enforces Share(cap, Instances, Index). The
// shares of a cap sum to exactly the cap, so the fleet can never admit more
// than the cap (0 % over) and no counter has to be synchronised on the hot
// path. The risk is the other way — one instance spending its share while
// another still has some. Two things keep the shortfall under 1 %:
//
//  1. Checks are spread evenly (round-robin or least-request balancing of
//     the gRPC clients), so each share is consumed at the same pace.
//  2. When an instance's share of a fleet-wide cap is spent, it answers
//     DEFER with retry_after = Config.SpillRetry (30 s) instead of "next
//     day", and the retry is balanced to another instance that still has
//     capacity. Retries stop only when every share is spent, i.e. when the
//     fleet has admitted exactly the cap.
//
// Shares are exact integers, so a cap is only "within 1 %" in the
// meaningful sense when it is not tiny compared with the fleet: a daily cap
// of 20 split over 4 instances is 5 each and still exact in total, but
// spill retries then dominate. For sender-level caps (warm-up 20–100/day)
// run with Config.SenderAffinity: clients route each check to
// Owner(tenant|sender, members) — rendezvous hashing, so membership changes
// move only the departed member's senders — and that instance holds the
// sender's whole cap, exactly. Domain, campaign and tenant caps, which are
// large, stay split.
//
// Membership changes: Instances is the number of slots, not of live pods
// (a StatefulSet ordinal is the Index). A replaced pod reloads its slot's
// counters with ObserveVolume divided by Instances, so after a restart the
// error is bounded by the traffic of the few seconds between the last
// window snapshot and the restart.
//
// The frequency cap is per recipient and small (3 per 7 days), so it cannot
// be split. It is exact with one instance, or when the balancer routes by
// recipient; with sender affinity and several instances, one recipient can
// receive up to FrequencyCap messages per instance that serves a sender
// mailing them — a bounded overshoot an operator can remove by routing on
// recipient instead.
package enforce
