package normalize

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Mailgun webhooks v3: {"signature":{…},"event-data":{…}} (a bare
// event-data object is accepted too). The signature is checked by ingest.
//
// Mapping: accepted→sent, delivered→delivered, failed with severity
// permanent→bounced, except reasons suppress-bounce, suppress-complaint,
// suppress-unsubscribe and espblock→rejected (Mailgun never attempted
// delivery); failed with severity temporary→deferred; rejected→rejected
// (one event per address of the To header when the event names no
// recipient); complained→complained (source esp); unsubscribed→
// unsubscribed (link, global); opened→opened; clicked→clicked. stored,
// list_member_uploaded and list_uploaded yield no event; any other event
// name is an error.
//
// Attribution: user-variables are metadata, tags are tags, the legacy
// campaigns list names the campaign.

type mailgunPayload struct {
	EventData *json.RawMessage `json:"event-data"`
}

type mailgunEvent struct {
	Event     string     `json:"event"`
	ID        string     `json:"id"`
	Timestamp flexString `json:"timestamp"`
	Recipient string     `json:"recipient"`
	Severity  string     `json:"severity"`
	Reason    string     `json:"reason"`
	URL       string     `json:"url"`
	Envelope  struct {
		Sender string `json:"sender"`
	} `json:"envelope"`
	Message struct {
		Headers struct {
			To        string `json:"to"`
			From      string `json:"from"`
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
	DeliveryStatus struct {
		Code         flexInt `json:"code"`
		Message      string  `json:"message"`
		Description  string  `json:"description"`
		EnhancedCode string  `json:"enhanced-code"`
		BounceCode   string  `json:"bounce-code"`
		MXHost       string  `json:"mx-host"`
	} `json:"delivery-status"`
	Reject struct {
		Reason      string `json:"reason"`
		Description string `json:"description"`
	} `json:"reject"`
	Tags          flexStrings `json:"tags"`
	UserVariables flexMap     `json:"user-variables"`
	Campaigns     []struct {
		ID   flexString `json:"id"`
		Name string     `json:"name"`
	} `json:"campaigns"`
}

func parseMailgun(b *builder) {
	payload := bytes.TrimSpace(b.env.GetPayload())
	var wrapped mailgunPayload
	if err := decodeJSON(payload, &wrapped); err != nil {
		b.payloadErr("not a Mailgun webhook object", err)
		return
	}
	data := payload
	if wrapped.EventData != nil {
		data = *wrapped.EventData
	}
	var e mailgunEvent
	if err := json.Unmarshal(data, &e); err != nil {
		b.payloadErr("malformed event-data", err)
		return
	}
	ts, err := unixTime(string(e.Timestamp))
	if err != nil {
		b.payloadErr("bad timestamp", err)
		return
	}
	ds := e.DeliveryStatus
	diag := firstNonEmpty(strings.TrimSpace(ds.Message), strings.TrimSpace(ds.Description))
	bin := bounceIn{
		esp: "mailgun", espType: e.Severity, espSubType: e.Reason,
		smtpCode: int64(ds.Code), enhanced: firstNonEmpty(ds.EnhancedCode, ds.BounceCode),
		diagnostic: diag, reportingMTA: ds.MXHost,
	}
	ev := &sgv1.Event{
		OccurredAt:  ts,
		Sender:      firstNonEmpty(address(e.Envelope.Sender), address(e.Message.Headers.From)),
		MessageId:   strings.TrimSpace(e.Message.Headers.MessageID),
		SourceEvent: e.Event,
	}
	switch e.Event {
	case "accepted":
		ev.Type = sgv1.EventType_EVENT_TYPE_SENT
	case "delivered":
		ev.Type = sgv1.EventType_EVENT_TYPE_DELIVERED
	case "failed":
		switch {
		case strings.EqualFold(e.Severity, "temporary"):
			ev.Type = sgv1.EventType_EVENT_TYPE_DEFERRED
			ev.Bounce = deferral(bin)
		case strings.HasPrefix(e.Reason, "suppress-") || e.Reason == "espblock":
			ev.Type = sgv1.EventType_EVENT_TYPE_REJECTED
			ev.Bounce = bounce(bin)
		default:
			ev.Type = sgv1.EventType_EVENT_TYPE_BOUNCED
			ev.Bounce = bounce(bin)
		}
		ev.SourceEvent = e.Event + "/" + e.Severity
	case "rejected":
		ev.Type = sgv1.EventType_EVENT_TYPE_REJECTED
		if r := firstNonEmpty(e.Reject.Reason, e.Reject.Description); r != "" {
			ev.Bounce = bounce(bounceIn{esp: "mailgun", espType: "rejected", diagnostic: r})
		}
	case "complained":
		ev.Type = sgv1.EventType_EVENT_TYPE_COMPLAINED
		ev.Complaint = espComplaint("abuse", "")
	case "unsubscribed":
		ev.Type = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
		ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_LINK, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
	case "opened":
		ev.Type = sgv1.EventType_EVENT_TYPE_OPENED
	case "clicked":
		ev.Type = sgv1.EventType_EVENT_TYPE_CLICKED
	case "stored", "list_member_uploaded", "list_member_upload_error", "list_uploaded":
		return
	case "":
		b.payloadErr("event-data.event is missing", nil)
		return
	default:
		b.payloadErr("unsupported Mailgun event "+e.Event, nil)
		return
	}
	at := attrs{meta: e.UserVariables, tags: e.Tags, plainTagIsCampaign: true}
	if len(e.Campaigns) > 0 {
		ev.Campaign = firstNonEmpty(e.Campaigns[0].Name, string(e.Campaigns[0].ID))
	}

	rcpts := []string{e.Recipient}
	if strings.TrimSpace(e.Recipient) == "" {
		rcpts = addressList(e.Message.Headers.To)
		if len(rcpts) == 0 {
			rcpts = []string{""} // fails validation: recipient required
		}
	}
	for i, r := range rcpts {
		one := ev
		if i > 0 {
			one = cloneEvent(ev)
		}
		one.Recipient = address(r)
		switch {
		case e.ID != "" && len(rcpts) == 1:
			one.EventId = nativeID("mailgun", e.ID)
		case e.ID != "":
			one.EventId = canonical.EventID("mailgun", e.ID, r)
		default:
			one.EventId = canonical.EventID("mailgun", e.Event, r, string(e.Timestamp), one.MessageId, e.URL, e.Severity, e.Reason)
		}
		b.apply(one, at)
		b.add(i, one)
	}
}
