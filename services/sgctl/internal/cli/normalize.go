package cli

import (
	"fmt"
	"io"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/normalize"
)

func init() {
	register(command{"normalize", "normalize --source ses|sendgrid|mailgun|postmark|sparkpost|arf|dsn|postmaster|generic [FILE|-]", runNormalize})
}

func runNormalize(args []string, in io.Reader, out, errOut io.Writer) int {
	fs := flags("normalize", errOut)
	source := fs.String("source", "", "payload format: ses, sendgrid, mailgun, postmark, sparkpost, arf, dsn, postmaster, generic")
	tenant := fs.String("tenant", "default", "tenant to attribute the events to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	src, err := canonical.ParseSource(*source)
	if err != nil || src == sgv1.Source_SOURCE_UNSPECIFIED || src == sgv1.Source_SOURCE_GRPC {
		fmt.Fprintf(errOut, "sgctl normalize: --source %q: want ses, sendgrid, mailgun, postmark, sparkpost, arf, dsn, postmaster or generic\n", *source)
		return 2
	}
	payload, name, err := readInput(fs.Args(), in)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl normalize: %v\n", err)
		return 2
	}
	env := &sgv1.RawEnvelope{EnvelopeId: "sgctl", Tenant: *tenant, Source: src, ReceivedAt: timestamppb.Now(), Payload: payload}
	events, err := normalize.Parse(env, normalize.Options{})
	if err != nil {
		fmt.Fprintf(errOut, "sgctl normalize: %s: cannot parse as %s: %v\n", name, *source, err)
		return 1
	}
	m := protojson.MarshalOptions{UseProtoNames: true}
	for _, ev := range events {
		b, err := m.Marshal(ev)
		if err != nil {
			fmt.Fprintf(errOut, "sgctl normalize: %v\n", err)
			return 1
		}
		fmt.Fprintf(out, "%s\n", b)
	}
	return 0
}
