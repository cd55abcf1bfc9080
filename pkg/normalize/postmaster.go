package normalize

import (
	"bytes"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Gmail Postmaster Tools statistics → postmaster_stats events, one per
// domain and day, provider gmail.
//
// Two shapes are accepted, each alone, as a list response or in a JSON
// array:
//
// v1 (gmailpostmastertools v1, domains.trafficStats get/list): a
// TrafficStats object {"name":"domains/{domain}/trafficStats/{YYYYMMDD}",
// "userReportedSpamRatio", "domainReputation" (HIGH, MEDIUM, LOW, BAD),
// "spfSuccessRatio", "dkimSuccessRatio", "dmarcSuccessRatio",
// "inboundEncryptionRatio", "deliveryErrors":[{"errorClass","errorType",
// "errorRatio"}], …}, or {"trafficStats":[…]}. Ratios are fractions; the
// delivery error rate is the sum of the errorRatio values.
//
// v2 (gmailpostmastertools v2, domains.domainStats.query; checked against
// the published reference): {"domainStats":[{"name":
// "domains/{domain}/domainStats/{opaque id}", "metric": "<the name the
// caller gave in MetricDefinition.name>", "value": {"doubleValue" |
// "floatValue" | "intValue" (int64 as a string) | "stringValue" |
// "stringList"}, "date": {"year","month","day"}}], "nextPageToken"}.
// Because v2 echoes the caller's own metric names, Sendguard reads these
// names (case, '-' and '_' ignored): SPAM_RATE (or user_reported_spam_ratio)
// → spam_rate; DELIVERY_ERROR_RATE → delivery_error_rate;
// AUTH_SUCCESS_RATE_SPF / _DKIM / _DMARC (or spf_success_rate …) → the
// auth rates; TLS_ENCRYPTION_RATE_INBOUND (or inbound_encryption_rate) →
// inbound_encryption_rate; DOMAIN_REPUTATION (stringValue) → reputation.
// Other metrics (FEEDBACK_LOOP_*, *_COUNT) are ignored. v2 no longer
// reports domain reputation (compliance status replaced it), and the
// reference does not say whether rates are fractions or percentages:
// Sendguard takes them as fractions, so a percentage above 1 fails
// validation visibly instead of being misread.
//
// The domain comes from the resource name, else from the envelope header
// "x-postmaster-domain". The day comes from the name (v1) or date (v2);
// the event time is 00:00 UTC of that day.

type trafficStats struct {
	Name                   string   `json:"name"`
	UserReportedSpamRatio  *float64 `json:"userReportedSpamRatio"`
	DomainReputation       string   `json:"domainReputation"`
	SPFSuccessRatio        *float64 `json:"spfSuccessRatio"`
	DKIMSuccessRatio       *float64 `json:"dkimSuccessRatio"`
	DMARCSuccessRatio      *float64 `json:"dmarcSuccessRatio"`
	InboundEncryptionRatio *float64 `json:"inboundEncryptionRatio"`
	DeliveryErrors         []struct {
		ErrorClass string   `json:"errorClass"`
		ErrorType  string   `json:"errorType"`
		ErrorRatio *float64 `json:"errorRatio"`
	} `json:"deliveryErrors"`
}

type domainStat struct {
	Name   string `json:"name"`
	Metric string `json:"metric"`
	Value  struct {
		DoubleValue *float64   `json:"doubleValue"`
		FloatValue  *float64   `json:"floatValue"`
		IntValue    flexString `json:"intValue"`
		StringValue string     `json:"stringValue"`
	} `json:"value"`
	Date *struct {
		Year  int `json:"year"`
		Month int `json:"month"`
		Day   int `json:"day"`
	} `json:"date"`
}

type postmasterDoc struct {
	trafficStats
	TrafficStats []trafficStats `json:"trafficStats"`
	DomainStats  []domainStat   `json:"domainStats"`
}

func parsePostmaster(b *builder) {
	payload := bytes.TrimSpace(b.env.GetPayload())
	var docs []postmasterDoc
	if len(payload) > 0 && payload[0] == '[' {
		if err := decodeJSON(payload, &docs); err != nil {
			b.payloadErr("not Postmaster Tools JSON", err)
			return
		}
	} else {
		var d postmasterDoc
		if err := decodeJSON(payload, &d); err != nil {
			b.payloadErr("not Postmaster Tools JSON", err)
			return
		}
		docs = []postmasterDoc{d}
	}
	// Items are numbered across the payload: each TrafficStats object and
	// each DomainStat value is one item.
	item := 0
	for _, d := range docs {
		if d.Name != "" {
			b.trafficStatsEvent(item, d.trafficStats)
			item++
		}
		for _, ts := range d.TrafficStats {
			b.trafficStatsEvent(item, ts)
			item++
		}
		b.domainStatsEvents(item, d.DomainStats)
		item += len(d.DomainStats)
	}
	if item == 0 {
		b.payloadErr("no trafficStats or domainStats in the payload", nil)
	}
}

func (b *builder) trafficStatsEvent(item int, ts trafficStats) {
	domain, rest := domainFromName(ts.Name)
	if domain == "" {
		domain = b.env.GetHeaders()["x-postmaster-domain"]
	}
	var day string
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		day = rest[i+1:]
	}
	pm := &sgv1.Postmaster{
		SpamRate:              deref(ts.UserReportedSpamRatio),
		DomainReputation:      reputation(ts.DomainReputation),
		SpfSuccessRate:        deref(ts.SPFSuccessRatio),
		DkimSuccessRate:       deref(ts.DKIMSuccessRatio),
		DmarcSuccessRate:      deref(ts.DMARCSuccessRatio),
		InboundEncryptionRate: deref(ts.InboundEncryptionRatio),
	}
	for _, de := range ts.DeliveryErrors {
		pm.DeliveryErrorRate += deref(de.ErrorRatio)
	}
	pm.DeliveryErrorRate = math.Min(pm.DeliveryErrorRate, 1)
	var at *timestamppb.Timestamp
	if day != "" {
		t, err := time.Parse("20060102", day)
		if err != nil {
			b.failf(item, "name: day %q is not YYYYMMDD", day)
			return
		}
		at = timestamppb.New(t)
	}
	b.postmasterEvent(item, domain, day, at, pm, "trafficStats")
}

// domainStatsEvents groups v2 DomainStat values by domain and date; first
// is the item number of stats[0]. An event's item is that of the first
// value of its group.
func (b *builder) domainStatsEvents(first int, stats []domainStat) {
	type key struct{ domain, day string }
	groups := map[key]*sgv1.Postmaster{}
	dates := map[key]*timestamppb.Timestamp{}
	items := map[key]int{}
	var order []key
	for i, s := range stats {
		item := first + i
		domain, _ := domainFromName(s.Name)
		if domain == "" {
			domain = b.env.GetHeaders()["x-postmaster-domain"]
		}
		k := key{domain: domain}
		var at *timestamppb.Timestamp
		if d := s.Date; d != nil && d.Year > 0 {
			t := time.Date(d.Year, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC)
			if t.Year() != d.Year || int(t.Month()) != d.Month || t.Day() != d.Day {
				b.failf(item, "date: %04d-%02d-%02d is not a date", d.Year, d.Month, d.Day)
				continue
			}
			k.day = t.Format("20060102")
			at = timestamppb.New(t)
		}
		pm, ok := groups[k]
		if !ok {
			pm = &sgv1.Postmaster{}
			groups[k], dates[k], items[k] = pm, at, item
			order = append(order, k)
		}
		v := firstFloat(s.Value.DoubleValue, s.Value.FloatValue)
		switch normKey(s.Metric) {
		case "spamrate", "userreportedspamratio", "userreportedspamrate":
			pm.SpamRate = v
		case "deliveryerrorrate", "deliveryerrorratio":
			pm.DeliveryErrorRate = v
		case "authsuccessratespf", "spfsuccessrate", "spfsuccessratio":
			pm.SpfSuccessRate = v
		case "authsuccessratedkim", "dkimsuccessrate", "dkimsuccessratio":
			pm.DkimSuccessRate = v
		case "authsuccessratedmarc", "dmarcsuccessrate", "dmarcsuccessratio":
			pm.DmarcSuccessRate = v
		case "tlsencryptionrateinbound", "inboundencryptionrate", "inboundencryptionratio":
			pm.InboundEncryptionRate = v
		case "domainreputation", "reputation":
			pm.DomainReputation = reputation(s.Value.StringValue)
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].domain != order[j].domain {
			return order[i].domain < order[j].domain
		}
		return order[i].day < order[j].day
	})
	for _, k := range order {
		b.postmasterEvent(items[k], k.domain, k.day, dates[k], groups[k], "domainStats")
	}
}

func (b *builder) postmasterEvent(item int, domain, day string, at *timestamppb.Timestamp, pm *sgv1.Postmaster, kind string) {
	ev := &sgv1.Event{
		Type:          sgv1.EventType_EVENT_TYPE_POSTMASTER_STATS,
		SendingDomain: strings.ToLower(strings.TrimSpace(domain)),
		Provider:      sgv1.Provider_PROVIDER_GMAIL,
		OccurredAt:    at,
		Postmaster:    pm,
		SourceEvent:   kind,
	}
	// The values are part of the id: an identical re-fetch dedups, a
	// revised figure for the same day is a new event.
	values, err := canonical.Marshal(&sgv1.Event{Postmaster: pm})
	if err != nil {
		b.failf(item, "postmaster: %w", err)
		return
	}
	ev.EventId = canonical.EventID("postmaster", ev.SendingDomain, day, string(values))
	b.add(item, ev)
}

// domainFromName splits "domains/example.com/…" into the domain and the rest.
func domainFromName(name string) (domain, rest string) {
	r, ok := strings.CutPrefix(name, "domains/")
	if !ok {
		return "", ""
	}
	domain, rest, _ = strings.Cut(r, "/")
	return domain, rest
}

func reputation(s string) sgv1.DomainReputation {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "HIGH":
		return sgv1.DomainReputation_DOMAIN_REPUTATION_HIGH
	case "MEDIUM":
		return sgv1.DomainReputation_DOMAIN_REPUTATION_MEDIUM
	case "LOW":
		return sgv1.DomainReputation_DOMAIN_REPUTATION_LOW
	case "BAD":
		return sgv1.DomainReputation_DOMAIN_REPUTATION_BAD
	}
	return sgv1.DomainReputation_DOMAIN_REPUTATION_UNSPECIFIED
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

func firstFloat(fs ...*float64) float64 {
	for _, f := range fs {
		if f != nil {
			return *f
		}
	}
	return 0
}
