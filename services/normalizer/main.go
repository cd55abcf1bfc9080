// Command normalizer turns raw envelopes into canonical events, and writes
// dead letters to ClickHouse when analytics are on.
package main

import (
	"context"
	"os"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/service"
)

func main() {
	var (
		campaignHeaders []string
		mx              app.MXOptions
	)
	app.Main(app.Spec{
		Name: "normalizer",
		Bind: func(f *service.Flags) {
			f.List(&campaignHeaders, "campaign-headers", "SENDGUARD_CAMPAIGN_HEADERS", "X-Campaign-ID", "original-message headers that carry the campaign id")
			app.BindMX(f, &mx)
		},
		Validate: func() error { return mx.Validate() }, // after parsing, not a copy of the zero value
		Setup: func(_ context.Context, e *app.Env) error {
			if err := app.AddNormalizer(e, normalize.Options{CampaignHeaders: campaignHeaders}, mx.StageOptions(nil)...); err != nil {
				return err
			}
			return app.AddDeadLetterWriter(e)
		},
	}, os.Args[1:], os.Getenv)
}
