package rules

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/sendguard/sendguard/pkg/metrics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// compiledSet is a rule set resolved for one tenant (or the base set).
type compiledSet struct {
	byLevel map[sgv1.ScopeLevel][]*compiledRule
	byID    map[string]*compiledRule
}

type compiledRule struct {
	rule     *Rule
	shadow   bool
	params   map[string]float64
	cond     string
	branches []branch
	fallback []branch
	recText  string
	recovery cel.Program
	broad    cel.Program
	atoms    []atom // conjunction atoms of cond; nil when not a pure conjunction
	consts   bool   // cond references no variable
}

type branch struct {
	prg     cel.Program
	explain explainC
}

type explainC struct {
	metric, comparator, window, sample string
	thresholdText                      string
	threshold                          cel.Program
}

type atom struct {
	metric string
	op     string
	value  float64
}

var (
	baseEnvOnce sync.Once
	baseEnv     *cel.Env
	baseEnvErr  error
)

// env returns the CEL environment with every catalogue metric declared as a
// double.
func env() (*cel.Env, error) {
	baseEnvOnce.Do(func() {
		opts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true)}
		for _, n := range metrics.Names() {
			opts = append(opts, cel.Variable(n, cel.DoubleType))
		}
		baseEnv, baseEnvErr = cel.NewEnv(opts...)
	})
	return baseEnv, baseEnvErr
}

var undeclaredRE = regexp.MustCompile(`undeclared reference to '([^']+)'.*`)

// compileExpr compiles one expression of rule r at the position recorded
// under key, turning CEL issues into positioned diagnostics.
func (p *parser) compileExpr(e *cel.Env, r *Rule, rp map[string]pos, key, text string, want *cel.Type) *cel.Ast {
	ps := rp[key]
	if ps.line == 0 {
		ps = pos{line: r.Line}
	}
	a, iss := e.Compile(text)
	if iss != nil && iss.Err() != nil {
		for _, ce := range iss.Errors() {
			line, col := ps.line, ps.col
			l, c := ce.Location.Line(), ce.Location.Column()
			switch {
			case ps.block:
				line = ps.line + l
				col = p.indent(line) + c + 1
			case l > 1:
				line, col = ps.line+l-1, c+1
			default:
				col = ps.col + c
				if ps.quoted {
					col++
				}
			}
			msg := ce.Message
			if m := undeclaredRE.FindStringSubmatch(msg); m != nil {
				msg = fmt.Sprintf("unknown metric or param %q (see pkg/metrics catalogue)", m[1])
			}
			p.errAt(line, col, r.ID, "%s: %s", key, msg)
		}
		return nil
	}
	if want != nil && !a.OutputType().IsExactType(want) {
		p.errAt(ps.line, ps.col, r.ID, "%s must be %s, is %s", key, want, a.OutputType())
		return nil
	}
	return a
}

func (p *parser) program(e *cel.Env, r *Rule, a *cel.Ast) cel.Program {
	prg, err := e.Program(a, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		p.errAt(r.Line, 0, r.ID, "program: %v", err)
		return nil
	}
	return prg
}

func compileSet(p *parser, rs *RuleSet) {
	base, err := env()
	if err != nil {
		p.errAt(1, 0, "", "cel environment: %v", err)
		return
	}
	seen := map[string]*Rule{}
	for _, r := range rs.Rules {
		if prev, ok := seen[r.ID]; ok {
			p.errAt(r.Line, 0, r.ID, "duplicate rule id (first defined at line %d)", prev.Line)
			continue
		}
		seen[r.ID] = r
	}
	var broadAst *cel.Ast
	if rs.BroadSymptoms != "" {
		broadAst = p.compileExpr(base, &Rule{Line: 1}, nil, "broad_symptoms", rs.BroadSymptoms, cel.BoolType)
	}
	set := &compiledSet{byLevel: map[sgv1.ScopeLevel][]*compiledRule{}, byID: map[string]*compiledRule{}}
	for _, r := range rs.Rules {
		if set.byID[r.ID] != nil {
			continue
		}
		cr := p.compileRule(base, r, r.pos, r.Condition, r.Recovery, r.Params, r.Shadow, rs.BroadSymptoms, broadAst)
		if cr == nil {
			continue
		}
		set.byID[r.ID] = cr
		set.byLevel[r.Level] = append(set.byLevel[r.Level], cr)
	}
	sortLevels(set)
	if p.failed() {
		return
	}
	lintSet(p, set)
	rs.base = set

	rs.tenants = map[string]*compiledSet{}
	tenants := make([]string, 0, len(rs.Tenants))
	for t := range rs.Tenants {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	for _, t := range tenants {
		o := rs.Tenants[t]
		ts := &compiledSet{byLevel: map[sgv1.ScopeLevel][]*compiledRule{}, byID: map[string]*compiledRule{}}
		disabled := map[string]bool{}
		for _, id := range o.Disable {
			if set.byID[id] == nil {
				p.errAt(o.Line, 0, id, "tenant %s disables unknown rule", t)
			}
			disabled[id] = true
		}
		shadowed := map[string]bool{}
		for _, id := range o.Shadow {
			if set.byID[id] == nil {
				p.errAt(o.Line, 0, id, "tenant %s shadows unknown rule", t)
			}
			shadowed[id] = true
		}
		for id, ro := range o.Rules {
			if set.byID[id] == nil {
				p.errAt(ro.Line, 0, id, "tenant %s overrides unknown rule", t)
			}
		}
		for _, r := range rs.Rules {
			cr := set.byID[r.ID]
			if cr == nil || cr.rule != r || disabled[r.ID] {
				continue
			}
			ro := o.Rules[r.ID]
			shadow := cr.shadow || shadowed[r.ID]
			if ro == nil {
				c := *cr
				c.shadow = shadow
				ts.byID[r.ID] = &c
				ts.byLevel[r.Level] = append(ts.byLevel[r.Level], &c)
				continue
			}
			params := map[string]float64{}
			for k, v := range r.Params {
				params[k] = v
			}
			for k, v := range ro.Params {
				if _, ok := r.Params[k]; !ok {
					p.errAt(ro.Line, 0, r.ID, "tenant %s sets param %q the rule does not declare", t, k)
				}
				params[k] = v
			}
			if ro.Shadow != nil {
				shadow = *ro.Shadow
			}
			cond, rec := r.Condition, r.Recovery
			rp := r.pos
			if ro.Condition != "" || ro.Recovery != "" {
				rp = map[string]pos{}
				for k, v := range r.pos {
					rp[k] = v
				}
				if ro.Condition != "" {
					cond = ro.Condition
					rp["condition"] = ro.pos["condition"]
				}
				if ro.Recovery != "" {
					rec = ro.Recovery
					rp["recovery"] = ro.pos["recovery"]
				}
			}
			c := p.compileRule(base, r, rp, cond, rec, params, shadow, rs.BroadSymptoms, broadAst)
			if c == nil {
				continue
			}
			ts.byID[r.ID] = c
			ts.byLevel[r.Level] = append(ts.byLevel[r.Level], c)
		}
		sortLevels(ts)
		rs.tenants[t] = ts
	}
}

func sortLevels(s *compiledSet) {
	for _, list := range s.byLevel {
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].rule.Priority != list[j].rule.Priority {
				return list[i].rule.Priority < list[j].rule.Priority
			}
			return list[i].rule.Line < list[j].rule.Line
		})
	}
}

func (p *parser) compileRule(base *cel.Env, r *Rule, rp map[string]pos, cond, rec string, params map[string]float64, shadow bool, broadText string, broadAst *cel.Ast) *compiledRule {
	before := len(p.diags)
	e := base
	if len(params) > 0 {
		var opts []cel.EnvOption
		names := make([]string, 0, len(params))
		for k := range params {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if metrics.Known(k) {
				p.errAt(rp["params"].line, 0, r.ID, "param %q shadows a metric of the same name", k)
				continue
			}
			opts = append(opts, cel.Variable(k, cel.DoubleType))
		}
		var err error
		if e, err = base.Extend(opts...); err != nil {
			p.errAt(rp["params"].line, 0, r.ID, "params: %v", err)
			return nil
		}
	}
	cr := &compiledRule{rule: r, shadow: shadow, params: params, cond: cond}
	ca := p.compileExpr(e, r, rp, "condition", cond, cel.BoolType)
	if ca != nil {
		// Analyse the AST before building programs: planning may rewrite it.
		used := identifiers(ca.NativeRep().Expr(), nil)
		cr.atoms = conjunctionAtoms(ca.NativeRep().Expr(), params)
		cr.consts = len(used) == 0
		cr.branches = p.branches(e, r, rp, ca, params, "")
		if len(params) > 0 && cond == r.Condition {
			for k := range params {
				if !used[k] && !strings.Contains(rec, k) {
					p.warnAt(rp["params"].line, 0, r.ID, "param %q is not used by the condition", k)
				}
			}
		}
	}
	if ms := r.MinSample; ms != nil {
		if ms.Metric != "" && !metrics.Known(ms.Metric) {
			ps := rp["min_sample.metric"]
			p.errAt(ps.line, ps.col, r.ID, "min_sample.metric: unknown metric %q", ms.Metric)
		}
		if ms.Fallback != "" {
			text := ms.Condition
			if text == "" {
				text = rewriteMetrics(cond, ms.Fallback)
				if text == cond {
					ps := rp["min_sample.fallback"]
					p.errAt(ps.line, ps.col, r.ID, "min_sample.fallback %s changes no metric of the condition; give min_sample.condition", ms.Fallback)
				}
			}
			key := "min_sample.condition"
			if ms.Condition == "" {
				key = "condition"
			}
			if fa := p.compileExpr(e, r, rp, key, text, cel.BoolType); fa != nil {
				cr.fallback = p.branches(e, r, rp, fa, params, ms.Fallback)
			}
		}
	}
	if strings.TrimSpace(rec) == "" {
		rec = "!(" + cond + ")"
	}
	cr.recText = rec
	if ca != nil || strings.TrimSpace(r.Recovery) != "" {
		if ra := p.compileExpr(e, r, rp, "recovery", rec, cel.BoolType); ra != nil {
			cr.recovery = p.program(e, r, ra)
		}
	}
	switch {
	case r.Broad != "":
		if ba := p.compileExpr(e, r, rp, "broad", r.Broad, cel.BoolType); ba != nil {
			cr.broad = p.program(e, r, ba)
		}
	case broadAst != nil && broadText != "":
		cr.broad = p.program(e, r, broadAst)
	}
	for i, a := range r.Actions {
		if !metrics.Known(a.CapBase) {
			p.errAt(rp["actions"].line, 0, r.ID, "actions[%d].cap_base: unknown metric %q", i, a.CapBase)
		}
	}
	if r.BroadDuration > 0 && r.Broad == "" && broadText == "" {
		p.warnAt(rp["broad_duration"].line, 0, r.ID, "broad_duration without a broad condition or broad_symptoms never applies")
	}
	if len(p.diags) > before {
		for _, d := range p.diags[before:] {
			if d.Severity == SeverityError {
				return nil
			}
		}
	}
	return cr
}

// branches splits a condition on its top-level || so that an explanation
// reports the disjunct that actually fired.
func (p *parser) branches(e *cel.Env, r *Rule, rp map[string]pos, a *cel.Ast, params map[string]float64, fallback string) []branch {
	root := a.NativeRep()
	var parts []ast.Expr
	var split func(x ast.Expr)
	split = func(x ast.Expr) {
		if x.Kind() == ast.CallKind && x.AsCall().FunctionName() == "_||_" {
			for _, arg := range x.AsCall().Args() {
				split(arg)
			}
			return
		}
		parts = append(parts, x)
	}
	split(root.Expr())
	out := make([]branch, 0, len(parts))
	for _, part := range parts {
		var b branch
		if len(parts) == 1 {
			b.prg = p.program(e, r, a)
		} else {
			text, err := cel.ExprToString(part, root.SourceInfo())
			if err != nil {
				p.errAt(r.Line, 0, r.ID, "condition: %v", err)
				return nil
			}
			pa, iss := e.Compile(text)
			if iss != nil && iss.Err() != nil {
				p.errAt(r.Line, 0, r.ID, "condition branch %q: %v", text, iss.Err())
				return nil
			}
			b.prg = p.program(e, r, pa)
		}
		b.explain = p.explain(e, r, rp, part, root.SourceInfo(), params, len(parts) > 1, fallback)
		out = append(out, b)
	}
	return out
}

var comparators = map[string]string{"_>=_": ">=", "_>_": ">", "_<=_": "<=", "_<_": "<", "_==_": "==", "_!=_": "!="}
var flipped = map[string]string{">=": "<=", ">": "<", "<=": ">=", "<": ">", "==": "==", "!=": "!="}

// explain derives the explanation of one branch from its first comparison
// of a metric, then applies the rule's explicit explain fields.
func (p *parser) explain(e *cel.Env, r *Rule, rp map[string]pos, x ast.Expr, info *ast.SourceInfo, params map[string]float64, multi bool, fallback string) explainC {
	var ex explainC
	for _, c := range conjuncts(x) {
		if c.Kind() != ast.CallKind {
			continue
		}
		op, ok := comparators[c.AsCall().FunctionName()]
		if !ok || len(c.AsCall().Args()) != 2 {
			continue
		}
		l, rr := c.AsCall().Args()[0], c.AsCall().Args()[1]
		if l.Kind() == ast.IdentKind && metrics.Known(l.AsIdent()) {
			ex.metric, ex.comparator = l.AsIdent(), op
			ex.thresholdText, _ = cel.ExprToString(rr, info)
			break
		}
		if rr.Kind() == ast.IdentKind && metrics.Known(rr.AsIdent()) {
			ex.metric, ex.comparator = rr.AsIdent(), flipped[op]
			ex.thresholdText, _ = cel.ExprToString(l, info)
			break
		}
	}
	// A rule's explicit explain applies to a single condition, and to the
	// branches of a disjunction only where none can be derived.
	// In a small-sample fallback the explicit fields are rewritten the way
	// the condition was (complaint_rate_24h → complaint_rate_48h).
	if x := r.Explain; x != nil && !(multi && ex.metric != "") {
		rw := func(s string) string {
			if fallback == "" {
				return s
			}
			return rewriteMetrics(s, fallback)
		}
		if x.Metric != "" {
			ex.metric = rw(x.Metric)
		}
		if x.Comparator != "" {
			ex.comparator = x.Comparator
		}
		if x.Threshold != "" {
			ex.thresholdText = rw(x.Threshold)
		}
		ex.window, ex.sample = x.Window, rw(x.Sample)
	}
	if ex.metric == "" {
		if len(identifiers(x, nil)) > 0 {
			p.errAt(r.Line, 0, r.ID, "cannot derive the explanation's metric from the condition; add explain.metric")
		}
		return ex
	}
	if !metrics.Known(ex.metric) {
		ps := rp["explain.metric"]
		p.errAt(ps.line, ps.col, r.ID, "explain.metric: unknown metric %q", ex.metric)
		return ex
	}
	if _, ok := flipped[ex.comparator]; !ok {
		p.errAt(rp["explain.comparator"].line, 0, r.ID, "explain.comparator %q is not one of >=, >, <=, <, ==, !=", ex.comparator)
	}
	if ex.window == "" {
		ex.window = metricWindow(ex.metric)
	}
	if ex.sample == "" {
		ex.sample = sampleMetric(ex.metric)
		if ex.sample == "" && r.MinSample != nil {
			ex.sample = r.MinSample.Metric
		}
	} else if !metrics.Known(ex.sample) {
		ps := rp["explain.sample"]
		p.errAt(ps.line, ps.col, r.ID, "explain.sample: unknown metric %q", ex.sample)
	}
	if ex.thresholdText != "" {
		if ta := p.compileExpr(e, r, rp, "explain.threshold", ex.thresholdText, nil); ta != nil {
			if !ta.OutputType().IsExactType(cel.DoubleType) && !ta.OutputType().IsExactType(cel.IntType) {
				p.errAt(rp["explain.threshold"].line, 0, r.ID, "explain.threshold must be a number, is %s", ta.OutputType())
			} else {
				ex.threshold = p.program(e, r, ta)
			}
		}
	}
	return ex
}

func conjuncts(x ast.Expr) []ast.Expr {
	if x.Kind() == ast.CallKind && x.AsCall().FunctionName() == "_&&_" {
		var out []ast.Expr
		for _, a := range x.AsCall().Args() {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []ast.Expr{x}
}

// conjunctionAtoms returns the condition as metric-vs-constant atoms when it
// is a pure conjunction of such comparisons, else nil.
func conjunctionAtoms(x ast.Expr, params map[string]float64) []atom {
	var out []atom
	for _, c := range conjuncts(x) {
		if c.Kind() != ast.CallKind {
			return nil
		}
		op, ok := comparators[c.AsCall().FunctionName()]
		if !ok || op == "!=" || len(c.AsCall().Args()) != 2 {
			return nil
		}
		l, r := c.AsCall().Args()[0], c.AsCall().Args()[1]
		if v, ok := constant(r, params); ok && l.Kind() == ast.IdentKind && metrics.Known(l.AsIdent()) {
			out = append(out, atom{metric: l.AsIdent(), op: op, value: v})
			continue
		}
		if v, ok := constant(l, params); ok && r.Kind() == ast.IdentKind && metrics.Known(r.AsIdent()) {
			out = append(out, atom{metric: r.AsIdent(), op: flipped[op], value: v})
			continue
		}
		return nil
	}
	return out
}

func constant(x ast.Expr, params map[string]float64) (float64, bool) {
	switch x.Kind() {
	case ast.LiteralKind:
		return toFloat(x.AsLiteral())
	case ast.IdentKind:
		v, ok := params[x.AsIdent()]
		return v, ok
	}
	return 0, false
}

func toFloat(v ref.Val) (float64, bool) {
	switch n := v.(type) {
	case types.Double:
		return float64(n), true
	case types.Int:
		return float64(n), true
	case types.Uint:
		return float64(n), true
	}
	return 0, false
}

func identifiers(x ast.Expr, acc map[string]bool) map[string]bool {
	if acc == nil {
		acc = map[string]bool{}
	}
	switch x.Kind() {
	case ast.IdentKind:
		acc[x.AsIdent()] = true
	case ast.CallKind:
		c := x.AsCall()
		if c.IsMemberFunction() {
			identifiers(c.Target(), acc)
		}
		for _, a := range c.Args() {
			identifiers(a, acc)
		}
	case ast.SelectKind:
		identifiers(x.AsSelect().Operand(), acc)
	case ast.ListKind:
		for _, e := range x.AsList().Elements() {
			identifiers(e, acc)
		}
	case ast.ComprehensionKind:
		acc["<comprehension>"] = true
	}
	return acc
}

var identRE = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// rewriteMetrics rewrites a condition for a small-sample fallback:
// "two_day" replaces calendar-day metrics (_24h) with the rolling 48h
// window, "wilson" replaces rates with their Wilson lower bound.
func rewriteMetrics(cond, mode string) string {
	return identRE.ReplaceAllStringFunc(cond, func(id string) string {
		if !metrics.Known(id) {
			return id
		}
		switch mode {
		case "two_day":
			if strings.HasSuffix(id, "_24h") && !strings.HasSuffix(id, "_prev_24h") {
				if alt := strings.TrimSuffix(id, "_24h") + "_48h"; metrics.Known(alt) {
					return alt
				}
			}
		case "wilson":
			for _, base := range metrics.WilsonRates {
				for _, w := range metrics.Windows {
					if id == base+"_"+w {
						return base + "_wilson_" + w
					}
				}
			}
		}
		return id
	})
}

// metricWindow is the window a metric covers, as the explanation shows it.
func metricWindow(name string) string {
	switch {
	case strings.HasSuffix(name, "_dod_change"):
		return "24h vs prev_24h"
	case strings.HasSuffix(name, "_wow_change"):
		return "7d vs prev_7d"
	case strings.HasSuffix(name, "_avg_7d"):
		return "7d"
	case strings.HasSuffix(name, "_avg_28d"):
		return "28d"
	case name == "placement_spam_rate_max_provider" || name == "placement_tests_recent":
		return "last 2 placement tests"
	case name == "negative_contacts_14d":
		return "14d"
	case name == "provider_concentration_7d":
		return "7d"
	}
	for _, w := range []string{"prev_24h", "prev_7d", "1h", "24h", "48h", "3d", "7d", "28d"} {
		if strings.HasSuffix(name, "_"+w) {
			return w
		}
	}
	return "latest"
}

// sampleMetric is the metric holding the sample size behind name: a rate's
// denominator count over the same window.
func sampleMetric(name string) string {
	switch name {
	case "placement_spam_rate_max_provider":
		return "placement_tests_recent"
	case "negative_contacts_14d", "auth_fail_latest":
		return ""
	}
	w := metricWindow(name)
	switch w {
	case "24h vs prev_24h":
		w = "24h"
	case "7d vs prev_7d":
		w = "7d"
	}
	base := strings.TrimSuffix(name, "_"+w)
	base = strings.TrimSuffix(base, "_wilson")
	base = strings.TrimSuffix(base, "_dod_change")
	base = strings.TrimSuffix(base, "_wow_change")
	base = strings.TrimSuffix(base, "_avg")
	if formula, ok := metrics.Rates[base]; ok {
		if i := strings.LastIndex(formula, "÷"); i >= 0 {
			den := strings.TrimSpace(formula[i+len("÷"):])
			if metrics.Known(den + "_" + w) {
				return den + "_" + w
			}
		}
		return ""
	}
	if _, ok := metrics.Counts[base]; ok && metrics.Known(base+"_"+w) {
		return base + "_" + w
	}
	return ""
}

func sortDiags(d []Diagnostic) {
	sort.SliceStable(d, func(i, j int) bool {
		if d[i].Line != d[j].Line {
			return d[i].Line < d[j].Line
		}
		return d[i].Column < d[j].Column
	})
}
