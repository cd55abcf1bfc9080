// Command sgctl is Sendguard's operator tool: normalize payloads, replay
// history through the rules offline, ask PermissionService, lint rule sets.
package main

import (
	"os"

	"github.com/sendguard/sendguard/services/sgctl/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
