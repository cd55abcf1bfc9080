package enforce

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/classify"
	"github.com/sendguard/sendguard/pkg/loadgen"
	"github.com/sendguard/sendguard/pkg/normalize"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// allEventTypes is every EventType the proto defines, plus a number it does
// not (an event from a newer producer).
func allEventTypes() []sgv1.EventType {
	values := sgv1.EventType(0).Descriptor().Values()
	out := make([]sgv1.EventType, 0, values.Len()+1)
	for i := range values.Len() {
		out = append(out, sgv1.EventType(values.Get(i).Number()))
	}
	return append(out, sgv1.EventType(99))
}

// craftedEvents covers every payload FromEvent reads: each bounce class ×
// category, feedback type, reply category and unsubscribe method, role and
// consumer recipients, events without tenant, recipient, id or time, and a
// warming sender (the complaint's warm-up hold).
func craftedEvents() []*sgv1.Event {
	base := func() *sgv1.Event {
		return &sgv1.Event{EventId: "x", Tenant: "t1", OccurredAt: ts(t0), Sender: "warm@acme.io",
			Recipient: "bob@bigco.com", Account: "bigco.com"}
	}
	var out []*sgv1.Event
	add := func(mod func(*sgv1.Event)) {
		ev := base()
		ev.EventId = "crafted-" + itoa(len(out))
		mod(ev)
		out = append(out, ev)
	}
	for c := range sgv1.BounceClass(0).Descriptor().Values().Len() {
		for k := range sgv1.BounceCategory(0).Descriptor().Values().Len() {
			add(func(ev *sgv1.Event) {
				ev.Bounce = &sgv1.Bounce{Class: sgv1.BounceClass(c), Category: sgv1.BounceCategory(k), SmtpCode: 550, EnhancedCode: "5.1.1"}
			})
		}
	}
	for f := range sgv1.FeedbackType(0).Descriptor().Values().Len() {
		add(func(ev *sgv1.Event) { ev.Complaint = &sgv1.Complaint{FeedbackType: sgv1.FeedbackType(f)} })
	}
	for r := range sgv1.ReplyCategory(0).Descriptor().Values().Len() {
		add(func(ev *sgv1.Event) { ev.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory(r)} })
	}
	for m := range sgv1.UnsubscribeMethod(0).Descriptor().Values().Len() {
		add(func(ev *sgv1.Event) { ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod(m)} })
	}
	for _, mod := range []func(*sgv1.Event){
		func(ev *sgv1.Event) { ev.Recipient = "info@bigco.com" },
		func(ev *sgv1.Event) { ev.Recipient, ev.RoleAccount = "kim@bigco.com", true },
		func(ev *sgv1.Event) { ev.Recipient, ev.Account = "Sales.Team@BigCo.com ", "" },
		func(ev *sgv1.Event) { ev.Recipient, ev.Account = "bob@gmail.com", "gmail.com" },
		func(ev *sgv1.Event) { ev.Tenant = "" },
		func(ev *sgv1.Event) { ev.Recipient = "" },
		func(ev *sgv1.Event) { ev.EventId, ev.OccurredAt = "", nil },
		func(ev *sgv1.Event) {
			ev.Bounce = &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, Category: sgv1.BounceCategory_BOUNCE_CATEGORY_INVALID_MAILBOX}
			ev.Complaint = &sgv1.Complaint{FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE}
			ev.Reply = &sgv1.Reply{Category: sgv1.ReplyCategory_REPLY_CATEGORY_HOSTILE}
			ev.Unsubscribe = &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK}
		},
	} {
		add(mod)
	}
	return out
}

// loadgenEvents is the pipeline benchmark's traffic, with rates raised so
// that every outcome occurs, enriched as the normalizer does.
func loadgenEvents(t *testing.T) []*sgv1.Event {
	t.Helper()
	g, err := loadgen.New(loadgen.Config{Seed: 3, Start: t0, Tenants: []string{"t1", "t2"},
		Rates: loadgen.Rates{Bounce: 0.1, HardShare: 0.6, Defer: 0.1, Open: 0.4, Click: 0.3, Reply: 0.1, Unsubscribe: 0.05, Complaint: 0.05}})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*sgv1.Event, 5_000)
	for i := range out {
		out[i] = g.Next()
		classify.Enrich(out[i])
	}
	return out
}

// sampleEvents are the events the normalizer makes of the real-world
// samples beside the repository (/work/shared/samples), or none when they
// are not present.
func sampleEvents(t *testing.T) []*sgv1.Event {
	t.Helper()
	root := filepath.Join("..", "..", "..", "shared", "samples")
	sources := map[string]sgv1.Source{
		"ses": sgv1.Source_SOURCE_SES, "sendgrid": sgv1.Source_SOURCE_SENDGRID, "mailgun": sgv1.Source_SOURCE_MAILGUN,
		"postmark": sgv1.Source_SOURCE_POSTMARK, "sparkpost": sgv1.Source_SOURCE_SPARKPOST,
		"arf": sgv1.Source_SOURCE_ARF, "dsn": sgv1.Source_SOURCE_DSN,
	}
	opts := normalize.Options{Now: func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }}
	var out []*sgv1.Event
	// A missing directory or an unreadable file means fewer samples.
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		src := sources[filepath.Base(filepath.Dir(p))]
		data, rerr := os.ReadFile(p)
		if src == sgv1.Source_SOURCE_UNSPECIFIED || rerr != nil {
			return nil
		}
		evs, _ := normalize.Parse(&sgv1.RawEnvelope{EnvelopeId: "env", Tenant: "t1", Source: src,
			ReceivedAt: timestamppb.New(opts.Now()), Payload: data}, opts)
		out = append(out, evs...)
		return nil
	})
	return out
}

// negativesOf copies the per-account negative-contact memory, the only
// state FromEvent changes.
func negativesOf(s *State) map[string]map[string]time.Time {
	s.cdMu.Lock()
	defer s.cdMu.Unlock()
	out := make(map[string]map[string]time.Time, len(s.negatives))
	for k, nc := range s.negatives {
		m := make(map[string]time.Time, len(nc.contacts))
		for r, at := range nc.contacts {
			m[r] = at
		}
		out[k] = m
	}
	return out
}

func sameNegatives(a, b map[string]map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, am := range a {
		bm, ok := b[k]
		if !ok || len(am) != len(bm) {
			return false
		}
		for r, at := range am {
			if !bm[r].Equal(at) {
				return false
			}
		}
	}
	return true
}

// TestMayEnforceMatchesFromEvent proves MayEnforce against FromEvent: for
// every event type (and an undefined one) and every event of a varied
// corpus retyped to it, FromEvent returns nothing and leaves the state
// alone whenever MayEnforce says false; and for every type it says true,
// some event of the corpus does yield commands (the predicate is exact per
// type). With SuppressRoleAccounts, (*State).MayEnforce is true for every
// type, because a role recipient is suppressed whatever the event.
func TestMayEnforceMatchesFromEvent(t *testing.T) {
	corpora := []struct {
		name string
		evs  []*sgv1.Event
	}{
		{"crafted", craftedEvents()},
		{"loadgen", loadgenEvents(t)},
		{"samples", sampleEvents(t)},
	}
	for _, role := range []bool{false, true} {
		name := "role-accounts-off"
		if role {
			name = "role-accounts-on"
		}
		t.Run(name, func(t *testing.T) {
			s, _ := newTestState(func(c *Config) { c.SuppressRoleAccounts = role })
			// A warming sender, so a complaint also yields its warm-up hold.
			mustApply(t, s, WarmupCommand("t1", "warm@acme.io", t0.Add(-9*24*time.Hour)))
			for _, typ := range allEventTypes() {
				may := s.MayEnforce(typ)
				if !role && may != MayEnforce(typ) {
					t.Fatalf("(*State).MayEnforce(%v) = %v, MayEnforce = %v without role suppression", typ, may, MayEnforce(typ))
				}
				if role && !may {
					t.Errorf("(*State).MayEnforce(%v) = false with role suppression on", typ)
				}
				enforced := 0
				before := negativesOf(s)
				for _, c := range corpora {
					for i, orig := range c.evs {
						ev := proto.Clone(orig).(*sgv1.Event)
						ev.Type = typ
						out := s.FromEvent(ev)
						if len(out) > 0 {
							enforced++
						}
						if !may && len(out) > 0 {
							t.Fatalf("MayEnforce(%v) = false but FromEvent(%s event %d) = %v", typ, c.name, i, out)
						}
					}
				}
				if !may && !sameNegatives(before, negativesOf(s)) {
					t.Fatalf("MayEnforce(%v) = false but FromEvent changed the contact memory", typ)
				}
				if may && enforced == 0 {
					t.Errorf("MayEnforce(%v) = true but no event of that type yields a command", typ)
				}
			}
		})
	}
	if n := len(corpora[2].evs); n > 0 {
		t.Logf("corpus: %d crafted, %d loadgen, %d sample events", len(corpora[0].evs), len(corpora[1].evs), n)
	} else {
		t.Logf("no samples in /work/shared/samples: crafted and loadgen events only")
	}
}

// TestMayEnforceTable pins the predicate's answer per type, so that a
// change to it is deliberate.
func TestMayEnforceTable(t *testing.T) {
	want := map[sgv1.EventType]bool{
		sgv1.EventType_EVENT_TYPE_UNSUBSCRIBED: true,
		sgv1.EventType_EVENT_TYPE_BOUNCED:      true,
		sgv1.EventType_EVENT_TYPE_COMPLAINED:   true,
		sgv1.EventType_EVENT_TYPE_REPLIED:      true,
	}
	for _, typ := range allEventTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			if got := MayEnforce(typ); got != want[typ] {
				t.Errorf("MayEnforce(%v) = %v, want %v", typ, got, want[typ])
			}
		})
	}
}
