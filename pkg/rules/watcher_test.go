package rules

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func writeFile(t *testing.T, path, data string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherHotReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	v1 := header + okRule("a", 1, "sent_24h > 1.0")
	writeFile(t, path, v1, t0)
	rs, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(rs)
	w := NewWatcher(path, e, time.Millisecond, nil)
	if swapped, err := w.Check(); swapped || err != nil {
		t.Fatalf("unchanged file: swapped=%v err=%v", swapped, err)
	}

	v2 := "version: \"2\"\nrules:\n" + okRule("b", 1, "sent_24h > 2.0")
	writeFile(t, path, v2, t0.Add(time.Second))
	if swapped, err := w.Check(); !swapped || err != nil {
		t.Fatalf("valid change: swapped=%v err=%v", swapped, err)
	}
	if e.RuleSet().Version != "2" {
		t.Fatalf("version = %q", e.RuleSet().Version)
	}

	// A bad file is refused with its diagnostics; version 2 keeps running.
	writeFile(t, path, header+okRule("c", 1, "sent_24h > nope_metric"), t0.Add(2*time.Second))
	swapped, err := w.Check()
	var inv *InvalidError
	if swapped || !errors.As(err, &inv) {
		t.Fatalf("bad file: swapped=%v err=%v", swapped, err)
	}
	if e.RuleSet().Version != "2" {
		t.Fatalf("bad file replaced the running set: %q", e.RuleSet().Version)
	}
	// The same bad content is not re-parsed on every poll.
	if err := os.Chtimes(path, t0.Add(3*time.Second), t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if swapped, err := w.Check(); swapped || err != nil {
		t.Fatalf("same bad content: swapped=%v err=%v", swapped, err)
	}
	// Deleted file: error, set kept.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Check(); err == nil || e.RuleSet().Version != "2" {
		t.Fatalf("missing file: err=%v version=%q", err, e.RuleSet().Version)
	}
	// Fixed file: picked up by Run.
	writeFile(t, path, "version: \"3\"\nrules:\n"+okRule("d", 1, "sent_24h > 3.0"), t0.Add(4*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for e.RuleSet().Version != "3" && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.RuleSet().Version != "3" {
		t.Fatalf("Run did not reload: %q", e.RuleSet().Version)
	}
}

// Evaluate and Swap run concurrently without races (go test -race).
func TestSwapWhileEvaluating(t *testing.T) {
	e := NewEngine(Default())
	other, _, err := Parse([]byte(header+okRule("a", 1, "complaint_rate_24h > 0.5")), "o.yaml")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if i%2 == 0 {
				e.Swap(other)
			} else {
				e.Swap(Default())
			}
		}
	}()
	for i := 0; i < 400; i++ {
		mustDecisions(t, e.Evaluate(senderSnap(t0.Add(time.Duration(i)*time.Minute), bad())))
	}
	<-done
}
