package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func samples(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "..", "..", "..", "shared", "samples"}, parts...)...)
}

func TestNormalize(t *testing.T) {
	code, out, errOut := run(t, "", "normalize", "--source", "sendgrid", samples("webhooks", "sendgrid", "anymail_bounce.json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &ev); err != nil {
		t.Fatalf("not protojson: %v\n%s", err, out)
	}
	if ev["type"] != "EVENT_TYPE_BOUNCED" || ev["recipient"] != "noreply@example.com" {
		t.Errorf("event = %v", ev)
	}
	code, _, errOut = run(t, "not json", "normalize", "--source", "ses", "-")
	if code != 1 || !strings.Contains(errOut, "cannot parse as ses") {
		t.Errorf("garbage: exit %d, %q; want 1 with a clear message", code, errOut)
	}
	if code, _, _ := run(t, "", "normalize", "--source", "carrier-pigeon"); code != 2 {
		t.Errorf("unknown source: exit %d, want 2", code)
	}
}

func TestReplayPausesTheComplainingDomain(t *testing.T) {
	code, out, errOut := run(t, "", "replay", "--rules", "default", filepath.Join("testdata", "complaint-spike.jsonl"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var paused, suppressed bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var c struct {
			Action, Level, Target, Tenant, Rule, At string
			Explanation                             *struct{ Metric string }
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if c.Tenant != "default" || c.Rule == "" || c.At == "" {
			t.Errorf("command without tenant, rule or time: %s", sc.Text())
		}
		if c.Action == "pause" && c.Level == "domain" && c.Target == "acme.io" {
			paused = true
			if c.Explanation == nil || c.Explanation.Metric == "" {
				t.Errorf("pause without explanation: %s", sc.Text())
			}
		}
		if c.Action == "suppress" && c.Level == "recipient" && c.Target == "r0@example0.com" {
			suppressed = true
		}
	}
	if !paused || !suppressed {
		t.Fatalf("paused=%v suppressed=%v; output:\n%s", paused, suppressed, out)
	}
}

func TestRulesLint(t *testing.T) {
	code, out, _ := run(t, "", "rules", "lint", filepath.Join("testdata", "bad-rules.yaml"))
	if code != 1 || !strings.Contains(out, "bad-rules.yaml:5") || !strings.Contains(out, "complaint_rat_24h") {
		t.Fatalf("exit %d, output %q; want 1 naming line 5 and the unknown metric", code, out)
	}
}
