package window

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/loadgen"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestCountedFieldCensus makes every field of Event (and of the
// sub-messages Counted trims) a decision: kept because the windows read it,
// or dropped because they do not. A field added to the proto fails here
// until it is placed, and a kept field must survive Counted.
func TestCountedFieldCensus(t *testing.T) {
	census := []struct {
		msg     proto.Message
		sub     func(*sgv1.Event) proto.Message
		kept    []string
		trimmed []string // kept, with fields of their own dropped (their rows below)
		dropped []string
	}{
		{
			msg: &sgv1.Event{}, sub: func(e *sgv1.Event) proto.Message { return e },
			kept: []string{"event_id", "tenant", "type", "occurred_at", "sender", "sending_domain", "provider", "account",
				"campaign", "variant", "segment", "list_source", "placement", "auth", "postmaster"},
			trimmed: []string{"bounce", "complaint", "reply"},
			dropped: []string{"recipient", "recipient_domain", "step", "message_id", "unsubscribe", "source", "envelope_id",
				"received_at", "role_account", "source_event"},
		},
		{
			msg: &sgv1.Bounce{}, sub: func(e *sgv1.Event) proto.Message { return e.GetBounce() },
			kept: []string{"class", "smtp_code", "enhanced_code"}, dropped: []string{"category", "diagnostic", "reporting_mta"},
		},
		{
			msg: &sgv1.Complaint{}, sub: func(e *sgv1.Event) proto.Message { return e.GetComplaint() },
			kept: []string{"feedback_type"}, dropped: []string{"source", "reported_domain", "source_ip", "feedback_provider"},
		},
		{
			msg: &sgv1.Reply{}, sub: func(e *sgv1.Event) proto.Message { return e.GetReply() },
			kept: []string{"category"}, dropped: []string{"risk", "text", "subject"},
		},
	}
	full := fullEvent()
	counted := Counted(full)
	for _, c := range census {
		md := c.msg.ProtoReflect().Descriptor()
		t.Run(string(md.Name()), func(t *testing.T) {
			placed := map[string]bool{}
			for _, f := range c.kept {
				placed[f] = true
			}
			for _, f := range c.dropped {
				placed[f] = false
			}
			trimmed := map[string]bool{}
			for _, f := range c.trimmed {
				placed[f], trimmed[f] = true, true
			}
			fields := md.Fields()
			for i := range fields.Len() {
				f := fields.Get(i)
				keep, ok := placed[string(f.Name())]
				if !ok {
					t.Errorf("%s.%s is neither kept nor dropped by Counted: decide whether the windows read it", md.Name(), f.Name())
					continue
				}
				delete(placed, string(f.Name()))
				from, to := c.sub(full).ProtoReflect(), c.sub(counted).ProtoReflect()
				if !from.Has(f) {
					t.Fatalf("fullEvent leaves %s.%s unset", md.Name(), f.Name())
				}
				if trimmed[string(f.Name())] {
					if !to.Has(f) {
						t.Errorf("Counted lost %s.%s", md.Name(), f.Name())
					}
					continue
				}
				if keep && !to.Get(f).Equal(from.Get(f)) {
					t.Errorf("Counted lost %s.%s", md.Name(), f.Name())
				}
				if !keep && to.Has(f) {
					t.Errorf("Counted kept %s.%s", md.Name(), f.Name())
				}
			}
			for f := range placed {
				t.Errorf("census names %s.%s, which is not a field", md.Name(), f)
			}
		})
	}
	if n, m := proto.Size(counted), proto.Size(full); n >= m {
		t.Errorf("Counted is %d bytes, the event %d", n, m)
	}
}

// fullEvent sets every field of Event and of its sub-messages (the
// census checks it does).
func fullEvent() *sgv1.Event {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return &sgv1.Event{
		EventId: "e1", Tenant: "acme", Type: sgv1.EventType_EVENT_TYPE_BOUNCED, OccurredAt: timestamppb.New(at),
		Sender: "rep@d.com", SendingDomain: "d.com", Recipient: "x@gmail.com", RecipientDomain: "gmail.com",
		Provider: gmail, Account: "bigco.com", Campaign: "c1", Step: "2", Variant: "A", Segment: "smb",
		ListSource: "apollo", MessageId: "<m@d.com>",
		Bounce: &sgv1.Bounce{Class: sgv1.BounceClass_BOUNCE_CLASS_HARD, Category: sgv1.BounceCategory(1), SmtpCode: 550,
			EnhancedCode: "5.1.1", Diagnostic: "user unknown", ReportingMta: "mx.gmail.com"},
		Complaint: &sgv1.Complaint{Source: sgv1.ComplaintSource_COMPLAINT_SOURCE_FBL, FeedbackType: sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE,
			ReportedDomain: "d.com", SourceIp: "192.0.2.1", FeedbackProvider: "yahoo"},
		Unsubscribe: &sgv1.Unsubscribe{Method: sgv1.UnsubscribeMethod_UNSUBSCRIBE_METHOD_ONE_CLICK},
		Reply:       &sgv1.Reply{Category: sgv1.ReplyCategory(1), Risk: sgv1.Risk(1), Text: "no thanks", Subject: "Re: hi"},
		Placement:   &sgv1.Placement{Provider: gmail, Folder: sgv1.PlacementFolder_PLACEMENT_FOLDER_SPAM, Tool: "glockapps", TestId: "t1"},
		Auth:        &sgv1.Auth{Spf: sgv1.AuthResult_AUTH_RESULT_PASS, Dkim: sgv1.AuthResult_AUTH_RESULT_FAIL, DmarcPolicy: sgv1.DmarcPolicy_DMARC_POLICY_REJECT, Aligned: true, Tls: true, Ptr: true},
		Postmaster:  &sgv1.Postmaster{SpamRate: 0.001, DomainReputation: sgv1.DomainReputation_DOMAIN_REPUTATION_HIGH, DeliveryErrorRate: 0.01, SpfSuccessRate: 1, DkimSuccessRate: 1, DmarcSuccessRate: 1, InboundEncryptionRate: 1},
		Source:      sgv1.Source(1), EnvelopeId: "env-1", ReceivedAt: timestamppb.New(at.Add(time.Second)),
		RoleAccount: true, SourceEvent: "ses:bounce",
	}
}

// TestCountedFoldsLikeTheEvent folds a varied stream (every event type,
// generated traffic with recipients, ids and diagnostics) twice: the
// events as they are, and Counted(event) through the wire. Every scope's
// snapshot and checkpoint must be byte for byte the same.
func TestCountedFoldsLikeTheEvent(t *testing.T) {
	end := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			stream := randomEvents(rand.New(rand.NewPCG(seed, 7)), 3000, end, 48*time.Hour)
			gen, err := loadgen.New(loadgen.Config{Seed: seed, Start: end.Add(-time.Hour), Tenants: []string{"acme", "beta"}, MessagesPerSecond: 5})
			if err != nil {
				t.Fatal(err)
			}
			for range 3000 {
				stream = append(stream, gen.Next())
			}
			full, reduced := New(Config{Now: func() time.Time { return end }}), New(Config{Now: func() time.Time { return end }})
			var keys []ScopeKey
			for i, e := range stream {
				levels := levelsOf(e)
				if len(levels) == 0 {
					continue
				}
				wire, err := proto.Marshal(Counted(e))
				if err != nil {
					t.Fatal(err)
				}
				c := &sgv1.Event{}
				if err := proto.Unmarshal(wire, c); err != nil {
					t.Fatal(err)
				}
				want, errFull := full.ApplyLevels(e, levels, 0, int64(i), nil)
				got, errReduced := reduced.ApplyLevels(c, levels, 0, int64(i), nil)
				if (errFull == nil) != (errReduced == nil) || fmt.Sprint(want) != fmt.Sprint(got) {
					t.Fatalf("event %d: keys %v (%v), reduced %v (%v)", i, want, errFull, got, errReduced)
				}
				keys = append(keys, want...)
			}
			if len(keys) < 10000 {
				t.Fatalf("only %d scope updates", len(keys))
			}
			diffSnapshots(t, allSnapshots(full), allSnapshots(reduced))
			for _, k := range full.All() {
				a, errA := full.MarshalScope(k)
				b, errB := reduced.MarshalScope(k)
				if errA != nil || errB != nil || !bytes.Equal(a, b) {
					t.Fatalf("checkpoint of %s differs (%v, %v)", k, errA, errB)
				}
			}
		})
	}
}

func levelsOf(e *sgv1.Event) []sgv1.ScopeLevel {
	var levels []sgv1.ScopeLevel
	for _, k := range ScopeKeys(e, nil) {
		levels = append(levels, k.Level)
	}
	return levels
}

// TestApplyLevelsIsApplyScopedPerScope: folding an event's levels at once
// equals ApplyScoped scope by scope, replays included, and a level the
// event has no scope at is refused without changing anything.
func TestApplyLevelsIsApplyScopedPerScope(t *testing.T) {
	end := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	stream := randomEvents(rand.New(rand.NewPCG(9, 9)), 2000, end, 24*time.Hour)
	byLevels, byScope := New(Config{Now: func() time.Time { return end }}), New(Config{Now: func() time.Time { return end }})
	rng := rand.New(rand.NewPCG(4, 4))
	for i, e := range stream {
		keys := ScopeKeys(e, nil)
		var levels []sgv1.ScopeLevel
		var mine []ScopeKey
		for _, k := range keys {
			if rng.IntN(2) == 0 { // the partition owns about half the scopes
				levels = append(levels, k.Level)
				mine = append(mine, k)
			}
		}
		// every tenth record is delivered twice (a replay)
		for range 1 + btoi(i%10 == 0) {
			got, err := byLevels.ApplyLevels(e, levels, 1, int64(i), nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(mine) {
				t.Fatalf("event %d: keys %v, want %v", i, got, mine)
			}
			for _, k := range mine {
				if _, err := byScope.ApplyScoped(e, k, 1, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	diffSnapshots(t, allSnapshots(byScope), allSnapshots(byLevels))
	if a, b := byLevels.Stats(), byScope.Stats(); a != b {
		t.Fatalf("stats %+v, per scope %+v", a, b)
	}

	e := stream[0]
	e.Variant = ""
	before := allSnapshots(byLevels)
	_, err := byLevels.ApplyLevels(e, []sgv1.ScopeLevel{sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT}, 1, 1<<40, nil)
	var invalid *InvalidEventError
	if !errors.As(err, &invalid) || !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("a level without a scope: %v", err)
	}
	diffSnapshots(t, before, allSnapshots(byLevels))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
