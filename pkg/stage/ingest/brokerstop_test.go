package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/embedded"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/topics"
)

// outcome is one request a client made.
type outcome struct {
	id               string
	code             int
	retryAfter       string
	sent, answeredAt time.Time
}

// TestBrokerStopWhileRequestsArrive stops the broker under load and starts
// it again on the same data dir and port: callers get 503 (with
// Retry-After) while it is down, never a 202 for an event that is not in
// the log, and everything answered 202 before, during and after the outage
// is on the raw topic afterwards.
func TestBrokerStopWhileRequestsArrive(t *testing.T) {
	dataDir := t.TempDir()
	addr := kafkatest.FreeAddr(t)
	start := func() *embedded.Broker {
		b, err := embedded.Start(embedded.Config{Addr: addr, DataDir: dataDir, Partitions: 4})
		if err != nil {
			t.Fatalf("start broker: %v", err)
		}
		return b
	}
	broker := start()
	brokerUp := true
	defer func() {
		if brokerUp {
			broker.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	brokers := []string{addr}
	if err := kafka.WaitReady(ctx, brokers); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopics(ctx, brokers, 1, kafka.TopicSpec{Name: topics.Raw, Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	// Short timeouts keep the outage phase brief: a publish gives up after
	// about a second when the broker does not answer.
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers, WriteTimeout: 500 * time.Millisecond, MaxAttempts: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	s, err := New(Config{PublishTimeout: time.Second, TenantRate: -1, MaxInFlight: 64}, testKeys(t), prod,
		edgeValidator(time.Now), zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var (
		mu       sync.Mutex
		outcomes []outcome
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("stop-%d-%06d", c, seq)
				body := fmt.Sprintf(`{"event_id":%q,"type":"delivered","occurred_at":"2026-11-20T10:00:00Z","sender":"ann@acme.io","recipient":"bob%d@example.com"}`, id, seq)
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", bytes.NewReader([]byte(body)))
				req.Header.Set("Authorization", "Bearer k-acme")
				o := outcome{id: id, sent: time.Now()}
				resp, err := client.Do(req)
				o.answeredAt = time.Now()
				if err != nil {
					o.code = -1
				} else {
					o.code, o.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
					_ = drain(resp.Body)
					_ = resp.Body.Close()
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if o.code != http.StatusAccepted {
					time.Sleep(20 * time.Millisecond) // a polite client backs off a little
				}
			}
		}()
	}
	count := func(code int, after time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.code == code && o.sent.After(after) {
				n++
			}
		}
		return n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	phase0 := time.Now()
	waitFor("202s before the outage", func() bool { return count(http.StatusAccepted, phase0) >= 200 })

	broker.Close()
	brokerUp = false
	down := time.Now()
	waitFor("503s during the outage", func() bool { return count(http.StatusServiceUnavailable, down) >= 8 })
	time.Sleep(time.Until(down.Add(2 * time.Second))) // an outage of at least 2 s
	restarting := time.Now()
	broker = start()
	brokerUp = true
	waitFor("202s after the restart", func() bool { return count(http.StatusAccepted, restarting) >= 200 })
	close(stop)
	wg.Wait()

	// What the log holds.
	inLog := map[string]bool{}
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	envs := 0
	err = kafka.ReadAll(rctx, brokers, topics.Raw, func(m kafka.Message) error {
		env, err := decodeEnvelope(m.Value())
		if err != nil {
			return err
		}
		ev, err := canonical.Decode(env.GetPayload())
		if err != nil {
			return fmt.Errorf("envelope %s: %w", env.GetEnvelopeId(), err)
		}
		inLog[ev.GetEventId()] = true
		envs++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	codes := map[int]int{}
	var before, during, after, missing int
	for _, o := range outcomes {
		codes[o.code]++
		switch o.code {
		case http.StatusAccepted:
			if !inLog[o.id] {
				missing++
				t.Errorf("%s was answered 202 at %s but is not in the log", o.id, o.answeredAt.Format("15:04:05.000"))
			}
			switch {
			case o.answeredAt.Before(down):
				before++
			case o.sent.After(down) && o.answeredAt.Before(restarting):
				during++
				t.Errorf("%s was answered 202 while the broker was down (sent %s)", o.id, o.sent.Format("15:04:05.000"))
			default:
				after++
			}
		case http.StatusServiceUnavailable:
			if o.retryAfter == "" {
				t.Errorf("%s: 503 without Retry-After", o.id)
			}
		default:
			t.Errorf("%s: unexpected answer %d", o.id, o.code)
		}
	}
	t.Logf("requests %d: %v; 202 before the stop %d, during %d, after %d; envelopes in the log %d; 202 missing from the log %d; outage %s",
		len(outcomes), codes, before, during, after, envs, missing, restarting.Sub(down).Round(time.Millisecond))
	if codes[http.StatusServiceUnavailable] == 0 || after == 0 {
		t.Fatalf("the outage was not observed: %v", codes)
	}
}
