package cli

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/sendguard/sendguard/pkg/rules"
)

func init() {
	register(command{"rules", "rules lint FILE", runRules})
}

func runRules(args []string, _ io.Reader, out, errOut io.Writer) int {
	if len(args) != 2 || args[0] != "lint" {
		fmt.Fprintln(errOut, "usage: sgctl rules lint FILE")
		return 2
	}
	data, err := os.ReadFile(args[1])
	if err != nil {
		fmt.Fprintf(errOut, "sgctl rules lint: %v\n", err)
		return 2
	}
	diags := rules.Lint(data, args[1])
	sort.SliceStable(diags, func(i, j int) bool { return diags[i].Line < diags[j].Line })
	errs := 0
	for _, d := range diags {
		fmt.Fprintln(out, d.String())
		if d.Severity == rules.SeverityError {
			errs++
		}
	}
	if errs > 0 {
		fmt.Fprintf(errOut, "%s: %d error(s)\n", args[1], errs)
		return 1
	}
	fmt.Fprintf(errOut, "%s: ok (%d warning(s))\n", args[1], len(diags))
	return 0
}
