package window

import (
	"strings"
	"testing"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestEnumWords: the precomputed words equal the enum names' words for
// every named value, and unnamed values still get a word.
func TestEnumWords(t *testing.T) {
	for v, name := range sgv1.ScopeLevel_name {
		if got, want := LevelWord(sgv1.ScopeLevel(v)), strings.ToLower(strings.TrimPrefix(name, "SCOPE_LEVEL_")); got != want {
			t.Errorf("LevelWord(%d) = %q, want %q", v, got, want)
		}
	}
	for v, name := range sgv1.Provider_name {
		if got, want := ProviderWord(sgv1.Provider(v)), strings.ToLower(strings.TrimPrefix(name, "PROVIDER_")); got != want {
			t.Errorf("ProviderWord(%d) = %q, want %q", v, got, want)
		}
	}
	if got := LevelWord(99); got != "99" {
		t.Errorf("LevelWord(99) = %q", got)
	}
	if got := ProviderWord(-1); got != "-1" {
		t.Errorf("ProviderWord(-1) = %q", got)
	}
}
