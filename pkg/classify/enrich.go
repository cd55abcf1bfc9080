package classify

import (
	"strings"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// Enrich fills the derived fields of ev that are empty, and lower-cases the
// addresses and domains it reads or sets:
//
//   - sender, recipient: trimmed, "<>" removed, lower-cased;
//   - sending_domain from sender, recipient_domain from recipient;
//   - provider from recipient_domain (static list only, no network);
//   - account from recipient_domain (Account);
//   - role_account from recipient (set when true; never cleared);
//   - reply category and risk, for a replied event with text or subject and
//     no category; risk alone when the category is given.
//
// Fields already set are kept (apart from lower-casing). Enrich is
// idempotent and safe on a nil event.
func Enrich(ev *sgv1.Event) {
	if ev == nil {
		return
	}
	ev.Sender = normAddr(ev.Sender)
	ev.Recipient = normAddr(ev.Recipient)
	ev.SendingDomain = normDomain(ev.SendingDomain)
	ev.RecipientDomain = normDomain(ev.RecipientDomain)
	if ev.SendingDomain == "" {
		ev.SendingDomain = domainOf(ev.Sender)
	}
	if ev.RecipientDomain == "" {
		ev.RecipientDomain = domainOf(ev.Recipient)
	}
	if ev.Provider == sgv1.Provider_PROVIDER_UNSPECIFIED && ev.RecipientDomain != "" {
		ev.Provider = Provider(ev.RecipientDomain)
	}
	if ev.Account == "" {
		ev.Account = Account(ev.RecipientDomain)
	} else {
		ev.Account = strings.ToLower(strings.TrimSpace(ev.Account))
	}
	if !ev.RoleAccount && ev.Recipient != "" && strings.Contains(ev.Recipient, "@") {
		ev.RoleAccount = IsRoleAccount(ev.Recipient)
	}
	if ev.Type == sgv1.EventType_EVENT_TYPE_REPLIED && ev.Reply != nil {
		r := ev.Reply
		if r.Category == sgv1.ReplyCategory_REPLY_CATEGORY_UNSPECIFIED && (r.Text != "" || r.Subject != "") {
			v := Reply(r.Subject, r.Text)
			r.Category = v.Category
			if r.Risk == sgv1.Risk_RISK_UNSPECIFIED {
				r.Risk = v.Risk
			}
		}
		if r.Risk == sgv1.Risk_RISK_UNSPECIFIED {
			r.Risk = ReplyRisk(r.Category)
		}
	}
}

// normAddr trims an address, drops angle brackets and lower-cases it.
func normAddr(a string) string {
	a = strings.TrimSpace(a)
	a = strings.TrimPrefix(a, "<")
	a = strings.TrimSuffix(a, ">")
	return strings.ToLower(strings.TrimSpace(a))
}

// domainOf returns the lower-cased part after the last "@" of addr, or "".
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 || i == len(addr)-1 {
		return ""
	}
	return normDomain(addr[i+1:])
}
