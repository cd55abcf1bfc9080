// Package cli implements sgctl's subcommands. Each returns an exit code:
// 0 success, 1 the input or the answer is bad (unparsable payload, lint
// errors), 2 usage errors.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
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
