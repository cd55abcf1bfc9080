package app

import (
	"net/http"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"

	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/stage/ingest"
)

// IngestOptions configures the ingest component.
type IngestOptions struct {
	Config ingest.Config
	// Mux receives the ingest routes (the devstack passes the admin mux so
	// one HTTP address serves everything).
	Mux *http.ServeMux
}

// AddIngest adds HTTP routes and IngestService. Provider payloads are
// parsed at the edge, so a payload of which nothing parses gets a 400
// instead of a dead letter; a batch with some bad items is accepted (the
// normalizer publishes the good ones and dead-letters the envelope), so an
// ESP does not retry a whole batch forever for one bad item.
func AddIngest(e *Env, opts IngestOptions) (*ingest.Stage, error) {
	nopts := normalize.Options{}
	validate := func(env *sgv1.RawEnvelope) error {
		events, err := normalize.Parse(env, nopts)
		if err != nil && len(events) == 0 {
			return err
		}
		return nil
	}
	s, err := ingest.New(opts.Config, e.Keys, e.Producer, validate, e.Logger.Named("ingest"), e.Registry)
	if err != nil {
		return nil, err
	}
	s.Routes(opts.Mux)
	s.RegisterGRPC(e.GRPCServer())
	return s, nil
}
