package actuator_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/stage/actuator/actuatortest"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestRestoreHonoursTombstones: a scope paused then resumed must come back
// resumed after a restart, although the state topic (not yet compacted)
// still holds the pause before the tombstone.
func TestRestoreHonoursTombstones(t *testing.T) {
	s := actuatortest.Start(t, actuatortest.Options{})
	c := newClient(t, s)
	ctx := actuatortest.WithKey(context.Background(), keyA)
	for _, target := range []string{"acme.io", "kept.io"} {
		m := manual(dom, target, "p-"+target)
		m.Duration = durationpb.New(time.Hour)
		if _, err := c.ctl.Pause(ctx, &sgv1.PauseRequest{Command: m}); err != nil {
			t.Fatalf("pause %s: %v", target, err)
		}
	}
	if _, err := c.ctl.Resume(ctx, &sgv1.ResumeRequest{Command: manual(dom, "acme.io", "r-1")}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	fresh, err := actuator.New(enforce.New(enforce.DefaultConfig()), nil, auth.NewKeys(), zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fresh.Restore(rctx, s.Brokers); err != nil {
		t.Fatal(err)
	}
	check := func(sender string) sgv1.Verdict {
		return fresh.State().Check("default", &sgv1.CheckRequest{Sender: sender, Recipient: "x@example.org", DryRun: true}, time.Now()).GetVerdict()
	}
	if v := check("bob@acme.io"); v != sgv1.Verdict_VERDICT_ALLOW {
		t.Errorf("resumed domain after restore: %v, want ALLOW", v)
	}
	if v := check("bob@kept.io"); v != sgv1.Verdict_VERDICT_DENY {
		t.Errorf("paused domain after restore: %v, want DENY", v)
	}
}
