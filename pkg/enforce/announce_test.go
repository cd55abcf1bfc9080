package enforce

import (
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestAnnounce(t *testing.T) {
	s, _ := newTestState(nil)
	dom := sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN
	alert := command("t1", dom, "acme.io", sgv1.Action_ACTION_ALERT, "r1", time.Time{})
	pause := command("t1", dom, "acme.io", sgv1.Action_ACTION_PAUSE, "r1", time.Time{})
	noID := command("t1", dom, "acme.io", sgv1.Action_ACTION_ALERT, "r1", time.Time{})
	noID.CommandId = ""
	bad := command("", dom, "acme.io", sgv1.Action_ACTION_ALERT, "r1", time.Time{})
	otherTenant := command("t2", dom, "acme.io", sgv1.Action_ACTION_ALERT, "r1", time.Time{})
	otherTenant.CommandId = alert.CommandId
	tests := []struct {
		name string
		cmd  *sgv1.ControlCommand
		want bool
	}{
		{"new alert", alert, true},
		{"same alert again", alert, false},
		{"same id at another tenant", otherTenant, true},
		{"not an alert", pause, false},
		{"alert without id", noID, true},
		{"alert without id again", noID, true},
		{"alert without tenant", bad, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Announce(tc.cmd); got != tc.want {
				t.Errorf("Announce = %v, want %v", got, tc.want)
			}
		})
	}
	if s.Apply(alert) {
		t.Error("Apply of an announced alert changed the state")
	}
}

func TestSeen(t *testing.T) {
	s, _ := newTestState(nil)
	c := command("t1", sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, "ann@acme.io", sgv1.Action_ACTION_PAUSE, RuleManual, time.Time{})
	if s.Seen("t1", c.CommandId) {
		t.Fatal("seen before Apply")
	}
	if !s.Apply(c) {
		t.Fatal("Apply: no change")
	}
	tests := []struct {
		name, tenant, id string
		want             bool
	}{
		{"applied id", "t1", c.CommandId, true},
		{"other tenant", "t2", c.CommandId, false},
		{"unknown id", "t1", "nope", false},
		{"empty id", "t1", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Seen(tc.tenant, tc.id); got != tc.want {
				t.Errorf("Seen(%q, %q) = %v, want %v", tc.tenant, tc.id, got, tc.want)
			}
		})
	}
}
