package actuator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/enforce"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// maxRequestID bounds a client-chosen request id.
const maxRequestID = 128

// ManualCommand builds the control command of a manual action by tenant at
// now: rule "manual", the actor and reason, at = now, until from m.until or
// now + m.duration (open-ended when neither), and command id
// "manual:<request_id>:<action>" so that a retried request is applied once
// (newID supplies the request id when m has none). For throttles capRatio
// (0 < r ≤ 1) and/or dailyCap (> 0) are required. A tenant-level scope's
// target is the tenant itself. It returns an error naming the bad field;
// it does not touch any state.
func ManualCommand(tenant string, action sgv1.Action, m *sgv1.ManualCommand, capRatio float64, dailyCap int64,
	now time.Time, newID func() string,
) (*sgv1.ControlCommand, error) {
	if tenant == "" {
		return nil, errors.New("tenant: required")
	}
	if m == nil {
		return nil, errors.New("command: required")
	}
	level := m.GetLevel()
	if level == sgv1.ScopeLevel_SCOPE_LEVEL_UNSPECIFIED || enforce.LevelWord(level) == "" {
		return nil, errors.New("level: required (tenant, domain, sender, campaign, variant, provider, account, recipient, domain_provider)")
	}
	target := strings.TrimSpace(m.GetTarget())
	if level == sgv1.ScopeLevel_SCOPE_LEVEL_TENANT {
		if target != "" && target != tenant {
			return nil, errors.New("target: a tenant-level scope is the key's own tenant")
		}
		target = tenant
	}
	if target == "" {
		return nil, errors.New("target: required")
	}
	actor, reason := strings.TrimSpace(m.GetActor()), strings.TrimSpace(m.GetReason())
	if actor == "" {
		return nil, errors.New("actor: required")
	}
	if reason == "" {
		return nil, errors.New("reason: required")
	}
	rid := strings.TrimSpace(m.GetRequestId())
	if len(rid) > maxRequestID {
		return nil, fmt.Errorf("request_id: longer than %d bytes", maxRequestID)
	}
	if rid == "" {
		rid = newID()
	}
	var until time.Time
	timed := action == sgv1.Action_ACTION_PAUSE || action == sgv1.Action_ACTION_THROTTLE || action == sgv1.Action_ACTION_SUPPRESS
	switch {
	case m.GetUntil() != nil && m.GetDuration() != nil:
		return nil, errors.New("until, duration: give at most one")
	case !timed:
	case m.GetUntil() != nil:
		if err := m.GetUntil().CheckValid(); err != nil {
			return nil, fmt.Errorf("until: %w", err)
		}
		until = m.GetUntil().AsTime()
		if !until.After(now) {
			return nil, fmt.Errorf("until: %s is not in the future", until.UTC().Format(time.RFC3339))
		}
	case m.GetDuration() != nil:
		if err := m.GetDuration().CheckValid(); err != nil {
			return nil, fmt.Errorf("duration: %w", err)
		}
		d := m.GetDuration().AsDuration()
		if d <= 0 {
			return nil, errors.New("duration: must be positive")
		}
		until = now.Add(d)
	}
	if action == sgv1.Action_ACTION_THROTTLE {
		switch {
		case capRatio < 0 || capRatio > 1 || capRatio != capRatio:
			return nil, errors.New("cap_ratio: want 0 < r ≤ 1")
		case dailyCap < 0:
			return nil, errors.New("daily_cap: must not be negative")
		case capRatio == 0 && dailyCap == 0:
			return nil, errors.New("cap_ratio, daily_cap: a throttle needs at least one")
		}
	} else {
		capRatio, dailyCap = 0, 0
	}
	word := enforce.ActionWord(action)
	sev := sgv1.Severity_SEVERITY_WARNING
	if action == sgv1.Action_ACTION_RESUME || action == sgv1.Action_ACTION_UNSUPPRESS {
		sev = sgv1.Severity_SEVERITY_INFO
	}
	c := &sgv1.ControlCommand{
		CommandId: "manual:" + rid + ":" + word,
		Scope:     &sgv1.Scope{Tenant: tenant, Level: level, Target: target},
		Action:    action,
		Rule:      enforce.RuleManual,
		At:        timestamppb.New(now),
		CapRatio:  capRatio,
		DailyCap:  dailyCap,
		Actor:     actor,
		Reason:    reason,
		Severity:  sev,
		Explanation: &sgv1.Explanation{
			Summary: fmt.Sprintf("manual %s of %s %s by %s: %s", word, enforce.LevelWord(level), target, actor, reason),
			Source:  "manual",
		},
	}
	if !until.IsZero() {
		c.Until = timestamppb.New(until)
	}
	return c, nil
}

// ManualAlert is the alert announcing a manual command: same scope, rule,
// actor, times and explanation, id "<command id>:alert", and a reason that
// names the action ("pause domain acme.io by ann: <reason>").
func ManualAlert(c *sgv1.ControlCommand) *sgv1.ControlCommand {
	a := proto.Clone(c).(*sgv1.ControlCommand)
	a.CommandId = c.GetCommandId() + ":alert"
	a.Action = sgv1.Action_ACTION_ALERT
	a.Reason = fmt.Sprintf("%s %s %s by %s: %s", enforce.ActionWord(c.GetAction()),
		enforce.LevelWord(c.GetScope().GetLevel()), c.GetScope().GetTarget(), c.GetActor(), c.GetReason())
	return a
}

// ApplyManual applies a manual command and publishes it, followed by its
// alert (ManualAlert), through the same path as automatic commands: the
// enforcement state first (Check answers from it at once), then the control
// and control-state topics and the audit log. It reports whether the state
// changed. A command id applied before changes nothing and is not published
// again, unless its earlier publishing failed: then it is published now, so
// a client retrying with the same request id gets its command out.
func (s *Stage) ApplyManual(ctx context.Context, c *sgv1.ControlCommand) (bool, error) {
	key := c.GetScope().GetTenant() + "\x00" + c.GetCommandId()
	b := &batch{s: s}
	var out []*sgv1.ControlCommand
	changed := false
	if s.state.Seen(c.GetScope().GetTenant(), c.GetCommandId()) {
		s.unpubMu.Lock()
		out = s.unpublished[key]
		delete(s.unpublished, key)
		s.unpubMu.Unlock()
		if len(out) == 0 {
			return false, nil
		}
		changed = true
	} else if s.state.Apply(c) {
		changed = true
		out = []*sgv1.ControlCommand{c}
		if a := ManualAlert(c); s.state.Announce(a) {
			out = append(out, a)
		}
	}
	for _, cmd := range out {
		if err := b.publish(cmd, true); err != nil {
			return changed, err
		}
	}
	if err := b.Flush(ctx); err != nil {
		s.unpubMu.Lock()
		s.unpublished[key] = out
		s.unpubMu.Unlock()
		return changed, err
	}
	return changed, nil
}

// Status returns the tenant's live enforcement entries (enforce.Status),
// optionally only those at level and/or target, each as the command that
// set it (id, rule, actor, reason, severity, explanation; enforce.Snapshot)
// with the entry's until and the time left on it.
func (s *Stage) Status(tenant string, level sgv1.ScopeLevel, target string) []*sgv1.ScopeState {
	type key struct{ level, target, action string }
	snap := map[key]*sgv1.ControlCommand{}
	for _, c := range s.state.Snapshot(tenant) {
		a := enforce.ActionWord(c.GetAction())
		if c.GetRule() == enforce.RuleWarmup {
			a = enforce.ActionWord(sgv1.Action_ACTION_THROTTLE) // Status shows a warm-up as a throttle
		}
		snap[key{enforce.LevelWord(c.GetScope().GetLevel()), c.GetScope().GetTarget(), a}] = c
	}
	var out []*sgv1.ScopeState
	for _, st := range s.state.Status(tenant) {
		l, err := canonical.ParseLevel(st.Level)
		if err != nil {
			continue
		}
		if (level != sgv1.ScopeLevel_SCOPE_LEVEL_UNSPECIFIED && l != level) || (target != "" && !strings.EqualFold(target, st.Target)) {
			continue
		}
		a, _ := canonical.ParseAction(st.Action)
		c := snap[key{st.Level, st.Target, st.Action}]
		if c == nil {
			c = &sgv1.ControlCommand{Rule: st.Rule, Actor: st.Actor, Reason: st.Reason}
			if st.Summary != "" {
				c.Explanation = &sgv1.Explanation{Summary: st.Summary}
			}
			if !st.At.IsZero() {
				c.At = timestamppb.New(st.At)
			}
		}
		c.Scope = &sgv1.Scope{Tenant: tenant, Level: l, Target: st.Target}
		c.Action, c.CapRatio, c.DailyCap, c.Until = a, st.CapRatio, st.DailyCap, nil
		ss := &sgv1.ScopeState{Command: c}
		if !st.Until.IsZero() {
			c.Until = timestamppb.New(st.Until)
			ss.TimeToUnpause = durationpb.New(max(st.Remaining, 0))
		}
		out = append(out, ss)
	}
	return out
}

// controlServer is ControlService: thin transport over ManualCommand,
// ApplyManual and Status. The tenant is the API key's.
type controlServer struct {
	sgv1.UnimplementedControlServiceServer
	s *Stage
}

var _ sgv1.ControlServiceServer = (*controlServer)(nil)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func (c *controlServer) manual(ctx context.Context, action sgv1.Action, m *sgv1.ManualCommand, ratio float64, daily int64) (*sgv1.ManualResult, error) {
	tenant, err := c.s.keys.TenantFromGRPC(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	cmd, err := ManualCommand(tenant, action, m, ratio, daily, c.s.now(), newRequestID)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	changed, err := c.s.ApplyManual(ctx, cmd)
	if err != nil {
		c.s.logger.Warn("manual command not published", zap.String("command_id", cmd.GetCommandId()), zap.Error(err))
		return nil, status.Errorf(codes.Unavailable, "publish %s: %v (retry with the same request id)", cmd.GetCommandId(), err)
	}
	c.s.logger.Info("manual command", zap.String("command_id", cmd.GetCommandId()), zap.String("tenant", tenant),
		zap.String("actor", cmd.GetActor()), zap.String("reason", cmd.GetReason()), zap.Bool("changed", changed))
	return &sgv1.ManualResult{Command: cmd, Changed: changed}, nil
}

func (c *controlServer) Pause(ctx context.Context, req *sgv1.PauseRequest) (*sgv1.PauseResponse, error) {
	r, err := c.manual(ctx, sgv1.Action_ACTION_PAUSE, req.GetCommand(), 0, 0)
	if err != nil {
		return nil, err
	}
	return &sgv1.PauseResponse{Result: r}, nil
}

func (c *controlServer) Resume(ctx context.Context, req *sgv1.ResumeRequest) (*sgv1.ResumeResponse, error) {
	r, err := c.manual(ctx, sgv1.Action_ACTION_RESUME, req.GetCommand(), 0, 0)
	if err != nil {
		return nil, err
	}
	return &sgv1.ResumeResponse{Result: r}, nil
}

func (c *controlServer) Throttle(ctx context.Context, req *sgv1.ThrottleRequest) (*sgv1.ThrottleResponse, error) {
	r, err := c.manual(ctx, sgv1.Action_ACTION_THROTTLE, req.GetCommand(), req.GetCapRatio(), req.GetDailyCap())
	if err != nil {
		return nil, err
	}
	return &sgv1.ThrottleResponse{Result: r}, nil
}

func (c *controlServer) Suppress(ctx context.Context, req *sgv1.SuppressRequest) (*sgv1.SuppressResponse, error) {
	r, err := c.manual(ctx, sgv1.Action_ACTION_SUPPRESS, req.GetCommand(), 0, 0)
	if err != nil {
		return nil, err
	}
	return &sgv1.SuppressResponse{Result: r}, nil
}

func (c *controlServer) Unsuppress(ctx context.Context, req *sgv1.UnsuppressRequest) (*sgv1.UnsuppressResponse, error) {
	r, err := c.manual(ctx, sgv1.Action_ACTION_UNSUPPRESS, req.GetCommand(), 0, 0)
	if err != nil {
		return nil, err
	}
	return &sgv1.UnsuppressResponse{Result: r}, nil
}

func (c *controlServer) Status(ctx context.Context, req *sgv1.StatusRequest) (*sgv1.StatusResponse, error) {
	tenant, err := c.s.keys.TenantFromGRPC(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return &sgv1.StatusResponse{
		Scopes: c.s.Status(tenant, req.GetLevel(), strings.TrimSpace(req.GetTarget())),
		At:     timestamppb.New(c.s.now()),
	}, nil
}
