// Package metrics is the catalogue of window metric names: the contract
// between the windowed-metrics stage, whose snapshots carry the counters
// they are derived from (pkg/window.MetricsOf derives them by name), and
// the rule language, which reads them as CEL variables. A name not in the catalogue is an error in a rule set.
//
// Names are built as <base>_<window>, with these windows:
//
//	1h    the last hour (rolling)
//	24h   the current calendar day (UTC) up to as_of
//	48h   the last 48 hours (rolling)
//	3d    the last 3 days (rolling)
//	7d    the last 7 days (rolling)
//	28d   the last 28 days (rolling)
//	prev_24h  the previous calendar day
//	prev_7d   the 7 days before the current 7d window
//
// plus baselines and changes for counts and rates:
//
//	<base>_avg_7d, <base>_avg_28d   daily average over 7/28 days (counts only)
//	<base>_dod_change               (today − yesterday) ÷ yesterday; 0 when yesterday is 0
//	<base>_wow_change               (7d − prev_7d) ÷ prev_7d; 0 when prev_7d is 0
//	<rate>_wilson_<window>          Wilson score lower bound (95 %) of the rate
//
// and scope-wide values without a window (postmaster_spam_rate, …).
package metrics

import "sort"

// Windows are the window suffixes every count and rate is computed for.
var Windows = []string{"1h", "24h", "48h", "3d", "7d", "28d", "prev_24h", "prev_7d"}

// Counts are the counter bases. Each is available as <count>_<window>.
var Counts = map[string]string{
	"sent":             "messages sent (accepted by the sending MTA/ESP)",
	"delivered":        "messages delivered (accepted by the recipient's MX)",
	"deferred":         "temporary delivery failures (will be retried)",
	"hard_bounces":     "permanent bounces",
	"soft_bounces":     "temporary bounces reported as bounces",
	"delivery_errors":  "bounces of any class plus rejections",
	"complaints":       "spam complaints (FBL, ESP, postmaster, manual)",
	"unsubscribes":     "unsubscribes of any method",
	"opens":            "opens",
	"clicks":           "clicks",
	"replies":          "replies of any category",
	"positive_replies": "replies categorised interested or referral",
	"negative_replies": "replies categorised not_a_fit, unsubscribe, complaint or hostile",
	"ooo_replies":      "out-of-office replies",
	"placement_tests":  "seed placement results",
	"placement_inbox":  "seed placement results in the inbox",
	"placement_spam":   "seed placement results in spam or missing",
	"auth_failures":    "auth checks with SPF or DKIM fail, missing DMARC, or unaligned",
	"rejected":         "messages refused before sending (ESP reject/drop)",
}

// Rates are the rate bases with their formula. Each is available as
// <rate>_<window>. A rate with a zero denominator is 0.
var Rates = map[string]string{
	"complaint_rate":       "complaints ÷ delivered",
	"complaints_per_1000":  "1000 × complaints ÷ delivered",
	"hard_bounce_rate":     "hard_bounces ÷ sent",
	"soft_bounce_rate":     "soft_bounces ÷ sent",
	"bounce_rate":          "(hard_bounces + soft_bounces) ÷ sent",
	"error_rate":           "delivery_errors ÷ sent",
	"deferral_rate":        "deferred ÷ sent",
	"unsubscribe_rate":     "unsubscribes ÷ delivered",
	"open_rate":            "opens ÷ delivered",
	"click_rate":           "clicks ÷ delivered",
	"ctor":                 "clicks ÷ opens",
	"reply_rate":           "replies ÷ delivered",
	"positive_reply_rate":  "positive_replies ÷ delivered",
	"negative_reply_rate":  "negative_replies ÷ delivered",
	"placement_spam_rate":  "placement_spam ÷ placement_tests",
	"placement_inbox_rate": "placement_inbox ÷ placement_tests",
	"auth_failure_rate":    "auth_failures ÷ auth checks",
	"delivery_rate":        "delivered ÷ sent",
}

// WilsonRates are the rates that also get a Wilson lower bound,
// <rate>_wilson_<window>, for small-sample rules.
var WilsonRates = []string{"complaint_rate", "hard_bounce_rate", "unsubscribe_rate", "error_rate", "negative_reply_rate", "placement_spam_rate"}

// Scalars are scope-wide values without a window.
var Scalars = map[string]string{
	"postmaster_spam_rate":             "latest Gmail Postmaster user-reported spam rate (fraction)",
	"postmaster_reputation":            "latest Postmaster domain reputation: 4 high, 3 medium, 2 low, 1 bad, 0 unknown",
	"postmaster_delivery_error_rate":   "latest Postmaster delivery error rate (fraction)",
	"postmaster_age_hours":             "hours since the latest Postmaster stats (event time); -1 when none",
	"placement_spam_rate_max_provider": "highest spam-or-missing share at one provider over the last 2 placement tests",
	"placement_tests_recent":           "number of distinct placement tests counted in placement_spam_rate_max_provider",
	"provider_concentration_7d":        "share of 7d negative signals (complaints + hard bounces) at the top provider",
	"active_days":                      "days since the scope's first event (sender age for warm-up)",
	"auth_fail_latest":                 "1 when the latest auth check failed, else 0",
	"negative_contacts_14d":            "negative contacts (complaints, negative replies, unsubscribes) in 14 days (account scope)",
}

// Names returns every metric name in the catalogue, sorted.
func Names() []string {
	var names []string
	for base := range Counts {
		for _, w := range Windows {
			names = append(names, base+"_"+w)
		}
		names = append(names, base+"_avg_7d", base+"_avg_28d", base+"_dod_change", base+"_wow_change")
	}
	for base := range Rates {
		for _, w := range Windows {
			names = append(names, base+"_"+w)
		}
		names = append(names, base+"_dod_change", base+"_wow_change")
	}
	for _, base := range WilsonRates {
		for _, w := range Windows {
			names = append(names, base+"_wilson_"+w)
		}
	}
	for name := range Scalars {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Known reports whether name is in the catalogue.
func Known(name string) bool {
	_, ok := known[name]
	return ok
}

var known = func() map[string]struct{} {
	m := make(map[string]struct{})
	for _, n := range Names() {
		m[n] = struct{}{}
	}
	return m
}()
