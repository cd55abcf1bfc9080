package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/kafka"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// slack is a Slack-compatible webhook receiver whose answers are scripted:
// the i-th post gets codes[i] (200 once the script is exhausted), or waits
// past the client's timeout when the code is 0.
type slack struct {
	mu        sync.Mutex
	codes     []int
	posts     int
	delivered []Message
	srv       *httptest.Server
}

func newSlack(t *testing.T, codes ...int) *slack {
	s := &slack{codes: codes}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		code := http.StatusOK
		if s.posts < len(s.codes) {
			code = s.codes[s.posts]
		}
		s.posts++
		s.mu.Unlock()
		if code == 0 { // a hung webhook
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			code = http.StatusUnsupportedMediaType
		}
		var m Message
		if code == http.StatusOK {
			if err := json.Unmarshal(b, &m); err != nil || m.Text == "" {
				code = http.StatusBadRequest
			}
		}
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(code)
		if code == http.StatusOK {
			s.mu.Lock()
			s.delivered = append(s.delivered, m)
			s.mu.Unlock()
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *slack) counts() (posts, delivered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts, len(s.delivered)
}

func alert(tenant, id string) *sgv1.ControlCommand {
	return &sgv1.ControlCommand{
		CommandId: id, Scope: &sgv1.Scope{Tenant: tenant, Level: sgv1.ScopeLevel_SCOPE_LEVEL_DOMAIN, Target: "acme.io"},
		Action: sgv1.Action_ACTION_ALERT, Rule: "domain-complaint-2days", At: timestamppb.New(t0),
		Until: timestamppb.New(t0.Add(72 * time.Hour)), Severity: sgv1.Severity_SEVERITY_CRITICAL,
		Reason: "pause domain acme.io: complaint rate 0.5% over 2 days",
		Explanation: &sgv1.Explanation{Metric: "complaint_rate_24h", Observed: 0.005, Threshold: 0.003, Comparator: ">=",
			SampleSize: 1200, Window: "24h"},
	}
}

func fastConfig(routes Routes) Config {
	return Config{Routes: routes, Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Timeout: 200 * time.Millisecond, Rate: 1000, Burst: 100}
}

func newNotifier(t *testing.T, cfg Config, store Store) *Notifier {
	t.Helper()
	n, err := New(cfg, nil, store, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRetriesThenDeliversOnce(t *testing.T) {
	tests := []struct {
		name      string
		codes     []int
		wantPosts int
	}{
		{"5xx then success", []int{503, 500}, 3},
		{"429 then success", []int{429}, 2},
		{"timeout then success", []int{0}, 2},
		{"success", nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSlack(t, tc.codes...)
			n := newNotifier(t, fastConfig(Routes{Default: []string{s.srv.URL + "/services/T/B/secret"}}), nil)
			for range 3 { // the alert, a redelivery, a republished copy
				if err := n.Notify(context.Background(), alert("acme", "d-1:alert")); err != nil {
					t.Fatalf("notify: %v", err)
				}
			}
			posts, delivered := s.counts()
			if posts != tc.wantPosts || delivered != 1 {
				t.Fatalf("posts %d, delivered %d; want %d posts and exactly one delivery", posts, delivered, tc.wantPosts)
			}
			m := s.delivered[0]
			if !strings.Contains(m.Text, "[acme] pause domain acme.io") || !strings.Contains(m.Text, "until 2026-11-05T10:00:00Z") {
				t.Errorf("text = %q", m.Text)
			}
			if len(m.Attachments) != 1 || m.Attachments[0].Color == "" {
				t.Errorf("attachments = %+v", m.Attachments)
			}
		})
	}
}

func TestPermanentFailures(t *testing.T) {
	tests := []struct {
		name      string
		codes     []int
		wantPosts int
	}{
		{"4xx is not retried", []int{404}, 1},
		{"5xx until attempts run out", []int{502, 502, 502, 502, 502}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSlack(t, tc.codes...)
			n := newNotifier(t, fastConfig(Routes{Default: []string{s.srv.URL + "/hook/secret-token"}}), nil)
			err := n.Notify(context.Background(), alert("acme", "d-2:alert"))
			if !kafka.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent (dead letter)", err)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Errorf("error leaks the webhook secret: %v", err)
			}
			if posts, _ := s.counts(); posts != tc.wantPosts {
				t.Errorf("posts = %d, want %d", posts, tc.wantPosts)
			}
		})
	}
}

func TestCancelledIsNotPermanent(t *testing.T) {
	s := newSlack(t, 503, 503, 503, 503, 503, 503, 503, 503)
	cfg := fastConfig(Routes{Default: []string{s.srv.URL}})
	cfg.Attempts, cfg.Backoff, cfg.MaxBackoff = 100, 20*time.Millisecond, 20*time.Millisecond
	n := newNotifier(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := n.Notify(ctx, alert("acme", "d-3:alert"))
	if err == nil || kafka.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a transient context error (redelivered later, not dead-lettered)", err)
	}
}

func TestRoutingAndPartialDelivery(t *testing.T) {
	def, own, broken := newSlack(t), newSlack(t), newSlack(t, 500, 500, 500, 500)
	routes := Routes{Default: []string{def.srv.URL}, Tenants: map[string][]string{"acme": {own.srv.URL, broken.srv.URL}}}
	n := newNotifier(t, fastConfig(routes), nil)
	// Non-alerts are not posted.
	pause := alert("acme", "d-4:pause")
	pause.Action = sgv1.Action_ACTION_PAUSE
	if err := n.Notify(context.Background(), pause); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), alert("globex", "d-5:alert")); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), alert("acme", "d-6:alert")); !kafka.IsPermanent(err) {
		t.Fatalf("one URL failing: %v, want permanent", err)
	}
	// A later redelivery (e.g. a dead-letter replay) posts only where it failed.
	if err := n.Notify(context.Background(), alert("acme", "d-6:alert")); err != nil {
		t.Fatalf("replay: %v", err)
	}
	for name, tc := range map[string]struct {
		s    *slack
		want int
	}{"default": {def, 1}, "tenant's own": {own, 1}, "broken then fixed": {broken, 1}} {
		if _, d := tc.s.counts(); d != tc.want {
			t.Errorf("%s webhook: %d deliveries, want %d", name, d, tc.want)
		}
	}
}

func TestFileStoreSurvivesRestart(t *testing.T) {
	s := newSlack(t)
	path := filepath.Join(t.TempDir(), "alerts", "delivered")
	store, err := OpenFileStore(path, 4)
	if err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t, fastConfig(Routes{Default: []string{s.srv.URL}}), store)
	for i := range 12 { // past twice the capacity: the file is compacted
		if err := n.Notify(context.Background(), alert("acme", "a-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err = OpenFileStore(path, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	n = newNotifier(t, fastConfig(Routes{Default: []string{s.srv.URL}}), store)
	if err := n.Notify(context.Background(), alert("acme", "a-l")); err != nil { // the last one
		t.Fatal(err)
	}
	if _, d := s.counts(); d != 12 {
		t.Errorf("deliveries after restart = %d, want 12 (the last alert not posted again)", d)
	}
	if err := n.Notify(context.Background(), alert("acme", "a-a")); err != nil { // forgotten: capacity 4
		t.Fatal(err)
	}
	if _, d := s.counts(); d != 13 {
		t.Errorf("deliveries = %d, want 13", d)
	}
}

func TestBucket(t *testing.T) {
	b := newBucket(2, 3, t0)
	for i, want := range []time.Duration{0, 0, 0, 500 * time.Millisecond} {
		if got := b.take(t0); got != want {
			t.Errorf("take %d at t0 = %v, want %v", i, got, want)
		}
	}
	if got := b.take(t0.Add(250 * time.Millisecond)); got != 250*time.Millisecond {
		t.Errorf("after 250ms: wait %v, want 250ms", got)
	}
	if got := b.take(t0.Add(500 * time.Millisecond)); got != 0 {
		t.Errorf("after 500ms: wait %v, want 0", got)
	}
}

func TestRateLimitPerURL(t *testing.T) {
	s := newSlack(t)
	cfg := fastConfig(Routes{Default: []string{s.srv.URL}})
	cfg.Rate, cfg.Burst = 20, 1 // one post per 50 ms
	n := newNotifier(t, cfg, nil)
	start := time.Now()
	for i := range 4 {
		if err := n.Notify(context.Background(), alert("acme", "r-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 140*time.Millisecond {
		t.Errorf("4 posts at 20/s with burst 1 took %v, want ≥ 150ms", el)
	}
}

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		spec    string
		tenant  string
		want    []string
		wantErr bool
	}{
		{"https://hooks.example/a", "x", []string{"https://hooks.example/a"}, false},
		{"*=https://d/1, acme=https://a/1,acme=https://a/2", "acme", []string{"https://a/1", "https://a/2"}, false},
		{"*=https://d/1,acme=https://a/1", "globex", []string{"https://d/1"}, false},
		{"https://d/1?x=a=b", "x", []string{"https://d/1?x=a=b"}, false},
		{"", "x", nil, false},
		{"acme=ftp://x", "", nil, true},
		{"not a url", "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			r, err := ParseRoutes(tc.spec)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got := r.For(tc.tenant); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("For(%q) = %v, want %v", tc.tenant, got, tc.want)
			}
		})
	}
}
