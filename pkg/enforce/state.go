package enforce

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
	"google.golang.org/protobuf/proto"
)

// Rule and reason names of the policies this package enforces on its own
// (the rule evaluator's decisions carry their own rule ids).
const (
	RuleManual       = "manual"
	RuleSuppression  = "suppression"
	RuleCooldown     = "cooldown"
	RuleWarmup       = "warmup"
	RuleFrequencyCap = "frequency_cap"

	ReasonUnsubscribe      = "unsubscribe"
	ReasonHardBounce       = "hard_bounce"
	ReasonComplaint        = "complaint"
	ReasonDoNotContact     = "do_not_contact"
	ReasonNotInterested    = "not_interested"
	ReasonAccountComplaint = "account_complaint"
	ReasonAccountCooldown  = "account_cooldown"
	ReasonRoleAccount      = "role_account"
)

// WarmupStep is one stage of the warm-up schedule of a new sender: on days
// FromDay..ToDay (1-based, counted in UTC days from the sender's first day)
// the daily cap rises linearly from Min to Max.
type WarmupStep struct {
	FromDay, ToDay int
	Min, Max       int64
}

// DefaultWarmup is the seeds' ramp: days 1–3 20–30/day, days 4–7 40–60/day,
// week 2 60–100/day while clean; from day 15 the sender has no warm-up cap.
var DefaultWarmup = []WarmupStep{
	{FromDay: 1, ToDay: 3, Min: 20, Max: 30},
	{FromDay: 4, ToDay: 7, Min: 40, Max: 60},
	{FromDay: 8, ToDay: 14, Min: 60, Max: 100},
}

// Config tunes the enforcement policies. The zero value of a field means its
// default (DefaultConfig) except where a field says 0 disables.
type Config struct {
	// Clock is the wall clock used by Apply, Status and Export.
	Clock func() time.Time
	// Warmup is the warm-up schedule; nil means DefaultWarmup.
	Warmup []WarmupStep
	// AutoWarmup starts a warm-up for every sender Check has not seen before
	// (no warm-up record yet). Turn it on only once the state topic has been
	// loaded and established senders are recorded (StartWarmup with their
	// first sending day), or every old sender would start at 20/day.
	AutoWarmup bool
	// FrequencyCap is the annoyance level: at most this many messages per
	// recipient per FrequencyWindow, across campaigns and senders. 0 disables.
	FrequencyCap    int
	FrequencyWindow time.Duration
	// SuppressRoleAccounts denies role mailboxes (info@, sales@ …).
	SuppressRoleAccounts bool
	// NotInterestedFor is how long a not_a_fit reply suppresses (90 days).
	NotInterestedFor time.Duration
	// AccountComplaintFor is how long a complaint suppresses the recipient's
	// company domain (30 days).
	AccountComplaintFor time.Duration
	// CooldownContacts distinct negative contacts at one account within
	// CooldownWindow put the account in cooldown for CooldownFor (2, 14 d, 14 d).
	CooldownContacts int
	CooldownWindow   time.Duration
	CooldownFor      time.Duration
	// MaxCooldownAccounts bounds the per-account negative-contact memory.
	MaxCooldownAccounts int
	// SeenIDs is how many command ids are remembered for idempotency.
	SeenIDs int
	// MinRatioCap is the floor of a cap_ratio throttle's daily allowance when
	// the prior volume is unknown or tiny.
	MinRatioCap int64
	// Instances and Index place this process in a fleet: every daily cap,
	// ratio allowance and warm-up cap is cut to Share(cap, Instances, Index).
	Instances, Index int
	// SenderAffinity says checks are routed to instances by Owner(tenant|sender):
	// sender-level caps and warm-ups are then held whole, not shared.
	SenderAffinity bool
	// SpillRetry is the retry_after given when this instance's share of a
	// daily cap is spent but the fleet may still have capacity (Instances > 1).
	SpillRetry time.Duration
}

// DefaultConfig returns the seed policy: warm-up on the seed schedule,
// frequency cap 3 per 7 days, not-interested 90 d, account complaint 30 d,
// cooldown 2 contacts in 14 d → 14 d, role accounts not suppressed.
func DefaultConfig() Config {
	return Config{
		Clock:               time.Now,
		Warmup:              DefaultWarmup,
		FrequencyCap:        3,
		FrequencyWindow:     7 * 24 * time.Hour,
		NotInterestedFor:    90 * 24 * time.Hour,
		AccountComplaintFor: 30 * 24 * time.Hour,
		CooldownContacts:    2,
		CooldownWindow:      14 * 24 * time.Hour,
		CooldownFor:         14 * 24 * time.Hour,
		MaxCooldownAccounts: 200_000,
		SeenIDs:             1 << 16,
		MinRatioCap:         10,
		Instances:           1,
		SpillRetry:          30 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Warmup == nil {
		c.Warmup = d.Warmup
	}
	if c.FrequencyWindow <= 0 {
		c.FrequencyWindow = d.FrequencyWindow
	}
	if c.NotInterestedFor <= 0 {
		c.NotInterestedFor = d.NotInterestedFor
	}
	if c.AccountComplaintFor <= 0 {
		c.AccountComplaintFor = d.AccountComplaintFor
	}
	if c.CooldownContacts <= 0 {
		c.CooldownContacts = d.CooldownContacts
	}
	if c.CooldownWindow <= 0 {
		c.CooldownWindow = d.CooldownWindow
	}
	if c.CooldownFor <= 0 {
		c.CooldownFor = d.CooldownFor
	}
	if c.MaxCooldownAccounts <= 0 {
		c.MaxCooldownAccounts = d.MaxCooldownAccounts
	}
	if c.SeenIDs <= 0 {
		c.SeenIDs = d.SeenIDs
	}
	if c.MinRatioCap <= 0 {
		c.MinRatioCap = d.MinRatioCap
	}
	if c.Instances <= 0 {
		c.Instances = 1
	}
	if c.Index < 0 || c.Index >= c.Instances {
		c.Index = 0
	}
	if c.SpillRetry <= 0 {
		c.SpillRetry = d.SpillRetry
	}
	return c
}

// State is the enforcement state of every tenant: pauses, throttles,
// suppressions, cooldowns, warm-ups and the counters that enforce caps. It is
// built by Apply from control commands and read by Check. All methods are
// safe for concurrent use.
type State struct {
	cfg  Config
	seed maphash.Seed

	mu      sync.RWMutex
	tenants map[string]*tenant

	domains     sync.Map // recipient domain → domainInfo
	domainCount atomic.Int64

	seenMu   sync.Mutex
	seen     map[string]struct{}
	seenRing []string
	seenNext int

	cdMu      sync.Mutex
	negatives map[string]*negContacts // tenant|account → recent negative contacts

	pendMu  sync.Mutex
	pending []*sgv1.ControlCommand
	// hasPending is set with pending non-empty (under pendMu), so that
	// DrainPending, called for every record the actuator handles, returns
	// without locking when there is nothing to drain.
	hasPending atomic.Bool
}

// New returns an empty State.
func New(cfg Config) *State {
	cfg = cfg.withDefaults()
	return &State{
		cfg:       cfg,
		seed:      maphash.MakeSeed(),
		tenants:   make(map[string]*tenant),
		seen:      make(map[string]struct{}, cfg.SeenIDs),
		seenRing:  make([]string, cfg.SeenIDs),
		negatives: make(map[string]*negContacts),
	}
}

// Config returns the effective configuration.
func (s *State) Config() Config { return s.cfg }

const nShards = 32

type scopeKey struct {
	level  sgv1.ScopeLevel
	target string
}

type tenant struct {
	name string

	mu       sync.RWMutex
	gates    map[scopeKey]*gate // pauses and throttles
	supps    map[scopeKey]*supp // suppressions and cooldowns
	warmups  map[string]*warmup // by sender
	perLevel [numLevels]int     // gates+supps per level, to skip empty levels
	counts   entryCounts        // gates and supps by level and kind (Sizes)

	vol  [nShards]volShard
	freq [nShards]freqShard
}

func newTenant(name string) *tenant {
	t := &tenant{
		name:    name,
		gates:   make(map[scopeKey]*gate),
		supps:   make(map[scopeKey]*supp),
		warmups: make(map[string]*warmup),
	}
	for i := range t.vol {
		t.vol[i].m = make(map[scopeKey]*volume)
		t.freq[i].m = make(map[string]*freqRing)
	}
	return t
}

// gate is a pause or a throttle of one scope.
type gate struct {
	cmd   *sgv1.ControlCommand
	until time.Time // zero: open-ended
	lim   *limiter  // nil for a pause
	kind  kindIndex // Kind(cmd), set by setGate
}

func (g *gate) live(now time.Time) bool { return g.until.IsZero() || now.Before(g.until) }

// supp is a suppression (or cooldown) of one recipient, account or scope.
type supp struct {
	cmd   *sgv1.ControlCommand
	until time.Time
	kind  kindIndex // Kind(cmd), set by setSupp
}

func (p *supp) live(now time.Time) bool { return p.until.IsZero() || now.Before(p.until) }

// warmup is a sender's warm-up record. It is kept after the schedule ends so
// the sender is known and never warmed up again.
type warmup struct {
	cmd   *sgv1.ControlCommand
	start int64 // UTC day number of day 1
	hold  int64 // cap ceiling after a complaint; 0 none
	done  bool  // ended early by a resume
}

// limiter enforces a throttle: a UTC-day counter for daily_cap and a token
// bucket (capacity = the day's allowance, refilled evenly over 24 h, i.e. a
// rolling 24 h allowance) for cap_ratio.
type limiter struct {
	mu       sync.Mutex
	dailyCap int64 // ≤0: none
	day      int64
	used     int64
	rate     float64 // tokens per second; 0: no bucket
	burst    float64
	tokens   float64
	last     time.Time
	spill    bool // this cap is a share of a fleet-wide cap
}

// volume counts the messages this instance admitted for one scope per UTC
// day (today and the day before), for warm-up caps and ratio baselines.
type volume struct {
	mu    sync.Mutex
	day   int64
	today int64
	prev  int64
}

type volShard struct {
	mu sync.RWMutex
	m  map[scopeKey]*volume
}

// freqRing holds the admission times (unix ns, ascending) of one recipient
// within the frequency window.
type freqRing struct {
	times []int64
}

type freqShard struct {
	mu sync.Mutex
	m  map[string]*freqRing
}

// negContacts are the recent distinct negative contacts at one account.
type negContacts struct {
	last     time.Time
	contacts map[string]time.Time
}

func dayOf(t time.Time) int64 { return int64(math.Floor(float64(t.Unix()) / 86400)) }

func dayStart(day int64) time.Time { return time.Unix(day*86400, 0).UTC() }

func (s *State) tenantFor(name string, create bool) *tenant {
	s.mu.RLock()
	t := s.tenants[name]
	s.mu.RUnlock()
	if t != nil || !create {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.tenants[name]; t == nil {
		t = newTenant(name)
		s.tenants[name] = t
	}
	return t
}

func (t *tenant) shard(s *State, key string) int {
	return int(maphash.String(s.seed, key) % nShards)
}

// volumeFor returns the volume counter of a scope, creating it when create.
func (t *tenant) volumeFor(s *State, k scopeKey, create bool) *volume {
	sh := &t.vol[t.shard(s, k.target)]
	sh.mu.RLock()
	v := sh.m[k]
	sh.mu.RUnlock()
	if v != nil || !create {
		return v
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if v = sh.m[k]; v == nil {
		v = &volume{}
		sh.m[k] = v
	}
	return v
}

// roll moves the counter to day d. Callers hold v.mu.
func (v *volume) roll(d int64) {
	switch {
	case d == v.day:
	case d == v.day+1:
		v.prev, v.today, v.day = v.today, 0, d
	case d > v.day:
		v.prev, v.today, v.day = 0, 0, d
	}
}

// counts returns today's and the previous day's volume as of day d.
func (v *volume) counts(d int64) (today, prev int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case d == v.day:
		return v.today, v.prev
	case d == v.day+1:
		return 0, v.today
	default:
		return 0, 0
	}
}

// ObserveVolume records that n messages were sent at a scope on the UTC day
// of day, as known from outside this instance (window snapshots such as
// sent_24h and sent_prev_24h). Counters only grow: the larger of the local
// and the observed count is kept. Use it after a restart so daily caps and
// ratio baselines do not start from zero.
func (s *State) ObserveVolume(tenantName string, level sgv1.ScopeLevel, target string, day time.Time, n int64) {
	if tenantName == "" || target == "" || n <= 0 {
		return
	}
	t := s.tenantFor(tenantName, true)
	v := t.volumeFor(s, scopeKey{level, normTarget(level, target)}, true)
	d := dayOf(day)
	v.mu.Lock()
	defer v.mu.Unlock()
	if d > v.day {
		v.roll(d)
	}
	switch d {
	case v.day:
		v.today = max(v.today, n)
	case v.day - 1:
		v.prev = max(v.prev, n)
	}
}

// markSeen records a command id; it reports false when the id was seen.
func (s *State) markSeen(key string) bool {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	if _, ok := s.seen[key]; ok {
		return false
	}
	if old := s.seenRing[s.seenNext]; old != "" {
		delete(s.seen, old)
	}
	s.seenRing[s.seenNext] = key
	s.seenNext = (s.seenNext + 1) % len(s.seenRing)
	s.seen[key] = struct{}{}
	return true
}

// Apply applies one control command and reports whether it changed the
// enforcement state. It is idempotent by command_id (within tenant; the last
// Config.SeenIDs ids are remembered); a command without an id is applied
// every time. Pause and throttle replace the scope's gate, resume removes it;
// suppress adds a suppression unless one already lasts longer (open-ended
// lasts longest), unsuppress removes it; a throttle with rule "warmup" at
// sender level records the sender's warm-up (at = its first day, daily_cap
// = a ceiling, 0 none) and a resume with rule "warmup" ends it; alert and
// unknown actions change nothing. Commands with an until in the past are
// stored but ignored by Check. Manual commands (rule "manual", actor,
// reason) are applied the same way.
func (s *State) Apply(cmd *sgv1.ControlCommand) bool {
	k, tn, ok := commandScope(cmd)
	if !ok {
		return false
	}
	if id := cmd.GetCommandId(); id != "" && !s.markSeen(tn+"\x00"+id) {
		return false
	}
	return s.apply(cmd, tn, k)
}

// commandScope validates a command's scope and returns its key and tenant.
func commandScope(cmd *sgv1.ControlCommand) (scopeKey, string, bool) {
	sc := cmd.GetScope()
	tn := sc.GetTenant()
	l := sc.GetLevel()
	if tn == "" || LevelWord(l) == "" {
		return scopeKey{}, "", false
	}
	target := normTarget(l, sc.GetTarget())
	if l == sgv1.ScopeLevel_SCOPE_LEVEL_TENANT {
		target = tn // a tenant-level scope is the command's own tenant
	}
	if target == "" {
		return scopeKey{}, "", false
	}
	return scopeKey{l, target}, tn, true
}

func tsTime(ts interface{ AsTime() time.Time }, set bool) time.Time {
	if !set {
		return time.Time{}
	}
	return ts.AsTime()
}

func untilOf(cmd *sgv1.ControlCommand) time.Time {
	return tsTime(cmd.GetUntil(), cmd.GetUntil() != nil)
}

// stored returns the command as kept in the state: a copy with the scope's
// target canonicalised.
func stored(cmd *sgv1.ControlCommand, tn string, k scopeKey) *sgv1.ControlCommand {
	c := proto.Clone(cmd).(*sgv1.ControlCommand)
	c.Scope = &sgv1.Scope{Tenant: tn, Level: k.level, Target: k.target}
	return c
}

func (s *State) apply(cmd *sgv1.ControlCommand, tn string, k scopeKey) bool {
	switch cmd.GetAction() {
	case sgv1.Action_ACTION_PAUSE:
		t := s.tenantFor(tn, true)
		g := &gate{cmd: stored(cmd, tn, k), until: untilOf(cmd)}
		t.mu.Lock()
		t.setGate(k, g)
		t.mu.Unlock()
		return true
	case sgv1.Action_ACTION_THROTTLE:
		t := s.tenantFor(tn, true)
		if cmd.GetRule() == RuleWarmup && k.level == sgv1.ScopeLevel_SCOPE_LEVEL_SENDER {
			return s.applyWarmup(t, cmd, tn, k)
		}
		g := &gate{cmd: stored(cmd, tn, k), until: untilOf(cmd), lim: s.newLimiter(t, cmd, k)}
		t.mu.Lock()
		if old := t.gates[k]; old != nil && old.lim != nil && old.live(s.cfg.Clock()) {
			g.lim.inherit(old.lim, s.cfg.Clock())
		}
		t.setGate(k, g)
		t.mu.Unlock()
		return true
	case sgv1.Action_ACTION_RESUME:
		t := s.tenantFor(tn, false)
		if t == nil {
			return false
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if cmd.GetRule() == RuleWarmup && k.level == sgv1.ScopeLevel_SCOPE_LEVEL_SENDER {
			w := t.warmups[k.target]
			if w == nil {
				at := tsTime(cmd.GetAt(), cmd.GetAt() != nil)
				if at.IsZero() {
					at = s.cfg.Clock()
				}
				t.warmups[k.target] = &warmup{cmd: stored(cmd, tn, k), start: dayOf(at), hold: cmd.GetDailyCap(), done: true}
				return true
			}
			if w.done {
				return false
			}
			nw := *w
			nw.done = true
			t.warmups[k.target] = &nw
			return true
		}
		return t.deleteGate(k)
	case sgv1.Action_ACTION_SUPPRESS:
		t := s.tenantFor(tn, true)
		p := &supp{cmd: stored(cmd, tn, k), until: untilOf(cmd)}
		now := s.cfg.Clock()
		t.mu.Lock()
		defer t.mu.Unlock()
		if old, ok := t.supps[k]; ok && old.live(now) && (old.until.IsZero() || (!p.until.IsZero() && !p.until.After(old.until))) {
			return false
		}
		t.setSupp(k, p)
		return true
	case sgv1.Action_ACTION_UNSUPPRESS:
		t := s.tenantFor(tn, false)
		if t == nil {
			return false
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.deleteSupp(k)
	default:
		return false
	}
}

// setGate installs g at k. Callers hold t.mu.
func (t *tenant) setGate(k scopeKey, g *gate) {
	if old, ok := t.gates[k]; ok {
		t.counts.gate(k.level, old, -1)
	} else {
		t.perLevel[k.level]++
	}
	g.kind = kindOf(g.cmd)
	t.gates[k] = g
	t.counts.gate(k.level, g, 1)
}

// deleteGate removes the gate at k and reports whether there was one.
// Callers hold t.mu.
func (t *tenant) deleteGate(k scopeKey) bool {
	g, ok := t.gates[k]
	if !ok {
		return false
	}
	delete(t.gates, k)
	t.perLevel[k.level]--
	t.counts.gate(k.level, g, -1)
	return true
}

// setSupp installs p at k. Callers hold t.mu.
func (t *tenant) setSupp(k scopeKey, p *supp) {
	if old, ok := t.supps[k]; ok {
		t.counts.supps[k.level][old.kind]--
	} else {
		t.perLevel[k.level]++
	}
	p.kind = kindOf(p.cmd)
	t.supps[k] = p
	t.counts.supps[k.level][p.kind]++
}

// deleteSupp removes the suppression at k and reports whether there was
// one. Callers hold t.mu.
func (t *tenant) deleteSupp(k scopeKey) bool {
	p, ok := t.supps[k]
	if !ok {
		return false
	}
	delete(t.supps, k)
	t.perLevel[k.level]--
	t.counts.supps[k.level][p.kind]--
	return true
}

func (s *State) applyWarmup(t *tenant, cmd *sgv1.ControlCommand, tn string, k scopeKey) bool {
	at := tsTime(cmd.GetAt(), cmd.GetAt() != nil)
	if at.IsZero() {
		at = s.cfg.Clock()
	}
	w := &warmup{cmd: stored(cmd, tn, k), start: dayOf(at), hold: cmd.GetDailyCap()}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.warmups[k.target] = w
	return true
}

// capShared cuts a cap to this instance's share.
func (s *State) capShared(c int64, level sgv1.ScopeLevel) (int64, bool) {
	if s.cfg.Instances <= 1 || (s.cfg.SenderAffinity && level == sgv1.ScopeLevel_SCOPE_LEVEL_SENDER) {
		return c, false
	}
	return Share(c, s.cfg.Instances, s.cfg.Index), true
}

// newLimiter builds a throttle's limiter. The ratio allowance is cap_ratio ×
// the scope's prior volume: the previous UTC day's admitted volume at this
// scope, else today's so far, else the explanation's sample size, floored at
// Config.MinRatioCap. Counters start from today's admitted volume, so a
// throttle applied mid-day counts what was already sent.
func (s *State) newLimiter(t *tenant, cmd *sgv1.ControlCommand, k scopeKey) *limiter {
	now := s.cfg.Clock()
	d := dayOf(now)
	var today, prev int64
	if v := t.volumeFor(s, k, false); v != nil {
		today, prev = v.counts(d)
	}
	lim := &limiter{day: d, last: now}
	if dc := cmd.GetDailyCap(); dc > 0 {
		lim.dailyCap, lim.spill = s.capShared(dc, k.level)
		lim.used = today
	}
	if r := cmd.GetCapRatio(); r > 0 {
		base := prev
		if base == 0 {
			base = today
		}
		if base == 0 {
			base = cmd.GetExplanation().GetSampleSize()
		}
		allow := max(int64(math.Round(r*float64(base))), s.cfg.MinRatioCap)
		allowShare, spill := s.capShared(allow, k.level)
		lim.spill = lim.spill || spill
		lim.rate = float64(allowShare) / 86400
		lim.burst = float64(allowShare)
		lim.tokens = max(0, float64(allowShare)-float64(today))
	}
	return lim
}

// reserve takes n units if all of the limiter's limits have them; otherwise
// it takes nothing and returns how long until they will.
func (l *limiter) reserve(n int64, now time.Time, spill time.Duration) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := dayOf(now)
	if d > l.day {
		l.day, l.used = d, 0
	}
	var wait time.Duration
	if l.dailyCap > 0 && l.used+n > l.dailyCap {
		wait = dayStart(d + 1).Sub(now)
		if l.spill && spill < wait {
			wait = spill
		}
	}
	if l.rate > 0 {
		if el := now.Sub(l.last).Seconds(); el > 0 {
			l.tokens = math.Min(l.burst, l.tokens+el*l.rate)
			l.last = now
		}
		if need := float64(n) - l.tokens; need > 0 {
			w := time.Duration(math.Ceil(need / l.rate * float64(time.Second)))
			if float64(n) > l.burst {
				w = max(w, dayStart(d+1).Sub(now))
			}
			if l.spill && spill < w {
				w = spill
			}
			wait = max(wait, w)
		}
	}
	if wait > 0 {
		return false, wait
	}
	if l.dailyCap > 0 {
		l.used += n
	}
	if l.rate > 0 {
		l.tokens -= float64(n)
	}
	return true, 0
}

// inherit carries over what the throttle l replaces had already admitted,
// so a throttle re-issued by a rule that keeps firing does not hand out its
// allowance again: today's daily count, and the bucket's consumed tokens.
func (l *limiter) inherit(old *limiter, now time.Time) {
	old.mu.Lock()
	defer old.mu.Unlock()
	if l.dailyCap > 0 && old.dailyCap > 0 && old.day == l.day {
		l.used = max(l.used, old.used)
	}
	if l.rate > 0 && old.rate > 0 {
		tokens := old.tokens
		if el := now.Sub(old.last).Seconds(); el > 0 {
			tokens = math.Min(old.burst, tokens+el*old.rate)
		}
		l.tokens = math.Min(l.tokens, math.Max(0, l.burst-(old.burst-tokens)))
	}
}

// release returns n units taken by reserve.
func (l *limiter) release(n int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dailyCap > 0 && dayOf(now) == l.day {
		l.used = max(0, l.used-n)
	}
	if l.rate > 0 {
		l.tokens = math.Min(l.burst, l.tokens+float64(n))
	}
}

// warmupCap returns the sender's warm-up cap on day d, or 0 when the sender
// is not warming up on that day.
func (s *State) warmupCap(w *warmup, d int64) int64 {
	if w == nil || w.done {
		return 0
	}
	day := int(d-w.start) + 1
	if day < 1 {
		day = 1
	}
	var c int64
	for _, st := range s.cfg.Warmup {
		if day < st.FromDay || day > st.ToDay {
			continue
		}
		c = st.Min
		if st.ToDay > st.FromDay {
			c = st.Min + (st.Max-st.Min)*int64(day-st.FromDay)/int64(st.ToDay-st.FromDay)
		}
		break
	}
	if c == 0 {
		return 0
	}
	if w.hold > 0 && w.hold < c {
		c = w.hold
	}
	return c
}

// warmupEnd returns the first day after the warm-up schedule.
func (s *State) warmupEnd(start int64) int64 {
	last := 0
	for _, st := range s.cfg.Warmup {
		last = max(last, st.ToDay)
	}
	return start + int64(last)
}
