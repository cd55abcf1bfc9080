package canonical

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// EventID derives a deterministic event id for a source that has none of its
// own: "sg-" followed by 32 hex digits of SHA-256 over the source name and
// the stable fields. Each part is length-prefixed, so ("ab","c") and
// ("a","bc") differ. The same payload redelivered gives the same id, which is
// what deduplication keys on; callers must pass only fields that do not change
// between redeliveries (never a receive time).
func EventID(source string, stableFields ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	write := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	write(source)
	for _, f := range stableFields {
		write(f)
	}
	sum := h.Sum(nil)
	return "sg-" + hex.EncodeToString(sum[:16])
}
