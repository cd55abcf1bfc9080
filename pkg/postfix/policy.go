// Package postfix is a Postfix policy delegation server (check_policy_service,
// SMTPD_POLICY_README): Postfix's smtpd sends one request per recipient as
// name=value lines ended by an empty line, and reads back "action=…" and an
// empty line, reusing the connection for many requests. Each request is
// mapped to a permission Check for the listener's tenant and answered with an
// access(5) action:
//
//	ALLOW                         → DUNNO: no opinion, the next restriction decides
//	DENY, a suppression among the → REJECT 5.7.1 <reason>: 554, permanent; the
//	  reasons                        recipient must never be mailed, so the
//	                                 sending MTA bounces it at once
//	DENY otherwise (pause)        → DEFER_IF_PERMIT 4.7.1 <reason>: 450, temporary
//	DEFER (throttle, caps)        → DEFER_IF_PERMIT 4.7.1 <reason>, retry after …
//
// Why pauses defer instead of reject: a pause is temporary by construction
// (it has an until, or ends with a resume when the rule recovers), so the
// message is not wrong, only early. A 4xx keeps it in the sending MTA's
// queue, retried on its schedule and delivered once the pause is lifted; a
// 5xx would bounce it and lose it for good. DEFER_IF_PERMIT rather than
// DEFER: it only takes effect when the rest of smtpd_recipient_restrictions
// would permit the mail, so mail Postfix rejects anyway (unknown user,
// relay denied) gets its definitive 5xx instead of a pointless retry.
//
// Requests other than smtpd_access_policy at protocol_state RCPT, and mail
// with the null sender (bounces, DSNs: not outreach), are answered DUNNO
// without a Check. Use it in smtpd_recipient_restrictions:
//
//	smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10040, permit_mynetworks, reject
package postfix

import (
	"context"
	"fmt"
	"strings"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Checker answers a permission check for a tenant; enforce.State (through a
// clock) and remote PermissionService clients implement it. It must not
// fail: an unreachable backend answers DEFER.
type Checker interface {
	Check(ctx context.Context, tenant string, req *sgv1.CheckRequest) *sgv1.CheckResponse
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context, tenant string, req *sgv1.CheckRequest) *sgv1.CheckResponse

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context, tenant string, req *sgv1.CheckRequest) *sgv1.CheckResponse {
	return f(ctx, tenant, req)
}

// Actions of the replies.
const (
	ActionDunno         = "DUNNO"
	ActionDeferIfPermit = "DEFER_IF_PERMIT"
	ActionReject        = "REJECT"
)

// Mapping says which request attributes make the Check.
type Mapping struct {
	// Tenant is the tenant of every request of the listener (required).
	Tenant string
	// SenderAttr names the attribute holding the sender mailbox: "sender"
	// (the envelope sender, default) or "sasl_username" when authenticated
	// submission users are the mailboxes that are paused and throttled.
	SenderAttr string
	// CampaignAttr and VariantAttr name attributes carrying the campaign
	// and variant when the client sends them ("campaign", "variant" by
	// default; Postfix itself sends neither, policy clients of other MTAs
	// and proxies can). Empty values are ignored.
	CampaignAttr, VariantAttr string
	// DryRun checks without consuming throttle capacity.
	DryRun bool
}

func (m Mapping) withDefaults() Mapping {
	if m.SenderAttr == "" {
		m.SenderAttr = "sender"
	}
	if m.CampaignAttr == "" {
		m.CampaignAttr = "campaign"
	}
	if m.VariantAttr == "" {
		m.VariantAttr = "variant"
	}
	return m
}

// CheckRequest returns the Check for a policy request, or nil when the
// request is not one to check (not smtpd_access_policy at RCPT, null
// sender, no recipient).
func (m Mapping) CheckRequest(req Request) *sgv1.CheckRequest {
	m = m.withDefaults()
	if req["request"] != "smtpd_access_policy" || !strings.EqualFold(req["protocol_state"], "RCPT") {
		return nil
	}
	sender := strings.TrimSpace(req[m.SenderAttr])
	recipient := strings.TrimSpace(req["recipient"])
	if sender == "" || recipient == "" {
		return nil
	}
	return &sgv1.CheckRequest{
		Sender:    sender,
		Recipient: recipient,
		Campaign:  strings.TrimSpace(req[m.CampaignAttr]),
		Variant:   strings.TrimSpace(req[m.VariantAttr]),
		DryRun:    m.DryRun,
	}
}

// ReplyFor maps a Check answer to the policy reply (see the package doc).
func ReplyFor(resp *sgv1.CheckResponse) Reply {
	switch resp.GetVerdict() {
	case sgv1.Verdict_VERDICT_ALLOW:
		return Reply{Action: ActionDunno}
	case sgv1.Verdict_VERDICT_DENY:
		for _, r := range resp.GetReasons() {
			if r.GetAction() == sgv1.Action_ACTION_SUPPRESS {
				return Reply{Action: ActionReject + " 5.7.1 " + reasonText(resp, 0)}
			}
		}
		return Reply{Action: ActionDeferIfPermit + " 4.7.1 " + reasonText(resp, 0)}
	default: // DEFER, and an unknown verdict: never send on doubt
		return Reply{Action: ActionDeferIfPermit + " 4.7.1 " + reasonText(resp, resp.GetRetryAfter().AsDuration())}
	}
}

// maxText bounds the reply text; SMTP reply lines are at most 512 octets.
const maxText = 200

// reasonText is a one-line, printable-ASCII summary of the reasons.
func reasonText(resp *sgv1.CheckResponse, retry time.Duration) string {
	var b strings.Builder
	b.WriteString("sendguard:")
	for i, r := range resp.GetReasons() {
		if i > 0 {
			b.WriteString(";")
		}
		b.WriteString(" ")
		switch {
		case r.GetDetail() != "":
			b.WriteString(r.GetDetail())
		case r.GetRule() != "":
			b.WriteString(r.GetRule())
		}
		if r.GetLevel() != "" && r.GetTarget() != "" {
			fmt.Fprintf(&b, " (%s %s)", r.GetLevel(), r.GetTarget())
		}
	}
	if len(resp.GetReasons()) == 0 {
		b.WriteString(" " + strings.ToLower(strings.TrimPrefix(resp.GetVerdict().String(), "VERDICT_")))
	}
	if retry > 0 {
		fmt.Fprintf(&b, "; retry after %s", retry.Round(time.Second))
	}
	return sanitize(b.String())
}

// sanitize keeps printable ASCII (no CR/LF that would break the protocol
// or the SMTP reply) and bounds the length.
func sanitize(s string) string {
	out := make([]byte, 0, min(len(s), maxText))
	for i := 0; i < len(s) && len(out) < maxText; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out = append(out, c)
	}
	return string(out)
}
