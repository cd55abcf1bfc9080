// Package cli implements sgctl's subcommands. Each returns an exit code:
// 0 success, 1 the input or the answer is bad (unparsable payload, lint
// errors), 2 usage errors.
package cli

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"google.golang.org/grpc"

	"github.com/sendguard/sendguard/pkg/loadgen/drive"
	"github.com/sendguard/sendguard/pkg/service"
)

type command struct {
	name, usage string
	run         func(args []string, in io.Reader, out, errOut io.Writer) int
}

// commands is filled by register from each command's file.
var commands []command

// register adds a subcommand; each command's file calls it from init, so a
// new command is a new file.
func register(c command) { commands = append(commands, c) }

// Main runs sgctl with args and returns the exit code.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errOut)
		return 2
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], in, out, errOut)
		}
	}
	fmt.Fprintf(errOut, "sgctl: unknown command %q\n", args[0])
	usage(errOut)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sgctl COMMAND [flags]")
	sorted := append([]command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintln(w, "  sgctl "+c.usage)
	}
}

func flags(name string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sgctl "+name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	return fs
}

// readInput reads FILE, or standard input for "-" or no argument.
func readInput(args []string, in io.Reader) ([]byte, string, error) {
	if len(args) > 1 {
		return nil, "", errors.New("one input at most")
	}
	if len(args) == 0 || args[0] == "-" {
		b, err := io.ReadAll(in)
		return b, "stdin", err
	}
	b, err := os.ReadFile(args[0])
	return b, args[0], err
}

// clientTLS holds the TLS flags of commands that dial a Sendguard service.
// Plaintext is the default; any of --tls, --tls-ca, --tls-cert turns TLS on.
type clientTLS struct {
	files service.ClientTLSFiles
}

func (c *clientTLS) bind(fs *flag.FlagSet) {
	on, _ := strconv.ParseBool(os.Getenv("SENDGUARD_TLS"))
	fs.BoolVar(&c.files.On, "tls", on, "use TLS, verifying the server with the system roots unless --tls-ca (env SENDGUARD_TLS)")
	fs.StringVar(&c.files.CA, "tls-ca", os.Getenv("SENDGUARD_TLS_CA"), "PEM CA bundle verifying the server; implies --tls (env SENDGUARD_TLS_CA)")
	fs.StringVar(&c.files.Cert, "tls-cert", os.Getenv("SENDGUARD_TLS_CLIENT_CERT"), "PEM client certificate for mTLS (ControlService); implies --tls (env SENDGUARD_TLS_CLIENT_CERT)")
	fs.StringVar(&c.files.Key, "tls-key", os.Getenv("SENDGUARD_TLS_CLIENT_KEY"), "PEM private key of --tls-cert (env SENDGUARD_TLS_CLIENT_KEY)")
	fs.StringVar(&c.files.ServerName, "tls-server-name", "", "name expected in the server certificate (default: the host dialled)")
}

// config returns the TLS configuration, or nil for plaintext.
func (c *clientTLS) config() (*tls.Config, error) { return c.files.Config() }

// grpcCredentials returns the dial option for the flags: TLS or plaintext.
func (c *clientTLS) grpcCredentials() (grpc.DialOption, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	return drive.GRPCCredentials(cfg), nil
}
