// Command normalizer turns raw envelopes into canonical events.
package main

import (
	"context"
	"os"

	"github.com/sendguard/sendguard/pkg/app"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/service"
)

func main() {
	var campaignHeaders []string
	app.Main(app.Spec{
		Name: "normalizer",
		Bind: func(f *service.Flags) {
			f.List(&campaignHeaders, "campaign-headers", "SENDGUARD_CAMPAIGN_HEADERS", "X-Campaign-ID", "original-message headers that carry the campaign id")
		},
		Setup: func(_ context.Context, e *app.Env) error {
			return app.AddNormalizer(e, normalize.Options{CampaignHeaders: campaignHeaders})
		},
	}, os.Args[1:], os.Getenv)
}
