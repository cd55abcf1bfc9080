package window

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/metrics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestScopes(t *testing.T) {
	full := func(e *sgv1.Event) {
		e.Variant = "B"
		e.Account = "bigco.com"
		e.Segment = "smb"
		e.ListSource = "apollo"
	}
	keys := func(ss []*sgv1.Scope) []string {
		var out []string
		for _, s := range ss {
			out = append(out, LevelWord(s.GetLevel())+"="+s.GetTarget())
		}
		return out
	}
	tests := []struct {
		name string
		ev   *sgv1.Event
		want []string
	}{
		{"all levels", ev(typSent, t0, full), []string{"tenant=acme", "domain=ex.com", "sender=ann@ex.com", "campaign=c1", "variant=c1/B", "provider=gmail", "domain_provider=ex.com|gmail", "account=bigco.com", "segment=smb", "list_source=apollo"}},
		{"empty levels skipped", ev(typSent, t0, func(e *sgv1.Event) { e.Campaign = ""; e.Provider = 0 }), []string{"tenant=acme", "domain=ex.com", "sender=ann@ex.com"}},
		{"domain derived from sender", ev(typSent, t0, func(e *sgv1.Event) { e.SendingDomain = ""; e.Sender = "bob@Other.org"; e.Campaign = "" }), []string{"tenant=acme", "domain=other.org", "sender=bob@Other.org", "provider=gmail", "domain_provider=other.org|gmail"}},
		{"variant without campaign", ev(typSent, t0, func(e *sgv1.Event) { e.Campaign = ""; e.Variant = "A"; e.Provider = 0 }), []string{"tenant=acme", "domain=ex.com", "sender=ann@ex.com", "variant=/A"}},
		{"postmaster on domain and domain|gmail", ev(typPostmaster, t0, full, withProvider(microsoft)), []string{"domain=ex.com", "domain_provider=ex.com|gmail"}},
		{"placement falls back to seed provider", ev(typPlacement, t0, withProvider(0), withPlacement("t1", yahoo, sgv1.PlacementFolder_PLACEMENT_FOLDER_INBOX)), []string{"tenant=acme", "domain=ex.com", "sender=ann@ex.com", "campaign=c1", "provider=yahoo", "domain_provider=ex.com|yahoo"}},
		{"no tenant", ev(typSent, t0, func(e *sgv1.Event) { e.Tenant = "" }), nil},
		{"nil", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := keys(Scopes(tc.ev))
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestScopeKeyString(t *testing.T) {
	for _, k := range []ScopeKey{
		{Tenant: "acme", Level: levelDomainPrv, Target: "ex.com|gmail"},
		{Tenant: "a/b c", Level: sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, Target: "camp/v%1"},
	} {
		got, err := ParseScopeKey(k.String())
		if err != nil || got != k {
			t.Fatalf("ParseScopeKey(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	for _, bad := range []string{"", "a/b", "a/nolevel/x", "a/unspecified/x", "%zz/domain/x"} {
		if _, err := ParseScopeKey(bad); err == nil {
			t.Errorf("ParseScopeKey(%q) succeeded", bad)
		}
	}
}

// TestCatalogueTables checks the internal tables against pkg/metrics.
func TestCatalogueTables(t *testing.T) {
	var counts []string
	for _, n := range counterNames {
		if n != "" {
			counts = append(counts, n)
		}
	}
	var catCounts []string
	for n := range metrics.Counts {
		catCounts = append(catCounts, n)
	}
	sort.Strings(counts)
	sort.Strings(catCounts)
	if strings.Join(counts, ",") != strings.Join(catCounts, ",") {
		t.Errorf("counters %v\ncatalogue %v", counts, catCounts)
	}
	var wins []string
	for _, w := range windowSpecs {
		wins = append(wins, w.name)
	}
	if strings.Join(wins, ",") != strings.Join(metrics.Windows, ",") {
		t.Errorf("windows %v, catalogue %v", wins, metrics.Windows)
	}
	rates := map[string]bool{}
	var wilson []string
	for _, r := range rateDefs {
		rates[r.name] = true
		if _, ok := metrics.Rates[r.name]; !ok {
			t.Errorf("rate %s not in catalogue", r.name)
		}
		if r.wilson {
			wilson = append(wilson, r.name)
		}
	}
	for n := range metrics.Rates {
		if !rates[n] {
			t.Errorf("catalogue rate %s not computed", n)
		}
	}
	cw := append([]string(nil), metrics.WilsonRates...)
	sort.Strings(cw)
	sort.Strings(wilson)
	if strings.Join(cw, ",") != strings.Join(wilson, ",") {
		t.Errorf("wilson %v, catalogue %v", wilson, cw)
	}
}

// TestSnapshotNamesExactlyCatalogue: every catalogue name is present in a
// snapshot and nothing else, for an empty-ish and a busy scope.
func TestSnapshotNamesExactlyCatalogue(t *testing.T) {
	a := newAgg(t0, 0)
	mustApply(t, a, ev(typSent, t0))
	check := func(s *sgv1.WindowSnapshot) {
		t.Helper()
		want := metrics.Names()
		var got []string
		for n := range s.GetMetrics() {
			got = append(got, n)
		}
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			gs := map[string]bool{}
			for _, n := range got {
				gs[n] = true
			}
			for _, n := range want {
				if !gs[n] {
					t.Errorf("missing %s", n)
				}
				delete(gs, n)
			}
			for n := range gs {
				t.Errorf("extra %s", n)
			}
		}
	}
	check(a.Snapshot(tenantKey))
	mustApply(t, a, ev(typPostmaster, t0, withPostmaster(0.002, sgv1.DomainReputation_DOMAIN_REPUTATION_HIGH)),
		ev(typComplained, t0), ev(typPlacement, t0, withPlacement("x", gmail, 3)), ev(typAuth, t0, withAuth(&sgv1.Auth{})))
	check(a.Snapshot(domainKey))
	if got := len(a.Snapshot(domainKey).GetWindows()); got != 6 {
		t.Errorf("%d WindowCounts, want 6", got)
	}
}

// TestWindows puts one sent event at an offset before as_of and checks which
// windows count it. as_of is t0 = 00:30 UTC, so "today" began 30 min ago.
func TestWindows(t *testing.T) {
	day := 24 * time.Hour
	midnight := t0.Truncate(day)
	all := []string{"1h", "24h", "48h", "3d", "7d", "28d", "prev_24h", "prev_7d"}
	tests := []struct {
		name string
		at   time.Time
		in   []string
	}{
		{"at as_of", t0, []string{"1h", "24h", "48h", "3d", "7d", "28d"}},
		{"midnight today", midnight, []string{"1h", "24h", "48h", "3d", "7d", "28d"}},
		{"last ns of yesterday", midnight.Add(-1), []string{"1h", "prev_24h", "48h", "3d", "7d", "28d"}},
		{"59 min ago", t0.Add(-59 * time.Minute), []string{"1h", "prev_24h", "48h", "3d", "7d", "28d"}},
		{"60 min ago", t0.Add(-60 * time.Minute), []string{"prev_24h", "48h", "3d", "7d", "28d"}},
		{"start of yesterday", midnight.Add(-day), []string{"prev_24h", "48h", "3d", "7d", "28d"}},
		{"47h ago", t0.Add(-47 * time.Hour), []string{"48h", "3d", "7d", "28d"}},
		{"48h ago", t0.Add(-48 * time.Hour), []string{"3d", "7d", "28d"}},
		{"71h ago", t0.Add(-71 * time.Hour), []string{"3d", "7d", "28d"}},
		{"72h ago", t0.Add(-72 * time.Hour), []string{"7d", "28d"}},
		{"day -6", midnight.Add(-6 * day), []string{"7d", "28d"}},
		{"day -7", midnight.Add(-7*day + time.Hour), []string{"28d", "prev_7d"}},
		{"day -13", midnight.Add(-13 * day), []string{"28d", "prev_7d"}},
		{"day -14", midnight.Add(-14 * day), []string{"28d"}},
		{"day -27", midnight.Add(-27 * day), []string{"28d"}},
		{"day -28", midnight.Add(-28 * day), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgg(t0, 40*day)
			mustApply(t, a, ev(typDelivered, t0), ev(typSent, tc.at))
			s := a.Snapshot(tenantKey)
			if !s.GetAsOf().AsTime().Equal(t0) {
				t.Fatalf("as_of %v, want %v", s.GetAsOf().AsTime(), t0)
			}
			in := map[string]bool{}
			for _, w := range tc.in {
				in[w] = true
			}
			for _, w := range all {
				want := 0.0
				if in[w] {
					want = 1
				}
				if got := metric(t, s, "sent_"+w); got != want {
					t.Errorf("sent_%s = %v, want %v", w, got, want)
				}
				if wc := windowOf(s, w); wc != nil && float64(wc.GetSent()) != want {
					t.Errorf("windows[%s].sent = %d, want %v", w, wc.GetSent(), want)
				}
			}
		})
	}
}

func TestWindowBounds(t *testing.T) {
	a := newAgg(t0, 0)
	at := t0.Add(17*time.Second + 5*time.Millisecond)
	mustApply(t, a, ev(typSent, at))
	s := a.Snapshot(tenantKey)
	midnight := t0.Truncate(24 * time.Hour)
	want := map[string]time.Time{
		"1h":  t0.Add(-59 * time.Minute),
		"24h": midnight,
		"48h": t0.Truncate(time.Hour).Add(-47 * time.Hour),
		"3d":  t0.Truncate(time.Hour).Add(-71 * time.Hour),
		"7d":  midnight.Add(-6 * 24 * time.Hour),
		"28d": midnight.Add(-27 * 24 * time.Hour),
	}
	for w, start := range want {
		wc := windowOf(s, w)
		if wc == nil {
			t.Fatalf("window %s missing", w)
		}
		if !wc.GetStart().AsTime().Equal(start) || !wc.GetEnd().AsTime().Equal(at) {
			t.Errorf("%s = [%v, %v], want [%v, %v]", w, wc.GetStart().AsTime(), wc.GetEnd().AsTime(), start, at)
		}
	}
}

func TestRatesAndBreakdowns(t *testing.T) {
	a := newAgg(t0, 0)
	at := t0.Add(-10 * time.Minute)
	n := func(k int, typ sgv1.EventType, opts ...func(*sgv1.Event)) {
		for range k {
			mustApply(t, a, ev(typ, at, opts...))
		}
	}
	n(1000, typSent)
	n(900, typDelivered)
	n(50, typDeferred)
	n(10, typBounced, withBounce(sgv1.BounceClass_BOUNCE_CLASS_HARD, 550))
	n(20, typBounced, withBounce(sgv1.BounceClass_BOUNCE_CLASS_SOFT, 0))
	n(5, typRejected)
	n(3, typComplained)
	n(1, typComplained, func(e *sgv1.Event) {
		e.Complaint = &sgv1.Complaint{FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM}
	})
	n(9, typUnsub)
	n(300, typOpened)
	n(30, typClicked)
	n(4, typReplied, withReply(sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED))
	n(1, typReplied, withReply(sgv1.ReplyCategory_REPLY_CATEGORY_REFERRAL))
	n(2, typReplied, withReply(sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT))
	n(1, typReplied, withReply(sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE))
	n(3, typReplied, withReply(sgv1.ReplyCategory_REPLY_CATEGORY_OOO))
	n(1, typReplied)
	n(6, typPlacement, withPlacement("p1", gmail, sgv1.PlacementFolder_PLACEMENT_FOLDER_INBOX))
	n(1, typPlacement, withPlacement("p1", gmail, sgv1.PlacementFolder_PLACEMENT_FOLDER_PROMOTIONS))
	n(2, typPlacement, withPlacement("p1", microsoft, sgv1.PlacementFolder_PLACEMENT_FOLDER_SPAM))
	n(1, typPlacement, withPlacement("p1", microsoft, sgv1.PlacementFolder_PLACEMENT_FOLDER_MISSING))
	n(3, typAuth, withAuth(&sgv1.Auth{Spf: 1, Dkim: 1, DmarcPolicy: 3, Aligned: true}))
	n(1, typAuth, withAuth(&sgv1.Auth{Spf: 1, Dkim: 2, DmarcPolicy: 3, Aligned: true}))
	if st := a.Stats(); st.Ignored != 1 {
		t.Errorf("stats %+v: want the not-spam report ignored", st)
	}
	s := a.Snapshot(tenantKey)
	for _, w := range []string{"1h", "24h", "48h", "3d", "7d", "28d"} {
		wantMetrics(t, s, map[string]float64{
			"complaint_rate_" + w:       3.0 / 900,
			"complaints_per_1000_" + w:  1000 * 3.0 / 900,
			"hard_bounce_rate_" + w:     10.0 / 1000,
			"soft_bounce_rate_" + w:     20.0 / 1000,
			"bounce_rate_" + w:          30.0 / 1000,
			"error_rate_" + w:           35.0 / 1000,
			"deferral_rate_" + w:        50.0 / 1000,
			"unsubscribe_rate_" + w:     9.0 / 900,
			"open_rate_" + w:            300.0 / 900,
			"click_rate_" + w:           30.0 / 900,
			"ctor_" + w:                 0.1,
			"reply_rate_" + w:           12.0 / 900,
			"positive_reply_rate_" + w:  5.0 / 900,
			"negative_reply_rate_" + w:  3.0 / 900,
			"placement_spam_rate_" + w:  0.3,
			"placement_inbox_rate_" + w: 0.6,
			"auth_failure_rate_" + w:    0.25,
			"delivery_rate_" + w:        0.9,
			"delivery_errors_" + w:      35,
			"rejected_" + w:             5,
			"ooo_replies_" + w:          3,
			"placement_tests_" + w:      10,
			"placement_spam_" + w:       3,
			"placement_inbox_" + w:      6,
			"auth_failures_" + w:        1,
		})
	}
	wantMetrics(t, s, map[string]float64{"complaint_rate_prev_24h": 0, "ctor_prev_7d": 0, "complaint_rate_wilson_prev_24h": 0})
	wc := windowOf(s, "24h")
	wantCats := map[string]int64{"interested": 4, "referral": 1, "not_a_fit": 2, "hostile": 1, "ooo": 3, "unspecified": 1}
	wantPl := map[string]int64{"gmail|inbox": 6, "gmail|promotions": 1, "microsoft|spam": 2, "microsoft|missing": 1}
	if !mapsEqual(wc.GetRepliesByCategory(), wantCats) || !mapsEqual(wc.GetPlacement(), wantPl) {
		t.Errorf("breakdowns %v %v", wc.GetRepliesByCategory(), wc.GetPlacement())
	}
	if wc.GetNegativeReplies() != 3 || wc.GetHardBounces() != 10 || wc.GetDeliveryErrors() != 35 {
		t.Errorf("window counts %v", wc)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestBounceClass(t *testing.T) {
	tests := []struct {
		name string
		b    *sgv1.Bounce
		hard bool
	}{
		{"hard", &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD}, true},
		{"soft despite 5xx", &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_SOFT, SmtpCode: 552}, false},
		{"unspecified 550", &sgv1.Bounce{SmtpCode: 550}, true},
		{"unspecified 421", &sgv1.Bounce{SmtpCode: 421}, false},
		{"unspecified 5.1.1", &sgv1.Bounce{EnhancedCode: "5.1.1"}, true},
		{"unspecified 4.2.2", &sgv1.Bounce{EnhancedCode: "4.2.2"}, false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isHardBounce(tc.b); got != tc.hard {
				t.Fatalf("isHardBounce = %v", got)
			}
		})
	}
}

func TestAuthFailed(t *testing.T) {
	pass := func() *sgv1.Auth { return &sgv1.Auth{Spf: 1, Dkim: 1, DmarcPolicy: 3, Aligned: true} }
	tests := []struct {
		name string
		mod  func(*sgv1.Auth)
		fail bool
	}{
		{"all pass", func(*sgv1.Auth) {}, false},
		{"spf none still passes", func(a *sgv1.Auth) { a.Spf = 3 }, false},
		{"dmarc p=none passes", func(a *sgv1.Auth) { a.DmarcPolicy = 1 }, false},
		{"spf fail", func(a *sgv1.Auth) { a.Spf = 2 }, true},
		{"dkim fail", func(a *sgv1.Auth) { a.Dkim = 2 }, true},
		{"dmarc missing", func(a *sgv1.Auth) { a.DmarcPolicy = 4 }, true},
		{"not aligned", func(a *sgv1.Auth) { a.Aligned = false }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			au := pass()
			tc.mod(au)
			if got := authFailed(au); got != tc.fail {
				t.Fatalf("authFailed = %v", got)
			}
		})
	}
}

// TestBaselinesAndChanges checks prev windows, daily averages and the
// day-over-day and week-over-week changes of counts and rates.
func TestBaselinesAndChanges(t *testing.T) {
	day := 24 * time.Hour
	midnight := t0.Truncate(day)
	a := newAgg(t0, 40*day)
	sentPerDay := map[int]int{0: 30, 1: 20, 7: 5, 28: 100}
	for d := 2; d <= 6; d++ {
		sentPerDay[d] = 10
	}
	for d := 8; d <= 13; d++ {
		sentPerDay[d] = 5
	}
	for d := 14; d <= 27; d++ {
		sentPerDay[d] = 1
	}
	for d, k := range sentPerDay {
		at := midnight.Add(-time.Duration(d)*day + time.Minute)
		for range k {
			mustApply(t, a, ev(typSent, at))
		}
	}
	// complaint rate: today 2/100, yesterday 1/100; 7d 4/400, prev_7d 1/400.
	put := func(d, delivered, complaints int) {
		at := midnight.Add(-time.Duration(d)*day + 2*time.Minute)
		for range delivered {
			mustApply(t, a, ev(typDelivered, at))
		}
		for range complaints {
			mustApply(t, a, ev(typComplained, at))
		}
	}
	put(0, 100, 2)
	put(1, 100, 1)
	put(3, 200, 1)
	put(9, 400, 1)
	mustApply(t, a, ev(typSent, t0)) // as_of = t0
	s := a.Snapshot(tenantKey)
	sent7 := 31.0 + 20 + 50
	prev7 := 35.0
	wantMetrics(t, s, map[string]float64{
		"sent_24h":                    31,
		"sent_prev_24h":               20,
		"sent_dod_change":             (31.0 - 20) / 20,
		"sent_7d":                     sent7,
		"sent_prev_7d":                prev7,
		"sent_wow_change":             (sent7 - prev7) / prev7,
		"sent_avg_7d":                 (20.0 + 50 + 5) / 7,
		"sent_avg_28d":                (20.0 + 50 + 35 + 14 + 100) / 28,
		"sent_28d":                    31 + 20 + 50 + 35 + 14,
		"complaint_rate_24h":          0.02,
		"complaint_rate_prev_24h":     0.01,
		"complaint_rate_dod_change":   1,
		"complaint_rate_7d":           4.0 / 400,
		"complaint_rate_prev_7d":      1.0 / 400,
		"complaint_rate_wow_change":   3,
		"complaints_avg_7d":           2.0 / 7,
		"delivered_dod_change":        0,
		"hard_bounces_dod_change":     0, // 0 when yesterday is 0
		"hard_bounce_rate_wow_change": 0,
	})
}

// TestWilson checks the lower bound against reference values: the lower
// root of the score equation (p̂−p)² = z²·p(1−p)/n, solved independently by
// bisection (Python, 200 steps); they agree with the usual published
// figures, e.g. 1/10 → 0.0179, 5/10 → 0.2366, 10/10 → 0.7225.
func TestWilson(t *testing.T) {
	tests := []struct {
		k, n, want float64
	}{
		{0, 0, 0},
		{0, 10, 0},
		{1, 10, 0.017876213},
		{5, 10, 0.236593091},
		{10, 10, 0.722467200},
		{3, 1000, 0.001020784},
		{15, 10, 0.722467200}, // k clamped to n
	}
	for _, tc := range tests {
		if got := WilsonLower(tc.k, tc.n); !nearTol(got, tc.want, 1e-9) {
			t.Errorf("WilsonLower(%v, %v) = %.9f, want %.9f", tc.k, tc.n, got, tc.want)
		}
	}
	a := newAgg(t0, 0)
	for range 10 {
		mustApply(t, a, ev(typDelivered, t0))
	}
	mustApply(t, a, ev(typComplained, t0))
	wantMetrics(t, a.Snapshot(tenantKey), map[string]float64{
		"complaint_rate_wilson_1h":  WilsonLower(1, 10),
		"complaint_rate_wilson_24h": WilsonLower(1, 10),
		"complaint_rate_24h":        0.1,
	})
}

func nearTol(a, b, tol float64) bool { d := a - b; return d <= tol && d >= -tol }

func TestLateness(t *testing.T) {
	a := newAgg(t0, 2*time.Hour)
	mustApply(t, a, ev(typSent, t0))
	mustApply(t, a, ev(typSent, t0.Add(-30*time.Minute))) // within: 1h
	mustApply(t, a, ev(typSent, t0.Add(-90*time.Minute))) // within: yesterday, 48h
	late := ev(typSent, t0.Add(-2*time.Hour-time.Second))
	_, err := a.Apply(late)
	var le *LateEventError
	if !errors.Is(err, ErrLateEvent) || !errors.As(err, &le) || !le.Watermark.Equal(t0) {
		t.Fatalf("late event: err = %v", err)
	}
	// Postmaster stats only replace a latest value: exempt.
	mustApply(t, a, ev(typPostmaster, t0.Add(-48*time.Hour), withPostmaster(0.001, 1)))
	// Too far in the future of the clock.
	if _, err := a.Apply(ev(typSent, t0.Add(2*time.Hour))); !errors.Is(err, ErrFutureEvent) {
		t.Fatalf("future event: err = %v", err)
	}
	st := a.Stats()
	if st.Late != 1 || st.Future != 1 || st.Applied != 4 {
		t.Fatalf("stats %+v", st)
	}
	wantMetrics(t, a.Snapshot(tenantKey), map[string]float64{"sent_1h": 2, "sent_24h": 2, "sent_prev_24h": 1, "sent_48h": 3})
	// The watermark moves with newer events; the window slides.
	mustApply(t, a, ev(typSent, t0.Add(50*time.Minute)))
	wantMetrics(t, a.Snapshot(tenantKey), map[string]float64{"sent_1h": 2, "sent_24h": 3, "sent_48h": 4})
	if !a.Watermark("acme").Equal(t0.Add(50 * time.Minute)) {
		t.Fatalf("watermark %v", a.Watermark("acme"))
	}
	// Negative lateness: nothing older than the watermark.
	b := New(Config{Lateness: -1, Now: func() time.Time { return t0 }})
	mustApply(t, b, ev(typSent, t0))
	if _, err := b.Apply(ev(typSent, t0.Add(-time.Nanosecond))); !errors.Is(err, ErrLateEvent) {
		t.Fatalf("zero lateness: err = %v", err)
	}
}

func TestInvalidEvents(t *testing.T) {
	tests := []struct {
		name  string
		ev    *sgv1.Event
		field string
	}{
		{"nil", nil, "event"},
		{"no tenant", ev(typSent, t0, func(e *sgv1.Event) { e.Tenant = "" }), "tenant"},
		{"no id", ev(typSent, t0, withID("")), "event_id"},
		{"no time", ev(typSent, t0, func(e *sgv1.Event) { e.OccurredAt = nil }), "occurred_at"},
		{"before 1970", ev(typSent, time.Unix(-5, 0)), "occurred_at"},
		{"unspecified type", ev(0, t0), "type"},
		{"unknown type", ev(99, t0), "type"},
		{"placement without placement", ev(typPlacement, t0), "placement"},
		{"auth without auth", ev(typAuth, t0), "auth"},
		{"postmaster without stats", ev(typPostmaster, t0), "postmaster"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgg(t0, 0)
			_, err := a.Apply(tc.ev)
			var ie *InvalidEventError
			if !errors.Is(err, ErrInvalidEvent) || !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("err = %v, want invalid %s", err, tc.field)
			}
			if a.Stats().Invalid != 1 || a.Len() != 0 {
				t.Fatalf("stats %+v, %d scopes", a.Stats(), a.Len())
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	a := newAgg(t0, time.Hour)
	e := ev(typComplained, t0)
	changed, err := a.Apply(e)
	if err != nil || len(changed) != 6 {
		t.Fatalf("first apply: %v %v", changed, err)
	}
	dup := proto.Clone(e).(*sgv1.Event)
	dup.OccurredAt = ev(typSent, t0.Add(-time.Minute)).OccurredAt // same id, other time: still a duplicate
	for _, d := range []*sgv1.Event{e, dup} {
		changed, err = a.Apply(d)
		if err != nil || len(changed) != 0 {
			t.Fatalf("duplicate: %v %v", changed, err)
		}
	}
	// Same id in another tenant is not a duplicate.
	mustApply(t, a, ev(typComplained, t0, withID(e.GetEventId()), func(x *sgv1.Event) { x.Tenant = "other" }))
	s := a.Snapshot(tenantKey)
	if metric(t, s, "complaints_24h") != 1 || s.GetVersion() != 1 || a.Stats().Duplicates != 2 {
		t.Fatalf("complaints %v version %d stats %+v", metric(t, s, "complaints_24h"), s.GetVersion(), a.Stats())
	}
}

// TestRestartAndReplay: checkpoint every scope and the deduper, restore into
// a fresh aggregator, replay the whole stream: nothing counts twice.
func TestRestartAndReplay(t *testing.T) {
	var evs []*sgv1.Event
	for i := range 50 {
		evs = append(evs, ev(sgv1.EventType(1+i%8), t0.Add(time.Duration(i)*time.Minute)))
	}
	a := newAgg(t0.Add(time.Hour), 2*time.Hour)
	mustApply(t, a, evs[:30]...)
	// Checkpoint.
	var blobs [][]byte
	for _, k := range a.All() {
		b, err := a.MarshalScope(k)
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	dd, err := a.Deduper().(*MemDeduper).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, a, evs[30:]...)
	// Restart.
	d2 := NewMemDeduper(3 * time.Hour)
	if err := d2.UnmarshalBinary(dd); err != nil {
		t.Fatal(err)
	}
	b := New(Config{Lateness: 2 * time.Hour, Now: func() time.Time { return t0.Add(time.Hour) }, Deduper: d2})
	for _, blob := range blobs {
		if err := b.RestoreScope(blob); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.Dirty()) != 0 {
		t.Fatal("restore marked scopes dirty")
	}
	// Replay from the beginning (the consumer restarts before the checkpoint).
	for _, e := range evs {
		if _, err := b.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if b.Stats().Duplicates != 30 {
		t.Fatalf("stats %+v, want 30 duplicates", b.Stats())
	}
	for _, k := range a.All() {
		if !proto.Equal(a.Snapshot(k), b.Snapshot(k)) {
			t.Fatalf("scope %s differs after restart and replay", k)
		}
	}
}

func TestExpire(t *testing.T) {
	a := newAgg(t0, 40*24*time.Hour)
	old := ev(typSent, t0.Add(-DefaultIdleExpiry-time.Second), func(e *sgv1.Event) { e.Sender = "old@ex.com" })
	mustApply(t, a, old, ev(typSent, t0.Add(-DefaultIdleExpiry+time.Second), func(e *sgv1.Event) { e.Sender = "new@ex.com" }))
	a.Dirty()
	mustApply(t, a, old) // duplicate: does not refresh
	got := a.Expire(t0)
	if len(got) != 1 || got[0].Target != "old@ex.com" {
		t.Fatalf("expired %v", got)
	}
	if a.Snapshot(got[0]) != nil || a.Len() != 6 {
		t.Fatalf("after expiry: %d scopes", a.Len())
	}
	if got := a.Expire(t0.Add(2 * time.Second)); len(got) != 6 {
		t.Fatalf("second expiry dropped %v", got)
	}
	b := New(Config{IdleExpiry: time.Hour, Now: func() time.Time { return t0 }})
	mustApply(t, b, ev(typSent, t0))
	if len(b.Expire(t0.Add(time.Hour))) != 0 || len(b.Expire(t0.Add(time.Hour+1))) != 6 {
		t.Fatal("custom IdleExpiry not honoured")
	}
}

func TestDirtyCoalescesAndAll(t *testing.T) {
	a := newAgg(t0, 0)
	for range 5 {
		mustApply(t, a, ev(typSent, t0))
	}
	mustApply(t, a, ev(typSent, t0, func(e *sgv1.Event) { e.Campaign = "c2" }))
	d := a.Dirty()
	if len(d) != 7 { // tenant, domain, sender, c1, c2, gmail, ex.com|gmail
		t.Fatalf("dirty %v", d)
	}
	if len(a.Dirty()) != 0 {
		t.Fatal("Dirty did not drain")
	}
	if len(a.All()) != len(d) {
		t.Fatalf("All %v", a.All())
	}
	mustApply(t, a, ev(typSent, t0, func(e *sgv1.Event) { e.Campaign = "c2" }))
	if d := a.Dirty(); len(d) != 6 {
		t.Fatalf("dirty after one event %v", d)
	}
	if v := a.Snapshot(tenantKey).GetVersion(); v != 7 {
		t.Fatalf("version %d", v)
	}
}

func TestSnapshotAtSlidesIdleScope(t *testing.T) {
	a := newAgg(t0, 0)
	mustApply(t, a, ev(typComplained, t0))
	s := a.SnapshotAt(tenantKey, t0.Add(25*time.Hour))
	if !s.GetAsOf().AsTime().Equal(t0.Add(25*time.Hour)) || metric(t, s, "complaints_24h") != 0 ||
		metric(t, s, "complaints_prev_24h") != 1 || metric(t, s, "complaints_1h") != 0 {
		t.Fatalf("slid snapshot %v", s.GetMetrics()["complaints_prev_24h"])
	}
	if s := a.SnapshotAt(tenantKey, t0.Add(-time.Hour)); !s.GetAsOf().AsTime().Equal(t0) {
		t.Fatal("SnapshotAt moved as_of backwards")
	}
	if a.Snapshot(ScopeKey{Tenant: "x"}) != nil {
		t.Fatal("unknown scope")
	}
}
