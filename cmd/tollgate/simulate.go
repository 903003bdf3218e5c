package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/report"
	"github.com/tollgate-gw/tollgate/internal/store"
)

type simulateFlags struct {
	config, profile, tierMap, since, until, store, team, format string
}

const simulateAbout = `Re-prices the recorded traffic as if another configuration or profile had served it: each
successful ledger record with tokens is routed again in --config under --profile (by its criticality
when it has one, else in its recorded tier) and its prompt, completion and cached tokens priced at the
primary model's price. Reports the actual and simulated cost by team and by model, the records that
could not be routed (unmatched) or were not re-priced (failed, or without tokens), and the difference
projected to 30 days. --tier-map takes the tier chains and aliases of a second configuration file.
Environment references in the files that are not set read as a placeholder: nothing is called.
Times are RFC 3339, a date (2026-01-02, UTC) or a duration before now (30d, 24h).`

func parseSimulate(args []string, stderr io.Writer) (simulateFlags, error) {
	var f simulateFlags
	fs := newFlagSet("simulate",
		"tollgate simulate --config FILE [--profile P] [--tier-map FILE] [--since 30d] [--until TIME] [--store FILE] [--team T] [--format table|json|csv]",
		simulateAbout, stderr)
	fs.StringVar(&f.config, "config", "", "the configuration `FILE` to price the traffic in (required)")
	fs.StringVar(&f.profile, "profile", "", "its profile (default: the file's default_profile)")
	fs.StringVar(&f.tierMap, "tier-map", "", "a configuration `FILE` whose tiers and aliases replace those of --config; models keep --config's prices")
	fs.StringVar(&f.since, "since", "30d", "from this time (inclusive; \"\" for all time)")
	fs.StringVar(&f.until, "until", "", "to this time (exclusive; default now)")
	fs.StringVar(&f.store, "store", "", "the ledger's store `FILE` (default: --config's store.path)")
	fs.StringVar(&f.team, "team", "", "only this team's traffic (id or name)")
	fs.StringVar(&f.format, "format", "table", "table, json or csv")
	if _, err := parseFlagsOnly(fs, args); err != nil {
		return f, err
	}
	switch {
	case f.config == "":
		return f, errors.New("simulate: --config is required")
	case !slices.Contains([]string{"table", "json", "csv"}, f.format):
		return f, fmt.Errorf("simulate: --format must be table, json or csv, not %q", f.format)
	}
	return f, nil
}

// simulation is a simulation with what it was run on: the JSON output.
type simulation struct {
	Object  string     `json:"object"` // "simulation"
	Config  string     `json:"config"`
	TierMap string     `json:"tier_map,omitempty"`
	TeamID  string     `json:"team_id,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	Until   time.Time  `json:"until"`
	report.Result
	// Projection scales the re-priced totals to 30 days from the window
	// since–until (from the first record when there is no since).
	Projection report.Projection `json:"projection"`
}

// runSimulate runs "tollgate simulate".
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseSimulate(args, stderr)
	if err != nil {
		return err
	}
	cfg, prof, err := simulateConfig(f, stderr)
	if err != nil {
		return err
	}
	sim := simulation{Object: "simulation", Config: f.config, TierMap: f.tierMap}
	q, err := simulateWindow(f, time.Now(), &sim)
	if err != nil {
		return err
	}
	path := cmp.Or(f.store, cfg.Store.Path)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("simulate: store %s: %w", path, err)
	}
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	if f.team != "" {
		team, err := st.Team(ctx, f.team)
		if err != nil {
			return fmt.Errorf("simulate: team %q: %w", f.team, err)
		}
		q.TeamID, sim.TeamID = team.ID, team.ID
	}
	s, err := report.NewSimulator(cfg, prof)
	if err != nil {
		return err
	}
	err = st.Records(ctx, q, func(r meter.Record) error {
		s.Add(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	sim.Result = s.Result()
	from := q.Since
	if from.IsZero() {
		from = sim.First
	}
	if !from.IsZero() {
		sim.Projection = sim.Result.Project(q.Until.Sub(from))
	}
	switch f.format {
	case "json":
		return printJSON(stdout, sim)
	case "csv":
		return simulationCSV(stdout, sim)
	}
	return simulationTable(stdout, sim)
}

// simulateConfig loads --config (and --tier-map over it) and picks the
// profile.
func simulateConfig(f simulateFlags, stderr io.Writer) (*config.Config, *config.Profile, error) {
	cfg, err := loadForSimulation(f.config, stderr)
	if err != nil {
		return nil, nil, err
	}
	if f.tierMap != "" {
		tm, err := loadForSimulation(f.tierMap, stderr)
		if err != nil {
			return nil, nil, err
		}
		cfg = report.WithTiers(cfg, tm)
	}
	name := cmp.Or(f.profile, cfg.DefaultProfile)
	prof, ok := cfg.Profile(name)
	if !ok {
		return nil, nil, fmt.Errorf("simulate: profile %q does not exist; use dev, staging or production", name)
	}
	return cfg, prof, nil
}

// loadForSimulation loads a configuration file. A simulation calls no
// provider, so an environment reference that is not set (an API key on a
// laptop) reads as a placeholder instead of failing; each one is named
// on stderr.
func loadForSimulation(path string, stderr io.Writer) (*config.Config, error) {
	var unset []string
	lookup := func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		if !slices.Contains(unset, name) {
			unset = append(unset, name)
		}
		return "unset-in-simulate", true
	}
	cfg, problems, err := config.Load(path, lookup)
	for _, p := range problems {
		if p.Severity == config.Error {
			fmt.Fprintln(stderr, p)
		}
	}
	if len(unset) > 0 {
		fmt.Fprintf(stderr, "simulate: %s: not set, read as a placeholder: %s\n", path, strings.Join(unset, ", "))
	}
	return cfg, err
}

// simulateWindow reads --since and --until into a query and the header.
func simulateWindow(f simulateFlags, now time.Time, sim *simulation) (store.UsageQuery, error) {
	q := store.UsageQuery{Until: now.UTC()}
	if f.since != "" {
		t, err := admin.ParseTime(f.since, now)
		if err != nil {
			return q, fmt.Errorf("simulate: --since %q: %w", f.since, err)
		}
		q.Since = t.UTC()
		since := q.Since
		sim.Since = &since
	}
	if f.until != "" {
		t, err := admin.ParseTime(f.until, now)
		if err != nil {
			return q, fmt.Errorf("simulate: --until %q: %w", f.until, err)
		}
		q.Until = t.UTC()
	}
	if !q.Since.IsZero() && !q.Until.After(q.Since) {
		return q, errors.New("simulate: --until must be after --since")
	}
	sim.Until = q.Until
	return q, nil
}

// signedUSD writes a difference in dollars to six decimals, with its sign.
func signedUSD(n meter.Nanos) string {
	if n > 0 {
		return "+" + usd6(n)
	}
	return usd6(n)
}

// signedDollars writes a difference as -$0.108600 or +$1.000000.
func signedDollars(n meter.Nanos) string {
	switch {
	case n < 0:
		return "-$" + usd6(-n)
	case n > 0:
		return "+$" + usd6(n)
	}
	return "$" + usd6(0)
}

// pct writes a percentage with its sign, or "n/a" for none.
func pct(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f%%", *p)
}

func simulationTable(w io.Writer, sim simulation) error {
	fmt.Fprintln(w, simulationTitle(sim))
	r := sim.Result
	fmt.Fprintf(w, "%d records: %d re-priced, %d not re-priced (failed or without tokens, $%s), %d unmatched ($%s)\n",
		r.Records, r.Total.Requests, r.Skipped.Requests, usd6(r.Skipped.Actual), r.Unmatched.Requests, usd6(r.Unmatched.Actual))
	money := func(l report.Line) []string {
		return []string{fmt.Sprint(l.Requests), usd6(l.Actual), usd6(l.Simulated), signedUSD(l.Difference), pct(l.DifferencePct)}
	}
	moneyHead := "REQUESTS\tACTUAL USD\tSIMULATED USD\tDIFFERENCE USD\tDIFFERENCE %"

	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "TEAM\t"+moneyHead)
	for _, l := range r.Teams {
		fmt.Fprintln(tw, strings.Join(append([]string{dash(l.Team)}, money(l)...), "\t"))
	}
	fmt.Fprintln(tw, strings.Join(append([]string{"TOTAL"}, money(r.Total)...), "\t"))
	tw.Flush()

	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "MODEL\tSIMULATED MODEL\t"+moneyHead)
	for _, l := range r.Models {
		fmt.Fprintln(tw, strings.Join(append([]string{dash(l.Model), l.SimulatedModel}, money(l)...), "\t"))
	}
	fmt.Fprintln(tw, strings.Join(append([]string{"TOTAL", ""}, money(r.Total)...), "\t"))
	tw.Flush()

	if len(r.UnmatchedModels) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "UNMATCHED MODEL\tREQUESTS\tACTUAL USD\tREASON")
		for _, u := range r.UnmatchedModels {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", dash(u.RequestedModel), u.Requests, usd6(u.Actual), u.Reason)
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	p := sim.Projection
	if p.Period <= 0 {
		_, err := fmt.Fprintln(w, "No projection: the window is empty.")
		return err
	}
	_, err := fmt.Fprintf(w, "Projected to 30 days from %.1f days: actual $%s, simulated $%s, difference %s (%s)\n",
		p.Period.Hours()/24, usd6(p.Actual), usd6(p.Simulated), signedDollars(p.Difference),
		pct(report.Percent(p.Difference, p.Actual)))
	return err
}

func simulationTitle(sim simulation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Traffic re-priced in %s, profile %s", sim.Config, sim.Profile)
	if sim.TierMap != "" {
		fmt.Fprintf(&b, ", tiers from %s", sim.TierMap)
	}
	if sim.TeamID != "" {
		fmt.Fprintf(&b, ", team %s", sim.TeamID)
	}
	if sim.Since != nil {
		fmt.Fprintf(&b, ", since %s", stamp(*sim.Since))
	} else {
		b.WriteString(", since the beginning")
	}
	fmt.Fprintf(&b, " until %s", stamp(sim.Until))
	return b.String()
}

// simulationCSV writes one line per team, model, total, unmatched model and
// the projection, told apart by the first column, with exact nanos.
func simulationCSV(w io.Writer, sim simulation) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"section", "team", "model", "simulated_model", "requests", "actual_nanos", "simulated_nanos",
		"difference_nanos", "actual_usd", "simulated_usd", "difference_usd", "difference_pct", "reason"})
	line := func(section string, l report.Line) {
		p := ""
		if l.DifferencePct != nil {
			p = fmt.Sprintf("%.4f", *l.DifferencePct)
		}
		cw.Write([]string{section, l.Team, l.Model, l.SimulatedModel, fmt.Sprint(l.Requests),
			fmt.Sprint(int64(l.Actual)), fmt.Sprint(int64(l.Simulated)), fmt.Sprint(int64(l.Difference)),
			admin.FormatUSD(l.Actual), admin.FormatUSD(l.Simulated), admin.FormatUSD(l.Difference), p, ""})
	}
	r := sim.Result
	for _, l := range r.Teams {
		line("team", l)
	}
	for _, l := range r.Models {
		line("model", l)
	}
	line("total", r.Total)
	tally := func(section, model, reason string, t report.Tally) {
		cw.Write([]string{section, "", model, "", fmt.Sprint(t.Requests), fmt.Sprint(int64(t.Actual)), "", "",
			admin.FormatUSD(t.Actual), "", "", "", reason})
	}
	tally("skipped", "", "failed or without tokens", r.Skipped)
	for _, u := range r.UnmatchedModels {
		tally("unmatched", u.RequestedModel, u.Reason, u.Tally)
	}
	if p := sim.Projection; p.Period > 0 {
		line("projection_30d", report.Line{Actual: p.Actual, Simulated: p.Simulated, Difference: p.Difference,
			DifferencePct: report.Percent(p.Difference, p.Actual)})
	}
	cw.Flush()
	return cw.Error()
}
