package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Load reads and parses the rule set at path. Warnings are dropped; any
// error-severity diagnostic makes it return an *InvalidError.
func Load(path string) (*RuleSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rule set: %w", err)
	}
	rs, _, err := Parse(data, filepath.Base(path))
	return rs, err
}

// Lint parses, compiles and checks data and returns every diagnostic,
// errors and warnings, sorted by line.
func Lint(data []byte, name string) []Diagnostic {
	_, diags, _ := Parse(data, name)
	return diags
}

// Parse decodes a rule set, compiles every CEL expression (the base rules
// and each tenant's overridden rules) and lints it. It returns the rule set
// and all diagnostics; err is an *InvalidError when any diagnostic is an
// error, in which case the rule set is nil.
func Parse(data []byte, name string) (*RuleSet, []Diagnostic, error) {
	p := &parser{file: name, lines: strings.Split(string(data), "\n")}
	rs := &RuleSet{Name: name, Ramp: DefaultRamp, Weights: DefaultWeights()}
	sum := sha256.Sum256(data)
	rs.Hash = hex.EncodeToString(sum[:])

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.errAt(yamlErrLine(err), 0, "", "yaml: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, p.diags, &InvalidError{Diagnostics: p.diags}
	}
	if len(doc.Content) == 0 {
		p.errAt(1, 0, "", "empty rule set")
		return nil, p.diags, &InvalidError{Diagnostics: p.diags}
	}
	p.decodeSet(doc.Content[0], rs)
	if !p.failed() {
		compileSet(p, rs)
	}
	sortDiags(p.diags)
	if p.failed() {
		return nil, p.diags, &InvalidError{Diagnostics: p.diags}
	}
	return rs, p.diags, nil
}

type parser struct {
	file  string
	lines []string
	diags []Diagnostic
}

// indent is the indentation of a 1-based source line.
func (p *parser) indent(line int) int {
	if line < 1 || line > len(p.lines) {
		return 0
	}
	l := p.lines[line-1]
	return len(l) - len(strings.TrimLeft(l, " "))
}

func (p *parser) errAt(line, col int, rule, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{File: p.file, Line: line, Column: col, Severity: SeverityError, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) warnAt(line, col int, rule, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{File: p.file, Line: line, Column: col, Severity: SeverityWarning, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) failed() bool {
	for _, d := range p.diags {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

func (p *parser) errNode(n *yaml.Node, rule, format string, args ...any) {
	p.errAt(n.Line, n.Column, rule, format, args...)
}

func yamlErrLine(err error) int {
	// yaml.v3 formats errors as "yaml: line N: ...".
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		rest := s[i+5:]
		if j := strings.IndexAny(rest, ":"); j > 0 {
			if n, e := strconv.Atoi(rest[:j]); e == nil {
				return n
			}
		}
	}
	return 1
}

// mapping iterates a mapping node's key/value pairs, reporting unknown keys
// and duplicate keys.
func (p *parser) mapping(n *yaml.Node, what, rule string, allowed []string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errNode(n, rule, "%s must be a mapping", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if allowed != nil && !contains(allowed, k.Value) {
			p.errNode(k, rule, "unknown field %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
			continue
		}
		if seen[k.Value] {
			p.errNode(k, rule, "duplicate field %q in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) str(n *yaml.Node, rule, what string) string {
	if n.Kind != yaml.ScalarNode {
		p.errNode(n, rule, "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (p *parser) num(n *yaml.Node, rule, what string) float64 {
	if n.Kind != yaml.ScalarNode {
		p.errNode(n, rule, "%s must be a number", what)
		return 0
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	if err != nil {
		p.errNode(n, rule, "%s: %q is not a number", what, n.Value)
	}
	return f
}

func (p *parser) boolean(n *yaml.Node, rule, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.errNode(n, rule, "%s must be true or false", what)
	}
	return b
}

// dur parses Go durations plus a "d" suffix for days ("14d", "1d12h").
func (p *parser) dur(n *yaml.Node, rule, what string) time.Duration {
	s := p.str(n, rule, what)
	d, err := parseDuration(s)
	if err != nil {
		p.errNode(n, rule, "%s: %v", what, err)
	}
	if d < 0 {
		p.errNode(n, rule, "%s must not be negative", what)
	}
	return d
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	var days int
	if i := strings.Index(s, "d"); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		days, s = n, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		var err error
		if rest, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("bad duration %q (use e.g. 72h, 14d)", s)
		}
	}
	return time.Duration(days)*24*time.Hour + rest, nil
}

func (p *parser) strList(n *yaml.Node, rule, what string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errNode(n, rule, "%s must be a list", what)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, p.str(c, rule, what))
	}
	return out
}

func (p *parser) params(n *yaml.Node, rule string) map[string]float64 {
	out := map[string]float64{}
	p.mapping(n, "params", rule, nil, func(key string, _, v *yaml.Node) {
		out[key] = p.num(v, rule, "param "+key)
	})
	return out
}

func posOf(n *yaml.Node) pos {
	return pos{
		line:   n.Line,
		col:    n.Column,
		block:  n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0,
		quoted: n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0,
	}
}

func (p *parser) decodeSet(n *yaml.Node, rs *RuleSet) {
	allowed := []string{"version", "ramp", "broad_symptoms", "score", "rules", "tenants"}
	p.mapping(n, "rule set", "", allowed, func(key string, k, v *yaml.Node) {
		switch key {
		case "version":
			rs.Version = p.str(v, "", "version")
		case "ramp":
			p.mapping(v, "ramp", "", []string{"start", "step", "every", "clean_for", "dwell"}, func(key string, _, v *yaml.Node) {
				switch key {
				case "start":
					rs.Ramp.Start = p.num(v, "", "ramp.start")
				case "step":
					rs.Ramp.Step = p.num(v, "", "ramp.step")
				case "every":
					rs.Ramp.Every = p.dur(v, "", "ramp.every")
				case "clean_for":
					rs.Ramp.CleanFor = p.dur(v, "", "ramp.clean_for")
				case "dwell":
					rs.Ramp.Dwell = p.dur(v, "", "ramp.dwell")
				}
			})
			if rs.Ramp.Start <= 0 || rs.Ramp.Start > 1 || rs.Ramp.Step <= 0 || rs.Ramp.Step > 1 {
				p.errNode(v, "", "ramp.start and ramp.step must be in (0, 1]")
			}
			if rs.Ramp.Every <= 0 || rs.Ramp.CleanFor <= 0 || rs.Ramp.Dwell <= 0 {
				p.errNode(v, "", "ramp.every, ramp.clean_for and ramp.dwell must be positive")
			}
		case "broad_symptoms":
			rs.BroadSymptoms = p.str(v, "", "broad_symptoms")
		case "score":
			p.mapping(v, "score", "", []string{"weights"}, func(_ string, _, v *yaml.Node) {
				w := Weights{}
				p.mapping(v, "score.weights", "", Components, func(key string, _, v *yaml.Node) {
					w[key] = p.num(v, "", "weight "+key)
					if w[key] < 0 {
						p.errNode(v, "", "weight %s must not be negative", key)
					}
				})
				for _, c := range Components {
					if _, ok := w[c]; !ok {
						w[c] = 0
					}
				}
				rs.Weights = w
			})
		case "rules":
			if v.Kind != yaml.SequenceNode {
				p.errNode(v, "", "rules must be a list")
				return
			}
			for _, rn := range v.Content {
				if r := p.decodeRule(rn); r != nil {
					rs.Rules = append(rs.Rules, r)
				}
			}
		case "tenants":
			rs.Tenants = map[string]*Overrides{}
			p.mapping(v, "tenants", "", nil, func(tenant string, k, v *yaml.Node) {
				rs.Tenants[tenant] = p.decodeOverrides(tenant, k, v)
			})
		}
	})
	if rs.Version == "" {
		p.errNode(n, "", "version is required")
	}
	if len(rs.Rules) == 0 && !p.failed() {
		p.errNode(n, "", "rule set has no rules")
	}
}

var ruleFields = []string{"id", "level", "condition", "min_sample", "severity", "enter", "actions", "recovery", "priority", "shadow", "source", "explain", "params", "broad", "broad_duration", "ramp"}

func (p *parser) decodeRule(n *yaml.Node) *Rule {
	r := &Rule{Line: n.Line, pos: map[string]pos{}}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "id" {
				r.ID = n.Content[i+1].Value
			}
		}
	}
	id := r.ID
	hasPriority := false
	p.mapping(n, "rule", id, ruleFields, func(key string, k, v *yaml.Node) {
		r.pos[key] = posOf(v)
		switch key {
		case "id":
			r.ID = p.str(v, id, "id")
		case "level":
			s := p.str(v, id, "level")
			l, ok := levelNames[s]
			if !ok {
				p.errNode(v, id, "unknown level %q (known: tenant, domain, sender, campaign, variant, provider, domain_provider, account, recipient, segment, list_source)", s)
			}
			r.Level = l
		case "condition":
			r.Condition = p.str(v, id, "condition")
		case "recovery":
			r.Recovery = p.str(v, id, "recovery")
		case "severity":
			s := p.str(v, id, "severity")
			sev, ok := severityNames[s]
			if !ok {
				p.errNode(v, id, "unknown severity %q (known: info, warning, critical)", s)
			}
			r.Severity = sev
		case "enter":
			s := p.str(v, id, "enter")
			st, ok := enterNames[s]
			if !ok {
				p.errNode(v, id, "unknown state %q (known: warning, risk, restricted, paused)", s)
			}
			r.Enter = st
		case "priority":
			hasPriority = true
			r.Priority = int(p.num(v, id, "priority"))
		case "shadow":
			r.Shadow = p.boolean(v, id, "shadow")
		case "ramp":
			r.NoRamp = !p.boolean(v, id, "ramp")
		case "broad":
			r.Broad = p.str(v, id, "broad")
		case "broad_duration":
			r.BroadDuration = p.dur(v, id, "broad_duration")
		case "params":
			r.Params = p.params(v, id)
		case "source":
			r.Sources = p.decodeSources(v, id)
		case "explain":
			e := &Explain{}
			p.mapping(v, "explain", id, []string{"metric", "comparator", "threshold", "window", "sample"}, func(key string, _, v *yaml.Node) {
				r.pos["explain."+key] = posOf(v)
				s := p.str(v, id, "explain."+key)
				switch key {
				case "metric":
					e.Metric = s
				case "comparator":
					e.Comparator = s
				case "threshold":
					e.Threshold = s
				case "window":
					e.Window = s
				case "sample":
					e.Sample = s
				}
			})
			r.Explain = e
		case "min_sample":
			m := &MinSample{}
			p.mapping(v, "min_sample", id, []string{"metric", "min", "fallback", "condition"}, func(key string, _, v *yaml.Node) {
				r.pos["min_sample."+key] = posOf(v)
				switch key {
				case "metric":
					m.Metric = p.str(v, id, "min_sample.metric")
				case "min":
					m.Min = p.num(v, id, "min_sample.min")
				case "fallback":
					m.Fallback = p.str(v, id, "min_sample.fallback")
					if m.Fallback != "two_day" && m.Fallback != "wilson" && m.Fallback != "none" {
						p.errNode(v, id, "unknown min_sample.fallback %q (known: none, two_day, wilson)", m.Fallback)
					}
					if m.Fallback == "none" {
						m.Fallback = ""
					}
				case "condition":
					m.Condition = p.str(v, id, "min_sample.condition")
				}
			})
			if m.Metric == "" {
				p.errNode(v, id, "min_sample.metric is required")
			}
			if m.Condition != "" && m.Fallback == "" {
				p.errNode(v, id, "min_sample.condition needs min_sample.fallback")
			}
			r.MinSample = m
		case "actions":
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				p.errNode(v, id, "actions must be a non-empty list")
				return
			}
			for _, an := range v.Content {
				r.Actions = append(r.Actions, p.decodeAction(an, id))
			}
		}
	})
	if r.ID == "" {
		p.errNode(n, "", "rule without id")
	}
	if r.Level == sgv1.ScopeLevel_SCOPE_LEVEL_UNSPECIFIED && r.pos["level"].line == 0 {
		p.errNode(n, id, "level is required")
	}
	if strings.TrimSpace(r.Condition) == "" {
		p.errNode(n, id, "condition is required")
	}
	if len(r.Actions) == 0 && r.pos["actions"].line == 0 {
		p.errNode(n, id, "actions are required")
	}
	if r.Severity == sgv1.Severity_SEVERITY_UNSPECIFIED && r.pos["severity"].line == 0 {
		r.Severity = sgv1.Severity_SEVERITY_WARNING
	}
	if !hasPriority {
		p.warnAt(n.Line, n.Column, id, "no priority; defaults to 1000 (runs last)")
		r.Priority = 1000
	}
	if len(r.Sources) == 0 {
		p.warnAt(n.Line, n.Column, id, "no source: cite the seed or policy the rule comes from")
	}
	if r.Enter == sgv1.HealthState_HEALTH_STATE_UNSPECIFIED {
		r.Enter = r.defaultEnter()
	}
	if r.Enter >= sgv1.HealthState_HEALTH_STATE_RESTRICTED && !r.enforces() && len(r.Actions) > 0 {
		p.errNode(n, id, "enter: %s needs a pause, throttle or suppress action", StateName(r.Enter))
	}
	return r
}

func (p *parser) decodeSources(n *yaml.Node, rule string) []Source {
	one := func(n *yaml.Node) Source {
		var s Source
		p.mapping(n, "source", rule, []string{"seed", "quote"}, func(key string, _, v *yaml.Node) {
			if key == "seed" {
				s.Seed = p.str(v, rule, "source.seed")
			} else {
				s.Quote = p.str(v, rule, "source.quote")
			}
		})
		if s.Seed == "" {
			p.errNode(n, rule, "source.seed is required")
		}
		return s
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return []Source{{Seed: n.Value}}
	case yaml.SequenceNode:
		var out []Source
		for _, c := range n.Content {
			out = append(out, one(c))
		}
		return out
	default:
		return []Source{one(n)}
	}
}

func (p *parser) decodeAction(n *yaml.Node, rule string) Action {
	var a Action
	seenType := false
	p.mapping(n, "action", rule, []string{"action", "duration", "cooldown", "cap_ratio", "daily_cap", "cap_base"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "action":
			seenType = true
			s := p.str(v, rule, "action")
			t, ok := actionNames[s]
			if !ok {
				p.errNode(v, rule, "unknown action %q (known: pause, throttle, suppress, alert)", s)
			}
			a.Type = t
		case "duration":
			a.Duration = p.dur(v, rule, "duration")
		case "cooldown":
			a.Cooldown = p.dur(v, rule, "cooldown")
		case "cap_ratio":
			a.CapRatio = p.num(v, rule, "cap_ratio")
			if a.CapRatio <= 0 || a.CapRatio > 1 {
				p.errNode(v, rule, "cap_ratio must be in (0, 1]")
			}
		case "daily_cap":
			a.DailyCap = int64(p.num(v, rule, "daily_cap"))
			if a.DailyCap < 0 {
				p.errNode(v, rule, "daily_cap must not be negative")
			}
		case "cap_base":
			a.CapBase = p.str(v, rule, "cap_base")
		}
	})
	if !seenType && n.Kind == yaml.MappingNode {
		p.errNode(n, rule, "action needs an action: pause, throttle, suppress or alert")
	}
	if a.Type == sgv1.Action_ACTION_THROTTLE && a.CapRatio == 0 && a.DailyCap == 0 {
		p.errNode(n, rule, "throttle needs cap_ratio or daily_cap")
	}
	if a.Type != sgv1.Action_ACTION_THROTTLE && (a.CapRatio != 0 || a.DailyCap != 0) {
		p.errNode(n, rule, "cap_ratio and daily_cap only apply to throttle")
	}
	if a.CapBase == "" {
		a.CapBase = "sent_avg_7d"
	}
	return a
}

func (p *parser) decodeOverrides(tenant string, k, n *yaml.Node) *Overrides {
	o := &Overrides{Line: k.Line, Rules: map[string]*RuleOverride{}}
	p.mapping(n, "tenant "+tenant, "", []string{"disable", "shadow", "rules"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "disable":
			o.Disable = p.strList(v, "", "disable")
		case "shadow":
			o.Shadow = p.strList(v, "", "shadow")
		case "rules":
			p.mapping(v, "tenant rules", "", nil, func(id string, k, v *yaml.Node) {
				ro := &RuleOverride{Line: k.Line, pos: map[string]pos{}}
				p.mapping(v, "rule override", id, []string{"params", "condition", "recovery", "shadow"}, func(key string, _, v *yaml.Node) {
					ro.pos[key] = posOf(v)
					switch key {
					case "params":
						ro.Params = p.params(v, id)
					case "condition":
						ro.Condition = p.str(v, id, "condition")
					case "recovery":
						ro.Recovery = p.str(v, id, "recovery")
					case "shadow":
						b := p.boolean(v, id, "shadow")
						ro.Shadow = &b
					}
				})
				o.Rules[id] = ro
			})
		}
	})
	return o
}
