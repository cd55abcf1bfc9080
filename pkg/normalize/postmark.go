package normalize

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Postmark webhooks: one record per request (an array of records is
// accepted too), told apart by RecordType.
//
// Mapping: Delivery→delivered; Bounce→bounced with Type (or TypeCode) given
// to the classifier, except Type Transient ("message delayed")→deferred,
// SpamComplaint→complained, Unsubscribe→
// unsubscribed (reply, global), AutoResponder→replied (category ooo),
// ManuallyDeactivated, TemplateRenderingFailed, SMTPApiError and
// InboundError→rejected, and Subscribe, AddressChange, OpenRelayTest and
// Unconfirmed, which yield no event; SpamComplaint→complained (source
// esp); SubscriptionChange with SuppressSending and SuppressionReason
// ManualSuppression→unsubscribed (link when Origin is Recipient, else
// manual) — suppressions for HardBounce or SpamComplaint repeat a signal
// Postmark already sent as its own record and resubscribes carry none, so
// they yield no event; Open→opened; Click→clicked.
//
// Ids: Bounce and SpamComplaint records carry Postmark's own ID; others are
// identified by MessageID, RecordType, recipient and time.
//
// Attribution: Metadata is metadata, Tag is a tag.

// postmarkTypeCodes maps Postmark bounce TypeCode to Type, for records that
// omit Type (https://postmarkapp.com/developer/api/bounce-api#bounce-types).
var postmarkTypeCodes = map[int64]string{
	1: "HardBounce", 2: "Transient", 16: "Unsubscribe", 32: "Subscribe", 64: "AutoResponder",
	128: "AddressChange", 256: "DnsError", 512: "SpamNotification", 1024: "OpenRelayTest",
	2048: "Unknown", 4096: "SoftBounce", 8192: "VirusNotification", 16384: "ChallengeVerification",
	100000: "BadEmailAddress", 100001: "SpamComplaint", 100002: "ManuallyDeactivated",
	100003: "Unconfirmed", 100006: "Blocked", 100007: "SMTPApiError", 100008: "InboundError",
	100009: "DMARCPolicy", 100010: "TemplateRenderingFailed",
}

type postmarkRecord struct {
	RecordType        string     `json:"RecordType"`
	ID                flexString `json:"ID"`
	Type              string     `json:"Type"`
	TypeCode          flexInt    `json:"TypeCode"`
	MessageID         string     `json:"MessageID"`
	Description       string     `json:"Description"`
	Details           string     `json:"Details"`
	Email             string     `json:"Email"`
	Recipient         string     `json:"Recipient"`
	From              string     `json:"From"`
	BouncedAt         string     `json:"BouncedAt"`
	DeliveredAt       string     `json:"DeliveredAt"`
	ReceivedAt        string     `json:"ReceivedAt"`
	ChangedAt         string     `json:"ChangedAt"`
	Tag               string     `json:"Tag"`
	Metadata          flexMap    `json:"Metadata"`
	OriginalLink      string     `json:"OriginalLink"`
	SuppressSending   bool       `json:"SuppressSending"`
	SuppressionReason string     `json:"SuppressionReason"`
	Origin            string     `json:"Origin"`
	ServerID          flexString `json:"ServerID"`
}

func parsePostmark(b *builder) {
	items, err := jsonItems(b.env.GetPayload())
	if err != nil {
		b.payloadErr("not a Postmark webhook record", err)
		return
	}
	for i, raw := range items {
		b.postmarkItem(i, raw)
	}
}

func (b *builder) postmarkItem(i int, raw json.RawMessage) {
	var r postmarkRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		b.failf(i, "decode record: %w", err)
		return
	}
	timeText := firstNonEmpty(r.BouncedAt, r.DeliveredAt, r.ReceivedAt, r.ChangedAt)
	ts, err := rfc3339(timeText)
	if err != nil {
		b.failf(i, "timestamp: %w", err)
		return
	}
	ev := &sgv1.Event{
		Recipient:   address(firstNonEmpty(r.Recipient, r.Email)),
		Sender:      address(r.From),
		OccurredAt:  ts,
		MessageId:   strings.TrimSpace(r.MessageID),
		SourceEvent: r.RecordType,
	}
	bounceType := r.Type
	if bounceType == "" && r.TypeCode != 0 {
		bounceType = postmarkTypeCodes[int64(r.TypeCode)]
	}
	switch r.RecordType {
	case "Delivery":
		ev.Type = sgv1.EventType_EVENT_TYPE_DELIVERED
	case "Bounce":
		ev.SourceEvent = r.RecordType + "/" + bounceType
		diag := firstNonEmpty(r.Details, r.Description)
		switch bounceType {
		case "SpamComplaint":
			ev.Type = sgv1.EventType_EVENT_TYPE_COMPLAINED
			ev.Complaint = espComplaint("abuse", "")
		case "Unsubscribe":
			ev.Type = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
			ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_REPLY, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
		case "AutoResponder":
			ev.Type = sgv1.EventType_EVENT_TYPE_REPLIED
			ev.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_OOO}
		case "ManuallyDeactivated", "TemplateRenderingFailed", "SMTPApiError", "InboundError":
			ev.Type = sgv1.EventType_EVENT_TYPE_REJECTED
			ev.Bounce = bounce(bounceIn{esp: "postmark", espType: bounceType, diagnostic: diag})
		case "Transient":
			// "Message delayed": the receiving server deferred it.
			ev.Type = sgv1.EventType_EVENT_TYPE_DEFERRED
			ev.Bounce = deferral(bounceIn{esp: "postmark", espType: bounceType, diagnostic: diag})
		case "Subscribe", "AddressChange", "OpenRelayTest", "Unconfirmed":
			return
		default:
			ev.Type = sgv1.EventType_EVENT_TYPE_BOUNCED
			ev.Bounce = bounce(bounceIn{esp: "postmark", espType: bounceType, diagnostic: diag})
		}
	case "SpamComplaint":
		ev.Type = sgv1.EventType_EVENT_TYPE_COMPLAINED
		ev.Complaint = espComplaint("abuse", "")
	case "SubscriptionChange":
		if !r.SuppressSending || r.SuppressionReason != "ManualSuppression" {
			return
		}
		method := sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_MANUAL
		if r.Origin == "Recipient" {
			method = sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_LINK
		}
		ev.Type = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
		ev.Unsubscribe = &sgv1.Unsubscribe{Method: method, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
	case "Open":
		ev.Type = sgv1.EventType_EVENT_TYPE_OPENED
	case "Click":
		ev.Type = sgv1.EventType_EVENT_TYPE_CLICKED
	case "":
		b.failf(i, "RecordType: missing")
		return
	default:
		b.failf(i, "RecordType: unsupported Postmark record %q", r.RecordType)
		return
	}
	if id := string(r.ID); id != "" && (r.RecordType == "Bounce" || r.RecordType == "SpamComplaint") {
		ev.EventId = nativeID("postmark", id)
	} else {
		ev.EventId = canonical.EventID("postmark", r.MessageID, r.RecordType, ev.Recipient, timeText, r.OriginalLink,
			strconv.FormatBool(r.SuppressSending))
	}
	var tags []string
	if r.Tag != "" {
		tags = []string{r.Tag}
	}
	b.apply(ev, attrs{meta: r.Metadata, tags: tags, plainTagIsCampaign: true})
	b.add(i, ev)
}
