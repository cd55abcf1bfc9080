package notify

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Store remembers which alert deliveries (command id and URL) succeeded, so
// a redelivered or republished alert is not posted twice.
type Store interface {
	// Delivered reports whether key was marked.
	Delivered(key string) bool
	// Mark records key; when it returns nil the mark is durable (for a
	// persistent store).
	Mark(key string) error
}

// MemoryStore remembers the last Capacity keys in memory.
type MemoryStore struct {
	mu   sync.Mutex
	seen map[string]struct{}
	ring []string
	next int
}

// NewMemoryStore returns a store remembering up to capacity keys (default
// 100,000 when ≤ 0); the oldest are forgotten first.
func NewMemoryStore(capacity int) *MemoryStore {
	if capacity <= 0 {
		capacity = 100_000
	}
	return &MemoryStore{seen: make(map[string]struct{}), ring: make([]string, capacity)}
}

// Delivered reports whether key is remembered.
func (s *MemoryStore) Delivered(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.seen[key]
	return ok
}

// Mark remembers key.
func (s *MemoryStore) Mark(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(key)
	return nil
}

func (s *MemoryStore) add(key string) {
	if _, ok := s.seen[key]; ok {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.seen, old)
	}
	s.ring[s.next] = key
	s.next = (s.next + 1) % len(s.ring)
	s.seen[key] = struct{}{}
}

// keys returns the remembered keys, oldest first.
func (s *MemoryStore) keys() []string {
	out := make([]string, 0, len(s.seen))
	for i := range s.ring {
		if k := s.ring[(s.next+i)%len(s.ring)]; k != "" {
			out = append(out, k)
		}
	}
	return out
}

// FileStore is a MemoryStore backed by an append-only file of keys, one per
// line, synced on every Mark; it is reloaded at open and rewritten with the
// remembered keys only when it grows past twice the capacity.
type FileStore struct {
	mem   *MemoryStore
	path  string
	mu    sync.Mutex
	f     *os.File
	lines int
}

// OpenFileStore opens (or creates) the store at path.
func OpenFileStore(path string, capacity int) (*FileStore, error) {
	s := &FileStore{mem: NewMemoryStore(capacity), path: path}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("alert store: %w", err)
	}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if k := sc.Text(); k != "" {
				s.mem.add(k)
				s.lines++
			}
		}
		err = errors.Join(sc.Err(), f.Close())
		if err != nil {
			return nil, fmt.Errorf("alert store %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("alert store: %w", err)
	}
	if err := s.rewrite(); err != nil {
		return nil, err
	}
	return s, nil
}

// Delivered reports whether key is remembered.
func (s *FileStore) Delivered(key string) bool { return s.mem.Delivered(key) }

// Mark appends key to the file, syncs it, and remembers it.
func (s *FileStore) Mark(key string) error {
	if strings.ContainsAny(key, "\r\n") {
		return fmt.Errorf("alert store: key %q contains a line break", key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.WriteString(key + "\n"); err != nil {
		return fmt.Errorf("alert store append: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("alert store sync: %w", err)
	}
	s.mem.mu.Lock()
	s.mem.add(key)
	s.mem.mu.Unlock()
	s.lines++
	if s.lines > 2*len(s.mem.ring) {
		return s.rewrite()
	}
	return nil
}

// rewrite replaces the file with the remembered keys (atomically: a
// temporary file renamed over it) and reopens it for appending. Callers
// hold s.mu or own s exclusively.
func (s *FileStore) rewrite() error {
	s.mem.mu.Lock()
	keys := s.mem.keys()
	s.mem.mu.Unlock()
	tmp := s.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("alert store rewrite: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, k := range keys {
		_, _ = w.WriteString(k + "\n")
	}
	if err := errors.Join(w.Flush(), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("alert store rewrite: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("alert store rewrite: %w", err)
	}
	if s.f != nil {
		_ = s.f.Close()
	}
	if s.f, err = os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return fmt.Errorf("alert store reopen: %w", err)
	}
	s.lines = len(keys)
	return nil
}

// Close closes the file.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
