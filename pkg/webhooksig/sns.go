package webhooksig

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1 is SHA1withRSA by definition.
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SNS message types.
const (
	SNSNotification             = "Notification"
	SNSSubscriptionConfirmation = "SubscriptionConfirmation"
	SNSUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// SNSMessage is the JSON document Amazon SNS POSTs to an HTTP(S) endpoint.
// Subject is nil when absent (it is part of the string to sign only when
// present).
type SNSMessage struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	Token            string  `json:"Token"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject"`
	Message          string  `json:"Message"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
	SubscribeURL     string  `json:"SubscribeURL"`
	UnsubscribeURL   string  `json:"UnsubscribeURL"`
}

// ParseSNS decodes an SNS message. Unknown fields (MessageAttributes, …)
// are ignored; a body that is not a JSON object is an error.
func ParseSNS(body []byte) (*SNSMessage, error) {
	var m SNSMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("sns: not a JSON object: %w", err)
	}
	return &m, nil
}

// StringToSign builds the canonical string AWS signs: "Name\nvalue\n" for
// Message, MessageId, Subject (when present), Timestamp, TopicArn and Type
// of a Notification; Message, MessageId, SubscribeURL, Timestamp, Token,
// TopicArn and Type of a (Un)SubscriptionConfirmation.
func (m *SNSMessage) StringToSign() (string, error) {
	type kv struct{ k, v string }
	var fields []kv
	switch m.Type {
	case SNSNotification:
		fields = append(fields, kv{"Message", m.Message}, kv{"MessageId", m.MessageID})
		if m.Subject != nil {
			fields = append(fields, kv{"Subject", *m.Subject})
		}
		fields = append(fields, kv{"Timestamp", m.Timestamp}, kv{"TopicArn", m.TopicArn}, kv{"Type", m.Type})
	case SNSSubscriptionConfirmation, SNSUnsubscribeConfirmation:
		fields = []kv{{"Message", m.Message}, {"MessageId", m.MessageID}, {"SubscribeURL", m.SubscribeURL},
			{"Timestamp", m.Timestamp}, {"Token", m.Token}, {"TopicArn", m.TopicArn}, {"Type", m.Type}}
	default:
		return "", fmt.Errorf("sns: unknown message type %q", m.Type)
	}
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f.k)
		b.WriteByte('\n')
		b.WriteString(f.v)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// SNS verifies SNS messages with configured signing certificates and
// allowed topics.
type SNS struct {
	certs  []*x509.Certificate
	topics map[string]bool
	// Confirm says whether SubscriptionConfirmation messages are confirmed
	// by fetching their SubscribeURL (after verification).
	Confirm bool
}

// NewSNS returns the verifier. certPEM holds one or more PEM certificates
// (SNS's signing certificate, several during a rotation), each with an RSA
// key; at least one allowed topic ARN is required.
func NewSNS(certPEM [][]byte, topicARNs []string, confirm bool) (*SNS, error) {
	v := &SNS{topics: make(map[string]bool), Confirm: confirm}
	for i, data := range certPEM {
		certs, err := parseCerts(data)
		if err != nil {
			return nil, fmt.Errorf("sns certificate %d: %w", i+1, err)
		}
		v.certs = append(v.certs, certs...)
	}
	if len(v.certs) == 0 {
		return nil, errors.New("sns: at least one signing certificate is required")
	}
	for _, arn := range topicARNs {
		if !strings.HasPrefix(arn, "arn:") || strings.Count(arn, ":") < 5 {
			return nil, fmt.Errorf("sns: %q is not a topic ARN", arn)
		}
		v.topics[arn] = true
	}
	if len(v.topics) == 0 {
		return nil, errors.New("sns: at least one allowed topic ARN is required")
	}
	return v, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			return nil, errors.New("certificate key is not RSA")
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

// Verify parses and verifies an SNS message at time now: signature present
// (else Missing), version 1 or 2, valid under one of the certificates
// current at now, and a TopicArn the tenant allows.
func (v *SNS) Verify(body []byte, now time.Time) (*SNSMessage, error) {
	m, err := ParseSNS(body)
	if err != nil {
		return nil, invalid("malformed", "%v", err)
	}
	if m.Type == "" || m.Signature == "" || m.SignatureVersion == "" {
		return nil, missing("sns: message is not signed (Type, Signature and SignatureVersion are required)")
	}
	var (
		hash crypto.Hash
		sum  []byte
	)
	toSign, err := m.StringToSign()
	if err != nil {
		return nil, invalid("malformed", "%v", err)
	}
	switch m.SignatureVersion {
	case "1":
		h := sha1.Sum([]byte(toSign)) //nolint:gosec // protocol-defined
		hash, sum = crypto.SHA1, h[:]
	case "2":
		h := sha256.Sum256([]byte(toSign))
		hash, sum = crypto.SHA256, h[:]
	default:
		return nil, invalid("bad_signature", "sns: unsupported SignatureVersion %q", m.SignatureVersion)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return nil, invalid("bad_signature", "sns: signature is not base64")
	}
	verified, current := false, false
	for _, c := range v.certs {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			continue
		}
		current = true
		if rsa.VerifyPKCS1v15(c.PublicKey.(*rsa.PublicKey), hash, sum, sig) == nil {
			verified = true
			break
		}
	}
	if !current {
		return nil, invalid("bad_signature", "sns: no configured signing certificate is valid at %s", now.UTC().Format(time.RFC3339))
	}
	if !verified {
		return nil, invalid("bad_signature", "sns: signature does not verify")
	}
	if !v.topics[m.TopicArn] {
		return nil, invalid("topic", "sns: topic %q is not allowed for this tenant", m.TopicArn)
	}
	return m, nil
}
