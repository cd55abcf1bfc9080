package canonical

import (
	"bytes"
	"strconv"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// EventHeader returns the value of ev's record header on sg.events.v1
// (kafka.HeaderEvent): the type's word and occurred_at in unix
// milliseconds, separated by a space ("bounced 1795341600123"); the word
// alone when ev has no occurred_at. ok is false for a type number this
// version does not define (the record then goes without the header and is
// decoded by its consumers).
func EventHeader(ev *sgv1.Event) (value []byte, ok bool) {
	w := TypeWord(ev.GetType())
	if w == "" {
		return nil, false
	}
	v := make([]byte, 0, len(w)+21) // word, space, up to 20 characters of int64
	v = append(v, w...)
	if at := ev.GetOccurredAt(); at != nil {
		v = strconv.AppendInt(append(v, ' '), at.AsTime().UnixMilli(), 10)
	}
	return v, true
}

// ParseEventHeader reads an EventHeader value: the event type, and the
// event time (zero when the header has none, or not a decimal integer of
// unix milliseconds). ok is false when h is empty or its word is not a
// type this version defines.
func ParseEventHeader(h []byte) (t sgv1.EventType, at time.Time, ok bool) {
	word, ms := h, []byte(nil)
	if i := bytes.IndexByte(h, ' '); i >= 0 {
		word, ms = h[:i], h[i+1:]
	}
	n, ok := typeWords.fromText[string(word)]
	if !ok || len(word) == 0 {
		return 0, time.Time{}, false
	}
	if len(ms) > 0 {
		if v, err := strconv.ParseInt(string(ms), 10, 64); err == nil {
			at = time.UnixMilli(v)
		}
	}
	return sgv1.EventType(n), at, true
}

// The word tables of the enums on hot paths (record keys and headers,
// scope names), looked up without wordsFor's cache.
var (
	typeWords     = wordsFor(sgv1.EventType(0).Descriptor())
	levelWords    = wordsFor(sgv1.ScopeLevel(0).Descriptor())
	providerWords = wordsFor(sgv1.Provider(0).Descriptor())
)
