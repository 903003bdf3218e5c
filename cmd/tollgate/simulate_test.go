package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/report"
)

// simulateOther is the configuration traffic is re-priced in. Its API key
// comes from a variable no one sets: simulate reads it as a placeholder.
const simulateOther = `
providers:
  openai: {kind: openai, base_url: "https://api.example.com/v1", api_key: "${TOLLGATE_SIMULATE_TEST_UNSET}"}
models:
  cheap: {provider: openai, price: {input: 0.10, output: 0.40, cached_input: 0.05}}
  mid:   {provider: openai, price: {input: 1, output: 4}}
  dear:  {provider: openai, price: {input: 10, output: 30, cached_input: 1}}
tiers: {budget: [cheap], standard: [mid, cheap], premium: [dear, mid]}
default_profile: production
store: {path: ledger.db}
`

// simulateTiers maps every tier to mid; its own price for mid is ignored.
const simulateTiers = `
providers:
  openai: {kind: openai, base_url: "https://api.example.com/v1"}
models:
  mid: {provider: openai, price: {input: 100, output: 100}}
tiers: {budget: [mid], standard: [mid], premium: [mid]}
`

// simulateFixture writes the two configuration files and a ledger beside
// them, and returns the directory and the search team's id.
func simulateFixture(t *testing.T) (dir, search string) {
	t.Helper()
	clearAdminEnv(t)
	dir = t.TempDir()
	for name, body := range map[string]string{"other.yaml": simulateOther, "tiers.yaml": simulateTiers} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "ledger.db")
	search = decodeJSON[admin.Team](t, runCLI(t, runTeams, "create", "search", "--store", db, "--json")).ID
	day := func(d int) time.Time { return time.Date(2026, 3, 1+d, 12, 0, 0, 0, time.UTC) }
	rec := func(d int, id, team, requested, tier, crit, served string, prompt, completion, cached int, cost meter.Nanos) meter.Record {
		return meter.Record{Time: day(d), RequestID: id, TeamID: team, RequestedModel: requested, Tier: tier,
			Criticality: crit, ServedModel: served, Status: 200, PromptTokens: prompt, Completion: completion,
			CachedTokens: cached, Cost: cost}
	}
	failed := rec(4, "s5", search, "auto", "premium", "", "", 0, 0, 0, 0)
	failed.Status = 500
	appendLedger(t, db, []meter.Record{
		// In production, premium → dear: 800 × $10/M + 200 cached × $1/M +
		// 500 × $30/M = 8_000_000 + 200_000 + 15_000_000 = 23_200_000.
		rec(0, "s1", search, "auto", "premium", "", "old-dear", 1000, 500, 200, 50_000_000),
		// background → budget → cheap: 2000 × $0.10/M + 1000 × $0.40/M =
		// 200_000 + 400_000 = 600_000.
		rec(1, "s2", search, "auto", "standard", "background", "old-mid", 2000, 1000, 0, 10_000_000),
		// No tier: production's default, premium → dear: 10_000 × $10/M =
		// 100_000_000, as recorded.
		rec(2, "s3", "team_ads", "auto", "", "", "old-dear", 10_000, 0, 0, 100_000_000),
		// Unknown in other.yaml: unmatched.
		rec(3, "s4", "team_ads", "gpt-4o", "premium", "", "gpt-4o", 5, 1, 0, 777),
		failed,
		// Before the window.
		rec(-20, "s6", search, "auto", "premium", "", "old-dear", 1000, 1000, 0, 999),
	})
	return dir, search
}

func TestSimulateCLI(t *testing.T) {
	dir, search := simulateFixture(t)
	other := filepath.Join(dir, "other.yaml")
	window := []string{"--config", other, "--since", "2026-03-01", "--until", "2026-03-11"}

	out, errOut, err := tryCLI(runSimulate, window...)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "TOLLGATE_SIMULATE_TEST_UNSET") {
		t.Errorf("stderr does not name the unset variable: %q", errOut)
	}
	// Re-priced: s1, s2, s3. Actual 50_000_000 + 10_000_000 + 100_000_000 =
	// 160_000_000; simulated 23_200_000 + 600_000 + 100_000_000 =
	// 123_800_000; difference -36_200_000 = -22.625%. Ten days × 3 = a
	// month: 480_000_000, 371_400_000, -108_600_000.
	for _, want := range [][]string{
		{"5", "records:", "3", "re-priced,", "1", "not", "re-priced", "(failed", "or", "without", "tokens,", "$0.000000),", "1", "unmatched", "($0.000001)"},
		{"TEAM", "REQUESTS", "ACTUAL", "USD", "SIMULATED", "USD", "DIFFERENCE", "USD", "DIFFERENCE", "%"},
		// search: s1 + s2, 60_000_000 → 23_800_000, -60.3%.
		{search, "2", "0.060000", "0.023800", "-0.036200", "-60.3%"},
		{"team_ads", "1", "0.100000", "0.100000", "0.000000", "+0.0%"},
		{"TOTAL", "3", "0.160000", "0.123800", "-0.036200", "-22.6%"},
		// s1 + s3: 150_000_000 → 123_200_000, -17.9%; s2: 10_000_000 → 600_000, -94.0%.
		{"old-dear", "dear", "2", "0.150000", "0.123200", "-0.026800", "-17.9%"},
		{"old-mid", "cheap", "1", "0.010000", "0.000600", "-0.009400", "-94.0%"},
		{"gpt-4o", "1", "0.000001", "model", `"gpt-4o"`, "does", "not", "exist"},
		{"Projected", "to", "30", "days", "from", "10.0", "days:", "actual", "$0.480000,", "simulated", "$0.371400,", "difference", "-$0.108600", "(-22.6%)"},
	} {
		if !hasLine(out, want) {
			t.Errorf("simulate table lacks the line %q:\n%s", strings.Join(want, " "), out)
		}
	}
	if !strings.HasPrefix(out, "Traffic re-priced in "+other+", profile production, since 2026-03-01T00:00:00Z until 2026-03-11T00:00:00Z\n") {
		t.Errorf("simulate title:\n%s", out)
	}

	sim := decodeJSON[simulation](t, runCLI(t, runSimulate, append(window, "--format", "json")...))
	if sim.Total.Actual != 160_000_000 || sim.Total.Simulated != 123_800_000 || sim.Total.Difference != -36_200_000 ||
		sim.Records != 5 || sim.Unmatched != (report.Tally{Requests: 1, Actual: 777}) || sim.Skipped.Requests != 1 {
		t.Errorf("simulate json: %+v", sim.Result)
	}
	wantProj := report.Projection{Period: 10 * 24 * time.Hour, Actual: 480_000_000, Simulated: 371_400_000, Difference: -108_600_000}
	if sim.Projection != wantProj || sim.Object != "simulation" || sim.Profile != "production" || sim.Since == nil {
		t.Errorf("simulate json: projection %+v, object %q, profile %q, since %v; want %+v", sim.Projection, sim.Object, sim.Profile, sim.Since, wantProj)
	}
	// Teams come in id order, and search's id is random.
	i := slices.IndexFunc(sim.Teams, func(l report.Line) bool { return l.Team == search })
	if len(sim.Teams) != 2 || i < 0 || sim.Teams[i].Simulated != 23_800_000 || *sim.Teams[i].DifferencePct >= -60 {
		t.Errorf("simulate json teams: %+v", sim.Teams)
	}

	rows, err := csv.NewReader(strings.NewReader(runCLI(t, runSimulate, append(window, "--format", "csv")...))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantTotal := []string{"total", "", "", "", "3", "160000000", "123800000", "-36200000", "0.16", "0.1238", "-0.0362", "-22.6250", ""}
	if len(rows) != 9 || !cmp.Equal(rows[5], wantTotal) {
		t.Errorf("simulate csv: %d rows, row 5 = %q, want %q:\n%q", len(rows), rows[5], wantTotal, rows)
	}
}

// TestSimulateCLIOptions covers --profile, --tier-map and --team.
func TestSimulateCLIOptions(t *testing.T) {
	dir, search := simulateFixture(t)
	base := []string{"--config", filepath.Join(dir, "other.yaml"), "--since", "2026-03-01", "--until", "2026-03-11", "--format", "json"}
	for _, c := range []struct {
		name              string
		args              []string
		requests          int64
		actual, simulated meter.Nanos
	}{
		// dev: s1 keeps premium (23_200_000); s2 background → budget (600_000);
		// s3 has no tier: dev's default, budget → cheap, 10_000 × $0.10/M = 1_000_000.
		{"dev", []string{"--profile", "dev"}, 3, 160_000_000, 24_800_000},
		// Every tier → mid at other.yaml's $1/$4 (cached at input): s1 800_000
		// + 200_000 + 2_000_000; s2 2_000_000 + 4_000_000; s3 10_000_000.
		{"tier map", []string{"--tier-map", filepath.Join(dir, "tiers.yaml")}, 3, 160_000_000, 19_000_000},
		// search only: s1 and s2.
		{"team", []string{"--team", "search"}, 2, 60_000_000, 23_800_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim := decodeJSON[simulation](t, runCLI(t, runSimulate, append(base, c.args...)...))
			if sim.Total.Requests != c.requests || sim.Total.Actual != c.actual || sim.Total.Simulated != c.simulated {
				t.Errorf("total %+v, want %d requests, %d actual, %d simulated", sim.Total, c.requests, c.actual, c.simulated)
			}
		})
	}
	sim := decodeJSON[simulation](t, runCLI(t, runSimulate, append(base, "--team", search)...))
	if sim.TeamID != search || sim.Unmatched.Requests != 0 {
		t.Errorf("--team search: team %q, unmatched %+v", sim.TeamID, sim.Unmatched)
	}
	// All time: the window starts at the first record, 20 days before the
	// 1st at noon, and ends at --until.
	all := decodeJSON[simulation](t, runCLI(t, runSimulate, "--config", filepath.Join(dir, "other.yaml"), "--since", "",
		"--until", "2026-03-11", "--format", "json"))
	if want := 30*24*time.Hour - 12*time.Hour; all.Records != 6 || all.Projection.Period != want || all.Since != nil {
		t.Errorf("--since '': %d records, period %v, since %v; want 6, %v, none", all.Records, all.Projection.Period, all.Since, want)
	}
}

func TestSimulateCLIErrors(t *testing.T) {
	dir, _ := simulateFixture(t)
	other := filepath.Join(dir, "other.yaml")
	_, errOut, err := tryCLI(runSimulate, "--help")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "--tier-map") {
		t.Errorf("simulate --help: %v\n%s", err, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--config is required"},
		{[]string{"--config", other, "--format", "xml"}, "--format"},
		{[]string{"--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{[]string{"--config", other, "--profile", "qa"}, `profile "qa"`},
		{[]string{"--config", other, "--since", "yesterday"}, "--since"},
		{[]string{"--config", other, "--since", "2026-03-02", "--until", "2026-03-01"}, "--until must be after"},
		{[]string{"--config", other, "--store", filepath.Join(dir, "missing.db")}, "missing.db"},
		{[]string{"--config", other, "--team", "nope"}, `team "nope"`},
		{[]string{"--config", other, "extra"}, "unexpected argument"},
	} {
		if _, _, err := tryCLI(runSimulate, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("simulate %q: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("simulate created a missing store file")
	}
}

// hasLine reports whether some line of out has exactly these fields.
func hasLine(out string, fields []string) bool {
	for line := range strings.Lines(out) {
		if cmp.Equal(strings.Fields(line), fields) {
			return true
		}
	}
	return false
}
