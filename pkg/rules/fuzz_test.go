package rules

import (
	"testing"
	"time"
)

// FuzzParse: any input either parses into a rule set whose Lint has no
// errors and which evaluates without panicking, or is refused with at
// least one positioned error.
func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	f.Add([]byte(tenantYAML))
	f.Add([]byte(header + okRule("a", 1, "complaint_rate_24h >= 0.003 || sent_24h > 2.0")))
	f.Add([]byte("version: 1\nrules: {}"))
	f.Add([]byte("- - ["))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, diags, err := Parse(data, "f.yaml")
		if err != nil {
			if rs != nil {
				t.Fatal("rule set returned with an error")
			}
			errs := 0
			for _, d := range diags {
				if d.Severity == SeverityError {
					errs++
					if d.Line <= 0 {
						t.Fatalf("diagnostic without a line: %v", d)
					}
				}
			}
			if errs == 0 {
				t.Fatalf("error %v without error diagnostics", err)
			}
			return
		}
		e := NewEngine(rs)
		for _, r := range rs.Rules {
			s := senderSnap(t0, bad())
			s.Scope.Level = r.Level
			mustDecisions(t, e.Evaluate(s))
			s2 := senderSnap(t0.Add(100*time.Hour), clean())
			s2.Scope.Level = r.Level
			mustDecisions(t, e.Evaluate(s2))
		}
	})
}
