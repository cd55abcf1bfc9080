package normalize

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// SparkPost webhooks: a JSON array of {"msys":{"<class>_event":{…}}}
// (a single object is accepted too). An empty msys is SparkPost's ping and
// yields nothing.
//
// Mapping: injection→sent, delivery→delivered, delay→deferred,
// bounce and out_of_band→bounced with bounce_class given to the
// classifier, except classes 25 and 26 (Admin Failure, Smart Send
// Suppression: SparkPost never attempted delivery)→rejected, 60
// (Auto-Reply)→replied (category ooo), 80 (Subscribe)→no event, 90
// (Unsubscribe request by mail)→unsubscribed (reply, global);
// policy_rejection, generation_failure and generation_rejection→rejected;
// spam_complaint→complained (source esp, fbtype); open, initial_open,
// amp_open and amp_initial_open→opened; click and amp_click→clicked;
// list_unsubscribe→unsubscribed (one_click), link_unsubscribe→unsubscribed
// (link). relay_*, ab_test_*, ingest_* and sms_status events yield no
// event.
//
// Bounce classes (SparkPost "Bounce Classification Codes"): 1 Undetermined,
// 10 Invalid Recipient (hard), 20 Soft Bounce, 21 DNS Failure, 22 Mailbox
// Full, 23 Too Large, 24 Timeout, 25 Admin Failure, 26 Smart Send
// Suppression, 30 Generic Bounce: No RCPT (hard), 40 Generic Bounce, 50 Mail
// Block, 51 Spam Block, 52 Spam Content, 53 Prohibited Attachment, 54
// Relaying Denied, 60 Auto-Reply, 70 Transient Failure, 80 Subscribe, 90
// Unsubscribe (hard), 100 Challenge-Response. classify.ESPRules holds their
// class and category.
//
// Attribution: campaign_id names the campaign, rcpt_meta is metadata,
// rcpt_tags and tags are tags (only key:value tags count).

type sparkpostItem struct {
	Msys map[string]json.RawMessage `json:"msys"`
}

type sparkpostEvent struct {
	Type          string      `json:"type"`
	EventID       flexString  `json:"event_id"`
	Timestamp     flexString  `json:"timestamp"`
	RcptTo        string      `json:"rcpt_to"`
	RawRcptTo     string      `json:"raw_rcpt_to"`
	FriendlyFrom  string      `json:"friendly_from"`
	MsgFrom       string      `json:"msg_from"`
	MessageID     string      `json:"message_id"`
	CampaignID    string      `json:"campaign_id"`
	BounceClass   flexString  `json:"bounce_class"`
	ErrorCode     flexInt     `json:"error_code"`
	Reason        string      `json:"reason"`
	RawReason     string      `json:"raw_reason"`
	FBType        string      `json:"fbtype"`
	ReportBy      string      `json:"report_by"`
	TargetLinkURL string      `json:"target_link_url"`
	RcptMeta      flexMap     `json:"rcpt_meta"`
	RcptTags      flexStrings `json:"rcpt_tags"`
	Tags          flexStrings `json:"tags"`
}

func parseSparkPost(b *builder) {
	items, err := jsonItems(b.env.GetPayload())
	if err != nil {
		b.payloadErr("not a SparkPost event batch", err)
		return
	}
	for i, raw := range items {
		var it sparkpostItem
		if err := json.Unmarshal(raw, &it); err != nil {
			b.failf(i, "decode item: %w", err)
			continue
		}
		classes := make([]string, 0, len(it.Msys))
		for class := range it.Msys {
			classes = append(classes, class)
		}
		sort.Strings(classes)
		for _, class := range classes {
			b.sparkpostEvent(i, class, it.Msys[class])
		}
	}
}

func (b *builder) sparkpostEvent(i int, class string, body json.RawMessage) {
	var e sparkpostEvent
	if err := json.Unmarshal(body, &e); err != nil {
		b.failf(i, "decode %s: %w", class, err)
		return
	}
	ts, err := unixTime(string(e.Timestamp))
	if err != nil {
		b.failf(i, "timestamp: %w", err)
		return
	}
	ev := &sgv1.Event{
		Recipient:   address(firstNonEmpty(e.RcptTo, e.RawRcptTo)),
		Sender:      firstNonEmpty(address(e.FriendlyFrom), address(e.MsgFrom)),
		OccurredAt:  ts,
		MessageId:   strings.TrimSpace(e.MessageID),
		Campaign:    strings.TrimSpace(e.CampaignID),
		SourceEvent: e.Type,
	}
	bin := bounceIn{esp: "sparkpost", espType: string(e.BounceClass), smtpCode: int64(e.ErrorCode),
		diagnostic: firstNonEmpty(e.RawReason, e.Reason)}
	switch e.Type {
	case "injection":
		ev.Type = sgv1.EventType_EVENT_TYPE_SENT
	case "delivery":
		ev.Type = sgv1.EventType_EVENT_TYPE_DELIVERED
	case "delay":
		ev.Type = sgv1.EventType_EVENT_TYPE_DEFERRED
		ev.Bounce = deferral(bin)
	case "bounce", "out_of_band":
		ev.SourceEvent = e.Type + "/" + string(e.BounceClass)
		switch string(e.BounceClass) {
		case "25", "26":
			ev.Type = sgv1.EventType_EVENT_TYPE_REJECTED
			ev.Bounce = bounce(bin)
		case "60":
			ev.Type = sgv1.EventType_EVENT_TYPE_REPLIED
			ev.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_OOO}
		case "80":
			return
		case "90":
			ev.Type = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
			ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_REPLY, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
		default:
			ev.Type = sgv1.EventType_EVENT_TYPE_BOUNCED
			ev.Bounce = bounce(bin)
		}
	case "policy_rejection", "generation_failure", "generation_rejection":
		ev.Type = sgv1.EventType_EVENT_TYPE_REJECTED
		if bin.diagnostic != "" || bin.smtpCode != 0 {
			ev.Bounce = bounce(bin)
		}
	case "spam_complaint":
		ev.Type = sgv1.EventType_EVENT_TYPE_COMPLAINED
		ev.Complaint = espComplaint(e.FBType, e.ReportBy)
	case "open", "initial_open", "amp_open", "amp_initial_open":
		ev.Type = sgv1.EventType_EVENT_TYPE_OPENED
	case "click", "amp_click":
		ev.Type = sgv1.EventType_EVENT_TYPE_CLICKED
	case "list_unsubscribe":
		ev.Type = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
		ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
	case "link_unsubscribe":
		ev.Type = sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED
		ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_LINK, Scope: sgv1.UnsubscribeScope_UNSUBSCRIBE_SCOPE_GLOBAL}
	case "sms_status":
		return
	case "":
		b.failf(i, "%s.type: missing", class)
		return
	default:
		if strings.HasPrefix(e.Type, "relay_") || strings.HasPrefix(e.Type, "ab_test_") ||
			strings.HasPrefix(e.Type, "ingest_") || strings.HasPrefix(class, "relay_") {
			return
		}
		b.failf(i, "%s.type: unsupported SparkPost event %q", class, e.Type)
		return
	}
	if id := strings.TrimSpace(string(e.EventID)); id != "" {
		ev.EventId = nativeID("sparkpost", id)
	} else {
		ev.EventId = canonical.EventID("sparkpost", class, e.Type, e.MessageID, firstNonEmpty(e.RcptTo, e.RawRcptTo),
			string(e.Timestamp), e.TargetLinkURL, string(e.BounceClass))
	}
	tags := append(append([]string(nil), e.RcptTags...), e.Tags...)
	b.apply(ev, attrs{meta: e.RcptMeta, tags: tags})
	b.add(i, ev)
}
