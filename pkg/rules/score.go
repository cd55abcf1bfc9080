package rules

import (
	"math"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Components are the health score components of seed 004 ("Health Score
// calculation logic"), in table order.
var Components = []string{"reputation", "technical_setup", "bounces", "complaints", "opens", "replies", "volume_consistency"}

// Weights are points per component; they need not sum to 100 (the total is
// scaled to 0–100).
type Weights map[string]float64

// DefaultWeights are seed 004's weights: reputation 20, technical setup 20,
// bounces 15, complaints 15, opens 10, replies 10, volume consistency 10.
func DefaultWeights() Weights {
	return Weights{"reputation": 20, "technical_setup": 20, "bounces": 15, "complaints": 15, "opens": 10, "replies": 10, "volume_consistency": 10}
}

// ScoreCard is a 0–100 health score with the points each component earned
// (0..its weight). Components without data (no sends, no Postmaster data)
// are listed in Missing, earn nothing and are left out of the scaling, so
// that a score never rewards or punishes an absence of evidence.
type ScoreCard struct {
	Total      float64
	Components map[string]float64
	Missing    []string
}

// Score computes the health score of a snapshot with the default weights.
func Score(snap *sgv1.WindowSnapshot) ScoreCard { return DefaultWeights().Score(snap) }

// Score computes the health score of a snapshot. Component formulas, from
// seed 004's healthy thresholds, each a fraction 0..1 of the weight:
//
//	reputation          Postmaster reputation high 1, medium 0.6, low 0.2, bad 0
//	technical_setup     0 when the latest auth check failed, else 1 − 2 × auth_failure_rate_7d
//	bounces             1 at bounce_rate_7d ≤ 2 %, 0 at ≥ 5 % ("2–5% cautionary; >5% critical"), linear between
//	complaints          1 at complaint_rate_7d ≤ 0.1 %, 0 at ≥ 0.3 %, linear between
//	opens               1 at open_rate_7d ≥ 50 %, 0 at ≤ 30 % (">50% ideal", "<30% real issue"), linear between
//	replies             1 at reply_rate_7d ≥ 2 %, linear to 0 at 0 (">2% reply (cold) yields full points")
//	volume_consistency  1 while sent_prev_24h ≤ 125 % of sent_avg_28d, 0 at ≥ 200 % ("alert if current volume >200% of norm"), linear between
func (w Weights) Score(snap *sgv1.WindowSnapshot) ScoreCard {
	a, err := newActivation(snap)
	if err != nil {
		a = &activation{snap: &sgv1.WindowSnapshot{}}
	}
	defer a.m.Release()
	return w.score(a)
}

// score is Score over an activation already built (Evaluate's).
func (w Weights) score(a *activation) ScoreCard {
	v := a.value
	card := ScoreCard{Components: map[string]float64{}}
	frac := map[string]float64{}
	missing := map[string]bool{}

	switch rep := v("postmaster_reputation"); {
	case rep >= 4:
		frac["reputation"] = 1
	case rep >= 3:
		frac["reputation"] = 0.6
	case rep >= 2:
		frac["reputation"] = 0.2
	case rep >= 1:
		frac["reputation"] = 0
	default:
		missing["reputation"] = true
	}
	if v("auth_fail_latest") >= 1 {
		frac["technical_setup"] = 0
	} else if v("auth_failures_7d") > 0 || v("auth_failure_rate_7d") > 0 || a.m.Has("auth_fail_latest") {
		frac["technical_setup"] = clamp(1 - 2*v("auth_failure_rate_7d"))
	} else {
		missing["technical_setup"] = true
	}
	if v("sent_7d") > 0 {
		frac["bounces"] = band(v("bounce_rate_7d"), 0.02, 0.05)
	} else {
		missing["bounces"] = true
	}
	if v("delivered_7d") > 0 {
		frac["complaints"] = band(v("complaint_rate_7d"), 0.001, 0.003)
		frac["opens"] = 1 - band(v("open_rate_7d"), 0.30, 0.50)
		frac["replies"] = clamp(v("reply_rate_7d") / 0.02)
	} else {
		missing["complaints"], missing["opens"], missing["replies"] = true, true, true
	}
	if norm := v("sent_avg_28d"); norm > 0 {
		frac["volume_consistency"] = band(v("sent_prev_24h")/norm, 1.25, 2.0)
	} else {
		missing["volume_consistency"] = true
	}

	var earned, possible float64
	for _, c := range Components {
		weight := w[c]
		if missing[c] {
			card.Missing = append(card.Missing, c)
			card.Components[c] = 0
			continue
		}
		pts := weight * frac[c]
		card.Components[c] = pts
		earned += pts
		possible += weight
	}
	if possible > 0 {
		card.Total = math.Round(1000*earned/possible) / 10
	}
	return card
}

// band is 1 at or below good, 0 at or above bad, linear between.
func band(x, good, bad float64) float64 {
	if x <= good {
		return 1
	}
	if x >= bad {
		return 0
	}
	return (bad - x) / (bad - good)
}

func clamp(x float64) float64 { return math.Max(0, math.Min(1, x)) }
