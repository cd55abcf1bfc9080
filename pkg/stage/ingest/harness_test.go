package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// kafka-go's shared transport keeps idle connection goroutines
		// that outlive a closed producer for a moment.
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// testNow is after every sample's event time.
var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// edgeValidator is what the services use (pkg/app): a provider payload of
// which nothing parses is refused.
func edgeValidator(now func() time.Time) Validator {
	return func(env *sgv1.RawEnvelope) (int, error) {
		evs, err := normalize.Parse(env, normalize.Options{Now: now})
		if err != nil && len(evs) == 0 {
			return 0, err
		}
		return len(evs), nil
	}
}

func testKeys(t testing.TB) *auth.Keys {
	t.Helper()
	keys := auth.NewKeys()
	if err := keys.Parse("acme:k-acme,globex:k-globex"); err != nil {
		t.Fatal(err)
	}
	return keys
}

// newServer builds a stage with the edge validator and serves its routes.
func newServer(t testing.TB, pub Publisher, cfg Config, logger *zap.Logger) (*Stage, http.Handler) {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	if logger == nil {
		logger = zaptest.NewLogger(t)
	}
	s, err := New(cfg, testKeys(t), pub, edgeValidator(cfg.Now), logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	return s, mux
}

// request describes one HTTP call.
type request struct {
	path, contentType string
	body              []byte
	bearer            string
	query             string
	basicUser         string
	basicPass         string
	header            map[string]string
}

func (q request) do(h http.Handler) *httptest.ResponseRecorder {
	target := q.path
	if q.query != "" {
		target += "?" + q.query
	}
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(string(q.body)))
	if q.contentType != "" {
		req.Header.Set("Content-Type", q.contentType)
	}
	if q.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.basicUser != "" || q.basicPass != "" {
		req.SetBasicAuth(q.basicUser, q.basicPass)
	}
	for k, v := range q.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// brokerProducer starts a broker (with dataDir when given) and a producer
// with short timeouts, and creates the raw topic.
func brokerProducer(t testing.TB, dataDir string) (*kafka.Producer, string) {
	t.Helper()
	_, addr := kafkatest.Start(t, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.WaitReady(ctx, []string{addr}); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopics(ctx, []string{addr}, 1, kafka.TopicSpec{Name: topics.Raw, Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{addr}, WriteTimeout: 2 * time.Second, MaxAttempts: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, addr
}

// readRaw returns every envelope on the raw topic.
func readRaw(t testing.TB, addr string) []*sgv1.RawEnvelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*sgv1.RawEnvelope
	err := kafka.ReadAll(ctx, []string{addr}, topics.Raw, func(m kafka.Message) error {
		env := &sgv1.RawEnvelope{}
		if err := proto.Unmarshal(m.Value(), env); err != nil {
			return err
		}
		out = append(out, env)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func drain(r io.Reader) string { b, _ := io.ReadAll(r); return string(b) }

func decodeEnvelope(b []byte) (*sgv1.RawEnvelope, error) {
	env := &sgv1.RawEnvelope{}
	if err := proto.Unmarshal(b, env); err != nil {
		return nil, err
	}
	return env, nil
}
