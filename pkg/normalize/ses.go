package normalize

import (
	"bytes"
	"strings"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Amazon SES: both the notification form ("notificationType": Bounce,
// Complaint, Delivery) and the event-publishing form ("eventType": Send,
// Delivery, Bounce, Complaint, Reject, Open, Click, DeliveryDelay,
// Rendering Failure, Subscription), SNS-wrapped ({"Type":"Notification",
// "Message":"<json>"}) or bare. One event per recipient.
//
// Mapping: Send→sent, Delivery→delivered, Bounce→bounced (bounceType and
// bounceSubType go to the classifier), DeliveryDelay→deferred,
// Complaint→complained (source esp) except complaintSubType
// OnAccountSuppressionList→rejected (SES did not send), Reject and
// Rendering Failure→rejected, Open→opened, Click→clicked,
// Subscription→unsubscribed (global when unsubscribeAll, else one per topic
// newly opted out). SNS SubscriptionConfirmation/UnsubscribeConfirmation
// and Subscription records that opt nobody out yield no event.
//
// Open and Click cannot tell which of several recipients acted; the event
// goes to the first destination.

type snsEnvelope struct {
	Type      string     `json:"Type"`
	Message   flexString `json:"Message"`
	Timestamp string     `json:"Timestamp"`
	MessageID string     `json:"MessageId"`
}

type sesMail struct {
	Timestamp     string      `json:"timestamp"`
	Source        string      `json:"source"`
	MessageID     string      `json:"messageId"`
	Destination   []string    `json:"destination"`
	Headers       []sesHeader `json:"headers"`
	CommonHeaders struct {
		MessageID string `json:"messageId"`
	} `json:"commonHeaders"`
	Tags map[string]flexStrings `json:"tags"`
}

type sesHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type sesRecipient struct {
	EmailAddress   string `json:"emailAddress"`
	Status         string `json:"status"`
	Action         string `json:"action"`
	DiagnosticCode string `json:"diagnosticCode"`
}

type sesNotification struct {
	NotificationType string  `json:"notificationType"`
	EventType        string  `json:"eventType"`
	Mail             sesMail `json:"mail"`
	Bounce           *struct {
		BounceType        string         `json:"bounceType"`
		BounceSubType     string         `json:"bounceSubType"`
		BouncedRecipients []sesRecipient `json:"bouncedRecipients"`
		Timestamp         string         `json:"timestamp"`
		FeedbackID        string         `json:"feedbackId"`
		ReportingMTA      string         `json:"reportingMTA"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients  []sesRecipient `json:"complainedRecipients"`
		Timestamp             string         `json:"timestamp"`
		FeedbackID            string         `json:"feedbackId"`
		UserAgent             string         `json:"userAgent"`
		ComplaintFeedbackType string         `json:"complaintFeedbackType"`
		ComplaintSubType      string         `json:"complaintSubType"`
	} `json:"complaint"`
	Delivery *struct {
		Timestamp    string   `json:"timestamp"`
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
	} `json:"delivery"`
	DeliveryDelay *struct {
		Timestamp         string         `json:"timestamp"`
		DelayType         string         `json:"delayType"`
		DelayedRecipients []sesRecipient `json:"delayedRecipients"`
		ReportingMTA      string         `json:"reportingMTA"`
	} `json:"deliveryDelay"`
	Reject *struct {
		Reason string `json:"reason"`
	} `json:"reject"`
	Failure *struct {
		ErrorMessage string `json:"errorMessage"`
		TemplateName string `json:"templateName"`
	} `json:"failure"`
	Open *struct {
		Timestamp string `json:"timestamp"`
	} `json:"open"`
	Click *struct {
		Timestamp string `json:"timestamp"`
		Link      string `json:"link"`
	} `json:"click"`
	Subscription *struct {
		ContactList         string         `json:"contactList"`
		Timestamp           string         `json:"timestamp"`
		Source              string         `json:"source"`
		NewTopicPreferences sesPreferences `json:"newTopicPreferences"`
		OldTopicPreferences sesPreferences `json:"oldTopicPreferences"`
	} `json:"subscription"`
}

type sesPreferences struct {
	UnsubscribeAll          bool `json:"unsubscribeAll"`
	TopicSubscriptionStatus []struct {
		TopicName          string `json:"topicName"`
		SubscriptionStatus string `json:"subscriptionStatus"`
	} `json:"topicSubscriptionStatus"`
}

func parseSES(b *builder) {
	payload := bytes.TrimSpace(b.env.GetPayload())
	var sns snsEnvelope
	if err := decodeJSON(payload, &sns); err != nil {
		b.payloadErr("not an SES or SNS JSON object", err)
		return
	}
	var snsTime *timestamppb.Timestamp
	switch sns.Type {
	case "":
		// Bare SES JSON.
	case "Notification":
		payload = []byte(sns.Message)
		snsTime, _ = rfc3339(sns.Timestamp)
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		return // SNS housekeeping; ingest confirms subscriptions.
	default:
		b.payloadErr("unsupported SNS message type "+sns.Type, nil)
		return
	}
	var n sesNotification
	if err := decodeJSON(payload, &n); err != nil {
		b.payloadErr("malformed SES notification", err)
		return
	}
	kind := firstNonEmpty(n.EventType, n.NotificationType)
	m := n.Mail
	sender := address(m.Source)
	msgID := firstNonEmpty(m.CommonHeaders.MessageID, m.MessageID)
	at := sesAttrs(m)
	mailTime, err := rfc3339(m.Timestamp)
	if err != nil {
		b.payloadErr("bad mail.timestamp", err)
		return
	}
	if mailTime == nil {
		mailTime = snsTime
	}
	base := func(t sgv1.EventType, rcpt string, ts *timestamppb.Timestamp) *sgv1.Event {
		ev := &sgv1.Event{
			Type:        t,
			Recipient:   address(rcpt),
			Sender:      sender,
			MessageId:   msgID,
			SourceEvent: kind,
			OccurredAt:  firstTS(ts, mailTime),
		}
		b.apply(ev, at)
		return ev
	}
	eventTime := func(s string) *timestamppb.Timestamp {
		ts, err := rfc3339(s)
		if err != nil {
			b.payloadErr("bad timestamp", err)
		}
		return ts
	}
	id := func(parts ...string) string { return canonical.EventID("ses", parts...) }

	switch kind {
	case "Bounce":
		bo := n.Bounce
		if bo == nil {
			b.payloadErr("Bounce without a bounce object", nil)
			return
		}
		ts := eventTime(bo.Timestamp)
		if len(bo.BouncedRecipients) == 0 {
			b.payloadErr("Bounce without bouncedRecipients", nil)
			return
		}
		for i, r := range bo.BouncedRecipients {
			ev := base(sgv1.EventType_EVENT_TYPE_BOUNCED, r.EmailAddress, ts)
			ev.Bounce = bounce(bounceIn{
				esp: "ses", espType: bo.BounceType, espSubType: bo.BounceSubType,
				enhanced: r.Status, diagnostic: r.DiagnosticCode, reportingMTA: bo.ReportingMTA,
			})
			ev.EventId = sesID(id, bo.FeedbackID, m.MessageID, r.EmailAddress, kind, bo.Timestamp)
			b.add(i, ev)
		}
	case "Complaint":
		c := n.Complaint
		if c == nil {
			b.payloadErr("Complaint without a complaint object", nil)
			return
		}
		ts := eventTime(c.Timestamp)
		if len(c.ComplainedRecipients) == 0 {
			b.payloadErr("Complaint without complainedRecipients", nil)
			return
		}
		for i, r := range c.ComplainedRecipients {
			var ev *sgv1.Event
			if strings.EqualFold(c.ComplaintSubType, "OnAccountSuppressionList") {
				// SES refused to send to a suppressed address: no complaint happened.
				ev = base(sgv1.EventType_EVENT_TYPE_REJECTED, r.EmailAddress, ts)
				ev.SourceEvent = kind + "/" + c.ComplaintSubType
			} else {
				ev = base(sgv1.EventType_EVENT_TYPE_COMPLAINED, r.EmailAddress, ts)
				ev.Complaint = espComplaint(c.ComplaintFeedbackType, c.UserAgent)
			}
			ev.EventId = sesID(id, c.FeedbackID, m.MessageID, r.EmailAddress, kind, c.Timestamp)
			b.add(i, ev)
		}
	case "Delivery":
		d := n.Delivery
		if d == nil {
			b.payloadErr("Delivery without a delivery object", nil)
			return
		}
		ts := eventTime(d.Timestamp)
		rcpts := d.Recipients
		if len(rcpts) == 0 {
			rcpts = m.Destination
		}
		for i, r := range rcpts {
			ev := base(sgv1.EventType_EVENT_TYPE_DELIVERED, r, ts)
			ev.EventId = id(m.MessageID, r, kind)
			b.add(i, ev)
		}
	case "DeliveryDelay":
		d := n.DeliveryDelay
		if d == nil {
			b.payloadErr("DeliveryDelay without a deliveryDelay object", nil)
			return
		}
		ts := eventTime(d.Timestamp)
		for i, r := range d.DelayedRecipients {
			ev := base(sgv1.EventType_EVENT_TYPE_DEFERRED, r.EmailAddress, ts)
			ev.Bounce = deferral(bounceIn{
				esp: "ses", espType: d.DelayType,
				enhanced: r.Status, diagnostic: r.DiagnosticCode, reportingMTA: d.ReportingMTA,
			})
			ev.EventId = id(m.MessageID, r.EmailAddress, kind, d.Timestamp)
			b.add(i, ev)
		}
	case "Send":
		for i, r := range m.Destination {
			ev := base(sgv1.EventType_EVENT_TYPE_SENT, r, nil)
			ev.EventId = id(m.MessageID, r, kind)
			b.add(i, ev)
		}
	case "Reject", "Rendering Failure", "RenderingFailure":
		diag := ""
		if n.Reject != nil {
			diag = n.Reject.Reason
		}
		if n.Failure != nil {
			diag = n.Failure.ErrorMessage
		}
		for i, r := range m.Destination {
			ev := base(sgv1.EventType_EVENT_TYPE_REJECTED, r, nil)
			if diag != "" {
				ev.Bounce = bounce(bounceIn{esp: "ses", espType: kind, diagnostic: diag})
			}
			ev.EventId = id(m.MessageID, r, kind)
			b.add(i, ev)
		}
	case "Open", "Click":
		var tsText, link string
		t := sgv1.EventType_EVENT_TYPE_OPENED
		if kind == "Open" && n.Open != nil {
			tsText = n.Open.Timestamp
		}
		if kind == "Click" {
			t = sgv1.EventType_EVENT_TYPE_CLICKED
			if n.Click != nil {
				tsText, link = n.Click.Timestamp, n.Click.Link
			}
		}
		if len(m.Destination) == 0 {
			b.payloadErr(kind+" without mail.destination", nil)
			return
		}
		r := m.Destination[0]
		ev := base(t, r, eventTime(tsText))
		ev.EventId = id(m.MessageID, r, kind, tsText, link)
		b.add(0, ev)
	case "Subscription":
		s := n.Subscription
		if s == nil {
			b.payloadErr("Subscription without a subscription object", nil)
			return
		}
		ts := eventTime(s.Timestamp)
		method := sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_MANUAL
		switch s.Source {
		case "UnsubscribeHeader":
			method = sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK
		case "UnsubscribeLink":
			method = sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_LINK
		}
		for i, r := range m.Destination {
			if s.NewTopicPreferences.UnsubscribeAll {
				ev := base(sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, r, ts)
				ev.Unsubscribe = &sgv1.Unsubscribe{Method: method, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL, Topic: s.ContactList}
				ev.EventId = id(m.MessageID, r, kind, s.Timestamp)
				b.add(i, ev)
				continue
			}
			for _, topic := range optedOut(s.NewTopicPreferences, s.OldTopicPreferences) {
				ev := base(sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED, r, ts)
				ev.Unsubscribe = &sgv1.Unsubscribe{Method: method, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_TOPIC, Topic: topic}
				ev.EventId = id(m.MessageID, r, kind, s.Timestamp, topic)
				b.add(i, ev)
			}
		}
	case "":
		b.payloadErr("neither notificationType nor eventType is set", nil)
	default:
		b.payloadErr("unsupported SES event type "+kind, nil)
	}
}

// sesID prefers SES's feedbackId (one per notification; the recipient
// separates the events of a multi-recipient bounce).
func sesID(id func(...string) string, feedbackID, messageID, rcpt, kind, ts string) string {
	if feedbackID != "" {
		return id(feedbackID, rcpt)
	}
	return id(messageID, rcpt, kind, ts)
}

// optedOut lists the topics that are OptOut in now and were not in before.
func optedOut(now, before sesPreferences) []string {
	was := make(map[string]bool, len(before.TopicSubscriptionStatus))
	for _, t := range before.TopicSubscriptionStatus {
		was[t.TopicName] = strings.EqualFold(t.SubscriptionStatus, "OptOut")
	}
	var out []string
	for _, t := range now.TopicSubscriptionStatus {
		if strings.EqualFold(t.SubscriptionStatus, "OptOut") && !was[t.TopicName] {
			out = append(out, t.TopicName)
		}
	}
	return out
}

// sesAttrs gathers attribution from the mail's headers and message tags
// (SES's own "ses:" tags excluded).
func sesAttrs(m sesMail) attrs {
	at := attrs{}
	if len(m.Headers) > 0 {
		at.headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			k := strings.ToLower(h.Name)
			if _, dup := at.headers[k]; !dup {
				at.headers[k] = h.Value
			}
		}
	}
	if len(m.Tags) > 0 {
		at.meta = make(map[string]string, len(m.Tags))
		for k, v := range m.Tags {
			if strings.HasPrefix(k, "ses:") || len(v) == 0 {
				continue
			}
			at.meta[k] = v[0]
		}
	}
	return at
}

func firstTS(ts ...*timestamppb.Timestamp) *timestamppb.Timestamp {
	for _, t := range ts {
		if t != nil {
			return t
		}
	}
	return nil
}
