package rules

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// stateFormat versions the exported engine state.
const stateFormat = 1

type stateDoc struct {
	Format int          `json:"format"`
	Scopes []ScopeState `json:"scopes"`
}

// Export serialises the health state of every scope (JSON, sorted by
// scope) so that a restarted evaluator continues where it stopped.
func (e *Engine) Export() ([]byte, error) {
	e.mu.Lock()
	doc := stateDoc{Format: stateFormat, Scopes: make([]ScopeState, 0, len(e.states))}
	for _, st := range e.states {
		doc.Scopes = append(doc.Scopes, copyState(st))
	}
	e.mu.Unlock()
	sort.Slice(doc.Scopes, func(i, j int) bool {
		a, b := doc.Scopes[i], doc.Scopes[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.Level != b.Level {
			return a.Level < b.Level
		}
		return a.Target < b.Target
	})
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("marshal engine state: %w", err)
	}
	return out, nil
}

// Import replaces the engine's scope states with an Export. On error the
// engine's state is unchanged.
func (e *Engine) Import(data []byte) error {
	var doc stateDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("unmarshal engine state: %w", err)
	}
	if doc.Format != stateFormat {
		return fmt.Errorf("engine state format %d, want %d", doc.Format, stateFormat)
	}
	states := make(map[string]*ScopeState, len(doc.Scopes))
	for i := range doc.Scopes {
		st := copyState(&doc.Scopes[i])
		if st.Target == "" && st.Tenant == "" {
			return fmt.Errorf("engine state: scope %d has no tenant or target", i)
		}
		key := scopeKeyOf(st.Tenant, int(st.Level), st.Target)
		states[key] = &st
	}
	e.mu.Lock()
	e.states = states
	e.mu.Unlock()
	return nil
}

func copyState(st *ScopeState) ScopeState {
	c := *st
	if st.Alerted != nil {
		c.Alerted = make(map[string]time.Time, len(st.Alerted))
		for k, v := range st.Alerted {
			c.Alerted[k] = v
		}
	}
	if st.ShadowUntil != nil {
		c.ShadowUntil = make(map[string]time.Time, len(st.ShadowUntil))
		for k, v := range st.ShadowUntil {
			c.ShadowUntil[k] = v
		}
	}
	return c
}

// MarshalScope returns the JSON state of one scope, for a compacted state
// topic keyed by scope; nil when the scope holds no state (healthy and
// nothing to remember), which is a tombstone.
func (e *Engine) MarshalScope(scope *sgv1.Scope) ([]byte, error) {
	st, ok := e.State(scope)
	if !ok {
		return nil, nil
	}
	out, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("marshal scope state: %w", err)
	}
	return out, nil
}

// RestoreScopes replaces the engine's state with per-scope records written
// by MarshalScope (the latest record of each scope). On error the engine's
// state is unchanged.
func (e *Engine) RestoreScopes(records [][]byte) error {
	doc := stateDoc{Format: stateFormat}
	for i, r := range records {
		var st ScopeState
		if err := json.Unmarshal(r, &st); err != nil {
			return fmt.Errorf("scope state %d: %w", i, err)
		}
		doc.Scopes = append(doc.Scopes, st)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("marshal engine state: %w", err)
	}
	return e.Import(data)
}
