package mail

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/sendguard/sendguard/pkg/canonical"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// TestDumpSamples prints Go table rows for every sample when SENDGUARD_DUMP
// is set. It is how the expectation tables in samples_test.go were first
// drafted; each row was then reviewed against the sample by hand.
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
			parse := ParseDSN
			if kind == "arf" {
				parse = ParseARF
			}
			evs, err := parse(env, Options{})
			name := filepath.Base(f)
			if err != nil {
				fmt.Printf("{file: %q, err: %q},\n", name, err.Error())
				continue
			}
			for _, ev := range evs {
				if kind == "arf" {
					fmt.Printf("{file: %q, typ: %q, rcpt: %q, sender: %q, feedback: %q, domain: %q, ip: %q},\n", name, canonical.TypeWord(ev.GetType()), ev.GetRecipient(), ev.GetSender(),
						canonical.Word(ev.GetComplaint().GetFeedbackType()), ev.GetComplaint().GetReportedDomain(), ev.GetComplaint().GetSourceIp())
					continue
				}
				b := ev.GetBounce()
				fmt.Printf("{file: %q, typ: %q, rcpt: %q, class: %q, cat: %q, smtp: %d, enh: %q},\n", name, canonical.TypeWord(ev.GetType()), ev.GetRecipient(),
					canonical.BounceClassWord(b.GetClass()), canonical.BounceCategoryWord(b.GetCategory()), b.GetSmtpCode(), b.GetEnhancedCode())
			}
		}
	}
}
