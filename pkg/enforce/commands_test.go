package enforce

import (
	"strings"
	"testing"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/proto"
)

func TestCommandsFromDecision(t *testing.T) {
	dec := &sgv1.Decision{
		DecisionId: "d-42",
		Scope:      &sgv1.Scope{Tenant: "t1", Level: lDomain, Target: "acme.io"},
		Rule:       "complaint_pause",
		Severity:   sgv1.Severity_SEVERITY_CRITICAL,
		At:         ts(t0),
		Until:      ts(t0.Add(72 * time.Hour)),
		Explanation: &sgv1.Explanation{
			Metric: "complaint_rate_24h", Observed: 0.004, Threshold: 0.003, Comparator: ">=",
			SampleSize: 1200, Window: "24h", Summary: "complaints above 0.3 %",
		},
	}
	tests := []struct {
		name    string
		action  sgv1.Action
		shadow  bool
		ratio   float64
		cap     int64
		actions []sgv1.Action
		ids     []string
	}{
		{"pause", aPause, false, 0, 0, []sgv1.Action{aPause, sgv1.Action_ACTION_ALERT}, []string{"d-42:pause", "d-42:alert"}},
		{"throttle", aThrottle, false, 0.7, 500, []sgv1.Action{aThrottle, sgv1.Action_ACTION_ALERT}, []string{"d-42:throttle", "d-42:alert"}},
		{"resume", aResume, false, 0, 0, []sgv1.Action{aResume, sgv1.Action_ACTION_ALERT}, []string{"d-42:resume", "d-42:alert"}},
		{"alert", sgv1.Action_ACTION_ALERT, false, 0, 0, []sgv1.Action{sgv1.Action_ACTION_ALERT}, []string{"d-42:alert"}},
		{"shadow pause", aPause, true, 0, 0, []sgv1.Action{sgv1.Action_ACTION_ALERT}, []string{"d-42:alert"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := proto.Clone(dec).(*sgv1.Decision)
			d.Action, d.Shadow, d.CapRatio, d.DailyCap = tc.action, tc.shadow, tc.ratio, tc.cap
			got := Commands(d)
			if len(got) != len(tc.actions) {
				t.Fatalf("got %d commands, want %d: %v", len(got), len(tc.actions), got)
			}
			for i, c := range got {
				if c.Action != tc.actions[i] || c.CommandId != tc.ids[i] {
					t.Errorf("command %d = %v %q, want %v %q", i, c.Action, c.CommandId, tc.actions[i], tc.ids[i])
				}
				if c.Rule != "complaint_pause" || c.DecisionId != "d-42" || c.CapRatio != tc.ratio || c.DailyCap != tc.cap ||
					!c.Until.AsTime().Equal(t0.Add(72*time.Hour)) || !c.At.AsTime().Equal(t0) ||
					c.Explanation.GetSampleSize() != 1200 || c.Severity != sgv1.Severity_SEVERITY_CRITICAL {
					t.Errorf("command %d lost fields: %v", i, c)
				}
			}
			if tc.shadow && !strings.HasPrefix(got[0].Reason, "shadow: would pause domain acme.io") {
				t.Errorf("shadow reason = %q", got[0].Reason)
			}
			// Deterministic: the same decision gives the same commands.
			again := Commands(d)
			for i := range got {
				if !proto.Equal(got[i], again[i]) {
					t.Errorf("not deterministic: %v vs %v", got[i], again[i])
				}
			}
			// Shadow and alert commands never change enforcement.
			s, _ := newTestState(nil)
			applied := false
			for _, c := range got {
				applied = s.Apply(c) || applied
			}
			enforced := !tc.shadow && (tc.action == aPause || tc.action == aThrottle)
			if applied != enforced {
				t.Errorf("applied = %v, want %v", applied, enforced)
			}
		})
	}
	if Commands(&sgv1.Decision{Action: aPause}) != nil {
		t.Error("decision without scope produced commands")
	}
	noID := proto.Clone(dec).(*sgv1.Decision)
	noID.DecisionId, noID.Action = "", aPause
	a, b := Commands(noID), Commands(noID)
	if a[0].CommandId == "" || a[0].CommandId != b[0].CommandId {
		t.Errorf("hashed ids %q %q", a[0].CommandId, b[0].CommandId)
	}
}

func TestApplyIdempotent(t *testing.T) {
	s, _ := newTestState(func(c *Config) { c.SeenIDs = 4 })
	p := command("t1", lSender, "ann@acme.io", aPause, "r", time.Time{})
	mustApply(t, s, p)
	r := command("t1", lSender, "ann@acme.io", aResume, "r", time.Time{})
	mustApply(t, s, r)
	if s.Apply(p) {
		t.Fatal("redelivered pause applied twice")
	}
	wantVerdict(t, s.Check("t1", req("ann@acme.io", "b@x.com"), t0), allow)
	// The memory of ids is bounded: after SeenIDs newer ids the oldest is forgotten.
	for i := range 4 {
		mustApply(t, s, command("t1", lCampaign, "c"+itoa(i), aPause, "r", time.Time{}))
	}
	if !s.Apply(p) {
		t.Error("forgotten id was not applied")
	}
	for _, bad := range []*sgv1.ControlCommand{
		nil,
		{CommandId: "x", Action: aPause},
		{CommandId: "y", Action: aPause, Scope: &sgv1.Scope{Tenant: "t1", Level: lDomain}},
		{CommandId: "z", Action: aPause, Scope: &sgv1.Scope{Tenant: "t1", Level: 99, Target: "a"}},
	} {
		if s.Apply(bad) {
			t.Errorf("invalid command applied: %v", bad)
		}
	}
}

func event(id string, typ sgv1.EventType, recipient string, at time.Time) *sgv1.Event {
	return &sgv1.Event{EventId: id, Tenant: "t1", Type: typ, OccurredAt: ts(at), Sender: "ann@acme.io", Recipient: recipient}
}

func TestFromEventSuppressions(t *testing.T) {
	type want struct {
		level  sgv1.ScopeLevel
		target string
		reason string
		until  time.Duration // 0: open-ended
	}
	bounce := func(class sgv1.BounceClass, cat sgv1.BounceCategory) *sgv1.Event {
		e := event("e", sgv1.EventType_EVENT_TYPE_BOUNCED, "bob@bigco.com", t0)
		e.Bounce = &sgv1.Bounce{Class: class, Category: cat, SmtpCode: 550, EnhancedCode: "5.1.1"}
		return e
	}
	complaint := func(rcpt string, ft sgv1.FeedbackType) *sgv1.Event {
		e := event("e", sgv1.EventType_EVENT_TYPE_COMPLAINED, rcpt, t0)
		e.Complaint = &sgv1.Complaint{Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL, FeedbackType: ft}
		return e
	}
	reply := func(cat sgv1.ReplyCategory) *sgv1.Event {
		e := event("e", sgv1.EventType_EVENT_TYPE_REPLIED, "bob@bigco.com", t0)
		e.Reply = &sgv1.Reply{Category: cat}
		return e
	}
	day := 24 * time.Hour
	tests := []struct {
		name string
		ev   *sgv1.Event
		want []want
	}{
		{"unsubscribe", event("e", sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, "Bob@BigCo.com", t0),
			[]want{{lRcpt, "bob@bigco.com", ReasonUnsubscribe, 0}}},
		{"hard bounce invalid mailbox", bounce(sgv1.BounceClass_BOUNCE_CLASS_HARD, sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX),
			[]want{{lRcpt, "bob@bigco.com", ReasonHardBounce, 0}}},
		{"hard bounce uncategorised", bounce(sgv1.BounceClass_BOUNCE_CLASS_HARD, sgv1.BounceCategory_BOUNCE_CATEGORY_UNSPECIFIED),
			[]want{{lRcpt, "bob@bigco.com", ReasonHardBounce, 0}}},
		{"hard bounce spam block is the sender's problem", bounce(sgv1.BounceClass_BOUNCE_CLASS_HARD, sgv1.BounceCategory_BOUNCE_CATEGORY_SPAM_BLOCK), nil},
		{"soft bounce", bounce(sgv1.BounceClass_BOUNCE_CLASS_SOFT, sgv1.BounceCategory_BOUNCE_CATEGORY_MAILBOX_FULL), nil},
		{"complaint at a company", complaint("bob@bigco.com", sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE),
			[]want{{lRcpt, "bob@bigco.com", ReasonComplaint, 0}, {lAccount, "bigco.com", ReasonAccountComplaint, 30 * day}}},
		{"complaint from a consumer mailbox", complaint("bob@gmail.com", sgv1.FeedbackType_FEEDBACK_TYPE_UNSPECIFIED),
			[]want{{lRcpt, "bob@gmail.com", ReasonComplaint, 0}}},
		{"not spam report", complaint("bob@bigco.com", sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM), nil},
		{"reply unsubscribe", reply(sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE), []want{{lRcpt, "bob@bigco.com", ReasonDoNotContact, 0}}},
		{"reply complaint", reply(sgv1.ReplyCategory_REPLY_CATEGORY_COMPLAINT), []want{{lRcpt, "bob@bigco.com", ReasonDoNotContact, 0}}},
		{"reply hostile", reply(sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE), []want{{lRcpt, "bob@bigco.com", ReasonDoNotContact, 0}}},
		{"reply not a fit", reply(sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT), []want{{lRcpt, "bob@bigco.com", ReasonNotInterested, 90 * day}}},
		{"reply interested", reply(sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED), nil},
		{"reply not now", reply(sgv1.ReplyCategory_REPLY_CATEGORY_NOT_NOW), nil},
		{"delivered", event("e", sgv1.EventType_EVENT_TYPE_DELIVERED, "bob@bigco.com", t0), nil},
		{"no tenant", &sgv1.Event{Type: sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, Recipient: "a@b.c"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestState(nil)
			got := s.FromEvent(tc.ev)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				c := got[i]
				if c.Action != aSuppress || c.Scope.Level != w.level || c.Scope.Target != w.target || c.Reason != w.reason || c.Scope.Tenant != "t1" {
					t.Errorf("command %d = %v, want %v", i, c, w)
				}
				if w.until == 0 && c.Until != nil || w.until != 0 && !c.Until.AsTime().Equal(t0.Add(w.until)) {
					t.Errorf("command %d until = %v, want +%v", i, c.Until, w.until)
				}
				if c.CommandId == "" || c.Explanation.GetSummary() == "" {
					t.Errorf("command %d lacks id or explanation: %v", i, c)
				}
				mustApply(t, s, c)
			}
			if len(tc.want) > 0 {
				wantVerdict(t, s.Check("t1", req("ann@acme.io", tc.want[0].target), t0.Add(time.Second)), deny)
				// Same event again: same ids, nothing new applied.
				for _, c := range s.FromEvent(tc.ev) {
					if s.Apply(c) {
						t.Errorf("replayed event applied again: %v", c)
					}
				}
			}
		})
	}
}

func applyAll(t *testing.T, s *State, cmds []*sgv1.ControlCommand) {
	t.Helper()
	for _, c := range cmds {
		s.Apply(c)
	}
}

func TestAccountComplaintLasts30Days(t *testing.T) {
	s, _ := newTestState(nil)
	e := event("e1", sgv1.EventType_EVENT_TYPE_COMPLAINED, "bob@bigco.com", t0)
	applyAll(t, s, s.FromEvent(e))
	colleague := req("ann@acme.io", "carol@bigco.com")
	wantVerdict(t, s.Check("t1", colleague, t0.Add(29*24*time.Hour)), deny)
	wantVerdict(t, s.Check("t1", colleague, t0.Add(30*24*time.Hour)), allow)
	// The complainer stays suppressed.
	wantVerdict(t, s.Check("t1", req("ann@acme.io", "bob@bigco.com"), t0.Add(400*24*time.Hour)), deny)
	// A consumer domain is never suppressed as an account.
	applyAll(t, s, s.FromEvent(event("e2", sgv1.EventType_EVENT_TYPE_COMPLAINED, "x@gmail.com", t0)))
	wantVerdict(t, s.Check("t1", req("ann@acme.io", "y@gmail.com"), t0), allow)
}

func TestNotInterestedLasts90Days(t *testing.T) {
	s, _ := newTestState(nil)
	e := event("e1", sgv1.EventType_EVENT_TYPE_REPLIED, "bob@gmail.com", t0)
	e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT}
	applyAll(t, s, s.FromEvent(e))
	r := req("ann@acme.io", "bob@gmail.com")
	wantVerdict(t, s.Check("t1", r, t0.Add(89*24*time.Hour)), deny)
	wantVerdict(t, s.Check("t1", r, t0.Add(90*24*time.Hour)), allow)
}

func TestAccountCooldown(t *testing.T) {
	day := 24 * time.Hour
	neg := func(id, rcpt string, at time.Duration) *sgv1.Event {
		e := event(id, sgv1.EventType_EVENT_TYPE_REPLIED, rcpt, t0.Add(at))
		e.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE}
		return e
	}
	tests := []struct {
		name     string
		events   []*sgv1.Event
		cooldown bool
		lastAt   time.Duration
	}{
		{"two contacts in 14 days", []*sgv1.Event{neg("a", "x@bigco.com", 0), neg("b", "y@bigco.com", 13*day)}, true, 13 * day},
		{"two contacts 14 days apart", []*sgv1.Event{neg("a", "x@bigco.com", 0), neg("b", "y@bigco.com", 14*day)}, false, 0},
		{"one contact twice", []*sgv1.Event{neg("a", "x@bigco.com", 0), neg("b", "x@bigco.com", day)}, false, 0},
		{"different accounts", []*sgv1.Event{neg("a", "x@bigco.com", 0), neg("b", "y@other.com", day)}, false, 0},
		{"consumer mailboxes are no account", []*sgv1.Event{neg("a", "x@gmail.com", 0), neg("b", "y@gmail.com", day)}, false, 0},
		{"unsubscribe and complaint count", []*sgv1.Event{
			event("a", sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, "x@bigco.com", t0),
			event("b", sgv1.EventType_EVENT_TYPE_COMPLAINED, "y@bigco.com", t0.Add(day)),
		}, true, day},
		{"hard bounces do not count", []*sgv1.Event{
			{EventId: "a", Tenant: "t1", Type: sgv1.EventType_EVENT_TYPE_BOUNCED, OccurredAt: ts(t0), Recipient: "x@bigco.com", Bounce: &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD}},
			{EventId: "b", Tenant: "t1", Type: sgv1.EventType_EVENT_TYPE_BOUNCED, OccurredAt: ts(t0), Recipient: "y@bigco.com", Bounce: &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD}},
		}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestState(nil)
			var cool *sgv1.ControlCommand
			for _, e := range tc.events {
				for _, c := range s.FromEvent(e) {
					if c.Rule == RuleCooldown {
						cool = c
					}
					s.Apply(c)
				}
			}
			if (cool != nil) != tc.cooldown {
				t.Fatalf("cooldown = %v, want %v", cool, tc.cooldown)
			}
			if !tc.cooldown {
				return
			}
			if cool.Scope.Level != lAccount || cool.Scope.Target != "bigco.com" || cool.Reason != ReasonAccountCooldown {
				t.Errorf("cooldown command = %v", cool)
			}
			end := t0.Add(tc.lastAt + 14*day)
			if !cool.Until.AsTime().Equal(end) {
				t.Errorf("until = %v, want %v", cool.Until.AsTime(), end)
			}
			fresh := req("ann@acme.io", "new.person@bigco.com")
			wantVerdict(t, s.Check("t1", fresh, end.Add(-time.Second)), deny)
			// The account complaint suppression (30 d) may outlast the cooldown.
			if tc.name != "unsubscribe and complaint count" {
				wantVerdict(t, s.Check("t1", fresh, end), allow)
			}
		})
	}
}

func TestCooldownMemoryIsBounded(t *testing.T) {
	s, _ := newTestState(func(c *Config) { c.MaxCooldownAccounts = 10 })
	for i := range 100 {
		e := event("e"+itoa(i), sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, "x@co"+itoa(i)+".com", t0.Add(time.Duration(i)*time.Minute))
		s.FromEvent(e)
	}
	s.cdMu.Lock()
	n := len(s.negatives)
	s.cdMu.Unlock()
	if n > 10 {
		t.Errorf("%d accounts remembered, want ≤ 10", n)
	}
	s.Sweep(t0.Add(30 * 24 * time.Hour))
	s.cdMu.Lock()
	n = len(s.negatives)
	s.cdMu.Unlock()
	if n != 0 {
		t.Errorf("%d accounts after sweep, want 0", n)
	}
}

func TestRoleAccountFromEvent(t *testing.T) {
	s, _ := newTestState(func(c *Config) { c.SuppressRoleAccounts = true })
	e := event("e1", sgv1.EventType_EVENT_TYPE_DELIVERED, "info@bigco.com", t0)
	cmds := s.FromEvent(e)
	if len(cmds) != 1 || cmds[0].Reason != ReasonRoleAccount {
		t.Fatalf("commands = %v", cmds)
	}
	mustApply(t, s, cmds[0])
	if again := s.FromEvent(event("e2", sgv1.EventType_EVENT_TYPE_DELIVERED, "info@bigco.com", t0)); len(again) != 0 {
		t.Errorf("suppressed role account suppressed again: %v", again)
	}
	flagged := event("e3", sgv1.EventType_EVENT_TYPE_SENT, "team-lead@bigco.com", t0)
	flagged.RoleAccount = true
	if got := s.FromEvent(flagged); len(got) != 1 {
		t.Errorf("flagged role account: %v", got)
	}
	off, _ := newTestState(nil)
	if got := off.FromEvent(e); len(got) != 0 {
		t.Errorf("role suppression off: %v", got)
	}
}

func TestCommandKey(t *testing.T) {
	tests := []struct {
		c    *sgv1.ControlCommand
		want string
	}{
		{command("t1", lDomain, "Acme.io", aPause, "r", time.Time{}), "t1|domain|acme.io"},
		{command("t1", lDomain, "acme.io", aResume, "r", time.Time{}), "t1|domain|acme.io"},
		{command("t1", lRcpt, "a@b.c", aSuppress, "r", time.Time{}), "t1|recipient|a@b.c|suppression"},
		{command("t1", lRcpt, "a@b.c", aUnsuppress, "r", time.Time{}), "t1|recipient|a@b.c|suppression"},
		{WarmupCommand("t1", "a@b.c", t0), "t1|sender|a@b.c|warmup"},
		{command("t1", lTenant, "", aPause, "r", time.Time{}), "t1|tenant|t1"},
		{&sgv1.ControlCommand{}, ""},
	}
	for _, tc := range tests {
		if got := CommandKey(tc.c); got != tc.want {
			t.Errorf("CommandKey(%v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}
