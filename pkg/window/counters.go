package window

import (
	"strings"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// counter indexes the dense per-bucket counters.
type counter uint8

const (
	cSent counter = iota
	cDelivered
	cDeferred
	cHardBounces
	cSoftBounces
	cDeliveryErrors
	cComplaints
	cUnsubscribes
	cOpens
	cClicks
	cReplies
	cPositiveReplies
	cNegativeReplies
	cOOOReplies
	cPlacementTests
	cPlacementInbox
	cPlacementSpam
	cAuthChecks // internal: the denominator of auth_failure_rate
	cAuthFailures
	cRejected
	nCounters
)

// counterNames are the catalogue count bases (pkg/metrics Counts) of the
// dense counters; "" for internal counters that are not published as counts.
var counterNames = [nCounters]string{
	cSent:            "sent",
	cDelivered:       "delivered",
	cDeferred:        "deferred",
	cHardBounces:     "hard_bounces",
	cSoftBounces:     "soft_bounces",
	cDeliveryErrors:  "delivery_errors",
	cComplaints:      "complaints",
	cUnsubscribes:    "unsubscribes",
	cOpens:           "opens",
	cClicks:          "clicks",
	cReplies:         "replies",
	cPositiveReplies: "positive_replies",
	cNegativeReplies: "negative_replies",
	cOOOReplies:      "ooo_replies",
	cPlacementTests:  "placement_tests",
	cPlacementInbox:  "placement_inbox",
	cPlacementSpam:   "placement_spam",
	cAuthChecks:      "",
	cAuthFailures:    "auth_failures",
	cRejected:        "rejected",
}

// xkey indexes the sparse breakdown counters stored beside the dense ones.
type xkey uint8

const (
	nReplyCategories = 10 // REPLY_CATEGORY_UNSPECIFIED .. HOSTILE
	nProviders       = 6  // PROVIDER_UNSPECIFIED .. OTHER
	nFolders         = 5  // PLACEMENT_FOLDER_UNSPECIFIED .. MISSING

	xReplyBase       xkey = 0                                    // + reply category
	xPlacementBase   xkey = xReplyBase + nReplyCategories        // + provider*nFolders + folder
	xProviderNegBase xkey = xPlacementBase + nProviders*nFolders // + provider; day tier only
	nX                    = int(xProviderNegBase) + nProviders   // 46
)

// delta is what one event adds to a bucket.
type delta struct {
	c   [4]counter
	nc  int
	x   [2]xkey // added in every tier
	nx  int
	neg int // provider index of a negative signal (day tier), -1 for none
}

func (d *delta) add(c counter) { d.c[d.nc] = c; d.nc++ }
func (d *delta) addX(x xkey)   { d.x[d.nx] = x; d.nx++ }

// classifyEvent maps an event to its counter increments (the table in
// doc.go). It reports false for an event that adds no counter (postmaster
// stats, a not-spam feedback report).
func classifyEvent(ev *sgv1.Event) (delta, bool) {
	d := delta{neg: -1}
	prov := int(eventProvider(ev))
	switch ev.GetType() {
	case sgv1.EventType_EVENT_TYPE_SENT:
		d.add(cSent)
	case sgv1.EventType_EVENT_TYPE_DELIVERED:
		d.add(cDelivered)
	case sgv1.EventType_EVENT_TYPE_DEFERRED:
		d.add(cDeferred)
	case sgv1.EventType_EVENT_TYPE_BOUNCED:
		if isHardBounce(ev.GetBounce()) {
			d.add(cHardBounces)
			d.neg = prov
		} else {
			d.add(cSoftBounces)
		}
		d.add(cDeliveryErrors)
	case sgv1.EventType_EVENT_TYPE_REJECTED:
		d.add(cRejected)
		d.add(cDeliveryErrors)
	case sgv1.EventType_EVENT_TYPE_COMPLAINED:
		if ev.GetComplaint().GetFeedbackType() == sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM {
			return d, false
		}
		d.add(cComplaints)
		d.neg = prov
	case sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED:
		d.add(cUnsubscribes)
	case sgv1.EventType_EVENT_TYPE_OPENED:
		d.add(cOpens)
	case sgv1.EventType_EVENT_TYPE_CLICKED:
		d.add(cClicks)
	case sgv1.EventType_EVENT_TYPE_REPLIED:
		cat := ev.GetReply().GetCategory()
		if int(cat) < 0 || int(cat) >= nReplyCategories {
			cat = sgv1.ReplyCategory_REPLY_CATEGORY_UNSPECIFIED
		}
		d.add(cReplies)
		d.addX(xReplyBase + xkey(cat))
		switch cat {
		case sgv1.ReplyCategory_REPLY_CATEGORY_INTERESTED, sgv1.ReplyCategory_REPLY_CATEGORY_REFERRAL:
			d.add(cPositiveReplies)
		case sgv1.ReplyCategory_REPLY_CATEGORY_NOT_A_FIT, sgv1.ReplyCategory_REPLY_CATEGORY_UNSUBSCRIBE,
			sgv1.ReplyCategory_REPLY_CATEGORY_COMPLAINT, sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE:
			d.add(cNegativeReplies)
		case sgv1.ReplyCategory_REPLY_CATEGORY_OOO:
			d.add(cOOOReplies)
		}
	case sgv1.EventType_EVENT_TYPE_PLACEMENT_TEST:
		p := ev.GetPlacement()
		pp, folder := placementIndex(p)
		d.add(cPlacementTests)
		switch folder {
		case sgv1.PlacementFolder_PLACEMENT_FOLDER_INBOX:
			d.add(cPlacementInbox)
		case sgv1.PlacementFolder_PLACEMENT_FOLDER_PROMOTIONS:
		default: // spam, missing, and unspecified (not found in a known folder)
			d.add(cPlacementSpam)
		}
		d.addX(xPlacementBase + xkey(pp*nFolders+int(folder)))
	case sgv1.EventType_EVENT_TYPE_AUTH_CHECK:
		d.add(cAuthChecks)
		if authFailed(ev.GetAuth()) {
			d.add(cAuthFailures)
		}
	default:
		return d, false
	}
	return d, true
}

// placementIndex returns the seed provider index and folder of a placement,
// clamping unknown enum values to unspecified.
func placementIndex(p *sgv1.Placement) (int, sgv1.PlacementFolder) {
	pp := int(p.GetProvider())
	if pp < 0 || pp >= nProviders {
		pp = int(sgv1.Provider_PROVIDER_OTHER)
	}
	f := p.GetFolder()
	if int(f) < 0 || int(f) >= nFolders {
		f = sgv1.PlacementFolder_PLACEMENT_FOLDER_UNSPECIFIED
	}
	return pp, f
}

// placementIsSpam reports whether a placement result counts as spam.
func placementIsSpam(f sgv1.PlacementFolder) bool {
	return f != sgv1.PlacementFolder_PLACEMENT_FOLDER_INBOX && f != sgv1.PlacementFolder_PLACEMENT_FOLDER_PROMOTIONS
}

// isHardBounce decides the class of a bounce: the class when given, else
// hard for an SMTP 5xx reply or a 5.x.x enhanced code, else soft.
func isHardBounce(b *sgv1.Bounce) bool {
	switch b.GetClass() {
	case sgv1.BounceClass_BOUNCE_CLASS_HARD:
		return true
	case sgv1.BounceClass_BOUNCE_CLASS_SOFT:
		return false
	}
	if c := b.GetSmtpCode(); c >= 500 && c <= 599 {
		return true
	}
	return strings.HasPrefix(b.GetEnhancedCode(), "5.")
}

// authFailed reports whether an auth check failed: SPF or DKIM fail, DMARC
// missing, or neither aligned.
func authFailed(a *sgv1.Auth) bool {
	return a.GetSpf() == sgv1.AuthResult_AUTH_RESULT_FAIL ||
		a.GetDkim() == sgv1.AuthResult_AUTH_RESULT_FAIL ||
		a.GetDmarcPolicy() == sgv1.DmarcPolicy_DMARC_POLICY_MISSING ||
		!a.GetAligned()
}

// replyCategoryWord is the short word of a reply category ("not_a_fit", …).
func replyCategoryWord(i int) string {
	return strings.ToLower(strings.TrimPrefix(sgv1.ReplyCategory(i).String(), "REPLY_CATEGORY_"))
}

// folderWord is the short word of a placement folder ("inbox", …).
func folderWord(i int) string {
	return strings.ToLower(strings.TrimPrefix(sgv1.PlacementFolder(i).String(), "PLACEMENT_FOLDER_"))
}
