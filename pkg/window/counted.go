package window

import (
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Counted returns a copy of ev reduced to the fields the windows read:
// validation (ids, tenant, type, event time and the sub-message its type
// requires), the scopes (Scopes), the counter classification and the
// scalars of placement tests, auth checks and Postmaster stats. Folding
// Counted(ev) changes every window exactly as folding ev does; the
// recipient, message ids, provenance, reply text and diagnostics are left
// out, which halves the event carried on sg.scoped-events.v1. Sub-messages
// are shared with ev, not copied: neither may be modified afterwards.
func Counted(ev *sgv1.Event) *sgv1.Event {
	if ev == nil {
		return nil
	}
	out := &sgv1.Event{
		EventId:       ev.GetEventId(),
		Tenant:        ev.GetTenant(),
		Type:          ev.GetType(),
		OccurredAt:    ev.GetOccurredAt(),
		Sender:        ev.GetSender(),
		SendingDomain: ev.GetSendingDomain(),
		Provider:      ev.GetProvider(),
		Account:       ev.GetAccount(),
		Campaign:      ev.GetCampaign(),
		Variant:       ev.GetVariant(),
		Segment:       ev.GetSegment(),
		ListSource:    ev.GetListSource(),
		Placement:     ev.GetPlacement(),
		Auth:          ev.GetAuth(),
		Postmaster:    ev.GetPostmaster(),
	}
	if b := ev.GetBounce(); b != nil {
		out.Bounce = &sgv1.Bounce{Class: b.GetClass(), SmtpCode: b.GetSmtpCode(), EnhancedCode: b.GetEnhancedCode()}
	}
	if c := ev.GetComplaint(); c != nil {
		out.Complaint = &sgv1.Complaint{FeedbackType: c.GetFeedbackType()}
	}
	if r := ev.GetReply(); r != nil {
		out.Reply = &sgv1.Reply{Category: r.GetCategory()}
	}
	return out
}
