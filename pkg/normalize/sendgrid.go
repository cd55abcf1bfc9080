package normalize

import (
	"bytes"
	"encoding/json"

	"strings"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// SendGrid Event Webhook: a JSON array of event objects (a single object is
// accepted too).
//
// Mapping: processed→sent, delivered→delivered, deferred→deferred,
// bounce→bounced (type bounce/blocked and bounce_classification go to the
// classifier), dropped→rejected (SendGrid refused to send), spamreport→
// complained (source esp), unsubscribe→unsubscribed (link, global),
// group_unsubscribe→unsubscribed (link, topic = asm_group_id), open→opened
// (source_event "machine_open" for sg_machine_open), click→clicked.
// group_resubscribe and account_status_change yield no event; any other
// event name is an item error.
//
// Attribution: every top-level key SendGrid does not define is a custom
// arg; category (string or array) and marketing_campaign_name/id are tags
// and campaign.

// sendgridKnown are the keys SendGrid defines; everything else is a custom arg.
var sendgridKnown = map[string]bool{
	"email": true, "timestamp": true, "smtp-id": true, "event": true, "category": true,
	"sg_event_id": true, "sg_message_id": true, "reason": true, "status": true, "response": true,
	"attempt": true, "type": true, "ip": true, "tls": true, "useragent": true, "url": true,
	"url_offset": true, "asm_group_id": true, "marketing_campaign_id": true,
	"marketing_campaign_name": true, "marketing_campaign_version": true, "marketing_campaign_split_id": true,
	"bounce_classification": true, "cert_err": true, "sg_machine_open": true, "sg_template_id": true,
	"sg_template_name": true, "send_at": true, "pool": true, "sg_user_id": true, "anymail_id": true,
	"singlesend_id": true, "singlesend_name": true, "template_id": true, "template_version_id": true,
	"mc_stats": true, "phase_id": true, "post_type": true, "unique_args": true, "custom_args": true,
}

type sendgridEvent struct {
	Email                 string      `json:"email"`
	Timestamp             flexString  `json:"timestamp"`
	SMTPID                string      `json:"smtp-id"`
	Event                 string      `json:"event"`
	Category              flexStrings `json:"category"`
	SGEventID             string      `json:"sg_event_id"`
	SGMessageID           string      `json:"sg_message_id"`
	Reason                string      `json:"reason"`
	Status                string      `json:"status"`
	Response              string      `json:"response"`
	Attempt               flexString  `json:"attempt"`
	Type                  string      `json:"type"`
	BounceClassification  string      `json:"bounce_classification"`
	URL                   string      `json:"url"`
	ASMGroupID            flexString  `json:"asm_group_id"`
	MachineOpen           flexString  `json:"sg_machine_open"`
	MarketingCampaignID   flexString  `json:"marketing_campaign_id"`
	MarketingCampaignName string      `json:"marketing_campaign_name"`
	UniqueArgs            flexMap     `json:"unique_args"`
	CustomArgs            flexMap     `json:"custom_args"`
}

func parseSendGrid(b *builder) {
	items, err := jsonItems(b.env.GetPayload())
	if err != nil {
		b.payloadErr("not a SendGrid event array", err)
		return
	}
	for i, raw := range items {
		b.sendgridItem(i, raw)
	}
}

// jsonItems splits a JSON array into its elements; a lone object is a
// one-element batch.
func jsonItems(payload []byte) ([]json.RawMessage, error) {
	payload = bytes.TrimSpace(payload)
	if len(payload) > 0 && payload[0] == '{' {
		if !json.Valid(payload) {
			var v any
			return nil, decodeJSON(payload, &v)
		}
		return []json.RawMessage{payload}, nil
	}
	var items []json.RawMessage
	if err := decodeJSON(payload, &items); err != nil {
		return nil, err
	}
	return items, nil
}

func (b *builder) sendgridItem(i int, raw json.RawMessage) {
	var e sendgridEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		b.failf(i, "decode event: %w", err)
		return
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		b.failf(i, "decode event: %w", err)
		return
	}
	ts, err := unixTime(string(e.Timestamp))
	if err != nil {
		b.failf(i, "timestamp: %w", err)
		return
	}
	ev := &sgv1.Event{
		Recipient:   address(e.Email),
		OccurredAt:  ts,
		MessageId:   strings.TrimSpace(e.SMTPID),
		SourceEvent: e.Event,
	}
	switch e.Event {
	case "processed":
		ev.Type = sgv1.EventType_EVENT_TYPE_SENT
	case "delivered":
		ev.Type = sgv1.EventType_EVENT_TYPE_DELIVERED
	case "deferred":
		ev.Type = sgv1.EventType_EVENT_TYPE_DEFERRED
		ev.Bounce = deferral(bounceIn{esp: "sendgrid", espType: "deferred", enhanced: e.Status,
			diagnostic: firstNonEmpty(e.Response, e.Reason)})
	case "bounce":
		ev.Type = sgv1.EventType_EVENT_TYPE_BOUNCED
		ev.Bounce = bounce(bounceIn{esp: "sendgrid", espType: firstNonEmpty(e.Type, "bounce"),
			espSubType: e.BounceClassification, enhanced: e.Status, diagnostic: firstNonEmpty(e.Reason, e.Response)})
	case "dropped":
		ev.Type = sgv1.EventType_EVENT_TYPE_REJECTED
		ev.Bounce = bounce(bounceIn{esp: "sendgrid", espType: "dropped", enhanced: e.Status, diagnostic: e.Reason})
	case "spamreport":
		ev.Type = sgv1.EventType_EVENT_TYPE_COMPLAINED
		ev.Complaint = espComplaint("abuse", "")
	case "unsubscribe":
		ev.Type = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
		ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_LINK, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
	case "group_unsubscribe":
		ev.Type = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
		ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_LINK, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_TOPIC, Topic: string(e.ASMGroupID)}
	case "open":
		ev.Type = sgv1.EventType_EVENT_TYPE_OPENED
		if e.MachineOpen == "true" {
			ev.SourceEvent = "machine_open"
		}
	case "click":
		ev.Type = sgv1.EventType_EVENT_TYPE_CLICKED
	case "group_resubscribe", "account_status_change":
		return // no deliverability signal
	case "":
		b.failf(i, "event: missing")
		return
	default:
		b.failf(i, "event: unsupported SendGrid event %q", e.Event)
		return
	}
	if e.SGEventID != "" {
		ev.EventId = nativeID("sendgrid", e.SGEventID)
	} else {
		ev.EventId = canonical.EventID("sendgrid", e.SGMessageID, e.Email, e.Event, string(e.Timestamp), e.URL, string(e.Attempt))
	}

	meta := make(map[string]string)
	for k, v := range all {
		if sendgridKnown[k] {
			continue
		}
		var s flexString
		if err := s.UnmarshalJSON(v); err == nil {
			meta[k] = string(s)
		}
	}
	for k, v := range e.UniqueArgs {
		meta[k] = v
	}
	for k, v := range e.CustomArgs {
		meta[k] = v
	}
	if e.MarketingCampaignName != "" {
		ev.Campaign = e.MarketingCampaignName
	} else if e.MarketingCampaignID != "" {
		ev.Campaign = string(e.MarketingCampaignID)
	}
	b.apply(ev, attrs{meta: meta, tags: e.Category, plainTagIsCampaign: true})
	b.add(i, ev)
}
