package rules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// Watcher reloads a rule set file into an Engine when it changes. A file
// that does not parse or lint clean is refused and the last good set keeps
// running.
type Watcher struct {
	path     string
	engine   *Engine
	interval time.Duration
	logger   *zap.Logger

	modTime time.Time
	size    int64
	hash    [32]byte
}

// NewWatcher returns a watcher of path for e, polling every interval. The
// engine's current rule set counts as loaded from the file as it is now
// only if their hashes match; otherwise the first Check loads the file.
func NewWatcher(path string, e *Engine, interval time.Duration, logger *zap.Logger) *Watcher {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Watcher{path: path, engine: e, interval: interval, logger: logger}
}

// Check polls the file once. It returns true when a new rule set was
// swapped in, and an error when the file cannot be read or is invalid (the
// running set is kept). An unchanged file (same mtime and size, or same
// content hash) is not parsed again.
func (w *Watcher) Check() (bool, error) {
	fi, err := os.Stat(w.path)
	if err != nil {
		return false, fmt.Errorf("stat rule set: %w", err)
	}
	if fi.ModTime().Equal(w.modTime) && fi.Size() == w.size {
		return false, nil
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return false, fmt.Errorf("read rule set: %w", err)
	}
	w.modTime, w.size = fi.ModTime(), fi.Size()
	sum := sha256.Sum256(data)
	if bytes.Equal(sum[:], w.hash[:]) {
		return false, nil
	}
	w.hash = sum
	if cur := w.engine.RuleSet(); cur != nil && cur.Hash == fmt.Sprintf("%x", sum) {
		return false, nil
	}
	rs, _, err := Parse(data, filepath.Base(w.path))
	if err != nil {
		return false, fmt.Errorf("reload %s: %w", w.path, err)
	}
	w.engine.Swap(rs)
	return true, nil
}

// Run polls until ctx is done. Errors are logged, never fatal.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		swapped, err := w.Check()
		switch {
		case err != nil:
			w.logger.Error("rule set refused; last good set keeps running", zap.String("path", w.path), zap.Error(err))
		case swapped:
			rs := w.engine.RuleSet()
			w.logger.Info("rule set reloaded", zap.String("path", w.path), zap.String("version", rs.Version), zap.Int("rules", len(rs.Rules)))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
