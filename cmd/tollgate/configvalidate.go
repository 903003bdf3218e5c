package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tollgate-gw/tollgate/internal/config"
)

const configValidateUsage = `Usage:
  tollgate config validate FILE

Checks a Tollgate configuration file the way "tollgate serve" would load it,
with ${VAR} references resolved from the environment. Every problem is printed
to stderr as FILE:LINE: message (warnings as FILE:LINE: warning: message); on
success "FILE: ok (N warnings)" goes to stdout. The exit status is 1 when the
file has any error, 0 otherwise (warnings included).
`

// runConfigValidate is "tollgate config validate FILE". All problems go to
// stderr, warnings too: they are diagnostics, like a compiler's, and stdout
// keeps only the one-line verdict for scripts.
func runConfigValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), configValidateUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
		}
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("config validate: want exactly one FILE")
	}
	file := fs.Arg(0)
	_, problems, err := config.Load(file, os.LookupEnv)
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if n := config.Errors(problems); n > 0 {
		if n == 1 {
			return fmt.Errorf("%s: 1 error", file)
		}
		return fmt.Errorf("%s: %d errors", file, n)
	}
	if err != nil { // the file could not be read
		return err
	}
	warnings := len(problems)
	noun := "warnings"
	if warnings == 1 {
		noun = "warning"
	}
	fmt.Fprintf(stdout, "%s: ok (%d %s)\n", file, warnings, noun)
	return nil
}
