package enforce

import (
	"fmt"
	"sort"
	"strings"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Check answers whether tenant may send the message described by req at now.
//
// DENY when any scope of the message is paused — tenant, domain (the
// sender's domain), sender, campaign, variant, provider (of the recipient),
// domain_provider ("domain|provider") — or the recipient or its account is
// suppressed or in cooldown, or the recipient is a role account and
// Config.SuppressRoleAccounts is set. Every cause is listed.
//
// DEFER when a throttle, warm-up cap or frequency cap has no capacity for
// count messages; retry_after is the longest wait among them (the bucket's
// refill time, the next UTC day for daily caps, the oldest send leaving the
// frequency window; Config.SpillRetry for a fleet share that is spent).
//
// ALLOW otherwise, consuming count (default 1) units of every limit unless
// dry_run. A request without tenant, sender or recipient is denied with rule
// "invalid". Expired pauses and suppressions are ignored.
func (s *State) Check(tenantName string, req *sgv1.CheckRequest, now time.Time) *sgv1.CheckResponse {
	sender := strings.ToLower(strings.TrimSpace(req.GetSender()))
	recipient := strings.ToLower(strings.TrimSpace(req.GetRecipient()))
	if tenantName == "" || sender == "" || recipient == "" {
		return &sgv1.CheckResponse{Verdict: sgv1.Verdict_VERDICT_DENY, Reasons: []*sgv1.Reason{{
			Rule: "invalid", Detail: "tenant, sender and recipient are required",
		}}}
	}
	n := int64(req.GetCount())
	if n <= 0 {
		n = 1
	}
	sdom := domainOf(sender)
	rdom := domainOf(recipient)
	di := s.recipientDomain(rdom)
	prov := di.provider
	t := s.tenantFor(tenantName, true)

	var deny []*sgv1.Reason
	var throttles [8]*gate
	nth := 0
	var w *warmup

	t.mu.RLock()
	probe := func(l sgv1.ScopeLevel, target string) {
		if target == "" || t.perLevel[l] == 0 {
			return
		}
		k := scopeKey{l, target}
		if g := t.gates[k]; g != nil && g.live(now) {
			if g.lim == nil {
				deny = append(deny, reasonOf(g.cmd, g.until, "paused"))
			} else if nth < len(throttles) {
				throttles[nth] = g
				nth++
			}
		}
		if p := t.supps[k]; p != nil && p.live(now) {
			deny = append(deny, reasonOf(p.cmd, p.until, "suppressed"))
		}
	}
	probe(sgv1.ScopeLevel_SCOPE_LEVEL_TENANT, tenantName)
	probe(sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, sdom)
	probe(sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, sender)
	probe(sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, req.GetCampaign())
	if v := req.GetVariant(); v != "" {
		// Variant scopes are "campaign/variant", as the windows key them.
		probe(sgv1.ScopeLevel_SCOPE_LEVEL_VARIANT, req.GetCampaign()+"/"+v)
	}
	probe(sgv1.ScopeLevel_SCOPE_LEVEL_PROVIDER, prov)
	if t.perLevel[sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER] > 0 && sdom != "" && prov != "" {
		probe(sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN_PROVIDER, sdom+"|"+prov)
	}
	probe(sgv1.ScopeLevel_SCOPE_LEVEL_ACCOUNT, di.account)
	probe(sgv1.ScopeLevel_SCOPE_LEVEL_RECIPIENT, recipient)
	w = t.warmups[sender]
	t.mu.RUnlock()

	if s.cfg.SuppressRoleAccounts && isRoleAddress(recipient) {
		deny = append(deny, &sgv1.Reason{
			Rule: RuleSuppression, Level: "recipient", Target: recipient,
			Action: sgv1.Action_ACTION_SUPPRESS, Detail: "suppressed: role account",
		})
	}
	if len(deny) > 0 {
		return &sgv1.CheckResponse{Verdict: sgv1.Verdict_VERDICT_DENY, Reasons: deny}
	}
	if w == nil && s.cfg.AutoWarmup {
		w = s.autoWarmup(t, tenantName, sender, now)
	}

	// Reserve every limit; on any failure give back what was taken.
	var deferred []*sgv1.Reason
	var wait time.Duration
	var took [8]*gate
	ntook := 0
	for _, g := range throttles[:nth] {
		ok, wt := g.lim.reserve(n, now, s.cfg.SpillRetry)
		if ok {
			took[ntook] = g
			ntook++
			continue
		}
		if !g.until.IsZero() {
			wt = min(wt, g.until.Sub(now)) // the throttle ends sooner
		}
		wait = max(wait, wt)
		r := reasonOf(g.cmd, g.until, "throttled")
		r.Detail = throttleDetail(g)
		deferred = append(deferred, r)
	}
	d := dayOf(now)
	senderVol := t.volumeFor(s, scopeKey{sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, sender}, true)
	wcap := s.warmupCap(w, d)
	if wcap > 0 {
		wcap, _ = s.capShared(wcap, sgv1.ScopeLevel_SCOPE_LEVEL_SENDER)
	}
	senderVol.mu.Lock()
	senderVol.roll(d)
	senderOK := wcap <= 0 || senderVol.today+n <= wcap
	if senderOK {
		senderVol.today += n
	}
	senderVol.mu.Unlock()
	if !senderOK {
		wt := dayStart(d + 1).Sub(now)
		if s.cfg.Instances > 1 && !s.cfg.SenderAffinity && s.cfg.SpillRetry < wt {
			wt = s.cfg.SpillRetry
		}
		wait = max(wait, wt)
		deferred = append(deferred, &sgv1.Reason{
			Rule: RuleWarmup, Level: "sender", Target: sender, Action: sgv1.Action_ACTION_THROTTLE,
			Until:  timestamppb.New(dayStart(s.warmupEnd(w.start))),
			Detail: fmt.Sprintf("warm-up day %d: daily cap %d reached", d-w.start+1, wcap),
		})
	}
	freqOK := true
	if s.cfg.FrequencyCap > 0 {
		var wt time.Duration
		freqOK, wt = t.reserveFreq(s, recipient, n, now)
		if !freqOK {
			wait = max(wait, wt)
			deferred = append(deferred, &sgv1.Reason{
				Rule: RuleFrequencyCap, Level: "recipient", Target: recipient, Action: sgv1.Action_ACTION_THROTTLE,
				Detail: fmt.Sprintf("frequency cap: %d messages per %s per recipient", s.cfg.FrequencyCap, s.cfg.FrequencyWindow),
			})
		}
	}

	if len(deferred) > 0 || req.GetDryRun() {
		for _, g := range took[:ntook] {
			g.lim.release(n, now)
		}
		if senderOK {
			senderVol.release(n, d)
		}
		if freqOK && s.cfg.FrequencyCap > 0 {
			t.releaseFreq(s, recipient, n, now)
		}
		if len(deferred) > 0 {
			return &sgv1.CheckResponse{
				Verdict: sgv1.Verdict_VERDICT_DEFER, Reasons: deferred, RetryAfter: durationpb.New(wait),
			}
		}
		return &sgv1.CheckResponse{Verdict: sgv1.Verdict_VERDICT_ALLOW}
	}
	if sdom != "" {
		t.volumeFor(s, scopeKey{sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, sdom}, true).add(n, d)
	}
	if c := req.GetCampaign(); c != "" {
		t.volumeFor(s, scopeKey{sgv1.ScopeLevel_SCOPE_LEVEL_CAMPAIGN, c}, true).add(n, d)
	}
	return &sgv1.CheckResponse{Verdict: sgv1.Verdict_VERDICT_ALLOW}
}

// CheckBatch answers many checks at once, one response per request, in
// order, each as Check would at now.
func (s *State) CheckBatch(tenantName string, reqs []*sgv1.CheckRequest, now time.Time) []*sgv1.CheckResponse {
	out := make([]*sgv1.CheckResponse, len(reqs))
	for i, r := range reqs {
		out[i] = s.Check(tenantName, r, now)
	}
	return out
}

func (v *volume) add(n, d int64) {
	v.mu.Lock()
	v.roll(d)
	if d == v.day {
		v.today += n
	}
	v.mu.Unlock()
}

func (v *volume) release(n, d int64) {
	v.mu.Lock()
	if d == v.day {
		v.today = max(0, v.today-n)
	}
	v.mu.Unlock()
}

// reserveFreq admits n messages to recipient if its frequency window has room.
func (t *tenant) reserveFreq(s *State, recipient string, n int64, now time.Time) (bool, time.Duration) {
	sh := &t.freq[t.shard(s, recipient)]
	limit := int64(s.cfg.FrequencyCap)
	win := s.cfg.FrequencyWindow
	nowNs := now.UnixNano()
	floor := nowNs - int64(win)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.m[recipient]
	if r == nil {
		r = &freqRing{}
		sh.m[recipient] = r
	}
	i := 0
	for i < len(r.times) && r.times[i] <= floor {
		i++
	}
	r.times = r.times[i:]
	have := int64(len(r.times))
	if have+n > limit {
		if n > limit {
			return false, win
		}
		// The (have+n-limit)-th oldest send must leave the window.
		oldest := r.times[have+n-limit-1]
		return false, time.Duration(oldest + int64(win) - nowNs)
	}
	for j := int64(0); j < n; j++ {
		r.times = append(r.times, nowNs)
	}
	return true, 0
}

// releaseFreq undoes reserveFreq's admission of n messages at now.
func (t *tenant) releaseFreq(s *State, recipient string, n int64, now time.Time) {
	sh := &t.freq[t.shard(s, recipient)]
	nowNs := now.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.m[recipient]
	if r == nil {
		return
	}
	for j := len(r.times) - 1; j >= 0 && n > 0; j-- {
		if r.times[j] == nowNs {
			r.times = append(r.times[:j], r.times[j+1:]...)
			n--
		}
	}
	if len(r.times) == 0 {
		delete(sh.m, recipient)
	}
}

// reasonOf describes a stored command as a Check reason.
func reasonOf(cmd *sgv1.ControlCommand, until time.Time, verb string) *sgv1.Reason {
	r := &sgv1.Reason{
		Rule:   cmd.GetRule(),
		Level:  LevelWord(cmd.GetScope().GetLevel()),
		Target: cmd.GetScope().GetTarget(),
		Action: cmd.GetAction(),
		Detail: detailOf(cmd, verb),
	}
	if !until.IsZero() {
		r.Until = timestamppb.New(until)
	}
	return r
}

func detailOf(cmd *sgv1.ControlCommand, verb string) string {
	var b strings.Builder
	b.WriteString(verb)
	if cmd.GetReason() != "" {
		b.WriteString(": ")
		b.WriteString(cmd.GetReason())
	}
	if e := cmd.GetExplanation(); e != nil && e.GetMetric() != "" {
		fmt.Fprintf(&b, "; %s %g %s %g (n=%d, %s)", e.GetMetric(), e.GetObserved(),
			e.GetComparator(), e.GetThreshold(), e.GetSampleSize(), e.GetWindow())
	}
	if cmd.GetActor() != "" {
		b.WriteString(" by ")
		b.WriteString(cmd.GetActor())
	}
	return b.String()
}

func throttleDetail(g *gate) string {
	parts := []string{"throttled"}
	if dc := g.cmd.GetDailyCap(); dc > 0 {
		parts = append(parts, fmt.Sprintf("daily cap %d", dc))
	}
	if r := g.cmd.GetCapRatio(); r > 0 {
		parts = append(parts, fmt.Sprintf("cap ratio %g (%.0f/day)", r, g.lim.burst))
	}
	return strings.Join(parts, ", ") + " reached"
}

// autoWarmup records a warm-up starting today for a sender never seen, and
// queues its command for DrainPending.
func (s *State) autoWarmup(t *tenant, tenantName, sender string, now time.Time) *warmup {
	cmd := WarmupCommand(tenantName, sender, now)
	k := scopeKey{sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, sender}
	w := &warmup{cmd: cmd, start: dayOf(now)}
	t.mu.Lock()
	if old := t.warmups[sender]; old != nil {
		t.mu.Unlock()
		return old
	}
	t.warmups[k.target] = w
	t.mu.Unlock()
	s.markSeen(tenantName + "\x00" + cmd.GetCommandId())
	s.pendMu.Lock()
	s.pending = append(s.pending, cmd)
	s.hasPending.Store(true)
	s.pendMu.Unlock()
	return w
}

// WarmupCommand returns the command that records sender's warm-up starting
// on the UTC day of start (a throttle with rule "warmup"). A start 14 days or
// more in the past marks an established sender. Its id is deterministic.
func WarmupCommand(tenantName, sender string, start time.Time) *sgv1.ControlCommand {
	sender = strings.ToLower(strings.TrimSpace(sender))
	day := dayStart(dayOf(start))
	return &sgv1.ControlCommand{
		CommandId: "warmup:" + sender + ":" + day.Format("2006-01-02"),
		Scope:     &sgv1.Scope{Tenant: tenantName, Level: sgv1.ScopeLevel_SCOPE_LEVEL_SENDER, Target: sender},
		Action:    sgv1.Action_ACTION_THROTTLE,
		Rule:      RuleWarmup,
		At:        timestamppb.New(day),
		Reason:    "new sender warm-up",
		Explanation: &sgv1.Explanation{
			Summary: "new sender: daily cap follows the warm-up schedule",
			Source:  "seed: send ramping SOP (20-30/day days 1-3, 40-60 days 4-7, 60-100 week 2)",
		},
	}
}

// DrainPending returns and forgets the commands the state created on its own
// (automatic warm-ups), for the caller to publish on the control topic.
func (s *State) DrainPending() []*sgv1.ControlCommand {
	if !s.hasPending.Load() {
		return nil
	}
	s.pendMu.Lock()
	p := s.pending
	s.pending = nil
	s.hasPending.Store(false)
	s.pendMu.Unlock()
	sort.SliceStable(p, func(i, j int) bool { return p[i].GetCommandId() < p[j].GetCommandId() })
	return p
}
