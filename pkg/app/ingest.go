package app

import (
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/stage/ingest"
	"github.com/sendguard/sendguard/pkg/webhooksig"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// IngestOptions configures the ingest component.
type IngestOptions struct {
	Config ingest.Config
	// WebhookConfig is the per-tenant webhook signature configuration file
	// (SENDGUARD_WEBHOOK_CONFIG, see webhooksig.File); empty means no
	// signature checks. Ignored when Config.Webhooks is already set.
	WebhookConfig string
	// Mux receives the ingest routes (the devstack passes the admin mux so
	// one HTTP address serves everything).
	Mux *http.ServeMux
}

// BindIngest binds the ingest flags and variables: the stage's limits and
// rate limits, and --webhook-config.
func BindIngest(f *service.Flags, o *IngestOptions) {
	ingest.BindFlags(f, &o.Config)
	f.String(&o.WebhookConfig, "webhook-config", "SENDGUARD_WEBHOOK_CONFIG", "", "per-tenant webhook signature configuration (YAML); empty: no signature checks")
}

// Validate loads the webhook configuration, so bad key material refuses
// the start with a clear error before anything connects.
func (o *IngestOptions) Validate() error {
	if o.WebhookConfig == "" || o.Config.Webhooks != nil {
		return nil
	}
	set, err := webhooksig.Load(o.WebhookConfig)
	if err != nil {
		return err
	}
	o.Config.Webhooks = set
	return nil
}

// AddIngest adds HTTP routes and IngestService. Provider payloads are
// parsed at the edge, so a payload of which nothing parses gets a 400
// instead of a dead letter; a batch with some bad items is accepted (the
// normalizer publishes the good ones and dead-letters the envelope), so an
// ESP does not retry a whole batch forever for one bad item.
func AddIngest(e *Env, opts IngestOptions) (*ingest.Stage, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if set := opts.Config.Webhooks; set != nil {
		e.Logger.Info("webhook signature checks configured", zap.Strings("tenants", set.Tenants()))
	}
	nopts := normalize.Options{}
	validate := func(env *sgv1.RawEnvelope) (int, error) {
		events, err := normalize.Parse(env, nopts)
		if err != nil && len(events) == 0 {
			return 0, err
		}
		return len(events), nil
	}
	pub, err := envelopeProducer(e, opts.Config.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	s, err := ingest.New(opts.Config, e.Keys, pub, validate, e.Logger.Named("ingest"), e.Registry)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	s.Routes(opts.Mux)
	if opts.Mux == e.AdminMux {
		e.adminTLS = true // the admin address now takes events
	}
	s.RegisterGRPC(e.GRPCServer())
	return s, nil
}

// envelopeProducer returns the producer for raw envelopes: the env's own
// when an envelope of maxBody bytes fits its 1 MB batches, otherwise a
// dedicated one whose batches hold the largest envelope (the broker's
// message.max.bytes must allow it: see deployments/README.md).
func envelopeProducer(e *Env, maxBody int64) (ingest.Publisher, error) {
	if maxBody <= 0 {
		maxBody = ingest.DefaultMaxBodyBytes
	}
	need := maxBody + 64<<10 // protobuf envelope around the body
	if need <= kafka.DefaultBatchBytes {
		return e.Producer, nil
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: e.Common.Kafka, BatchBytes: need}, e.Registry)
	if err != nil {
		return nil, fmt.Errorf("envelope producer: %w", err)
	}
	e.OnClose(func() {
		if err := p.Close(); err != nil {
			e.Logger.Warn("close envelope producer", zap.Error(err))
		}
	})
	return p, nil
}
