package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sendguard/sendguard/pkg/canonical"
)

func init() {
	register(command{"check", "check --addr HOST:PORT --api-key K --sender S --recipient R [--campaign C --variant V] [--tls-ca FILE]", runCheck})
}

type checkOutput struct {
	Verdict      string        `json:"verdict"`
	Reasons      []checkReason `json:"reasons"`
	RetryAfterMS int64         `json:"retry_after_ms,omitempty"`
}

type checkReason struct {
	Rule   string `json:"rule"`
	Level  string `json:"level"`
	Target string `json:"target"`
	Action string `json:"action"`
	Until  string `json:"until,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func runCheck(args []string, _ io.Reader, out, errOut io.Writer) int {
	fs := flags("check", errOut)
	addr := fs.String("addr", "127.0.0.1:9090", "PermissionService address")
	key := fs.String("api-key", os.Getenv("SENDGUARD_API_KEY"), "API key (env SENDGUARD_API_KEY)")
	req := &sgv1.CheckRequest{}
	fs.StringVar(&req.Sender, "sender", "", "sending mailbox")
	fs.StringVar(&req.Recipient, "recipient", "", "recipient address")
	fs.StringVar(&req.Campaign, "campaign", "", "campaign id")
	fs.StringVar(&req.Variant, "variant", "", "variant id")
	count := fs.Int("count", 1, "messages this check stands for")
	dry := fs.Bool("dry-run", false, "do not consume throttle capacity")
	timeout := fs.Duration("timeout", 5*time.Second, "call timeout")
	var ct clientTLS
	ct.bind(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *key == "" || (req.Sender == "" && req.Recipient == "") {
		fmt.Fprintln(errOut, "sgctl check: --api-key and --sender or --recipient are required")
		return 2
	}
	req.Count, req.DryRun = int32(*count), *dry
	creds, err := ct.grpcCredentials()
	if err != nil {
		fmt.Fprintf(errOut, "sgctl check: %v\n", err)
		return 2
	}
	conn, err := grpc.NewClient(*addr, creds)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl check: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*key)
	resp, err := sgv1.NewPermissionServiceClient(conn).Check(ctx, req)
	if err != nil {
		fmt.Fprintf(errOut, "sgctl check: %v\n", err)
		return 1
	}
	o := checkOutput{Verdict: strings.TrimPrefix(resp.GetVerdict().String(), "VERDICT_"), Reasons: []checkReason{}}
	if ra := resp.GetRetryAfter(); ra != nil {
		o.RetryAfterMS = ra.AsDuration().Milliseconds()
	}
	for _, r := range resp.GetReasons() {
		cr := checkReason{Rule: r.GetRule(), Level: r.GetLevel(), Target: r.GetTarget(), Action: canonical.ActionWord(r.GetAction()), Detail: r.GetDetail()}
		if r.GetUntil() != nil {
			cr.Until = r.GetUntil().AsTime().UTC().Format(time.RFC3339)
		}
		o.Reasons = append(o.Reasons, cr)
	}
	b, _ := json.Marshal(o)
	fmt.Fprintf(out, "%s\n", b)
	return 0
}
