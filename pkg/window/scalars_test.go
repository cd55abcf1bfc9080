package window

import (
	"fmt"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestPostmasterScalars(t *testing.T) {
	a := newAgg(t0, time.Hour)
	mustApply(t, a, ev(typSent, t0))
	wantMetrics(t, a.Snapshot(domainKey), map[string]float64{"postmaster_age_hours": -1, "postmaster_reputation": 0, "postmaster_spam_rate": 0})
	day := 24 * time.Hour
	newer := ev(typPostmaster, t0.Add(-day), withPostmaster(0.004, sgv1.DomainReputation_DOMAIN_REPUTATION_LOW))
	older := ev(typPostmaster, t0.Add(-2*day), withPostmaster(0.001, sgv1.DomainReputation_DOMAIN_REPUTATION_HIGH))
	mustApply(t, a, newer, older) // arrives out of order: the newer by event time wins
	for _, k := range []ScopeKey{domainKey, {Tenant: "acme", Level: levelDomainPrv, Target: "ex.com|gmail"}} {
		s := a.Snapshot(k)
		wantMetrics(t, s, map[string]float64{
			"postmaster_spam_rate":           0.004,
			"postmaster_reputation":          2,
			"postmaster_delivery_error_rate": 0.002,
			"postmaster_age_hours":           24,
		})
		if s.GetPostmasterSpamRate() != 0.004 || s.GetPostmasterReputation() != "low" || !s.GetPostmasterAt().AsTime().Equal(t0.Add(-day)) {
			t.Errorf("%s: snapshot postmaster fields %v %q %v", k, s.GetPostmasterSpamRate(), s.GetPostmasterReputation(), s.GetPostmasterAt())
		}
	}
	if _, ok := a.Snapshot(tenantKey).GetMetrics()["postmaster_spam_rate"]; !ok || a.Snapshot(tenantKey).GetPostmasterAt() != nil {
		t.Error("postmaster stats leaked into the tenant scope")
	}
	// Postmaster events do not move the tenant watermark.
	if !a.Watermark("acme").Equal(t0) {
		t.Errorf("watermark %v", a.Watermark("acme"))
	}
	for _, tc := range []struct {
		rep  sgv1.DomainReputation
		want float64
	}{{1, 4}, {2, 3}, {3, 2}, {4, 1}, {0, 0}} {
		if got := reputationScore(tc.rep); got != tc.want {
			t.Errorf("reputationScore(%v) = %v", tc.rep, got)
		}
	}
}

func TestPlacementScalars(t *testing.T) {
	a := newAgg(t0, 24*time.Hour)
	spam := sgv1.PlacementFolder_PLACEMENT_FOLDER_SPAM
	inbox := sgv1.PlacementFolder_PLACEMENT_FOLDER_INBOX
	missing := sgv1.PlacementFolder_PLACEMENT_FOLDER_MISSING
	put := func(test string, at time.Time, p sgv1.Provider, f sgv1.PlacementFolder, n int) {
		for range n {
			mustApply(t, a, ev(typPlacement, at, withPlacement(test, p, f)))
		}
	}
	wantMetrics(t, func() *sgv1.WindowSnapshot {
		mustApply(t, a, ev(typSent, t0.Add(-5*time.Hour)))
		return a.Snapshot(tenantKey)
	}(),
		map[string]float64{"placement_spam_rate_max_provider": 0, "placement_tests_recent": 0})
	put("A", t0.Add(-3*time.Hour), gmail, inbox, 3)
	put("A", t0.Add(-3*time.Hour), gmail, spam, 1)
	put("A", t0.Add(-3*time.Hour), microsoft, missing, 2)
	put("B", t0.Add(-2*time.Hour), gmail, inbox, 2)
	// A and B: gmail 1/6, microsoft 2/2.
	wantMetrics(t, a.Snapshot(tenantKey), map[string]float64{"placement_spam_rate_max_provider": 1, "placement_tests_recent": 2})
	put("C", t0, gmail, spam, 1)
	put("C", t0, gmail, inbox, 1)
	// B and C: gmail 1/4; A dropped out.
	wantMetrics(t, a.Snapshot(tenantKey), map[string]float64{
		"placement_spam_rate_max_provider": 0.25, "placement_tests_recent": 2,
		"placement_tests_48h": 10, "placement_spam_48h": 4, "placement_spam_rate_48h": 0.4, "placement_tests_24h": 2,
	})
	// A late result of the old test A does not bring A back.
	put("A", t0.Add(-3*time.Hour), gmail, spam, 5)
	wantMetrics(t, a.Snapshot(tenantKey), map[string]float64{"placement_spam_rate_max_provider": 0.25})
}

func TestAuthFailLatest(t *testing.T) {
	a := newAgg(t0, 24*time.Hour)
	fail := withAuth(&sgv1.Auth{Spf: 2})
	pass := withAuth(&sgv1.Auth{Spf: 1, Dkim: 1, DmarcPolicy: 3, Aligned: true})
	steps := []struct {
		name string
		e    *sgv1.Event
		want float64
	}{
		{"fail", ev(typAuth, t0.Add(-2*time.Hour), fail), 1},
		{"newer pass", ev(typAuth, t0.Add(-time.Hour), pass), 0},
		{"older fail arrives late", ev(typAuth, t0.Add(-90*time.Minute), fail), 0},
		{"fail at the same time as the pass", ev(typAuth, t0.Add(-time.Hour), fail), 1},
		{"newest pass", ev(typAuth, t0, pass), 0},
	}
	for _, st := range steps {
		mustApply(t, a, st.e)
		if got := metric(t, a.Snapshot(tenantKey), "auth_fail_latest"); got != st.want {
			t.Fatalf("%s: auth_fail_latest = %v, want %v", st.name, got, st.want)
		}
	}
	wantMetrics(t, a.Snapshot(tenantKey), map[string]float64{"auth_failures_24h": 0, "auth_failures_prev_24h": 3, "auth_failure_rate_prev_24h": 0.75, "auth_failure_rate_48h": 0.6})
}

func TestProviderConcentration(t *testing.T) {
	a := newAgg(t0, 10*24*time.Hour)
	hard := withBounce(sgv1.BounceClass_BOUNCE_CLASS_HARD, 550)
	mustApply(t, a,
		ev(typComplained, t0), ev(typComplained, t0.Add(-24*time.Hour)), ev(typComplained, t0.Add(-6*24*time.Hour)),
		ev(typComplained, t0, withProvider(microsoft)),
		ev(typBounced, t0, withProvider(yahoo), hard),
		ev(typBounced, t0, withProvider(yahoo), withBounce(sgv1.BounceClass_BOUNCE_CLASS_SOFT, 0)), // soft: not negative
		ev(typComplained, t0.Add(-8*24*time.Hour), withProvider(microsoft)),                        // outside 7d
	)
	wantMetrics(t, a.Snapshot(tenantKey), map[string]float64{"provider_concentration_7d": 0.6})
	if p, share := a.TopProvider(tenantKey); p != "gmail" || !near(share, 0.6) {
		t.Fatalf("TopProvider = %s %v", p, share)
	}
	b := newAgg(t0, 0)
	mustApply(t, b, ev(typSent, t0))
	wantMetrics(t, b.Snapshot(tenantKey), map[string]float64{"provider_concentration_7d": 0})
	if p, _ := b.TopProvider(tenantKey); p != "" {
		t.Fatalf("TopProvider without negatives = %s", p)
	}
}

func TestActiveDaysAndNegativeContacts(t *testing.T) {
	day := 24 * time.Hour
	a := newAgg(t0, 30*day)
	acct := func(e *sgv1.Event) { e.Account = "bigco.com" }
	mustApply(t, a,
		ev(typSent, t0.Add(-20*day-time.Hour), acct),
		ev(typComplained, t0.Add(-15*day), acct), // outside 14d
		ev(typComplained, t0.Add(-13*day), acct),
		ev(typUnsub, t0.Add(-2*day), acct),
		ev(typReplied, t0.Add(-time.Hour), acct, withReply(sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT)),
		ev(typReplied, t0.Add(-time.Hour), acct, withReply(sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED)),
		ev(typSent, t0, acct),
	)
	k := ScopeKey{Tenant: "acme", Level: sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, Target: "bigco.com"}
	wantMetrics(t, a.Snapshot(k), map[string]float64{"active_days": 20, "negative_contacts_14d": 3})
	b := newAgg(t0, 0)
	mustApply(t, b, ev(typSent, t0))
	wantMetrics(t, b.Snapshot(tenantKey), map[string]float64{"active_days": 0})
}

// TestUrgentScopes: scopes changed by a complaint are urgent, through
// Apply and ApplyLevels alike, whichever events changed them before or
// after it until they are taken; a delivery's are only dirty; a replayed
// record changes nothing.
func TestUrgentScopes(t *testing.T) {
	a := New(Config{Now: func() time.Time { return t0 }})
	d := ev(typDelivered, t0, withID("d1"))
	if _, err := a.Apply(d); err != nil {
		t.Fatal(err)
	}
	if changed, urgent := takeChanged(a); len(changed) == 0 || len(urgent) != 0 {
		t.Fatalf("a delivery: changed %v, urgent %v", changed, urgent)
	}
	keys, err := a.Apply(ev(typComplained, t0, withID("c1")))
	if err != nil {
		t.Fatal(err)
	}
	if _, urgent := takeChanged(a); len(keys) == 0 || fmt.Sprint(urgent) != fmt.Sprint(sortedKeys(keys)) {
		t.Fatalf("urgent after a complaint = %v, want %v", urgent, keys)
	}
	if changed, urgent := takeChanged(a); len(changed) != 0 || len(urgent) != 0 {
		t.Fatalf("taken twice: changed %v, urgent %v", changed, urgent)
	}
	// A delivery before or after the complaint leaves its scopes urgent.
	for _, ids := range [][2]string{{"d2", "c2"}, {"c3", "d3"}} {
		for _, id := range ids {
			typ := typDelivered
			if id[0] == 'c' {
				typ = typComplained
			}
			if _, err := a.Apply(ev(typ, t0, withID(id))); err != nil {
				t.Fatal(err)
			}
		}
		if changed, urgent := takeChanged(a); len(changed) == 0 || fmt.Sprint(urgent) != fmt.Sprint(changed) {
			t.Fatalf("%v: changed %v, urgent %v", ids, changed, urgent)
		}
	}

	b := New(Config{Now: func() time.Time { return t0 }})
	c := ev(typComplained, t0, withID("c1"))
	levels := []sgv1.ScopeLevel{sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN}
	got, err := b.ApplyLevels(c, levels, 0, 7, nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("ApplyLevels: %v %v", got, err)
	}
	if _, urgent := takeChanged(b); fmt.Sprint(urgent) != fmt.Sprint(sortedKeys(got)) {
		t.Fatalf("urgent after ApplyLevels = %v, want %v", urgent, got)
	}
	if _, err := b.ApplyLevels(c, levels, 0, 7, nil); err != nil {
		t.Fatal(err)
	}
	if changed, urgent := takeChanged(b); len(changed) != 0 || len(urgent) != 0 {
		t.Fatalf("a replayed complaint: changed %v, urgent %v", changed, urgent)
	}
}

// takeChanged returns TakeChanged's scopes, and the urgent ones, sorted.
func takeChanged(a *Aggregator) (changed, urgent []ScopeKey) {
	a.TakeChanged(func(k ScopeKey, u bool) {
		changed = append(changed, k)
		if u {
			urgent = append(urgent, k)
		}
	})
	sortKeys(changed)
	sortKeys(urgent)
	return changed, urgent
}

func sortedKeys(ks []ScopeKey) []ScopeKey {
	out := append([]ScopeKey(nil), ks...)
	sortKeys(out)
	return out
}
