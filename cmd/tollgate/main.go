// Command tollgate is an OpenAI-compatible AI gateway: one endpoint in front
// of many LLM providers, with tiers, fallbacks and retries from one YAML file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		keepSysmonAwake() // sysmon.go; returns only if it did not re-execute
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "tollgate:", err)
		os.Exit(1)
	}
}

const usage = `Tollgate is an OpenAI-compatible AI gateway.

Usage:
  tollgate serve --config FILE [--profile dev|staging|production] [--listen ADDR]
  tollgate serve --demo                 run with a built-in demo configuration
  tollgate config validate FILE         check a configuration file
  tollgate explain --config FILE --model M [--criticality C] [--request body.json]
                                        show how a request would be routed
  tollgate teams create|list|show        manage teams (--url URL or --store FILE)
  tollgate keys create|list|show|revoke|rotate|rotation-due
                                        manage virtual keys
  tollgate usage [--team T] [--since 30d] [--by model,day] [--format table|json|csv]
                                        who spent what
  tollgate simulate --config FILE [--profile P] [--tier-map FILE] [--since 30d]
                                        what recorded traffic would have cost on another setup
  tollgate mock-upstream [--listen ADDR] run a fake provider for tests and benchmarks
  tollgate version

Run "tollgate COMMAND --help" for a command's flags.
`

// Main runs the command line args (without the program name).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "config":
		if len(rest) == 0 || rest[0] != "validate" {
			if len(rest) > 0 && isHelp(rest[0]) {
				fmt.Fprint(stdout, "Usage:\n  tollgate config validate FILE\n")
				return flag.ErrHelp
			}
			return errors.New(`unknown config command: use "tollgate config validate FILE"`)
		}
		return runConfigValidate(ctx, rest[1:], stdout, stderr)
	case "explain":
		return runExplain(ctx, rest, stdout, stderr)
	case "teams":
		return runTeams(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, stdout, stderr)
	case "usage":
		return runUsage(ctx, rest, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, rest, stdout, stderr)
	case "mock-upstream":
		return runMockUpstream(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "tollgate", version)
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" || s == "help" }
