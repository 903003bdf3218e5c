package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// appendLedger writes records into the store file, as a gateway would.
func appendLedger(t *testing.T, db string, recs []meter.Record) {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AppendUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
}

func TestUsageCLI(t *testing.T) {
	clearAdminEnv(t)
	db := filepath.Join(t.TempDir(), "tollgate.db")
	team := decodeJSON[admin.Team](t, runCLI(t, runTeams, "create", "search", "--store", db, "--json"))
	ks := decodeJSON[admin.KeySecret](t, runCLI(t, runKeys, "create", "--team", "search", "--name", "app", "--store", db, "--json"))

	now := time.Now().UTC()
	var recs []meter.Record
	for i, m := range []string{"gpt-4o", "gpt-4o", "claude-sonnet"} {
		recs = append(recs, meter.Record{Time: now.Add(-time.Duration(i+1) * time.Minute), RequestID: fmt.Sprint("r", i),
			TeamID: team.ID, KeyID: ks.Key.ID, ServedModel: m, Provider: "p", Tier: "standard", Status: 200 + 229*(i%2),
			Fallback: i == 2, PromptTokens: 1000, Completion: 100, Cost: 1_234_567, Latency: time.Duration(i+1) * 100 * time.Millisecond})
	}
	recs = append(recs, meter.Record{Time: now.Add(-60 * 24 * time.Hour), RequestID: "old", TeamID: team.ID, ServedModel: "gpt-4o", Cost: 999})
	appendLedger(t, db, recs)

	out := runCLI(t, runUsage, "--store", db, "--team", "search", "--by", "model")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	// Title, blank, header, two models, total.
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "Usage of team "+team.ID+" since ") || !strings.HasSuffix(lines[0], "by model") {
		t.Fatalf("usage table:\n%s", out)
	}
	fields := regexp.MustCompile(`\s{2,}`).Split(lines[2], -1)
	if want := []string{"MODEL", "REQUESTS", "ERRORS", "FALLBACKS", "PROMPT TOKENS", "COMPLETION TOKENS", "CACHED TOKENS", "COST USD",
		"AVG LATENCY MS", "P50 LATENCY MS", "P95 LATENCY MS", "FALLBACK %"}; !cmp.Equal(fields, want) {
		t.Errorf("header (-got +want):\n%s", cmp.Diff(fields, want))
	}
	// Latencies: gpt-4o 100 and 200 ms (p50 rank ceil(1) = 1 → 100, p95 rank
	// ceil(1.9) = 2 → 200), claude-sonnet 300 ms; all three: p50 rank 2 →
	// 200, p95 rank 3 → 300. One fallback of three is 33.3%.
	for i, want := range [][]string{
		{"claude-sonnet", "1", "0", "1", "1000", "100", "0", "0.001235", "300.0", "300.0", "300.0", "100.0"},
		{"gpt-4o", "2", "1", "0", "2000", "200", "0", "0.002469", "150.0", "100.0", "200.0", "0.0"},
		{"TOTAL", "3", "1", "1", "3000", "300", "0", "0.003704", "200.0", "200.0", "300.0", "33.3"},
	} {
		if got := strings.Fields(lines[3+i]); !cmp.Equal(got, want) {
			t.Errorf("row %d (-got +want):\n%s", i, cmp.Diff(got, want))
		}
	}

	// --since "" reaches the old record too (latency 0): of 0, 100, 200 and
	// 300 ms, p50 is rank 2 → 100 ms and p95 rank ceil(3.8) = 4 → 300 ms.
	out = runCLI(t, runUsage, "--store", db, "--since", "", "--format", "json")
	rep := decodeJSON[admin.UsageReport](t, out)
	if rep.Totals.Requests != 4 || rep.Totals.Cost != 3*1_234_567+999 || rep.Since != nil ||
		rep.Totals.P50LatencyMS != 100 || rep.Totals.P95LatencyMS != 300 || rep.Totals.FallbackRate != 0.25 {
		t.Errorf("usage --since '' --format json totals = %+v", rep.Totals)
	}
	for _, key := range []string{`"p50_latency_ms": 100`, `"p95_latency_ms": 300`, `"fallback_rate": 0.25`} {
		if !strings.Contains(out, key) {
			t.Errorf("usage --format json lacks %s:\n%s", key, out)
		}
	}

	out = runCLI(t, runUsage, "--store", db, "--key", ks.Key.ID, "--by", "key,day", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	want := [][]string{
		{"key", "day", "requests", "errors", "fallbacks", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_nanos", "cost_usd",
			"avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "fallback_rate"},
		{ks.Key.ID, now.Add(-time.Minute).Format(time.DateOnly), "3", "1", "1", "3000", "300", "0", "3703701", "0.003703701",
			"200.000", "200.000", "300.000", "0.333333"},
	}
	if now.Add(-3*time.Minute).Day() != now.Day() {
		t.Skip("the records straddle midnight")
	}
	if diff := cmp.Diff(rows, want); diff != "" {
		t.Errorf("usage csv (-got +want):\n%s", diff)
	}

	if out := runCLI(t, runUsage, "--store", db, "--since", "2020-01-01", "--until", "2020-02-01"); !strings.Contains(out, "until 2020-02-01T00:00:00Z") {
		t.Errorf("empty window:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", db, "--by", "colour"}, "invalid_value"},
		{[]string{"--store", db, "--format", "xml"}, "--format"},
		{[]string{"--store", db, "--since", "yesterday"}, "since"},
		{[]string{"--store", db, "--team", "nope"}, "team_not_found"},
	} {
		if _, _, err := tryCLI(runUsage, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("usage %v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func TestUSD6(t *testing.T) {
	for n, want := range map[meter.Nanos]string{0: "0.000000", 499: "0.000000", 500: "0.000001", 1_234_567: "0.001235", 50_000_000_000: "50.000000", -1_500: "-0.000002"} {
		if got := usd6(n); got != want {
			t.Errorf("usd6(%d) = %q, want %q", n, got, want)
		}
	}
}
