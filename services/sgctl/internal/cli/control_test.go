package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sendguard/sendguard/pkg/stage/actuator/actuatortest"
)

// TestControlCommands drives sgctl pause/throttle/suppress/unsuppress/
// resume/status end to end through Main against an in-process actuator (a
// real gRPC server and a real embedded broker), checking each effect with
// sgctl check.
func TestControlCommands(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after the actuator stopped
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	s := actuatortest.Start(t, actuatortest.Options{Clock: func() time.Time { return now }})
	t.Setenv("USER", "ops")
	t.Setenv("SENDGUARD_API_KEY", "")
	conn := []string{"--addr", s.Addr, "--api-key", "key-default"}
	sgctl := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := run(t, "", append(args[:1:1], append(append([]string(nil), conn...), args[1:]...)...)...)
		if code != want {
			t.Fatalf("sgctl %v: exit %d, want %d; stderr %s", args, code, want, errOut)
		}
		return out
	}
	verdict := func(sender, rcpt string) string {
		t.Helper()
		var o checkOutput
		if err := json.Unmarshal([]byte(sgctl(0, "check", "--sender", sender, "--recipient", rcpt, "--dry-run")), &o); err != nil {
			t.Fatal(err)
		}
		return o.Verdict
	}

	out := sgctl(0, "pause", "--level", "domain", "--target", "acme.io", "--for", "2h", "--reason", "complaints from seed list")
	var p manualOutput
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("pause output %q: %v", out, err)
	}
	if p.Action != "pause" || p.Level != "domain" || p.Target != "acme.io" || p.Tenant != "default" || p.Rule != "manual" ||
		p.Actor != "ops" || p.Reason != "complaints from seed list" || p.Until != "2026-11-02T12:00:00Z" || !p.Changed ||
		!strings.HasPrefix(p.CommandID, "manual:") {
		t.Errorf("pause output = %+v", p)
	}
	if v := verdict("ann@acme.io", "x@example.org"); v != "DENY" {
		t.Errorf("paused domain: %s, want DENY", v)
	}
	sgctl(0, "throttle", "--level", "sender", "--target", "bob@calm.io", "--daily-cap", "50", "--for", "1d", "--actor", "ann", "--reason", "warming")
	sgctl(0, "suppress", "--level", "recipient", "--target", "vip@example.org", "--reason", "asked by phone")
	if v := verdict("bob@calm.io", "vip@example.org"); v != "DENY" {
		t.Errorf("suppressed recipient: %s, want DENY", v)
	}

	// status --json: the command JSON form plus the time to unpause.
	lines := strings.Split(strings.TrimSpace(sgctl(0, "status", "--json")), "\n")
	got := map[string]statusLine{}
	for _, l := range lines {
		var sl statusLine
		if err := json.Unmarshal([]byte(l), &sl); err != nil {
			t.Fatalf("status line %q: %v", l, err)
		}
		got[sl.Action+" "+sl.Target] = sl
	}
	for key, want := range map[string]string{"pause acme.io": "2h0m0s", "throttle bob@calm.io": "24h0m0s", "suppress vip@example.org": ""} {
		sl, ok := got[key]
		if !ok {
			t.Errorf("status has no %q: %v", key, lines)
			continue
		}
		if sl.TimeToUnpause != want || sl.Tenant != "default" || sl.Rule != "manual" || sl.Reason == "" {
			t.Errorf("status %q = %+v, want time_to_unpause %q with rule and reason", key, sl, want)
		}
	}
	if got["throttle bob@calm.io"].DailyCap != 50 || got["throttle bob@calm.io"].Actor != "ann" {
		t.Errorf("throttle status = %+v", got["throttle bob@calm.io"])
	}
	table := sgctl(0, "status")
	for _, want := range []string{"LEVEL", "acme.io", "2h0m0s", "throttle 50/day", "open-ended", "asked by phone"} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}
	if f := sgctl(0, "status", "--level", "recipient"); strings.Contains(f, "acme.io") || !strings.Contains(f, "vip@example.org") {
		t.Errorf("status --level recipient:\n%s", f)
	}
	// Another tenant's key sees none of it.
	if code, o, _ := run(t, "", "status", "--addr", s.Addr, "--api-key", "key-other", "--json"); code != 0 || o != "" {
		t.Errorf("other tenant's status: exit %d, %q; want nothing", code, o)
	}

	sgctl(0, "unsuppress", "--level", "recipient", "--target", "vip@example.org", "--reason", "consent renewed")
	sgctl(0, "resume", "--level", "domain", "--target", "acme.io", "--reason", "fixed")
	if v := verdict("ann@acme.io", "vip@example.org"); v != "ALLOW" {
		t.Errorf("after resume and unsuppress: %s, want ALLOW", v)
	}
	// Repeating a request id applies once.
	first := sgctl(0, "pause", "--level", "campaign", "--target", "c9", "--reason", "r", "--request-id", "op-7")
	second := sgctl(0, "pause", "--level", "campaign", "--target", "c9", "--reason", "r", "--request-id", "op-7")
	if !strings.Contains(first, `"changed":true`) || !strings.Contains(second, `"changed":false`) {
		t.Errorf("same request id twice: %s then %s", first, second)
	}

	usage := []struct {
		name string
		args []string
		want string
	}{
		{"no reason", []string{"pause", "--level", "domain", "--target", "x.io"}, "--reason is required"},
		{"bad level", []string{"pause", "--level", "galaxy", "--target", "x", "--reason", "r"}, "--level"},
		{"no target", []string{"suppress", "--level", "recipient", "--reason", "r"}, "--target is required"},
		{"until and for", []string{"pause", "--level", "domain", "--target", "x.io", "--reason", "r", "--until", "2030-01-01T00:00:00Z", "--for", "1h"}, "not both"},
		{"bad duration", []string{"pause", "--level", "domain", "--target", "x.io", "--reason", "r", "--for", "soon"}, "--for"},
		{"throttle without cap", []string{"throttle", "--level", "domain", "--target", "x.io", "--reason", "r"}, "--cap-ratio"},
		{"status bad level", []string{"status", "--level", "galaxy"}, "--level"},
	}
	for _, tc := range usage {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(tc.args[:1:1], conn...), tc.args[1:]...)
			code, _, errOut := run(t, "", args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 mentioning %q", code, errOut, tc.want)
			}
		})
	}
	if code, _, errOut := run(t, "", "pause", "--addr", s.Addr, "--level", "domain", "--target", "x.io", "--reason", "r"); code != 2 || !strings.Contains(errOut, "--api-key") {
		t.Errorf("no key: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "", "pause", "--addr", s.Addr, "--api-key", "wrong", "--level", "domain", "--target", "x.io", "--reason", "r"); code != 1 || !strings.Contains(errOut, "Unauthenticated") {
		t.Errorf("bad key: exit %d, %q; want 1 Unauthenticated", code, errOut)
	}
}

func TestParseFor(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"90m", 90 * time.Minute, false},
		{"14d", 14 * 24 * time.Hour, false},
		{"0d", 0, true},
		{"-1h", 0, true},
		{"xd", 0, true},
		{"soon", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseFor(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseFor(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
