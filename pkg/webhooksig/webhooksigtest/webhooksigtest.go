// Package webhooksigtest signs webhooks the way the providers do, for tests:
// an SNS signer with its own RSA key and self-signed certificate, and
// Mailgun re-signing with a fresh timestamp and token.
package webhooksigtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/sendguard/sendguard/pkg/webhooksig"
)

// SNSSigner signs SNS messages with a generated key.
type SNSSigner struct {
	Key *rsa.PrivateKey
	// CertPEM is the self-signed certificate, valid from NotBefore to
	// NotAfter.
	CertPEM             []byte
	NotBefore, NotAfter time.Time
}

// NewSNSSigner generates a 2048-bit key and a certificate valid for a year
// around now.
func NewSNSSigner(t testing.TB, now time.Time) *SNSSigner {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	nb, na := now.Add(-180*24*time.Hour), now.Add(180*24*time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sns.test.amazonaws.com"},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &SNSSigner{Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		NotBefore: nb, NotAfter: na}
}

// Sign sets SignatureVersion and Signature of the SNS JSON document body
// (keeping every other field as it is) and returns the new document.
func (s *SNSSigner) Sign(t testing.TB, body []byte, version string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	m, err := webhooksig.ParseSNS(body)
	if err != nil {
		t.Fatal(err)
	}
	toSign, err := m.StringToSign()
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	switch version {
	case "1":
		h := sha1.Sum([]byte(toSign)) //nolint:gosec // protocol-defined
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA1, h[:])
	default:
		h := sha256.Sum256([]byte(toSign))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA256, h[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	doc["SignatureVersion"] = version
	doc["Signature"] = base64.StdEncoding.EncodeToString(sig)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ResignMailgun replaces the signature object of a Mailgun payload with one
// for timestamp at and token, signed with key.
func ResignMailgun(t testing.TB, body []byte, key string, at time.Time, token string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	ts := at.Unix()
	doc["signature"] = map[string]any{
		"timestamp": strconv.FormatInt(ts, 10),
		"token":     token,
		"signature": webhooksig.Sign(key, ts, token),
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
