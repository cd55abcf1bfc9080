package rules

import (
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// lintSet reports rules that can never fire: constant-false conditions and
// rules shadowed by a higher-priority rule at the same level whose
// condition is identical or looser and whose state is at least as strong.
func lintSet(p *parser, set *compiledSet) {
	for _, list := range set.byLevel {
		for i, b := range list {
			r := b.rule
			if b.consts && len(b.branches) > 0 {
				v, _, err := b.branches[0].prg.Eval(interpreter.EmptyActivation())
				if err == nil && v == types.False && len(b.branches) == 1 {
					p.errAt(r.pos["condition"].line, r.pos["condition"].col, r.ID, "condition is always false: the rule can never fire")
				}
				if err == nil && v == types.True {
					p.warnAt(r.pos["condition"].line, r.pos["condition"].col, r.ID, "condition is always true")
				}
			}
			if r.enforces() && r.Recovery == "" && b.cond == r.Condition {
				p.warnAt(r.Line, 0, r.ID, "no recovery condition: the scope recovers as soon as the condition is false, without a hysteresis band")
			}
			if b.shadow || !r.enforces() {
				continue
			}
			for _, a := range list[:i] {
				if a.shadow || rank(a.rule.Enter) < rank(r.Enter) {
					continue
				}
				if shadows(a, b) {
					p.errAt(r.Line, 0, r.ID, "unreachable: rule %s (line %d, priority %d) fires whenever this rule does and drives a state at least as strong (%s)", a.rule.ID, a.rule.Line, a.rule.Priority, StateName(a.rule.Enter))
					break
				}
			}
		}
	}
}

// shadows reports whether a fires whenever b fires.
func shadows(a, b *compiledRule) bool {
	if b.rule.MinSample != nil && b.rule.MinSample.Fallback != "" {
		// b may fire through its fallback when a does not.
		return false
	}
	if a.cond == b.cond && sameGate(a.rule.MinSample, b.rule.MinSample) {
		return true
	}
	if a.atoms == nil || b.atoms == nil {
		return false
	}
	for _, x := range a.atoms {
		if !impliedBy(x, b.atoms) {
			return false
		}
	}
	if ms := a.rule.MinSample; ms != nil && ms.Fallback == "" {
		gate := atom{metric: ms.Metric, op: ">=", value: ms.Min}
		bm := b.rule.MinSample
		if !(bm != nil && bm.Metric == ms.Metric && bm.Min >= ms.Min) && !impliedBy(gate, b.atoms) {
			return false
		}
	}
	return true
}

func sameGate(a, b *MinSample) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// impliedBy reports whether some atom of bs implies x.
func impliedBy(x atom, bs []atom) bool {
	for _, y := range bs {
		if y.metric != x.metric {
			continue
		}
		switch x.op {
		case ">=":
			if (y.op == ">=" || y.op == ">" || y.op == "==") && y.value >= x.value {
				return true
			}
		case ">":
			if (y.op == ">" && y.value >= x.value) || ((y.op == ">=" || y.op == "==") && y.value > x.value) {
				return true
			}
		case "<=":
			if (y.op == "<=" || y.op == "<" || y.op == "==") && y.value <= x.value {
				return true
			}
		case "<":
			if (y.op == "<" && y.value <= x.value) || ((y.op == "<=" || y.op == "==") && y.value < x.value) {
				return true
			}
		case "==":
			if y.op == "==" && y.value == x.value {
				return true
			}
		}
	}
	return false
}
