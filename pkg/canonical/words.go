package canonical

import (
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// enumWords holds the word mapping of one enum type. A value's word is its
// protobuf name without the enum's common prefix, lower-cased:
// EVENT_TYPE_BOUNCED → "bounced", REPLY_CATEGORY_NOT_NOW → "not_now".
type enumWords struct {
	toWord map[protoreflect.EnumNumber]string
	// fromText maps lower-cased words and lower-cased protobuf names.
	fromText map[string]protoreflect.EnumNumber
}

var wordCache sync.Map // protoreflect.FullName → *enumWords

func wordsFor(ed protoreflect.EnumDescriptor) *enumWords {
	if w, ok := wordCache.Load(ed.FullName()); ok {
		return w.(*enumWords)
	}
	values := ed.Values()
	prefix := ""
	if values.Len() > 0 {
		// Convention of every sendguard enum: the zero value is
		// <PREFIX>UNSPECIFIED.
		zero := string(values.Get(0).Name())
		prefix = strings.TrimSuffix(zero, "UNSPECIFIED")
	}
	w := &enumWords{
		toWord:   make(map[protoreflect.EnumNumber]string, values.Len()),
		fromText: make(map[string]protoreflect.EnumNumber, 2*values.Len()),
	}
	for i := 0; i < values.Len(); i++ {
		v := values.Get(i)
		name := string(v.Name())
		word := strings.ToLower(strings.TrimPrefix(name, prefix))
		w.toWord[v.Number()] = word
		w.fromText[word] = v.Number()
		w.fromText[strings.ToLower(name)] = v.Number()
	}
	actual, _ := wordCache.LoadOrStore(ed.FullName(), w)
	return actual.(*enumWords)
}

// Word returns the short lower-case word of an enum value ("bounced",
// "domain_provider", "unspecified" for the zero value), or "" for a number
// the enum does not define.
func Word(e protoreflect.Enum) string {
	return wordsFor(e.Descriptor()).toWord[e.Number()]
}

// ParseWord maps a word or a protobuf value name of the enum ed to its number.
// Matching ignores case; the empty string and unknown words are errors.
func ParseWord(ed protoreflect.EnumDescriptor, s string) (protoreflect.EnumNumber, error) {
	if s == "" {
		return 0, fmt.Errorf("empty %s", ed.Name())
	}
	w := wordsFor(ed)
	n, ok := w.fromText[s] // the usual case: already a lower-case word
	if !ok {
		n, ok = w.fromText[strings.ToLower(s)]
	}
	if !ok {
		return 0, fmt.Errorf("unknown %s %q (want one of %s)", ed.Name(), s, strings.Join(Words(ed), ", "))
	}
	return n, nil
}

// Words lists the words of the enum ed in number order, without the zero
// value's "unspecified".
func Words(ed protoreflect.EnumDescriptor) []string {
	values := ed.Values()
	out := make([]string, 0, values.Len())
	w := wordsFor(ed)
	for i := 0; i < values.Len(); i++ {
		if n := values.Get(i).Number(); n != 0 {
			out = append(out, w.toWord[n])
		}
	}
	return out
}

func parseTyped[T ~int32](ed protoreflect.EnumDescriptor, s string) (T, error) {
	n, err := ParseWord(ed, s)
	return T(n), err
}

// TypeWord returns the word of an event type, e.g. "bounced".
func TypeWord(t sgv1.EventType) string { return typeWords.toWord[protoreflect.EnumNumber(t)] }

// ParseType parses an event type word or protobuf name.
func ParseType(s string) (sgv1.EventType, error) {
	return parseTyped[sgv1.EventType](sgv1.EventType(0).Descriptor(), s)
}

// LevelWord returns the word of a scope level: tenant, domain, sender,
// campaign, variant, provider, account, recipient, domain_provider, segment,
// list_source.
func LevelWord(l sgv1.ScopeLevel) string { return levelWords.toWord[protoreflect.EnumNumber(l)] }

// ParseLevel parses a scope level word or protobuf name.
func ParseLevel(s string) (sgv1.ScopeLevel, error) {
	return parseTyped[sgv1.ScopeLevel](sgv1.ScopeLevel(0).Descriptor(), s)
}

// ActionWord returns the word of an action: pause, resume, throttle,
// suppress, unsuppress, alert.
func ActionWord(a sgv1.Action) string { return Word(a) }

// ParseAction parses an action word or protobuf name.
func ParseAction(s string) (sgv1.Action, error) {
	return parseTyped[sgv1.Action](sgv1.Action(0).Descriptor(), s)
}

// SeverityWord returns the word of a severity: info, warning, critical.
func SeverityWord(s sgv1.Severity) string { return Word(s) }

// ParseSeverity parses a severity word or protobuf name.
func ParseSeverity(s string) (sgv1.Severity, error) {
	return parseTyped[sgv1.Severity](sgv1.Severity(0).Descriptor(), s)
}

// HealthStateWord returns the word of a health state, e.g. "restricted".
func HealthStateWord(h sgv1.HealthState) string { return Word(h) }

// ParseHealthState parses a health state word or protobuf name.
func ParseHealthState(s string) (sgv1.HealthState, error) {
	return parseTyped[sgv1.HealthState](sgv1.HealthState(0).Descriptor(), s)
}

// ProviderWord returns the word of a mailbox provider: gmail, microsoft,
// yahoo, apple, other.
func ProviderWord(p sgv1.Provider) string { return providerWords.toWord[protoreflect.EnumNumber(p)] }

// ParseProvider parses a provider word or protobuf name.
func ParseProvider(s string) (sgv1.Provider, error) {
	return parseTyped[sgv1.Provider](sgv1.Provider(0).Descriptor(), s)
}

// SourceWord returns the word of a source: generic, ses, sendgrid, mailgun,
// postmark, sparkpost, arf, dsn, postmaster, grpc.
func SourceWord(s sgv1.Source) string { return Word(s) }

// ParseSource parses a source word or protobuf name.
func ParseSource(s string) (sgv1.Source, error) {
	return parseTyped[sgv1.Source](sgv1.Source(0).Descriptor(), s)
}

// BounceClassWord returns "hard" or "soft".
func BounceClassWord(c sgv1.BounceClass) string { return Word(c) }

// BounceCategoryWord returns the word of a bounce category, e.g.
// "invalid_mailbox".
func BounceCategoryWord(c sgv1.BounceCategory) string { return Word(c) }

// ReplyCategoryWord returns the word of a reply category, e.g. "not_now".
func ReplyCategoryWord(c sgv1.ReplyCategory) string { return Word(c) }

// ParseReplyCategory parses a reply category word or protobuf name.
func ParseReplyCategory(s string) (sgv1.ReplyCategory, error) {
	return parseTyped[sgv1.ReplyCategory](sgv1.ReplyCategory(0).Descriptor(), s)
}
