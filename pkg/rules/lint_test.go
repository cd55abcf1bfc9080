package rules

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

const header = "version: \"1\"\nrules:\n"

// rule renders one rule; fields are YAML lines indented under the item.
func rule(lines ...string) string {
	var b strings.Builder
	for i, l := range lines {
		if i == 0 {
			b.WriteString("  - " + l + "\n")
			continue
		}
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

func okRule(id string, prio int, cond string) string {
	return rule("id: "+id, "level: sender", "priority: "+itoa(prio), "condition: "+cond, "actions: [{action: pause, duration: 72h}]", "source: {seed: policy.md, quote: x}", "recovery: sent_24h < 0.0")
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestLintDiagnostics(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		line int
		want string
	}{
		{"unknown metric", header + okRule("a", 1, "complaint_rate_25h >= 0.003"), 6, `unknown metric or param "complaint_rate_25h"`},
		{"unknown metric in second rule", header + okRule("a", 1, "sent_24h > 1.0") + okRule("b", 2, "sent_24h > 1.0 && bogus_metric < 2.0"), 13, `unknown metric or param "bogus_metric"`},
		{"type error", header + okRule("a", 1, "2 * sent_24h > 3.0"), 6, "no matching overload"},
		{"non-bool condition", header + okRule("a", 1, "sent_24h * 2.0"), 6, "condition must be bool"},
		{"multi-line block condition", header + rule("id: a", "level: sender", "priority: 1", "condition: |", "  sent_24h > 1.0 &&", "    nope_24h > 2.0", "actions: [{action: alert}]", "source: x"), 8, `unknown metric or param "nope_24h"`},
		{"duplicate id", header + okRule("a", 1, "sent_24h > 1.0") + okRule("a", 2, "sent_24h > 5.0"), 10, "duplicate rule id (first defined at line 3)"},
		{"unknown level", header + rule("id: a", "level: galaxy", "priority: 1", "condition: sent_24h > 1.0", "actions: [{action: alert}]", "source: x"), 4, `unknown level "galaxy"`},
		{"unknown action", header + rule("id: a", "level: sender", "priority: 1", "condition: sent_24h > 1.0", "actions: [{action: explode}]", "source: x"), 7, `unknown action "explode"`},
		{"unknown field", header + rule("id: a", "level: sender", "priority: 1", "condtion: sent_24h > 1.0", "actions: [{action: alert}]", "source: x"), 6, `unknown field "condtion"`},
		{"constant false", header + okRule("a", 1, "1.0 > 2.0"), 6, "always false"},
		{"shadowed by looser rule", header + okRule("loose", 1, "complaint_rate_24h >= 0.002") + okRule("strict", 2, "complaint_rate_24h >= 0.003 && delivered_24h >= 500.0"), 10, "unreachable: rule loose (line 3"},
		{"shadowed by identical rule", header + okRule("a", 1, "sent_dod_change > 0.5 || sent_24h > 9.0") + okRule("b", 2, "sent_dod_change > 0.5 || sent_24h > 9.0"), 10, "unreachable: rule a"},
		{"throttle without cap", header + rule("id: a", "level: sender", "priority: 1", "condition: sent_24h > 1.0", "actions: [{action: throttle}]", "source: x"), 7, "throttle needs cap_ratio or daily_cap"},
		{"bad duration", header + rule("id: a", "level: sender", "priority: 1", "condition: sent_24h > 1.0", "actions: [{action: pause, duration: soon}]", "source: x"), 7, "bad duration"},
		{"unknown min_sample metric", header + rule("id: a", "level: sender", "priority: 1", "condition: sent_24h > 1.0", "min_sample: {metric: sent_25h, min: 5}", "actions: [{action: alert}]", "source: x"), 7, `unknown metric "sent_25h"`},
		{"yaml syntax", header + "  - id: a\n    level: [sender\n", 3, "yaml: line 3"},
		{"tenant overrides unknown rule", header + okRule("a", 1, "sent_24h > 1.0") + "tenants:\n  acme:\n    disable: [zzz]\n", 11, "tenant acme disables unknown rule"},
		{"recovery type error", header + rule("id: a", "level: sender", "priority: 1", "condition: sent_24h > 1.0", "recovery: sent_24h", "actions: [{action: alert}]", "source: x"), 7, "recovery must be bool"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			diags := Lint([]byte(tc.yaml), "r.yaml")
			for _, d := range diags {
				if d.Severity == SeverityError && d.Line == tc.line && strings.Contains(d.Message, tc.want) {
					if !strings.HasPrefix(d.String(), "r.yaml:") {
						t.Fatalf("diagnostic string %q lacks file:line", d)
					}
					return
				}
			}
			t.Fatalf("no error at line %d containing %q; got:\n%v\n--- yaml\n%s", tc.line, tc.want, diags, tc.yaml)
		})
	}
}

func TestLintCleanAndParseErrors(t *testing.T) {
	good := header + okRule("loose", 2, "complaint_rate_24h >= 0.002") + okRule("strict", 1, "complaint_rate_24h >= 0.003 && delivered_24h >= 500.0")
	if diags := Lint([]byte(good), "g.yaml"); len(diags) != 0 {
		t.Fatalf("stricter rule first must lint clean: %v", diags)
	}
	_, _, err := Parse([]byte(header+okRule("a", 1, "nope > 1.0")), "b.yaml")
	var inv *InvalidError
	if !errors.As(err, &inv) || len(inv.Diagnostics) == 0 || !strings.Contains(err.Error(), "b.yaml:6") {
		t.Fatalf("Parse error = %v", err)
	}
	if _, err := Load("/nonexistent/rules.yaml"); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	warn := header + rule("id: a", "level: sender", "condition: sent_24h > 1.0", "actions: [{action: pause}]")
	diags := Lint([]byte(warn), "w.yaml")
	if len(diags) != 3 || diags[0].Severity != SeverityWarning {
		t.Fatalf("want warnings for missing priority, source and recovery, got %v", diags)
	}
	if _, _, err := Parse([]byte(warn), "w.yaml"); err != nil {
		t.Fatalf("warnings must not fail Parse: %v", err)
	}
}

// The shipped default pack lints without a single diagnostic.
func TestDefaultPackLintsClean(t *testing.T) {
	if diags := Lint(DefaultYAML(), "default.yaml"); len(diags) != 0 {
		t.Fatalf("default pack: %v", diags)
	}
}

func TestLintBlockColumn(t *testing.T) {
	y := header + rule("id: a", "level: sender", "priority: 1", "condition: |", "  sent_24h > 1.0 &&", "    nope_24h > 2.0", "actions: [{action: alert}]", "source: x")
	for _, d := range Lint([]byte(y), "b.yaml") {
		if d.Line == 8 && strings.Contains(d.Message, "nope_24h") {
			if d.Column != 11 {
				t.Fatalf("column = %d, want 11 (where nope_24h starts)", d.Column)
			}
			return
		}
	}
	t.Fatal("no diagnostic for nope_24h at line 8")
}
