// Package webhooksig verifies the signatures ESPs put on their webhooks,
// per tenant, as each provider documents them:
//
//   - SendGrid Signed Event Webhook: ECDSA P-256 with SHA-256 over the
//     X-Twilio-Email-Event-Webhook-Timestamp header value followed by the
//     raw body; the base64 ASN.1 signature is in
//     X-Twilio-Email-Event-Webhook-Signature; the tenant's verification key
//     is the base64 DER public key SendGrid shows.
//   - Mailgun webhooks: hex HMAC-SHA256 keyed with the webhook signing key
//     over timestamp+token (no separator), in the payload's "signature"
//     object; a timestamp outside the replay window and a token already
//     seen within the window are refused.
//   - Postmark and SparkPost: HTTP basic auth user and password.
//   - Amazon SNS (SES notifications): SignatureVersion 1 (SHA1withRSA) or 2
//     (SHA256withRSA) over the documented string to sign, checked with
//     signing certificates supplied by configuration (no certificate is
//     ever fetched), and the TopicArn must be one the tenant allows.
//
// Everything here is pure: verification takes the current time as an
// argument, and only the configuration loader reads files. Errors are
// *Error values whose Kind says whether the credential was missing (HTTP
// 401) or wrong (403); their text never contains secrets.
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Kind classifies a verification failure.
type Kind int

const (
	// Missing means the request carries no signature or credentials (401).
	Missing Kind = iota + 1
	// Invalid means they are present but wrong, stale or replayed (403).
	Invalid
)

// ErrMissing and ErrInvalid match *Error values of that kind with errors.Is.
var (
	ErrMissing = errors.New("webhook signature missing")
	ErrInvalid = errors.New("webhook signature invalid")
)

// Error is a verification failure. Reason is a short stable word for
// metrics and logs (missing, bad_signature, stale, replay, topic,
// bad_credentials, malformed); Msg explains it without secrets.
type Error struct {
	Kind   Kind
	Reason string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrMissing/ErrInvalid) work.
func (e *Error) Is(target error) bool {
	return (target == ErrMissing && e.Kind == Missing) || (target == ErrInvalid && e.Kind == Invalid)
}

func missing(format string, args ...any) *Error {
	return &Error{Kind: Missing, Reason: "missing", Msg: fmt.Sprintf(format, args...)}
}

func invalid(reason, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// BasicAuth holds one expected user and password, compared in constant
// time (as SHA-256 digests, so lengths do not leak either).
type BasicAuth struct {
	user, pass [sha256.Size]byte
}

// NewBasicAuth returns the check for user and password (both required).
func NewBasicAuth(user, pass string) (*BasicAuth, error) {
	if user == "" || pass == "" {
		return nil, errors.New("basic auth: user and password are required")
	}
	return &BasicAuth{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(pass))}, nil
}

// Verify checks the credentials of a request (ok is false when the request
// had no basic auth).
func (b *BasicAuth) Verify(user, pass string, ok bool) error {
	if !ok {
		return missing("basic auth credentials required")
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	if !hmac.Equal(u[:], b.user[:]) || !hmac.Equal(p[:], b.pass[:]) {
		return invalid("bad_credentials", "basic auth credentials do not match")
	}
	return nil
}
