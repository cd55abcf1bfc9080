package webhooksig

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// DefaultMailgunReplayWindow bounds a Mailgun timestamp's distance from now
// and how long a token is remembered, when the configuration gives none.
const DefaultMailgunReplayWindow = 5 * time.Minute

// MailgunSignature is the "signature" object of a Mailgun webhooks v3
// payload: {"signature":{"timestamp","token","signature"},"event-data":…}.
type MailgunSignature struct {
	Timestamp int64
	Token     string
	Signature string
}

// ParseMailgunSignature extracts the signature object. The timestamp may be
// a JSON string (as Mailgun sends it) or a number. A payload without the
// object or its fields is a Missing error; one that is not JSON, or has a
// timestamp that is not whole seconds, is Invalid (malformed).
func ParseMailgunSignature(body []byte) (MailgunSignature, error) {
	var doc struct {
		Signature *struct {
			Timestamp json.RawMessage `json:"timestamp"`
			Token     string          `json:"token"`
			Signature string          `json:"signature"`
		} `json:"signature"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return MailgunSignature{}, invalid("malformed", "mailgun: payload is not a JSON object with a signature")
	}
	s := doc.Signature
	if s == nil || len(s.Timestamp) == 0 || s.Token == "" || s.Signature == "" {
		return MailgunSignature{}, missing("mailgun: payload has no complete signature object (timestamp, token, signature)")
	}
	raw := bytes.TrimSpace(s.Timestamp)
	if len(raw) > 0 && raw[0] == '"' {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return MailgunSignature{}, invalid("malformed", "mailgun: signature.timestamp is not a string or number")
		}
		raw = []byte(str)
	}
	ts, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return MailgunSignature{}, invalid("malformed", "mailgun: signature.timestamp is not unix seconds")
	}
	return MailgunSignature{Timestamp: ts, Token: s.Token, Signature: s.Signature}, nil
}

// Mailgun verifies Mailgun webhook signatures with a replay window: the
// timestamp must be within the window of now, and a token is accepted once
// within it. Tokens are remembered in memory, per process: with several
// ingest instances behind a balancer a replay can reach another instance
// (downstream deduplication by event id still counts it once).
type Mailgun struct {
	key    []byte
	window time.Duration

	mu        sync.Mutex
	seen      map[string]time.Time // token → when it can be forgotten
	nextPrune int
}

// NewMailgun returns the verifier for a signing key; window ≤ 0 means
// DefaultMailgunReplayWindow.
func NewMailgun(signingKey string, window time.Duration) (*Mailgun, error) {
	if signingKey == "" {
		return nil, errors.New("mailgun signing key is empty")
	}
	if window <= 0 {
		window = DefaultMailgunReplayWindow
	}
	return &Mailgun{key: []byte(signingKey), window: window, seen: make(map[string]time.Time), nextPrune: 1024}, nil
}

// Sign returns the hex HMAC-SHA256 of timestamp+token under key, as Mailgun
// computes it.
func Sign(key string, timestamp int64, token string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks the payload's signature at time now and records its token,
// so the same delivery within the window is refused as a replay. The
// returned release forgets the token again: call it when the delivery was
// not accepted after all (the broker refused it), so that the provider's
// retry of the same signed payload is not taken for a replay.
func (v *Mailgun) Verify(body []byte, now time.Time) (release func(), err error) {
	sig, err := ParseMailgunSignature(body)
	if err != nil {
		return nil, err
	}
	got, err := hex.DecodeString(sig.Signature)
	if err != nil {
		return nil, invalid("bad_signature", "mailgun: signature is not hex")
	}
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(strconv.FormatInt(sig.Timestamp, 10)))
	m.Write([]byte(sig.Token))
	if !hmac.Equal(got, m.Sum(nil)) {
		return nil, invalid("bad_signature", "mailgun: signature does not verify")
	}
	at := time.Unix(sig.Timestamp, 0)
	if d := now.Sub(at); d > v.window || d < -v.window {
		return nil, invalid("stale", "mailgun: timestamp is %s away from now, outside the replay window of %s", d.Round(time.Second), v.window)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if until, ok := v.seen[sig.Token]; ok && now.Before(until) {
		return nil, invalid("replay", "mailgun: token already used within the replay window")
	}
	// A replay must carry the same timestamp, which stops being acceptable
	// at timestamp+window: the token need not be kept longer.
	until := at.Add(v.window)
	v.seen[sig.Token] = until
	if len(v.seen) >= v.nextPrune {
		for tok, u := range v.seen {
			if !now.Before(u) {
				delete(v.seen, tok)
			}
		}
		v.nextPrune = max(1024, 2*len(v.seen))
	}
	token := sig.Token
	return func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.seen[token] == until {
			delete(v.seen, token)
		}
	}, nil
}

// remembered is the number of tokens held (for tests).
func (v *Mailgun) remembered() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}

// String describes the verifier without its key.
func (v *Mailgun) String() string { return fmt.Sprintf("mailgun(window=%s)", v.window) }
