package enforce

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/sendguard/sendguard/pkg/classify"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Commands translates a rule decision into the control commands the
// actuator publishes, in order.
//
// An enforced decision whose action is pause, throttle, resume, suppress or
// unsuppress yields that command followed by an alert command for the same
// scope (every pause, throttle and recovery is announced); an alert decision
// yields only the alert. A shadow decision yields only an alert whose reason
// starts with "shadow:" and names the action it would have taken: shadow
// rules are audited and visible to operators but never enforced, and Apply
// ignores alerts. Scope, rule, at, until, cap_ratio, daily_cap, explanation,
// severity and decision_id are copied. command_id is decision_id + ":" +
// action word (":alert" for the alert), so a replayed decision yields the
// same ids; a decision without an id gets one hashed from its content.
// issued_at is left for the transport to stamp. A decision without a tenant,
// level or action yields nothing.
func Commands(dec *sgv1.Decision) []*sgv1.ControlCommand {
	sc := dec.GetScope()
	act := dec.GetAction()
	if sc.GetTenant() == "" || LevelWord(sc.GetLevel()) == "" || ActionWord(act) == "" || act == sgv1.Action_ACTION_UNSPECIFIED {
		return nil
	}
	id := dec.GetDecisionId()
	if id == "" {
		id = "dec-" + hashOf(sc.GetTenant(), LevelWord(sc.GetLevel()), sc.GetTarget(), dec.GetRule(),
			ActionWord(act), dec.GetAt().AsTime().Format(time.RFC3339Nano))
	}
	base := func(a sgv1.Action) *sgv1.ControlCommand {
		c := &sgv1.ControlCommand{
			CommandId:  id + ":" + ActionWord(a),
			Scope:      proto.Clone(sc).(*sgv1.Scope),
			Action:     a,
			Rule:       dec.GetRule(),
			At:         dec.GetAt(),
			Until:      dec.GetUntil(),
			CapRatio:   dec.GetCapRatio(),
			DailyCap:   dec.GetDailyCap(),
			DecisionId: dec.GetDecisionId(),
			Severity:   dec.GetSeverity(),
		}
		if dec.GetExplanation() != nil {
			c.Explanation = proto.Clone(dec.GetExplanation()).(*sgv1.Explanation)
		}
		if dec.GetAt() != nil {
			c.At = timestamppb.New(dec.GetAt().AsTime())
		}
		if dec.GetUntil() != nil {
			c.Until = timestamppb.New(dec.GetUntil().AsTime())
		}
		return c
	}
	summary := fmt.Sprintf("%s %s %s", ActionWord(act), LevelWord(sc.GetLevel()), sc.GetTarget())
	if s := dec.GetExplanation().GetSummary(); s != "" {
		summary += ": " + s
	}
	alert := base(sgv1.Action_ACTION_ALERT)
	if dec.GetShadow() {
		alert.Reason = "shadow: would " + summary
		return []*sgv1.ControlCommand{alert}
	}
	if act == sgv1.Action_ACTION_ALERT {
		alert.Reason = dec.GetExplanation().GetSummary()
		return []*sgv1.ControlCommand{alert}
	}
	alert.Reason = summary
	return []*sgv1.ControlCommand{base(act), alert}
}

func hashOf(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:12])
}

// senderSideBounce lists hard-bounce categories caused by the sender's
// reputation or setup, not by the address: they feed rules but do not
// suppress the recipient.
var senderSideBounce = map[sgv1.BounceCategory]bool{
	sgv1.BounceCategory_BOUNCE_CATEGORY_POLICY_BLOCK:    true,
	sgv1.BounceCategory_BOUNCE_CATEGORY_SPAM_BLOCK:      true,
	sgv1.BounceCategory_BOUNCE_CATEGORY_RATE_LIMITED:    true,
	sgv1.BounceCategory_BOUNCE_CATEGORY_AUTH_FAILURE:    true,
	sgv1.BounceCategory_BOUNCE_CATEGORY_CONTENT:         true,
	sgv1.BounceCategory_BOUNCE_CATEGORY_MAILBOX_FULL:    true,
	sgv1.BounceCategory_BOUNCE_CATEGORY_UNSPECIFIED:     false,
	sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX: false,
}

// FromEvent returns the suppressions an event causes at once, without
// waiting for windows. Times come from the event (occurred_at), so a replay
// gives the same commands; ids are derived from event_id.
//
//   - unsubscribed (any method or scope) → recipient suppressed, open-ended.
//   - bounced, class hard → recipient suppressed, open-ended, unless the
//     category is sender-side (policy/spam block, rate limit, auth, content,
//     mailbox full).
//   - complained (not feedback type not_spam) → recipient suppressed
//     open-ended, and the account (company domain; never a consumer mailbox
//     domain) for Config.AccountComplaintFor (30 d). A sender in warm-up has
//     its ramp frozen at today's cap ("60–100 week 2 while clean").
//   - replied unsubscribe, complaint or hostile → recipient suppressed
//     (do not contact), open-ended; not_a_fit → suppressed for
//     Config.NotInterestedFor (90 d).
//   - with Config.SuppressRoleAccounts, any event naming a role recipient
//     (role_account or a role local part) not yet suppressed → suppressed.
//   - complaints, unsubscribes and negative replies are negative contacts:
//     Config.CooldownContacts distinct recipients of one account within
//     Config.CooldownWindow put the account in cooldown (rule "cooldown") for
//     Config.CooldownFor from the last one.
//
// FromEvent keeps the bounded per-account contact memory; it does not apply
// the commands it returns (the caller applies and publishes them). Events
// of a type for which (*State).MayEnforce is false yield nothing and leave
// the state untouched, so a caller may skip them without decoding: keep
// MayEnforce in step with the cases above.
func (s *State) FromEvent(ev *sgv1.Event) []*sgv1.ControlCommand {
	tn := ev.GetTenant()
	recipient := strings.ToLower(strings.TrimSpace(ev.GetRecipient()))
	if tn == "" || recipient == "" {
		return nil
	}
	at := s.cfg.Clock()
	if ev.GetOccurredAt() != nil {
		at = ev.GetOccurredAt().AsTime()
	}
	rdom := strings.ToLower(ev.GetRecipientDomain())
	if rdom == "" {
		rdom = domainOf(recipient)
	}
	account := strings.ToLower(ev.GetAccount())
	if account == "" || classify.IsConsumerDomain(account) {
		account = accountOf(rdom)
	}
	eid := ev.GetEventId()
	if eid == "" {
		eid = hashOf(tn, ev.GetType().String(), recipient, at.Format(time.RFC3339Nano))
	}
	mk := func(level sgv1.ScopeLevel, target, rule, reason string, until time.Time, summary string) *sgv1.ControlCommand {
		c := &sgv1.ControlCommand{
			CommandId: "ev:" + eid + ":suppress:" + LevelWord(level) + ":" + target,
			Scope:     &sgv1.Scope{Tenant: tn, Level: level, Target: target},
			Action:    sgv1.Action_ACTION_SUPPRESS,
			Rule:      rule,
			At:        timestamppb.New(at),
			Reason:    reason,
			Severity:  sgv1.Severity_SEVERITY_WARNING,
			Explanation: &sgv1.Explanation{
				Metric: eventWord(ev.GetType()), Observed: 1, Threshold: 1, Comparator: ">=",
				SampleSize: 1, Window: "event", Summary: summary,
				Source: "seed: suppression policy",
			},
		}
		if !until.IsZero() {
			c.Until = timestamppb.New(until)
		}
		return c
	}
	rcpt := sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT
	var out []*sgv1.ControlCommand
	negative := false
	switch ev.GetType() {
	case sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED:
		out = append(out, mk(rcpt, recipient, RuleSuppression, ReasonUnsubscribe, time.Time{},
			"recipient unsubscribed (event "+eid+")"))
		negative = true
	case sgv1.EventType_EVENT_TYPE_BOUNCED:
		b := ev.GetBounce()
		if b.GetClass() == sgv1.BounceClass_BOUNCE_CLASS_HARD && !senderSideBounce[b.GetCategory()] {
			out = append(out, mk(rcpt, recipient, RuleSuppression, ReasonHardBounce, time.Time{},
				fmt.Sprintf("hard bounce %d %s (event %s)", b.GetSmtpCode(), b.GetEnhancedCode(), eid)))
		}
	case sgv1.EventType_EVENT_TYPE_COMPLAINED:
		if ev.GetComplaint().GetFeedbackType() == sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM {
			break
		}
		out = append(out, mk(rcpt, recipient, RuleSuppression, ReasonComplaint, time.Time{},
			"recipient complained (event "+eid+")"))
		if account != "" {
			c := mk(sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, account, RuleSuppression, ReasonAccountComplaint,
				at.Add(s.cfg.AccountComplaintFor), "complaint from "+recipient+": account suppressed (event "+eid+")")
			c.Explanation.Window = s.cfg.AccountComplaintFor.String()
			out = append(out, c)
		}
		if c := s.warmupHold(tn, strings.ToLower(ev.GetSender()), eid, at); c != nil {
			out = append(out, c)
		}
		negative = true
	case sgv1.EventType_EVENT_TYPE_REPLIED:
		switch cat := ev.GetReply().GetCategory(); cat {
		case sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE, sgv1.ReplyCategory_REPLY_CATEGORY_COMPLAINT,
			sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE:
			out = append(out, mk(rcpt, recipient, RuleSuppression, ReasonDoNotContact, time.Time{},
				"reply classified "+replyWord(cat)+" (event "+eid+")"))
			negative = true
		case sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT:
			c := mk(rcpt, recipient, RuleSuppression, ReasonNotInterested, at.Add(s.cfg.NotInterestedFor),
				"reply classified not_a_fit (event "+eid+")")
			c.Explanation.Window = s.cfg.NotInterestedFor.String()
			out = append(out, c)
			negative = true
		}
	}
	if s.cfg.SuppressRoleAccounts && (ev.GetRoleAccount() || isRoleAddress(recipient)) && !s.suppressed(tn, recipient, at) {
		c := mk(rcpt, recipient, RuleSuppression, ReasonRoleAccount, time.Time{}, "role account")
		c.CommandId = "role:" + recipient
		out = append(out, c)
	}
	if negative && account != "" {
		if n := s.noteNegative(tn, account, recipient, at); n >= s.cfg.CooldownContacts {
			c := mk(sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, account, RuleCooldown, ReasonAccountCooldown,
				at.Add(s.cfg.CooldownFor),
				fmt.Sprintf("%d contacts at %s with negative signals within %s", n, account, s.cfg.CooldownWindow))
			c.CommandId = "ev:" + eid + ":cooldown:" + account
			c.Explanation.Metric = "negative_contacts"
			c.Explanation.Observed = float64(n)
			c.Explanation.Threshold = float64(s.cfg.CooldownContacts)
			c.Explanation.SampleSize = int64(n)
			c.Explanation.Window = s.cfg.CooldownWindow.String()
			out = append(out, c)
		}
	}
	return out
}

// MayEnforce reports whether FromEvent may return commands for an event of
// type t under a Config without SuppressRoleAccounts: true for unsubscribed,
// bounced, complained and replied, false for every other type (sent,
// delivered, deferred, opened, clicked, placement_test, auth_check,
// postmaster_stats, rejected, unspecified, and numbers this version does
// not define). The converse does not hold: a soft bounce, a not_spam
// complaint or a positive reply is reported true and yields nothing.
//
// Only the type is read, so a consumer can decide from a record header
// (kafka.HeaderEvent) whether the record is worth decoding. Per event
// type, MayEnforce is exact: false means no event of that type can yield a
// command (or change the state), true that some can.
func MayEnforce(t sgv1.EventType) bool {
	switch t {
	case sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, sgv1.EventType_EVENT_TYPE_BOUNCED,
		sgv1.EventType_EVENT_TYPE_COMPLAINED, sgv1.EventType_EVENT_TYPE_REPLIED:
		return true
	default:
		return false
	}
}

// MayEnforce reports whether s.FromEvent may return commands for an event
// of type t: the package-level MayEnforce(t), or true for every type when
// Config.SuppressRoleAccounts is set (any event naming a role recipient
// suppresses it, and the role is a property of the recipient, not of the
// type). When it is false, FromEvent returns nothing for any event of type
// t and changes nothing.
func (s *State) MayEnforce(t sgv1.EventType) bool {
	return s.cfg.SuppressRoleAccounts || MayEnforce(t)
}

func eventWord(t sgv1.EventType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "EVENT_TYPE_"))
}

func replyWord(c sgv1.ReplyCategory) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "REPLY_CATEGORY_"))
}

// suppressed reports whether a recipient has a live suppression.
func (s *State) suppressed(tn, recipient string, now time.Time) bool {
	t := s.tenantFor(tn, false)
	if t == nil {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	p := t.supps[scopeKey{sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, recipient}]
	return p != nil && p.live(now)
}

// warmupHold freezes a warming sender's ramp at its cap on the day of a
// complaint.
func (s *State) warmupHold(tn, sender, eid string, at time.Time) *sgv1.ControlCommand {
	t := s.tenantFor(tn, false)
	if t == nil || sender == "" {
		return nil
	}
	t.mu.RLock()
	w := t.warmups[sender]
	t.mu.RUnlock()
	c := s.warmupCap(w, dayOf(at))
	if c == 0 || (w.hold > 0 && w.hold <= c) {
		return nil
	}
	cmd := proto.Clone(w.cmd).(*sgv1.ControlCommand)
	cmd.CommandId = "ev:" + eid + ":warmup-hold:" + sender
	cmd.DailyCap = c
	cmd.Reason = "warm-up held after a complaint"
	cmd.Explanation = &sgv1.Explanation{
		Metric: "complaints", Observed: 1, Threshold: 1, Comparator: ">=", SampleSize: 1, Window: "event",
		Summary: fmt.Sprintf("complaint during warm-up: ramp frozen at %d/day", c),
		Source:  "seed: send ramping SOP (week 2 only while complaints stay under control)",
	}
	return cmd
}

// noteNegative records a negative contact at an account and returns how many
// distinct contacts it had within the cooldown window ending at at.
func (s *State) noteNegative(tn, account, recipient string, at time.Time) int {
	key := tn + "|" + account
	floor := at.Add(-s.cfg.CooldownWindow)
	s.cdMu.Lock()
	defer s.cdMu.Unlock()
	nc := s.negatives[key]
	if nc == nil {
		if len(s.negatives) >= s.cfg.MaxCooldownAccounts {
			s.evictNegatives(floor)
		}
		nc = &negContacts{contacts: make(map[string]time.Time)}
		s.negatives[key] = nc
	}
	if old, ok := nc.contacts[recipient]; !ok || at.After(old) {
		nc.contacts[recipient] = at
	}
	if at.After(nc.last) {
		nc.last = at
	}
	n := 0
	for r, t := range nc.contacts {
		switch {
		case !t.After(floor):
			delete(nc.contacts, r)
		case !t.After(at):
			n++
		}
	}
	// Bound one account's memory: keep the most recent contacts only.
	for len(nc.contacts) > 4*s.cfg.CooldownContacts {
		var oldR string
		var oldT time.Time
		for r, t := range nc.contacts {
			if oldR == "" || t.Before(oldT) {
				oldR, oldT = r, t
			}
		}
		delete(nc.contacts, oldR)
	}
	return n
}

// evictNegatives drops accounts with no contact after floor, or, when none
// is that old, the account with the oldest last contact. Callers hold cdMu.
func (s *State) evictNegatives(floor time.Time) {
	var oldK string
	var oldT time.Time
	removed := false
	for k, nc := range s.negatives {
		if !nc.last.After(floor) {
			delete(s.negatives, k)
			removed = true
			continue
		}
		if oldK == "" || nc.last.Before(oldT) {
			oldK, oldT = k, nc.last
		}
	}
	if !removed && oldK != "" {
		delete(s.negatives, oldK)
	}
}

// CommandKey is the key of a command on the control and state topics:
// tenant|level|target for pauses, throttles and resumes (ARCHITECTURE.md),
// with "|suppression" appended for suppress/unsuppress, "|warmup" for
// warm-up records and "|alert" for alerts, so that each of a scope's
// independent states survives compaction.
func CommandKey(cmd *sgv1.ControlCommand) string {
	k, tn, ok := commandScope(cmd)
	if !ok {
		return ""
	}
	base := tn + "|" + LevelWord(k.level) + "|" + k.target
	switch {
	case cmd.GetRule() == RuleWarmup && k.level == sgv1.ScopeLevel_SCOPE_LEVEL_SENDER &&
		(cmd.GetAction() == sgv1.Action_ACTION_THROTTLE || cmd.GetAction() == sgv1.Action_ACTION_RESUME):
		return base + "|warmup"
	case cmd.GetAction() == sgv1.Action_ACTION_SUPPRESS || cmd.GetAction() == sgv1.Action_ACTION_UNSUPPRESS:
		return base + "|suppression"
	case cmd.GetAction() == sgv1.Action_ACTION_ALERT:
		return base + "|alert"
	default:
		return base
	}
}

// Current returns the state-topic record for the key of cmd after it was
// applied: the key (CommandKey) and the live command now held there, or nil
// when the scope has no such state (a tombstone for a compacted topic).
func (s *State) Current(cmd *sgv1.ControlCommand) (string, *sgv1.ControlCommand) {
	key := CommandKey(cmd)
	k, tn, ok := commandScope(cmd)
	if !ok || cmd.GetAction() == sgv1.Action_ACTION_ALERT {
		return key, nil
	}
	t := s.tenantFor(tn, false)
	if t == nil {
		return key, nil
	}
	now := s.cfg.Clock()
	t.mu.RLock()
	defer t.mu.RUnlock()
	switch {
	case strings.HasSuffix(key, "|warmup"):
		if w := t.warmups[k.target]; w != nil {
			return key, warmupRecord(w)
		}
	case strings.HasSuffix(key, "|suppression"):
		if p := t.supps[k]; p != nil && p.live(now) {
			return key, proto.Clone(p.cmd).(*sgv1.ControlCommand)
		}
	default:
		if g := t.gates[k]; g != nil && g.live(now) {
			return key, proto.Clone(g.cmd).(*sgv1.ControlCommand)
		}
	}
	return key, nil
}

// warmupRecord is the command that restores w: its latest throttle, or,
// when ended early, that throttle followed by the resume folded in as the
// field until (set to the end day).
func warmupRecord(w *warmup) *sgv1.ControlCommand {
	c := proto.Clone(w.cmd).(*sgv1.ControlCommand)
	c.DailyCap = w.hold
	if w.done {
		c.Action = sgv1.Action_ACTION_RESUME
	}
	return c
}
