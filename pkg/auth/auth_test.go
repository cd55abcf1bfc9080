package auth

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc/metadata"
)

func TestKeys(t *testing.T) {
	k := NewKeys()
	if err := k.Parse("acme:secret-a, globex:sha256:" + Hash("secret-b") + "\n# comment\n"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, tenant string
		err         error
	}{
		{"secret-a", "acme", nil},
		{"secret-b", "globex", nil},
		{"sha256:" + Hash("secret-b"), "", ErrUnknownKey}, // the hash itself is not a key
		{"nope", "", ErrUnknownKey},
		{"", "", ErrNoCredentials},
	} {
		got, err := k.Tenant(tc.key)
		if got != tc.tenant || !errors.Is(err, tc.err) {
			t.Errorf("Tenant(%q) = %q, %v; want %q, %v", tc.key, got, err, tc.tenant, tc.err)
		}
	}
	if err := k.Parse("broken"); err == nil {
		t.Error("Parse(broken) accepted")
	}
	if err := k.Parse("t:sha256:abcd"); err == nil {
		t.Error("Parse(short hash) accepted")
	}
}

func TestFromHTTP(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/events", nil)
	r.Header.Set("Authorization", "Bearer k1")
	if got := FromHTTP(r); got != "k1" {
		t.Errorf("bearer: %q", got)
	}
	r = httptest.NewRequest("POST", "/v1/webhooks/postmark", nil)
	r.SetBasicAuth("postmark", "k2")
	if got := FromHTTP(r); got != "k2" {
		t.Errorf("basic: %q", got)
	}
	r = httptest.NewRequest("POST", "/v1/webhooks/sendgrid?key=k3", nil)
	if got := FromHTTP(r); got != "k3" {
		t.Errorf("query: %q", got)
	}
}

func TestFromGRPC(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer g1"))
	if got := FromGRPC(ctx); got != "g1" {
		t.Errorf("bearer: %q", got)
	}
	ctx = metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-api-key", "g2"))
	if got := FromGRPC(ctx); got != "g2" {
		t.Errorf("x-api-key: %q", got)
	}
}
