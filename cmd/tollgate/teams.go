package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

const teamsUsage = `Usage:
  tollgate teams create NAME [--budget-usd 50 --period monthly --soft 80 --downgrade 80]
                             [--rpm N] [--tpm N] [--max-key-age 2160h --rotation-warning 168h]
                             [--metadata k=v ...]
  tollgate teams list
  tollgate teams show ID-OR-NAME

Each command talks to a running gateway (--url or TOLLGATE_URL, with the master key in
TOLLGATE_MASTER_KEY or --admin-key) or, with the gateway stopped, to the store file
(--store tollgate.db). Run "tollgate teams COMMAND --help" for its flags.
`

// runTeams runs "tollgate teams …".
func runTeams(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(stdout, teamsUsage)
		if len(args) == 0 {
			return errors.New("teams: give a command: create, list or show")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "create":
		return teamsCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return teamsList(ctx, args[1:], stdout, stderr)
	case "show":
		return teamsShow(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, teamsUsage)
	return fmt.Errorf("teams: unknown command %q: use create, list or show", args[0])
}

// budgetFlags are the budget settings teams and keys share.
type budgetFlags struct {
	usd, period     string
	soft, downgrade int
}

func (b *budgetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.usd, "budget-usd", "", "a hard budget in `USD` (exact decimal, e.g. 50 or 12.75)")
	fs.StringVar(&b.period, "period", tenant.PeriodMonthly, "budget period: daily, weekly, monthly or none (all time)")
	fs.IntVar(&b.soft, "soft", 0, "alert when spend passes this `PERCENT` of the budget (0: off)")
	fs.IntVar(&b.downgrade, "downgrade", 0, "past this `PERCENT`, move requests one tier cheaper instead of failing (0: off)")
}

// request returns the budget to send, or an absent one when --budget-usd is
// not given (then the other budget flags must not be either).
func (b *budgetFlags) request(set map[string]bool) (admin.Optional[admin.BudgetRequest], error) {
	if b.usd == "" {
		for _, name := range []string{"period", "soft", "downgrade"} {
			if set[name] {
				return admin.Optional[admin.BudgetRequest]{}, fmt.Errorf("--%s needs --budget-usd", name)
			}
		}
		return admin.Optional[admin.BudgetRequest]{}, nil
	}
	usd := admin.Decimal(b.usd)
	return admin.Some(admin.BudgetRequest{LimitUSD: &usd, Period: &b.period, SoftPercent: &b.soft, DowngradePercent: &b.downgrade}), nil
}

// limitsRequest returns the rate limits given on the command line, or nil.
func limitsRequest(set map[string]bool, rpm, tpm int) *admin.LimitsRequest {
	if !set["rpm"] && !set["tpm"] {
		return nil
	}
	l := &admin.LimitsRequest{}
	if set["rpm"] {
		l.RPM = &rpm
	}
	if set["tpm"] {
		l.TPM = &tpm
	}
	return l
}

func teamsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		conn               adminFlags
		budget             budgetFlags
		rpm, tpm           int
		maxKeyAge, warning string
		metadata           = map[string]string{}
	)
	fs := newFlagSet("teams create", "tollgate teams create NAME [flags]",
		"Creates a team: the unit budgets, rate limits and usage reports are kept for.", stderr)
	conn.register(fs)
	budget.register(fs)
	fs.IntVar(&rpm, "rpm", 0, "requests per minute for the whole team (0: unlimited)")
	fs.IntVar(&tpm, "tpm", 0, "tokens per minute for the whole team (0: unlimited)")
	fs.StringVar(&maxKeyAge, "max-key-age", "", "keys older than this `DURATION` stop working until rotated (e.g. 2160h or 90d)")
	fs.StringVar(&warning, "rotation-warning", "", "report keys this `DURATION` before they reach --max-key-age (e.g. 168h)")
	fs.Func("metadata", "a `KEY=VALUE` label, repeatable", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return errors.New("want KEY=VALUE")
		}
		metadata[k] = v
		return nil
	})
	pos, set, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("teams create: give exactly one team NAME")
	}
	req := admin.TeamRequest{Name: &pos[0], Limits: limitsRequest(set, rpm, tpm)}
	if req.Budget, err = budget.request(set); err != nil {
		return fmt.Errorf("teams create: %w", err)
	}
	if set["max-key-age"] {
		req.MaxKeyAge = &maxKeyAge
	}
	if set["rotation-warning"] {
		req.RotationWarning = &warning
	}
	if len(metadata) > 0 {
		req.Metadata = admin.Some(metadata)
	}
	c, done, err := conn.connect(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	var t admin.Team
	if err := c.Do(ctx, "POST", "/admin/teams", nil, req, &t); err != nil {
		return err
	}
	if conn.json {
		return printJSON(stdout, t)
	}
	fmt.Fprintf(stdout, "Created team %s (%s).\n\n", t.Name, t.ID)
	printTeam(stdout, t)
	return nil
}

func teamsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var conn adminFlags
	fs := newFlagSet("teams list", "tollgate teams list [flags]", "Lists every team.", stderr)
	conn.register(fs)
	if _, err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	c, done, err := conn.connect(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	var list admin.List[admin.Team]
	if err := c.Do(ctx, "GET", "/admin/teams", nil, nil, &list); err != nil {
		return err
	}
	if conn.json {
		return printJSON(stdout, list)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tNAME\tBUDGET\tRPM\tTPM\tMAX KEY AGE\tCREATED")
	for _, t := range list.Data {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, budgetShort(t.Budget),
			orDash(t.Limits.RPM), orDash(t.Limits.TPM), dash(t.MaxKeyAge), day(t.CreatedAt))
	}
	return tw.Flush()
}

func teamsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var conn adminFlags
	fs := newFlagSet("teams show", "tollgate teams show ID-OR-NAME [flags]", "Shows a team's settings.", stderr)
	conn.register(fs)
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("teams show: give exactly one team ID or NAME")
	}
	c, done, err := conn.connect(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	var t admin.Team
	if err := c.Do(ctx, "GET", "/admin/teams/"+url.PathEscape(pos[0]), nil, nil, &t); err != nil {
		return err
	}
	if conn.json {
		return printJSON(stdout, t)
	}
	printTeam(stdout, t)
	return nil
}

func printTeam(w io.Writer, t admin.Team) {
	tw := newTable(w)
	fmt.Fprintf(tw, "id\t%s\n", t.ID)
	fmt.Fprintf(tw, "name\t%s\n", t.Name)
	fmt.Fprintf(tw, "created\t%s\n", stamp(t.CreatedAt))
	fmt.Fprintf(tw, "limits\t%s\n", limitsLong(t.Limits))
	fmt.Fprintf(tw, "budget\t%s\n", budgetLong(t.Budget))
	age := "none"
	if t.MaxKeyAge != "" {
		age = t.MaxKeyAge
		if t.RotationWarning != "" {
			age += ", reported " + t.RotationWarning + " before"
		}
	}
	fmt.Fprintf(tw, "max key age\t%s\n", age)
	for _, pk := range t.ProviderKeys {
		tier := "every tier"
		if pk.Tier != "" {
			tier = pk.Tier + " tier"
		}
		fmt.Fprintf(tw, "provider key\t%s (%s) from $%s\n", pk.Provider, tier, pk.Env)
	}
	keys := make([]string, 0, len(t.Metadata))
	for k := range t.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "metadata\t%s=%s\n", k, t.Metadata[k])
	}
	tw.Flush()
}

func limitsLong(l tenant.Limits) string {
	if l.RPM == 0 && l.TPM == 0 {
		return "none"
	}
	return fmt.Sprintf("%s requests/min, %s tokens/min", orUnlimited(l.RPM), orUnlimited(l.TPM))
}

func budgetShort(b *admin.Budget) string {
	if b == nil {
		return "-"
	}
	return fmt.Sprintf("$%s %s", b.LimitUSD, b.Period)
}

func budgetLong(b *admin.Budget) string {
	if b == nil {
		return "none"
	}
	s := budgetShort(b)
	if b.SoftPercent > 0 {
		s += fmt.Sprintf(", alert at %d%%", b.SoftPercent)
	}
	if b.DowngradePercent > 0 {
		s += fmt.Sprintf(", downgrade at %d%%", b.DowngradePercent)
	}
	return s
}
