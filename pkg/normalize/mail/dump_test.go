package mail

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestDumpSamples prints one table row per event when SENDGUARD_DUMP is set;
// it is how the expectation tables were first drafted (then reviewed).
func TestDumpSamples(t *testing.T) {
	if os.Getenv("SENDGUARD_DUMP") == "" {
		t.Skip("set SENDGUARD_DUMP=1 to print parser output for every sample")
	}
	for _, kind := range []string{"arf", "dsn"} {
		files, _ := filepath.Glob(filepath.Join(samplesDir, kind, "*.eml"))
		sort.Strings(files)
		for _, f := range files {
			raw, _ := os.ReadFile(f)
			env := &sgv1.RawEnvelope{Tenant: "t", Payload: raw}
			var evs []*sgv1.Event
			var err error
			if kind == "arf" {
				evs, err = ParseARF(env, Options{})
			} else {
				evs, err = ParseDSN(env, Options{})
			}
			name := filepath.Base(f)
			if err != nil {
				fmt.Printf("%s\tERR %v\n", name, err)
				continue
			}
			for _, ev := range evs {
				b := ev.GetBounce()
				fmt.Printf("{%q, %q, %q, %q, %q, %d, %q}, // %s | %s\n", name, canonical.TypeWord(ev.GetType()), ev.GetRecipient(),
					canonical.BounceClassWord(b.GetClass()), canonical.BounceCategoryWord(b.GetCategory()), b.GetSmtpCode(), b.GetEnhancedCode(),
					ev.GetSender(), strings.ReplaceAll(truncate(b.GetDiagnostic(), 140), "\n", " "))
			}
		}
	}
}
