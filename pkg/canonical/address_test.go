package canonical

import (
	"net/mail"
	"strings"
	"testing"
)

// validAddressRef is ValidAddress through net/mail alone (before the
// fast path for plain addresses).
func validAddressRef(s string) bool {
	if s == "" {
		return true
	}
	if strings.ContainsAny(s, "<> \t\r\n") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(a.Address, '@')
	return at > 0 && checkDomain("", a.Address[at+1:]) == nil
}

var addressSeeds = []string{
	"ann@acme.io", "Ann.Smith+tag@Acme.IO", "a@b", "!#$%&'*+/=?^_`{|}~-@x.io", "a.b.c@d.e.f",
	".a@x.io", "a.@x.io", "a..b@x.io", "a@.x.io", "a@x.io.", "a@x..io", "@x.io", "a@", "a@b@c.io",
	`"quoted local"@x.io`, `"a"@x.io`, "a@[192.0.2.1]", "a@[IPv6:::1]", "ü@x.io", "a@bücher.de",
	"a(comment)@x.io", "a@x.io (Ann)", "a@x.io(c)", "Ann <a@x.io>", "a@x,io", "a;b@x.io", "a\\b@x.io",
	"a@x.io;", "a@-x.io", "a\x7f@x.io", "a\x00@x.io", "a\xff@x.io", "=?utf-8?q?a?=@x.io", "a@x.io\x01",
}

// TestPlainAddress: the fast path agrees with net/mail on every seed, and
// takes the plain ones.
func TestPlainAddress(t *testing.T) {
	for _, s := range addressSeeds {
		t.Run(s, func(t *testing.T) {
			if got, want := ValidAddress(s), validAddressRef(s); got != want {
				t.Errorf("ValidAddress = %v, net/mail says %v", got, want)
			}
		})
	}
	for _, s := range []string{"ann@acme.io", "Ann.Smith+tag@Acme.IO", "!#$%&'*+/=?^_`{|}~-@x.io"} {
		if _, ok := plainAddress(s); !ok {
			t.Errorf("%q is not taken by the fast path", s)
		}
	}
	for _, s := range []string{`"a"@x.io`, "a@[192.0.2.1]", "ü@x.io", "a(c)@x.io", "a..b@x.io"} {
		if _, ok := plainAddress(s); ok {
			t.Errorf("%q is taken by the fast path", s)
		}
	}
}

// FuzzValidAddress: ValidAddress says what net/mail alone says, and
// every address the fast path takes is one net/mail parses to itself
// without a display name.
func FuzzValidAddress(f *testing.F) {
	for _, s := range addressSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidAddress(s), validAddressRef(s); got != want {
			t.Fatalf("ValidAddress(%q) = %v, net/mail says %v", s, got, want)
		}
		if _, ok := plainAddress(s); ok {
			a, err := mail.ParseAddress(s)
			if err != nil || a.Name != "" || a.Address != s {
				t.Fatalf("fast path took %q; net/mail: %v, %+v", s, err, a)
			}
		}
	})
}
