package rules

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/metrics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

var t0 = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

type m = map[string]float64

func snapAt(level sgv1.ScopeLevel, target string, at time.Time, metrics m) *sgv1.WindowSnapshot {
	return &sgv1.WindowSnapshot{
		Scope:   &sgv1.Scope{Tenant: "t1", Level: level, Target: target},
		AsOf:    timestamppb.New(at),
		Metrics: metrics,
	}
}

// fireRule evaluates one rule of rs (as resolved for tenant) on metrics and
// returns the explanation of the branch that fired, or nil.
func fireRule(t *testing.T, rs *RuleSet, tenant, id string, mm m) *sgv1.Explanation {
	t.Helper()
	cr := rs.forTenant(tenant).byID[id]
	if cr == nil {
		t.Fatalf("rule %s not in rule set for tenant %q", id, tenant)
	}
	snap := snapAt(cr.rule.Level, "x", t0, mm)
	snap.Scope.Tenant = tenant
	act, err := newActivation(snap)
	if err != nil {
		t.Fatal(err)
	}
	return cr.fire(act)
}

type ruleCase struct {
	rule string
	name string
	fire bool
	m    m
	// metric the explanation must name, when set.
	metric string
}

// defaultCases: for every rule of the default pack at least one snapshot
// that triggers it and a near miss that must not.
var defaultCases = []ruleCase{
	{"domain-complaint-2days", "both days at 0.3%", true, m{"complaint_rate_24h": 0.003, "complaint_rate_prev_24h": 0.0031, "delivered_24h": 600, "delivered_prev_24h": 800}, "complaint_rate_24h"},
	{"domain-complaint-2days", "yesterday just under", false, m{"complaint_rate_24h": 0.003, "complaint_rate_prev_24h": 0.0029, "delivered_24h": 600, "delivered_prev_24h": 800}, ""},
	{"domain-complaint-2days", "small volume wilson", true, m{"complaint_rate_24h": 0.02, "complaint_rate_wilson_24h": 0.004, "complaint_rate_wilson_prev_24h": 0.0035, "delivered_24h": 200, "delivered_prev_24h": 300, "complaints_48h": 5}, "complaint_rate_wilson_24h"},
	{"domain-complaint-2days", "small volume wilson lower bound under", false, m{"complaint_rate_24h": 0.02, "complaint_rate_prev_24h": 0.02, "complaint_rate_wilson_24h": 0.0029, "complaint_rate_wilson_prev_24h": 0.0035, "delivered_24h": 200, "delivered_prev_24h": 300}, ""},
	{"domain-complaint-7d-rising", "0.22% and rising", true, m{"complaint_rate_7d": 0.0022, "complaint_rate_prev_7d": 0.0015, "delivered_7d": 5000}, "complaint_rate_7d"},
	{"domain-complaint-7d-rising", "0.22% but falling", false, m{"complaint_rate_7d": 0.0022, "complaint_rate_prev_7d": 0.0025, "delivered_7d": 5000}, ""},
	{"domain-postmaster-spam-critical", "gmail 0.3%", true, m{"postmaster_spam_rate": 0.003, "postmaster_age_hours": 10}, "postmaster_spam_rate"},
	{"domain-postmaster-spam-critical", "gmail 0.29%", false, m{"postmaster_spam_rate": 0.0029, "postmaster_age_hours": 10}, ""},
	{"domain-complaint-soft-pause", "today and yesterday 0.2%", true, m{"complaint_rate_24h": 0.002, "complaint_rate_prev_24h": 0.0025, "delivered_3d": 3000, "delivered_48h": 2000, "complaints_3d": 6, "complaints_48h": 5}, "complaint_rate_3d"},
	{"domain-complaint-soft-pause", "yesterday and day before", true, m{"complaint_rate_24h": 0.0005, "complaint_rate_prev_24h": 0.0025, "delivered_3d": 3000, "delivered_48h": 2000, "complaints_3d": 8, "complaints_48h": 5}, "complaint_rate_3d"},
	{"domain-complaint-soft-pause", "only one day of three", false, m{"complaint_rate_24h": 0.002, "complaint_rate_prev_24h": 0.0019, "delivered_3d": 3000, "delivered_48h": 2000, "complaints_3d": 6, "complaints_48h": 5}, ""},
	{"domain-complaint-risk", "0.2% daily", true, m{"complaint_rate_24h": 0.002, "delivered_24h": 1000}, "complaint_rate_24h"},
	{"domain-complaint-risk", "0.19% daily", false, m{"complaint_rate_24h": 0.0019, "delivered_24h": 1000}, ""},
	{"domain-complaint-risk", "small volume two complaints in 48h", true, m{"complaint_rate_24h": 0.01, "delivered_24h": 100, "complaint_rate_48h": 0.005, "complaints_48h": 2}, "complaint_rate_48h"},
	{"domain-complaint-risk", "small volume one complaint", false, m{"complaint_rate_24h": 0.01, "delivered_24h": 100, "complaint_rate_48h": 0.005, "complaints_48h": 1}, ""},
	{"domain-complaint-warning", "0.1%", true, m{"complaint_rate_24h": 0.001, "delivered_24h": 1000}, "complaint_rate_24h"},
	{"domain-complaint-warning", "0.09%", false, m{"complaint_rate_24h": 0.0009, "delivered_24h": 1000}, ""},
	{"domain-postmaster-spam-danger", "0.2%", true, m{"postmaster_spam_rate": 0.002, "postmaster_age_hours": 1}, "postmaster_spam_rate"},
	{"domain-postmaster-spam-danger", "0.19%", false, m{"postmaster_spam_rate": 0.0019, "postmaster_age_hours": 1}, ""},
	{"domain-postmaster-spam-warning", "0.1%", true, m{"postmaster_spam_rate": 0.001, "postmaster_age_hours": 1}, "postmaster_spam_rate"},
	{"domain-postmaster-spam-warning", "0.09%", false, m{"postmaster_spam_rate": 0.0009, "postmaster_age_hours": 1}, ""},
	{"domain-postmaster-spam-warning", "stale data", false, m{"postmaster_spam_rate": 0.005, "postmaster_age_hours": 100}, ""},
	{"domain-postmaster-reputation-low", "low", true, m{"postmaster_reputation": 2, "postmaster_age_hours": 5}, "postmaster_reputation"},
	{"domain-postmaster-reputation-low", "medium", false, m{"postmaster_reputation": 3, "postmaster_age_hours": 5}, ""},
	{"domain-delivery-errors-stop", "2% errors+deferrals", true, m{"error_rate_24h": 0.015, "deferral_rate_24h": 0.005, "sent_24h": 1000}, "error_rate_24h"},
	{"domain-delivery-errors-stop", "small volume over 48h", true, m{"error_rate_48h": 0.03, "sent_24h": 80, "sent_48h": 150}, "error_rate_48h"},
	{"domain-delivery-errors-stop", "too small even over 48h", false, m{"error_rate_48h": 0.03, "sent_24h": 80, "sent_48h": 90}, ""},
	{"domain-delivery-errors-stop", "1.9%", false, m{"error_rate_24h": 0.015, "deferral_rate_24h": 0.004, "sent_24h": 1000}, ""},
	{"domain-delivery-errors-warning", "1%", true, m{"error_rate_24h": 0.008, "deferral_rate_24h": 0.002, "sent_24h": 1000}, "error_rate_24h"},
	{"domain-delivery-errors-warning", "0.99%", false, m{"error_rate_24h": 0.008, "deferral_rate_24h": 0.0019, "sent_24h": 1000}, ""},
	{"domain-hard-bounce-7d-danger", "2.1%", true, m{"hard_bounce_rate_7d": 0.021, "sent_7d": 1000}, "hard_bounce_rate_7d"},
	{"domain-hard-bounce-7d-danger", "2.0%", false, m{"hard_bounce_rate_7d": 0.02, "sent_7d": 1000}, ""},
	{"domain-hard-bounce-7d-warning", "1%", true, m{"hard_bounce_rate_7d": 0.01, "sent_7d": 1000}, "hard_bounce_rate_7d"},
	{"domain-hard-bounce-7d-warning", "0.99%", false, m{"hard_bounce_rate_7d": 0.0099, "sent_7d": 1000}, ""},
	{"domain-auth-failure", "failed", true, m{"auth_fail_latest": 1}, "auth_fail_latest"},
	{"domain-auth-failure", "passed", false, m{"auth_fail_latest": 0}, ""},
	{"domain-provider-errors", "2%", true, m{"error_rate_24h": 0.02, "sent_24h": 300}, "error_rate_24h"},
	{"domain-provider-errors", "2% on 199 sent", false, m{"error_rate_24h": 0.02, "sent_24h": 199}, ""},
	{"domain-provider-complaints", "0.3%", true, m{"complaint_rate_24h": 0.003, "delivered_24h": 600}, "complaint_rate_24h"},
	{"domain-provider-complaints", "0.29%", false, m{"complaint_rate_24h": 0.0029, "delivered_24h": 600}, ""},
	{"sender-complaint-critical", "0.3%", true, m{"complaint_rate_24h": 0.003, "delivered_24h": 600}, "complaint_rate_24h"},
	{"sender-complaint-critical", "0.29%", false, m{"complaint_rate_24h": 0.0029, "delivered_24h": 600}, ""},
	{"sender-complaint-pause", "0.2% on 500", true, m{"complaint_rate_24h": 0.002, "delivered_24h": 500}, "complaint_rate_24h"},
	{"sender-complaint-pause", "0.19%", false, m{"complaint_rate_24h": 0.0019, "delivered_24h": 500}, ""},
	{"sender-complaint-pause", "small sender two complaints over two days", true, m{"complaint_rate_24h": 0.01, "delivered_24h": 100, "complaint_rate_48h": 0.004, "complaints_48h": 2}, "complaint_rate_48h"},
	{"sender-complaint-pause", "small sender one complaint", false, m{"complaint_rate_24h": 0.01, "delivered_24h": 100, "complaint_rate_48h": 0.005, "complaints_48h": 1}, ""},
	{"sender-hard-bounce-pause", "2.1% on 200", true, m{"hard_bounce_rate_24h": 0.021, "sent_24h": 200}, "hard_bounce_rate_24h"},
	{"sender-hard-bounce-pause", "2.0% on 200", false, m{"hard_bounce_rate_24h": 0.02, "sent_24h": 200}, ""},
	{"sender-hard-bounce-pause", "5% on 199", false, m{"hard_bounce_rate_24h": 0.05, "sent_24h": 199}, ""},
	{"sender-auth-failure", "failed", true, m{"auth_fail_latest": 1}, "auth_fail_latest"},
	{"sender-auth-failure", "passed", false, m{"auth_fail_latest": 0}, ""},
	{"sender-soft-bounce-3d-cooldown", "5% vs 1.7% baseline", true, m{"soft_bounce_rate_3d": 0.05, "soft_bounces_3d": 15, "sent_3d": 300, "soft_bounces_28d": 60, "sent_28d": 3000}, "soft_bounce_rate_3d"},
	{"sender-soft-bounce-3d-cooldown", "3.3% vs 1.85% baseline", false, m{"soft_bounce_rate_3d": 0.033, "soft_bounces_3d": 10, "sent_3d": 300, "soft_bounces_28d": 60, "sent_28d": 3000}, ""},
	{"sender-soft-bounce-spike", "3% vs 1% baseline", true, m{"soft_bounce_rate_7d": 0.03, "soft_bounces_7d": 30, "sent_7d": 1000, "soft_bounces_28d": 60, "sent_28d": 4000}, "soft_bounce_rate_7d"},
	{"sender-soft-bounce-spike", "exactly 2x baseline", false, m{"soft_bounce_rate_7d": 0.02, "soft_bounces_7d": 20, "sent_7d": 1000, "soft_bounces_28d": 50, "sent_28d": 4000}, ""},
	{"sender-hard-bounce-watch", "1%", true, m{"hard_bounce_rate_24h": 0.01, "sent_24h": 200}, "hard_bounce_rate_24h"},
	{"sender-hard-bounce-watch", "0.99%", false, m{"hard_bounce_rate_24h": 0.0099, "sent_24h": 200}, ""},
	{"sender-complaint-warning", "0.1%", true, m{"complaint_rate_24h": 0.001, "delivered_24h": 500}, "complaint_rate_24h"},
	{"sender-complaint-warning", "0.09%", false, m{"complaint_rate_24h": 0.0009, "delivered_24h": 500}, ""},
	{"campaign-complaint-pause", "48h 0.15%", true, m{"complaint_rate_48h": 0.0015, "delivered_48h": 1000}, "complaint_rate_48h"},
	{"campaign-complaint-pause", "24h branch", true, m{"complaint_rate_24h": 0.002, "delivered_24h": 600, "complaint_rate_48h": 0.0012, "delivered_48h": 900}, "complaint_rate_24h"},
	{"campaign-complaint-pause", "0.14%", false, m{"complaint_rate_24h": 0.0014, "delivered_24h": 600, "complaint_rate_48h": 0.0014, "delivered_48h": 1000}, ""},
	{"campaign-complaint-pause", "small campaign wilson", true, m{"complaint_rate_48h": 0.01, "complaint_rate_wilson_48h": 0.002, "delivered_48h": 300, "complaints_48h": 3}, "complaint_rate_wilson_48h"},
	{"campaign-complaint-pause", "small campaign, one complaint", false, m{"complaint_rate_48h": 0.07, "complaint_rate_wilson_48h": 0.012, "delivered_48h": 14, "complaints_48h": 1}, ""},
	{"campaign-complaint-pause", "small campaign wilson under", false, m{"complaint_rate_48h": 0.01, "complaint_rate_wilson_48h": 0.0014, "delivered_48h": 300}, ""},
	{"campaign-unsubscribe-pause", "0.71% a day", true, m{"unsubscribe_rate_24h": 0.0071, "unsubscribe_rate_7d": 0.005, "delivered_24h": 600}, "unsubscribe_rate_24h"},
	{"campaign-unsubscribe-pause", "2x the 7-day average", true, m{"unsubscribe_rate_24h": 0.005, "unsubscribe_rate_7d": 0.002, "delivered_24h": 600}, "unsubscribe_rate_24h"},
	{"campaign-unsubscribe-pause", "0.6% and 1.7x", false, m{"unsubscribe_rate_24h": 0.006, "unsubscribe_rate_7d": 0.0035, "delivered_24h": 600}, ""},
	{"campaign-sentiment-drop", "positive -50% while negatives rise", true, m{"positive_reply_rate_wow_change": -0.5, "negative_reply_rate_wow_change": 0.1, "delivered_7d": 600, "delivered_prev_7d": 600}, "positive_reply_rate_wow_change"},
	{"campaign-sentiment-drop", "no previous week to compare", false, m{"positive_reply_rate_wow_change": -0.8, "negative_reply_rate_wow_change": 0.1, "delivered_7d": 600, "delivered_prev_7d": 90}, ""},
	{"campaign-sentiment-drop", "positive -49%", false, m{"positive_reply_rate_wow_change": -0.49, "negative_reply_rate_wow_change": 0.1, "delivered_7d": 600}, ""},
	{"campaign-negative-replies-throttle", "+50% wow", true, m{"negative_reply_rate_wow_change": 0.5, "negative_replies_7d": 3, "delivered_7d": 600, "delivered_prev_7d": 600}, "negative_reply_rate_wow_change"},
	{"campaign-negative-replies-throttle", "second week of a campaign", false, m{"negative_reply_rate_wow_change": 4, "negative_replies_7d": 5, "delivered_7d": 600, "delivered_prev_7d": 150}, ""},
	{"campaign-negative-replies-throttle", "+49% wow", false, m{"negative_reply_rate_wow_change": 0.49, "negative_replies_7d": 3, "delivered_7d": 600}, ""},
	{"campaign-unsubscribe-watch", "0.31%", true, m{"unsubscribe_rate_24h": 0.0031, "delivered_24h": 600}, "unsubscribe_rate_24h"},
	{"campaign-unsubscribe-watch", "0.3%", false, m{"unsubscribe_rate_24h": 0.003, "delivered_24h": 600}, ""},
	{"campaign-complaint-warning", "0.1%", true, m{"complaint_rate_24h": 0.001, "delivered_24h": 500}, "complaint_rate_24h"},
	{"campaign-complaint-warning", "0.09%", false, m{"complaint_rate_24h": 0.0009, "delivered_24h": 500}, ""},
	{"variant-placement-retire", "20% spam across 2 tests", true, m{"placement_spam_rate_max_provider": 0.2, "placement_tests_recent": 2}, "placement_spam_rate_max_provider"},
	{"variant-placement-retire", "one test only", false, m{"placement_spam_rate_max_provider": 0.5, "placement_tests_recent": 1}, ""},
	{"variant-complaint-pause", "48h 0.15%", true, m{"complaint_rate_48h": 0.0015, "delivered_48h": 1000}, "complaint_rate_48h"},
	{"variant-complaint-pause", "0.14%", false, m{"complaint_rate_48h": 0.0014, "delivered_48h": 1000}, ""},
	{"sender-volume-pause-scaling", "+51% established sender", true, m{"sent_dod_change": 0.51, "active_days": 30, "sent_prev_24h": 200}, "sent_dod_change"},
	{"sender-volume-pause-scaling", "+51% during warm-up", false, m{"sent_dod_change": 0.51, "active_days": 10, "sent_prev_24h": 200}, ""},
	{"sender-volume-over-norm", "201% of norm", true, m{"sent_24h": 201, "sent_avg_28d": 100, "sent_28d": 3001, "active_days": 40}, "sent_24h"},
	{"sender-volume-over-norm", "young sender: its own days are the norm", false, m{"sent_24h": 60, "sent_avg_28d": 8.6, "sent_28d": 300, "active_days": 8}, ""},
	{"sender-volume-over-norm", "young sender over its own norm", true, m{"sent_24h": 100, "sent_avg_28d": 8.6, "sent_28d": 340, "active_days": 8}, "sent_24h"},
	{"sender-volume-over-norm", "200% of norm", false, m{"sent_24h": 200, "sent_avg_28d": 100, "sent_28d": 2800}, ""},
	{"sender-volume-watch", "+26%", true, m{"sent_dod_change": 0.26, "sent_prev_24h": 100}, "sent_dod_change"},
	{"sender-volume-watch", "+25%", false, m{"sent_dod_change": 0.25, "sent_prev_24h": 100}, ""},
	{"sender-warmup-days-1-3", "31 on day 2", true, m{"active_days": 1, "sent_24h": 31}, "active_days"},
	{"sender-warmup-days-1-3", "30 on day 2", false, m{"active_days": 1, "sent_24h": 30}, ""},
	{"sender-warmup-days-4-7", "61 on day 5", true, m{"active_days": 4, "sent_24h": 61}, "active_days"},
	{"sender-warmup-days-4-7", "60 on day 5", false, m{"active_days": 4, "sent_24h": 60}, ""},
	{"sender-warmup-week-2", "101 in week 2", true, m{"active_days": 8, "sent_24h": 101}, "active_days"},
	{"sender-warmup-week-2", "100 in week 2", false, m{"active_days": 8, "sent_24h": 100}, ""},
	{"sender-warmup-week-2", "over 60 with complaints", true, m{"active_days": 8, "sent_24h": 61, "complaint_rate_48h": 0.002}, "active_days"},
	{"tenant-yespo-restriction", "complaints critical two days", true, m{"complaint_rate_24h": 0.003, "complaint_rate_prev_24h": 0.003, "delivered_prev_24h": 1000}, "complaint_rate_24h"},
	{"tenant-yespo-restriction", "errors critical two days", true, m{"error_rate_24h": 0.02, "error_rate_prev_24h": 0.025, "delivered_prev_24h": 1000}, "error_rate_24h"},
	{"tenant-yespo-restriction", "critical one day", false, m{"complaint_rate_24h": 0.003, "complaint_rate_prev_24h": 0.0029, "delivered_prev_24h": 1000}, ""},
	{"tenant-yespo-risk", "two metrics in attention", true, m{"complaint_rate_24h": 0.0015, "unsubscribe_rate_24h": 0.004, "open_rate_24h": 0.3, "click_rate_24h": 0.02, "delivered_24h": 1000}, "complaint_rate_24h"},
	{"tenant-yespo-risk", "unsubscribes critical", true, m{"unsubscribe_rate_24h": 0.012, "open_rate_24h": 0.3, "click_rate_24h": 0.02, "delivered_24h": 1000}, "unsubscribe_rate_24h"},
	{"tenant-yespo-risk", "one metric in attention", false, m{"complaint_rate_24h": 0.0015, "open_rate_24h": 0.3, "click_rate_24h": 0.02, "delivered_24h": 1000}, ""},
	{"tenant-yespo-warning", "unsubscribes 0.3%", true, m{"unsubscribe_rate_24h": 0.003, "open_rate_24h": 0.3, "click_rate_24h": 0.02, "delivered_24h": 1000}, "unsubscribe_rate_24h"},
	{"tenant-yespo-warning", "CTR 1.1%", true, m{"open_rate_24h": 0.3, "click_rate_24h": 0.011, "delivered_24h": 1000}, "click_rate_24h"},
	{"tenant-yespo-warning", "all healthy", false, m{"unsubscribe_rate_24h": 0.0029, "open_rate_24h": 0.3, "click_rate_24h": 0.02, "delivered_24h": 1000}, ""},
	{"domain-complaint-spike-dod", "complaints doubled day over day", true, m{"complaint_rate_dod_change": 1.0, "complaint_rate_24h": 0.0012, "delivered_24h": 800}, "complaint_rate_dod_change"},
	{"domain-complaint-spike-dod", "up 90%", false, m{"complaint_rate_dod_change": 0.9, "complaint_rate_24h": 0.0012, "delivered_24h": 800}, ""},
	{"domain-bounce-7d-critical", "5.1% bounces", true, m{"bounce_rate_7d": 0.051, "sent_7d": 500}, "bounce_rate_7d"},
	{"domain-bounce-7d-critical", "5% bounces", false, m{"bounce_rate_7d": 0.05, "sent_7d": 500}, ""},
	{"campaign-early-error-spike", "2% errors in the first hour", true, m{"error_rate_1h": 0.02, "sent_1h": 300}, "error_rate_1h"},
	{"campaign-early-error-spike", "1.2% unsubscribes in the first hour", true, m{"unsubscribe_rate_1h": 0.012, "sent_1h": 300}, "unsubscribe_rate_1h"},
	{"campaign-early-error-spike", "1.9% errors", false, m{"error_rate_1h": 0.019, "unsubscribe_rate_1h": 0.011, "sent_1h": 300}, ""},
	{"segment-complaint-suppress", "0.3% over 48h", true, m{"complaint_rate_48h": 0.003, "delivered_48h": 900}, "complaint_rate_48h"},
	{"segment-complaint-suppress", "0.29%", false, m{"complaint_rate_48h": 0.0029, "delivered_48h": 900}, ""},
	{"list-source-hard-bounce-critical", "5.1%", true, m{"hard_bounce_rate_7d": 0.051, "sent_7d": 300}, "hard_bounce_rate_7d"},
	{"list-source-hard-bounce-critical", "5%", false, m{"hard_bounce_rate_7d": 0.05, "sent_7d": 300}, ""},
	{"list-source-hard-bounce-warning", "2.1%", true, m{"hard_bounce_rate_7d": 0.021, "sent_7d": 300}, "hard_bounce_rate_7d"},
	{"list-source-hard-bounce-warning", "2%", false, m{"hard_bounce_rate_7d": 0.02, "sent_7d": 300}, ""},
	{"account-negative-cooldown", "2 negative contacts", true, m{"negative_contacts_14d": 2}, "negative_contacts_14d"},
	{"account-negative-cooldown", "1 negative contact", false, m{"negative_contacts_14d": 1}, ""},
	{"account-complaint-suppress", "a complaint", true, m{"complaints_28d": 1}, "complaints_28d"},
	{"account-complaint-suppress", "no complaint", false, m{"complaints_28d": 0, "unsubscribes_28d": 3}, ""},
	{"recipient-complained", "complained", true, m{"complaints_28d": 1}, "complaints_28d"},
	{"recipient-complained", "did not", false, m{"opens_28d": 4}, ""},
	{"recipient-unsubscribed", "unsubscribed", true, m{"unsubscribes_28d": 1}, "unsubscribes_28d"},
	{"recipient-unsubscribed", "did not", false, m{"opens_28d": 4}, ""},
	{"recipient-hard-bounced", "bounced", true, m{"hard_bounces_28d": 1}, "hard_bounces_28d"},
	{"recipient-hard-bounced", "soft bounce only", false, m{"soft_bounces_28d": 1}, ""},
	{"recipient-negative-reply", "not interested", true, m{"negative_replies_28d": 1}, "negative_replies_28d"},
	{"recipient-negative-reply", "positive reply", false, m{"positive_replies_28d": 1}, ""},
}

func TestDefaultPackRules(t *testing.T) {
	rs := Default()
	for _, tc := range defaultCases {
		t.Run(tc.rule+"/"+tc.name, func(t *testing.T) {
			exp := fireRule(t, rs, "t1", tc.rule, tc.m)
			if (exp != nil) != tc.fire {
				t.Fatalf("fired = %v, want %v (metrics %v)", exp != nil, tc.fire, tc.m)
			}
			if exp == nil {
				return
			}
			if tc.metric != "" && exp.Metric != tc.metric {
				t.Errorf("explanation metric = %q, want %q", exp.Metric, tc.metric)
			}
			if exp.Comparator == "" || exp.Window == "" || exp.Condition == "" || exp.Source == "" || exp.Summary == "" {
				t.Errorf("incomplete explanation: %+v", exp)
			}
			if want := tc.m[exp.Metric]; exp.Observed != want {
				t.Errorf("observed = %v, want %v", exp.Observed, want)
			}
		})
	}
}

// Every rule of the default pack has a triggering case and a near miss.
func TestDefaultPackCoverage(t *testing.T) {
	fire, miss := map[string]bool{}, map[string]bool{}
	for _, tc := range defaultCases {
		if tc.fire {
			fire[tc.rule] = true
		} else {
			miss[tc.rule] = true
		}
	}
	for _, r := range Default().Rules {
		if !fire[r.ID] || !miss[r.ID] {
			t.Errorf("rule %s: trigger case %v, near-miss case %v", r.ID, fire[r.ID], miss[r.ID])
		}
	}
}

var seedFile = regexp.MustCompile(`^00[0-4]_[0-9a-f]{16}\.txt$`)

// Every rule cites a seed file and a sentence; when the seeds are present
// (the project's shared directory) every quote must occur in its seed.
func TestDefaultPackSources(t *testing.T) {
	_, diags, err := Parse(defaultYAML, "default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Errorf("default pack diagnostic: %s", d)
	}
	seedDir := os.Getenv("SENDGUARD_SEEDS")
	if seedDir == "" {
		seedDir = "/work/shared/seeds"
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), "") }
	texts := map[string]string{}
	for _, r := range Default().Rules {
		if len(r.Sources) == 0 {
			t.Errorf("rule %s has no source", r.ID)
		}
		for _, s := range r.Sources {
			if !seedFile.MatchString(s.Seed) || s.Quote == "" {
				t.Errorf("rule %s: source %q must name a seed file and quote it", r.ID, s)
				continue
			}
			text, ok := texts[s.Seed]
			if !ok {
				b, err := os.ReadFile(filepath.Join(seedDir, s.Seed))
				if err != nil {
					continue
				}
				text = norm(string(b))
				texts[s.Seed] = text
			}
			if !strings.Contains(text, norm(s.Quote)) {
				t.Errorf("rule %s: quote not found in %s: %q", r.ID, s.Seed, s.Quote)
			}
		}
	}
	for _, r := range Default().Rules {
		for _, n := range identRE.FindAllString(r.Condition, -1) {
			if strings.Contains(n, "_") && !metrics.Known(n) {
				t.Errorf("rule %s uses unknown metric %s", r.ID, n)
			}
		}
	}
}
