package enforce

import sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"

// Seen reports whether the command id of tenant was applied, restored or
// announced before (within the last Config.SeenIDs ids), without
// remembering it. An empty id is never seen.
func (s *State) Seen(tenantName, id string) bool {
	if tenantName == "" || id == "" {
		return false
	}
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	_, ok := s.seen[tenantName+"\x00"+id]
	return ok
}

// Announce records the id of an alert command and reports whether it is
// new, i.e. whether the alert should be published. Alerts change no state,
// so Apply reports false for them; a publisher that relied on Apply alone
// would drop every alert. Announce reports false for a non-alert, for a
// command without a valid scope and for an id seen before; an alert without
// an id is announced every time.
func (s *State) Announce(cmd *sgv1.ControlCommand) bool {
	if cmd.GetAction() != sgv1.Action_ACTION_ALERT {
		return false
	}
	_, tn, ok := commandScope(cmd)
	if !ok {
		return false
	}
	if id := cmd.GetCommandId(); id != "" {
		return s.markSeen(tn + "\x00" + id)
	}
	return true
}
