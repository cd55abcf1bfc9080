package normalize

import (
	"strings"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Attribution lists, per canonical field, the metadata keys that may carry
// it. Keys match case-insensitively and ignore '-', '_' and spaces, so
// "campaign_id", "campaignId" and "Campaign-ID" are the same key.
type Attribution struct {
	Campaign   []string
	Step       []string
	Variant    []string
	Segment    []string
	ListSource []string
	// Sender is read only when the provider does not report the sender.
	Sender []string
}

// DefaultAttribution is used when Options.Attribution is the zero value.
var DefaultAttribution = Attribution{
	Campaign:   []string{"campaign", "campaign_id", "campaign_name", "sequence", "sequence_id"},
	Step:       []string{"step", "sequence_step", "step_id"},
	Variant:    []string{"variant", "variant_id", "ab_variant", "variation"},
	Segment:    []string{"segment", "icp_segment"},
	ListSource: []string{"list_source", "source_list", "lead_source"},
	Sender:     []string{"sender", "from", "from_email", "mailbox"},
}

func (a Attribution) isZero() bool {
	return len(a.Campaign)+len(a.Step)+len(a.Variant)+len(a.Segment)+len(a.ListSource)+len(a.Sender) == 0
}

func normKey(k string) string {
	var sb strings.Builder
	sb.Grow(len(k))
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '-' || c == '_' || c == ' ':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// attrs holds what a provider reported for attribution.
type attrs struct {
	// meta is free key/value metadata (custom args, user variables …).
	meta map[string]string
	// tags are free-form labels; "key:value" and "key=value" tags are read
	// as metadata.
	tags []string
	// plainTagIsCampaign: a tag without key names the campaign when nothing
	// else does (SendGrid categories, Mailgun tags, Postmark Tag).
	plainTagIsCampaign bool
	// headers are message headers, for Options.CampaignHeaders.
	headers map[string]string
}

// apply fills the attribution fields of ev that are still empty.
func (b *builder) apply(ev *sgv1.Event, at attrs) {
	a := b.opts.Attribution
	if a.isZero() {
		a = DefaultAttribution
	}
	lookup := make(map[string]string, len(at.meta)+len(at.tags))
	for k, v := range at.meta {
		if v = strings.TrimSpace(v); v != "" {
			lookup[normKey(k)] = v
		}
	}
	var plain []string
	for _, t := range at.tags {
		t = strings.TrimSpace(t)
		if k, v, ok := cutAny(t, ":="); ok && strings.TrimSpace(v) != "" {
			if nk := normKey(k); lookup[nk] == "" {
				lookup[nk] = strings.TrimSpace(v)
			}
			continue
		}
		if t != "" {
			plain = append(plain, t)
		}
	}
	pick := func(dst *string, keys []string) {
		if *dst != "" {
			return
		}
		for _, k := range keys {
			if v := lookup[normKey(k)]; v != "" {
				*dst = v
				return
			}
		}
	}
	if ev.Campaign == "" && len(at.headers) > 0 {
		hs := b.opts.CampaignHeaders
		if hs == nil {
			hs = DefaultCampaignHeaders
		}
		for _, h := range hs {
			if v := strings.TrimSpace(at.headers[strings.ToLower(h)]); v != "" {
				ev.Campaign = v
				break
			}
		}
	}
	pick(&ev.Campaign, a.Campaign)
	pick(&ev.Step, a.Step)
	pick(&ev.Variant, a.Variant)
	pick(&ev.Segment, a.Segment)
	pick(&ev.ListSource, a.ListSource)
	if ev.Campaign == "" && at.plainTagIsCampaign && len(plain) > 0 {
		ev.Campaign = plain[0]
	}
	if ev.Sender == "" {
		var s string
		pick(&s, a.Sender)
		if s = address(s); s != "" && canonical.ValidAddress(s) {
			ev.Sender = s
		}
	}
}

// cutAny splits s around the first of the separator bytes.
func cutAny(s, seps string) (before, after string, ok bool) {
	if i := strings.IndexAny(s, seps); i > 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}
