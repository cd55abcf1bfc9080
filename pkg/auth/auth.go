// Package auth resolves tenants from API keys. Keys are stored only as
// SHA-256 hashes; the tenant always comes from the key, never from a payload.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/metadata"
)

// ErrNoCredentials means the request carried no API key.
var ErrNoCredentials = errors.New("no credentials")

// ErrUnknownKey means the key matches no tenant.
var ErrUnknownKey = errors.New("unknown api key")

// Keys maps hashed API keys to tenants. The zero value has no keys.
type Keys struct {
	byHash map[[sha256.Size]byte]string
}

// NewKeys returns an empty key set.
func NewKeys() *Keys { return &Keys{byHash: make(map[[sha256.Size]byte]string)} }

// Hash returns the hex SHA-256 of a key, the form keys are configured in.
func Hash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// AddKey adds a plaintext key for tenant (hashed immediately).
func (k *Keys) AddKey(tenant, key string) error {
	if tenant == "" || key == "" {
		return errors.New("add key: tenant and key are required")
	}
	k.byHash[sha256.Sum256([]byte(key))] = tenant
	return nil
}

// AddHash adds a key given as its hex SHA-256 for tenant.
func (k *Keys) AddHash(tenant, hexHash string) error {
	b, err := hex.DecodeString(hexHash)
	if err != nil || len(b) != sha256.Size {
		return fmt.Errorf("add key for %s: want 64 hex digits of sha256", tenant)
	}
	var h [sha256.Size]byte
	copy(h[:], b)
	k.byHash[h] = tenant
	return nil
}

// Parse adds keys from a spec: comma or newline separated entries
// "tenant:sha256:HEX" (preferred) or "tenant:KEY" (hashed at load).
func (k *Keys) Parse(spec string) error {
	for _, entry := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		tenant, rest, ok := strings.Cut(entry, ":")
		if !ok {
			return fmt.Errorf("api key entry %q: want tenant:sha256:HEX or tenant:KEY", redact(entry))
		}
		var err error
		if h, isHash := strings.CutPrefix(rest, "sha256:"); isHash {
			err = k.AddHash(tenant, h)
		} else {
			err = k.AddKey(tenant, rest)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of keys.
func (k *Keys) Len() int { return len(k.byHash) }

// Tenant returns the tenant of key.
func (k *Keys) Tenant(key string) (string, error) {
	if key == "" {
		return "", ErrNoCredentials
	}
	t, ok := k.byHash[sha256.Sum256([]byte(key))]
	if !ok {
		return "", ErrUnknownKey
	}
	return t, nil
}

// FromHTTP extracts the key from "Authorization: Bearer KEY", the password
// of HTTP basic auth (ESPs that only support basic auth in the URL), or the
// "key" query parameter (ESPs that can only call a URL).
func FromHTTP(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if key, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(key)
		}
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return r.URL.Query().Get("key")
}

// TenantFromHTTP resolves the request's tenant.
func (k *Keys) TenantFromHTTP(r *http.Request) (string, error) { return k.Tenant(FromHTTP(r)) }

// FromGRPC extracts the key from the "authorization: Bearer KEY" or
// "x-api-key" metadata of an incoming call.
func FromGRPC(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if key, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(key)
		}
	}
	if v := md.Get("x-api-key"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// TenantFromGRPC resolves the call's tenant.
func (k *Keys) TenantFromGRPC(ctx context.Context) (string, error) { return k.Tenant(FromGRPC(ctx)) }

func redact(s string) string {
	if t, _, ok := strings.Cut(s, ":"); ok {
		return t + ":…"
	}
	return "…"
}
