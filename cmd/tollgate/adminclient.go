package main

// Shared by the teams, keys, usage and simulate commands: how they reach the
// admin API (a running gateway, or the store file) and how they print.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// adminFlags say how a teams, keys or usage command reaches the admin API:
// a running gateway, or the store file with the gateway stopped.
type adminFlags struct {
	url, key, store string
	json            bool
}

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "a running gateway's `URL`, e.g. http://127.0.0.1:8080 (default: env TOLLGATE_URL)")
	fs.StringVar(&f.key, "admin-key", "", "the `KEY` to call the gateway with (default: env TOLLGATE_MASTER_KEY); a team's virtual key may read its own keys and usage")
	fs.StringVar(&f.store, "store", "", "work on the store `FILE` directly (SQLite, e.g. tollgate.db) instead of a gateway; for bootstrapping with the gateway stopped")
	fs.BoolVar(&f.json, "json", false, "print the admin API's JSON")
}

// connect returns a client of the admin API and a function that releases
// it. --store and --url exclude each other; --store wins over a
// TOLLGATE_URL in the environment.
// Only commands that create may create a missing store file; the others
// refuse it, so a misspelt path does not leave an empty database behind.
func (f *adminFlags) connect(ctx context.Context, create bool) (*admin.Client, func() error, error) {
	if f.store != "" {
		if f.url != "" {
			return nil, nil, errors.New("give --url or --store, not both")
		}
		return openLocal(ctx, f.store, create)
	}
	u := cmp.Or(f.url, os.Getenv("TOLLGATE_URL"))
	if u == "" {
		return nil, nil, errors.New("no gateway: give --url URL (or set TOLLGATE_URL), or --store FILE to work on the store file")
	}
	key := cmp.Or(f.key, os.Getenv("TOLLGATE_MASTER_KEY"))
	if key == "" {
		return nil, nil, errors.New("no admin key: set TOLLGATE_MASTER_KEY or give --admin-key")
	}
	return admin.NewClient(u, key, nil), func() error { return nil }, nil
}

// openLocal serves the admin API in process over the store file, as the
// master. A gateway running on the same file sees changes within its
// key-cache TTL (30 s); use --url when one is running.
func openLocal(ctx context.Context, path string, create bool) (*admin.Client, func() error, error) {
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("store %s: %w", path, err)
		}
	}
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	svc := tenant.NewService(st, time.Now)
	return admin.NewLocalClient(admin.New(svc, st, st, time.Now)), st.Close, nil
}

// newFlagSet returns a FlagSet whose --help prints usage and about.
func newFlagSet(name, usage, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  %s\n\n%s\n\nFlags:\n", usage, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags wherever they stand among the positional
// arguments ("teams create search --rpm 10" as well as "--rpm 10 search"),
// and returns the positional ones and the names of the flags given.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, map[string]bool, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return pos, set, nil
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func orUnlimited(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}
