package rules

import "testing"

func TestZZTry(t *testing.T) {
	rs, diags, err := Parse(defaultYAML, "default.yaml")
	for _, d := range diags {
		t.Log(d.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs.Rules {
		cr := rs.base.byID[r.ID]
		t.Logf("%s %s enter=%s br=%d fb=%d atoms=%v ex=%+v", r.ID, LevelName(r.Level), StateName(r.Enter), len(cr.branches), len(cr.fallback), cr.atoms, cr.branches[0].explain.metric+"|"+cr.branches[0].explain.comparator+"|"+cr.branches[0].explain.thresholdText+"|"+cr.branches[0].explain.window+"|"+cr.branches[0].explain.sample)
	}
	bad := []byte("version: x\nrules:\n  - id: a\n    level: sender\n    priority: 1\n    condition: complaint_rate_25h >= 0.1\n    actions: [{action: pause}]\n  - id: b\n    level: sender\n    priority: 2\n    condition: |\n      complaint_rate_24h >= 0.1 &&\n        2 * sent_24h > 3\n    actions: [{action: pause}]\n")
	for _, d := range Lint(bad, "bad.yaml") {
		t.Log(d.String())
	}
}
