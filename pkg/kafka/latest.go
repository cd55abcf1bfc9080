package kafka

// Latest collects what a compacted topic holds: the newest record of each
// key, keys in the order they first appeared (again after a tombstone),
// and a tombstone (a record without a value) removes its key. Compaction is
// eventual, so a service restoring state from a state topic reads
// superseded records too and must not let them win: it feeds every record
// to Add (from ReadAll) and rebuilds from what Latest holds.
type Latest struct {
	values map[string][]byte
	order  []string // may list a key twice when it came back after a tombstone
}

// Add records m: its value becomes its key's, or its key goes when m is a
// tombstone. m's value is kept, not copied (ReadAll's are fresh slices).
func (l *Latest) Add(m Message) {
	key := string(m.Key())
	if len(m.Value()) == 0 {
		delete(l.values, key)
		return
	}
	if l.values == nil {
		l.values = make(map[string][]byte)
	}
	if _, ok := l.values[key]; !ok {
		l.order = append(l.order, key)
	}
	l.values[key] = m.Value()
}

// Len is the number of keys held.
func (l *Latest) Len() int { return len(l.values) }

// Map returns the value of every key held. The map is Latest's own.
func (l *Latest) Map() map[string][]byte { return l.values }

// Each calls fn with every key held and its value, each key once, in the
// order the keys first appeared; it stops at fn's first error.
func (l *Latest) Each(fn func(key string, value []byte) error) error {
	done := make(map[string]bool, len(l.values))
	for _, k := range l.order {
		v, ok := l.values[k]
		if !ok || done[k] {
			continue
		}
		done[k] = true
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}
