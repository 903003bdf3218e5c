package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/store"
)

type usageFlags struct {
	conn                        adminFlags
	team, key, since, until, by string
	format                      string
}

// runUsage runs "tollgate usage": a report of the usage ledger.
func runUsage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f usageFlags
	fs := newFlagSet("usage",
		"tollgate usage [--team T] [--key K] [--since 30d] [--until TIME] [--by model,day] [--format table|json|csv] [flags]",
		"Reports requests, errors, fallbacks, tokens, cost, latency (average and nearest-rank p50, p95) and the\n"+
			"fallback rate from the usage ledger, grouped by any combination of dimensions, in the order given.\n"+
			"Times are RFC 3339, a date (2026-01-02, UTC) or a duration before now (30d, 24h).", stderr)
	f.conn.register(fs)
	fs.StringVar(&f.team, "team", "", "only this team (id or name)")
	fs.StringVar(&f.key, "key", "", "only this key (id)")
	fs.StringVar(&f.since, "since", "30d", "from this time (inclusive; \"\" for all time)")
	fs.StringVar(&f.until, "until", "", "to this time (exclusive; default now)")
	fs.StringVar(&f.by, "by", "", "group by any of these, comma-separated, in order: team, key, model, tier, provider, day")
	fs.StringVar(&f.format, "format", "table", "table, json or csv (csv has no totals row)")
	if _, err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	switch f.format {
	case "table", "json", "csv":
	default:
		return fmt.Errorf("usage: --format must be table, json or csv, not %q", f.format)
	}
	if f.conn.json {
		f.format = "json"
	}
	c, done, err := f.conn.connect(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	q := url.Values{}
	for name, v := range map[string]string{"team": f.team, "key": f.key, "since": f.since, "until": f.until, "by": f.by} {
		if v != "" {
			q[name] = []string{v}
		}
	}
	var rep admin.UsageReport
	if err := c.Do(ctx, "GET", "/admin/usage", q, nil, &rep); err != nil {
		return err
	}
	switch f.format {
	case "json":
		return printJSON(stdout, rep)
	case "csv":
		return usageCSV(stdout, rep)
	}
	return usageTable(stdout, rep)
}

// usageColumns are the measures every row has, after its group columns.
var usageColumns = []string{"requests", "errors", "fallbacks", "prompt_tokens", "completion_tokens", "cached_tokens"}

func measures(r store.UsageRow) []string {
	return []string{fmt.Sprint(r.Requests), fmt.Sprint(r.Errors), fmt.Sprint(r.Fallbacks),
		fmt.Sprint(r.PromptTokens), fmt.Sprint(r.CompletionTokens), fmt.Sprint(r.CachedTokens)}
}

func usageTable(w io.Writer, rep admin.UsageReport) error {
	fmt.Fprintln(w, usageTitle(rep))
	fmt.Fprintln(w)
	tw := newTable(w)
	head := make([]string, 0, len(rep.By)+len(usageColumns)+2)
	for _, d := range rep.By {
		head = append(head, strings.ToUpper(d))
	}
	for _, c := range usageColumns {
		head = append(head, strings.ToUpper(strings.ReplaceAll(c, "_", " ")))
	}
	head = append(head, "COST USD", "AVG LATENCY MS", "P50 LATENCY MS", "P95 LATENCY MS", "FALLBACK %")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	row := func(group []string, r store.UsageRow) {
		cells := append(group, measures(r)...)
		cells = append(cells, usd6(r.Cost), fmt.Sprintf("%.1f", r.AvgLatencyMS), fmt.Sprintf("%.1f", r.P50LatencyMS),
			fmt.Sprintf("%.1f", r.P95LatencyMS), fmt.Sprintf("%.1f", 100*r.FallbackRate))
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if len(rep.By) > 0 {
		for _, r := range rep.Rows {
			group := make([]string, len(rep.By))
			for i, d := range rep.By {
				group[i] = dash(r.Group[d])
			}
			row(group, r)
		}
	}
	// Without grouping the table is the one total row, and needs no label.
	total := make([]string, len(rep.By))
	if len(total) > 0 {
		total[0] = "TOTAL"
	}
	row(total, rep.Totals)
	return tw.Flush()
}

func usageTitle(rep admin.UsageReport) string {
	var b strings.Builder
	b.WriteString("Usage")
	if rep.TeamID != "" {
		fmt.Fprintf(&b, " of team %s", rep.TeamID)
	}
	if rep.KeyID != "" {
		fmt.Fprintf(&b, " of key %s", rep.KeyID)
	}
	if rep.Since != nil {
		fmt.Fprintf(&b, " since %s", stamp(*rep.Since))
	} else {
		b.WriteString(" since the beginning")
	}
	if rep.Until != nil {
		fmt.Fprintf(&b, " until %s", stamp(*rep.Until))
	}
	if len(rep.By) > 0 {
		fmt.Fprintf(&b, ", by %s", strings.Join(rep.By, ", "))
	}
	return b.String()
}

// usd6 writes nanos as dollars rounded to six decimals, in integers.
func usd6(n meter.Nanos) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	micros := (int64(n) + 500) / 1000
	return fmt.Sprintf("%s%d.%06d", sign, micros/1_000_000, micros%1_000_000)
}

// usageCSV writes one line per row, exact cost included; no totals line, so
// the file sums cleanly in a spreadsheet.
func usageCSV(w io.Writer, rep admin.UsageReport) error {
	cw := csv.NewWriter(w)
	head := append(append([]string{}, rep.By...), usageColumns...)
	cw.Write(append(head, "cost_nanos", "cost_usd", "avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "fallback_rate"))
	rows := rep.Rows
	if len(rep.By) == 0 {
		rows = []store.UsageRow{rep.Totals}
	}
	for _, r := range rows {
		rec := make([]string, 0, len(head)+6)
		for _, d := range rep.By {
			rec = append(rec, r.Group[d])
		}
		rec = append(rec, measures(r)...)
		rec = append(rec, fmt.Sprint(int64(r.Cost)), admin.FormatUSD(r.Cost), fmt.Sprintf("%.3f", r.AvgLatencyMS),
			fmt.Sprintf("%.3f", r.P50LatencyMS), fmt.Sprintf("%.3f", r.P95LatencyMS), fmt.Sprintf("%.6f", r.FallbackRate))
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}
