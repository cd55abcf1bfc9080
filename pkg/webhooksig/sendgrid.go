package webhooksig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SendGrid header names of the Signed Event Webhook.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// SendGrid verifies SendGrid's Signed Event Webhook.
type SendGrid struct {
	key *ecdsa.PublicKey
	// maxAge, when positive, refuses timestamps further than it from now.
	maxAge time.Duration
}

// NewSendGrid parses the verification key: the base64 DER
// SubjectPublicKeyInfo SendGrid shows (a PEM "PUBLIC KEY" block is accepted
// too). It must be an ECDSA P-256 key. maxAge ≤ 0 disables the timestamp
// age check (SendGrid documents none; the signature covers the timestamp).
func NewSendGrid(publicKey string, maxAge time.Duration) (*SendGrid, error) {
	key, err := ParseSendGridKey(publicKey)
	if err != nil {
		return nil, err
	}
	return &SendGrid{key: key, maxAge: maxAge}, nil
}

// ParseSendGridKey parses a base64 DER or PEM ECDSA P-256 public key.
func ParseSendGridKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	var der []byte
	if block, _ := pem.Decode([]byte(s)); block != nil {
		der = block.Bytes
	} else {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("not base64 DER or PEM: %w", err)
		}
		der = b
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		// The ASN.1 details help nobody fix a pasted key.
		return nil, errors.New("not a DER-encoded public key (paste the verification key SendGrid shows)")
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("want an ECDSA P-256 key")
	}
	return key, nil
}

// Verify checks signature (base64 ASN.1 ECDSA) over timestamp+body.
func (v *SendGrid) Verify(signature, timestamp string, body []byte, now time.Time) error {
	if signature == "" || timestamp == "" {
		return missing("sendgrid: %s and %s headers are required", SendGridSignatureHeader, SendGridTimestampHeader)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return invalid("bad_signature", "sendgrid: signature is not base64")
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	if !ecdsa.VerifyASN1(v.key, h.Sum(nil), sig) {
		return invalid("bad_signature", "sendgrid: signature does not verify")
	}
	if v.maxAge > 0 {
		sec, err := strconv.ParseInt(timestamp, 10, 64)
		if err != nil {
			return invalid("stale", "sendgrid: timestamp %q is not unix seconds", timestamp)
		}
		if age := now.Sub(time.Unix(sec, 0)); age > v.maxAge || age < -v.maxAge {
			return invalid("stale", "sendgrid: timestamp is %s away from now, beyond %s", age.Round(time.Second), v.maxAge)
		}
	}
	return nil
}
