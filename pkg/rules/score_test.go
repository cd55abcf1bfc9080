package rules

import (
	"math"
	"testing"
)

func perfect() m {
	return m{
		"postmaster_reputation": 4, "auth_fail_latest": 0, "auth_failure_rate_7d": 0,
		"sent_7d": 1000, "bounce_rate_7d": 0.01, "delivered_7d": 990, "complaint_rate_7d": 0.0005,
		"open_rate_7d": 0.55, "reply_rate_7d": 0.03, "sent_avg_28d": 140, "sent_prev_24h": 150,
	}
}

func TestScore(t *testing.T) {
	cases := []struct {
		name   string
		edit   m
		total  float64
		comp   string
		points float64
	}{
		{"perfect", nil, 100, "complaints", 15},
		{"complaints at 0.2% lose half", m{"complaint_rate_7d": 0.002}, 92.5, "complaints", 7.5},
		{"complaints at 0.3% earn nothing", m{"complaint_rate_7d": 0.003}, 85, "complaints", 0},
		{"auth failure is a hard zero", m{"auth_fail_latest": 1}, 80, "technical_setup", 0},
		{"bounces 3.5% half", m{"bounce_rate_7d": 0.035}, 92.5, "bounces", 7.5},
		{"opens 40% half", m{"open_rate_7d": 0.40}, 95, "opens", 5},
		{"replies 1% half", m{"reply_rate_7d": 0.01}, 95, "replies", 5},
		{"volume at 200% of norm", m{"sent_prev_24h": 280}, 90, "volume_consistency", 0},
		{"medium reputation", m{"postmaster_reputation": 3}, 92, "reputation", 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mm := perfect()
			for k, v := range tc.edit {
				mm[k] = v
			}
			sc := Score(senderSnap(t0, mm))
			if math.Abs(sc.Total-tc.total) > 0.05 {
				t.Fatalf("total = %v, want %v (%v)", sc.Total, tc.total, sc.Components)
			}
			if got := sc.Components[tc.comp]; math.Abs(got-tc.points) > 1e-9 {
				t.Fatalf("%s = %v, want %v", tc.comp, got, tc.points)
			}
			if len(sc.Components) != len(Components) || len(sc.Missing) != 0 {
				t.Fatalf("components = %v, missing = %v", sc.Components, sc.Missing)
			}
		})
	}
}

func TestScoreMissingDataAndWeights(t *testing.T) {
	mm := perfect()
	delete(mm, "postmaster_reputation")
	mm["complaint_rate_7d"] = 0.003
	sc := Score(senderSnap(t0, mm))
	// Reputation unknown: 80 points possible, complaints lost 15 → 65/80.
	if len(sc.Missing) != 1 || sc.Missing[0] != "reputation" || math.Abs(sc.Total-81.3) > 0.05 {
		t.Fatalf("score = %+v", sc)
	}
	w := DefaultWeights()
	w["complaints"] = 60
	sc = w.Score(senderSnap(t0, mm))
	if math.Abs(sc.Total-(65.0/125*100)) > 0.05 {
		t.Fatalf("custom weights total = %v", sc.Total)
	}
	if sc := Score(senderSnap(t0, m{})); sc.Total != 0 || len(sc.Missing) != len(Components) {
		t.Fatalf("empty snapshot = %+v", sc)
	}
	// Weights from a rule set.
	rs, _, err := Parse([]byte("version: \"1\"\nscore:\n  weights: {complaints: 100}\nrules:\n"+okRule("a", 1, "sent_24h > 1.0")), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if sc := rs.Weights.Score(senderSnap(t0, perfect())); sc.Total != 100 || sc.Components["reputation"] != 0 {
		t.Fatalf("rule-set weights score = %+v", sc)
	}
}
