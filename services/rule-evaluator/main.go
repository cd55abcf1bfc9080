// Command rule-evaluator evaluates the rule set on window snapshots and
// publishes decisions.
package main

import (
	"context"
	"os"
	"time"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/service"
)

func main() {
	var opts app.EvaluatorOptions
	app.Main(app.Spec{
		Name: "rule-evaluator",
		Bind: func(f *service.Flags) {
			f.String(&opts.RulesPath, "rules", "SENDGUARD_RULES", "", "rule-set file (hot-reloaded); default pack when empty")
			f.Duration(&opts.Reload, "rules-reload", "SENDGUARD_RULES_RELOAD", 5*time.Second, "rule-file poll interval")
		},
		Setup: func(ctx context.Context, e *app.Env) error {
			_, err := app.AddEvaluator(ctx, e, opts)
			return err
		},
	}, os.Args[1:], os.Getenv)
}
