package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/admin"
)

// cliFunc is the shape of runTeams, runKeys and runUsage.
type cliFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// runCLI runs a command and returns its stdout, failing the test on error.
func runCLI(t *testing.T, run cliFunc, args ...string) string {
	t.Helper()
	out, errOut, err := tryCLI(run, args...)
	if err != nil {
		t.Fatalf("%v: %v\nstdout: %s\nstderr: %s", args, err, out, errOut)
	}
	return out
}

func tryCLI(run cliFunc, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// decodeJSON decodes a --json output.
func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return v
}

// clearAdminEnv keeps the developer's TOLLGATE_URL and key out of a test.
func clearAdminEnv(t *testing.T) {
	t.Setenv("TOLLGATE_URL", "")
	t.Setenv("TOLLGATE_MASTER_KEY", "")
}

func TestTeamsCLI(t *testing.T) {
	clearAdminEnv(t)
	db := filepath.Join(t.TempDir(), "tollgate.db")

	// Only creating may create the store file.
	if _, _, err := tryCLI(runTeams, "list", "--store", db); err == nil {
		t.Error("teams list on a missing store file succeeded")
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("teams list created the missing store file")
	}

	out := runCLI(t, runTeams, "create", "search", "--store", db, "--budget-usd", "50.10", "--soft", "80",
		"--downgrade", "90", "--rpm", "600", "--max-key-age", "90d", "--rotation-warning", "7d", "--metadata", "owner=ana")
	for _, want := range []string{"Created team search (team_", "$50.10 monthly, alert at 80%, downgrade at 90%",
		"600 requests/min, unlimited tokens/min", "2160h, reported 168h before", "owner=ana"} {
		if !strings.Contains(out, want) {
			t.Errorf("teams create output lacks %q:\n%s", want, out)
		}
	}
	runCLI(t, runTeams, "create", "--store", db, "ads")

	out = runCLI(t, runTeams, "list", "--store", db)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[1], "ads") ||
		!strings.Contains(lines[2], "search") || !strings.Contains(lines[2], "$50.10 monthly") {
		t.Errorf("teams list:\n%s", out)
	}
	team := decodeJSON[admin.Team](t, runCLI(t, runTeams, "show", "search", "--store", db, "--json"))
	if team.Name != "search" || team.Budget == nil || team.Budget.LimitNanos != 50_100_000_000 || team.Limits.RPM != 600 {
		t.Errorf("teams show --json = %+v", team)
	}
	if out := runCLI(t, runTeams, "show", team.ID, "--store", db); !strings.Contains(out, "name         search") {
		t.Errorf("teams show by id:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "search", "--store", db}, "team_exists"},
		{[]string{"show", "nope", "--store", db}, "team_not_found"},
		{[]string{"create", "x", "--store", db, "--soft", "50"}, "--soft needs --budget-usd"},
		{[]string{"create", "x", "--store", db, "--budget-usd", "5", "--period", "hourly"}, "budget.period"},
		{[]string{"create", "--store", db}, "exactly one team NAME"},
		{[]string{"list"}, "--url"},
		{[]string{"list", "--url", "http://127.0.0.1:1"}, "TOLLGATE_MASTER_KEY"},
		{[]string{"list", "--url", "http://127.0.0.1:1", "--store", db}, "not both"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{}, "give a command"},
	} {
		_, _, err := tryCLI(runTeams, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("teams %v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func TestAdminCLIHelp(t *testing.T) {
	for _, c := range []struct {
		name string
		run  cliFunc
		args []string
	}{
		{"teams", runTeams, []string{"--help"}},
		{"teams", runTeams, []string{"help"}},
		{"teams", runTeams, []string{"create", "--help"}},
		{"teams", runTeams, []string{"list", "--help"}},
		{"teams", runTeams, []string{"show", "-h"}},
		{"keys", runKeys, []string{"--help"}},
		{"keys", runKeys, []string{"create", "--help"}},
		{"keys", runKeys, []string{"list", "--help"}},
		{"keys", runKeys, []string{"show", "--help"}},
		{"keys", runKeys, []string{"revoke", "--help"}},
		{"keys", runKeys, []string{"rotate", "--help"}},
		{"keys", runKeys, []string{"rotation-due", "--help"}},
		{"usage", runUsage, []string{"--help"}},
	} {
		t.Run(c.name+" "+strings.Join(c.args, " "), func(t *testing.T) {
			out, errOut, err := tryCLI(c.run, c.args...)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("err = %v, want flag.ErrHelp", err)
			}
			if !strings.Contains(out+errOut, "Usage:") {
				t.Errorf("no usage printed: %q %q", out, errOut)
			}
		})
	}
}
