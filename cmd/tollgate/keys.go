package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

const keysUsage = `Usage:
  tollgate keys create --team T --name N [--models a,b] [--tiers budget,standard]
                       [--criticality background] [--expires-in 720h | --expires-at TIME]
                       [--rpm N] [--tpm N] [--budget-usd 5 --period daily ...]
  tollgate keys list [--team T]
  tollgate keys show ID
  tollgate keys revoke ID
  tollgate keys rotate ID [--grace 24h]
  tollgate keys rotation-due [--team T]

Each command talks to a running gateway (--url or TOLLGATE_URL, with the master key in
TOLLGATE_MASTER_KEY or --admin-key) or, with the gateway stopped, to the store file
(--store tollgate.db). Run "tollgate keys COMMAND --help" for its flags.
`

// runKeys runs "tollgate keys …".
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(stdout, keysUsage)
		if len(args) == 0 {
			return errors.New("keys: give a command: create, list, show, revoke, rotate or rotation-due")
		}
		return flag.ErrHelp
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"create": keysCreate, "list": keysList, "show": keysShow, "revoke": keysRevoke,
		"rotate": keysRotate, "rotation-due": keysRotationDue,
	}
	if run, ok := cmds[args[0]]; ok {
		return run(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("keys: unknown command %q: use create, list, show, revoke, rotate or rotation-due", args[0])
}

func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		conn                                          adminFlags
		budget                                        budgetFlags
		team, name, models, tiers, crit, expIn, expAt string
		rpm, tpm                                      int
	)
	fs := newFlagSet("keys create", "tollgate keys create --team T --name N [flags]",
		"Creates a virtual key for a team and prints its secret, once.", stderr)
	conn.register(fs)
	budget.register(fs)
	fs.StringVar(&team, "team", "", "the team's id or name (required)")
	fs.StringVar(&name, "name", "", "the key's name, e.g. the application using it (required)")
	fs.StringVar(&models, "models", "", "comma-separated models the key may use (default: every model)")
	fs.StringVar(&tiers, "tiers", "", "comma-separated tiers the key may use: budget, standard, premium (default: every tier)")
	fs.StringVar(&crit, "criticality", "", "criticality of requests that send none: critical, standard or background")
	fs.StringVar(&expIn, "expires-in", "", "the key stops working after this `DURATION`, e.g. 720h or 30d")
	fs.StringVar(&expAt, "expires-at", "", "the key stops working at this RFC 3339 `TIME`")
	fs.IntVar(&rpm, "rpm", 0, "requests per minute for this key (0: unlimited)")
	fs.IntVar(&tpm, "tpm", 0, "tokens per minute for this key (0: unlimited)")
	set, err := parseFlagsOnly(fs, args)
	if err != nil {
		return err
	}
	if team == "" || name == "" {
		return errors.New("keys create: --team and --name are required")
	}
	req := admin.KeyRequest{Team: &team, Name: &name, Limits: limitsRequest(set, rpm, tpm)}
	if models != "" {
		req.AllowedModels = admin.Some(splitList(models))
	}
	if tiers != "" {
		req.AllowedTiers = admin.Some(splitList(tiers))
	}
	if crit != "" {
		req.DefaultCriticality = &crit
	}
	if expIn != "" {
		req.ExpiresIn = &expIn
	}
	if expAt != "" {
		req.ExpiresAt = admin.Some(expAt)
	}
	if req.Budget, err = budget.request(set); err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	c, done, err := conn.connect(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	var ks admin.KeySecret
	if err := c.Do(ctx, "POST", "/admin/keys", nil, req, &ks); err != nil {
		return err
	}
	if conn.json {
		return printJSON(stdout, ks)
	}
	fmt.Fprintf(stdout, "Created key %s (%s) in team %s.\n", ks.Key.Name, ks.Key.ID, team)
	printSecret(stdout, ks.Secret)
	return nil
}

// printSecret shows a new secret, and that it will not be shown again.
func printSecret(w io.Writer, secret string) {
	fmt.Fprintf(w, "\n    %s\n\n", secret)
	fmt.Fprintln(w, "This is the only time the secret is shown: store it now. It cannot be recovered;")
	fmt.Fprintln(w, "if it is lost, rotate the key.")
}

func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return listByTeam(ctx, args, stdout, stderr, "keys list", "Lists keys, of one team or of all.", "/admin/keys",
		func(c *admin.Client, list admin.List[admin.Key]) error {
			names := teamNames(ctx, c)
			tw := newTable(stdout)
			fmt.Fprintln(tw, "ID\tTEAM\tNAME\tSTATUS\tMODELS\tTIERS\tEXPIRES\tROTATED")
			for _, k := range list.Data {
				expires := "-"
				if k.ExpiresAt != nil {
					expires = stamp(*k.ExpiresAt)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, cmp.Or(names[k.TeamID], k.TeamID), k.Name, k.Status,
					listOrAll(k.AllowedModels), listOrAll(k.AllowedTiers), expires, stamp(k.RotatedAt))
			}
			return tw.Flush()
		})
}

// listByTeam runs a "[--team T]" list command: it parses the flags, GETs
// path (limited to one team when --team is given) and passes the list to
// show, unless --json asked for the API's own JSON.
func listByTeam[T any](ctx context.Context, args []string, stdout, stderr io.Writer, name, about, path string,
	show func(c *admin.Client, list admin.List[T]) error) error {
	var (
		conn adminFlags
		team string
	)
	fs := newFlagSet(name, "tollgate "+name+" [--team T] [flags]", about, stderr)
	conn.register(fs)
	fs.StringVar(&team, "team", "", "only this team's keys (id or name)")
	if _, err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	c, done, err := conn.connect(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	var q url.Values
	if team != "" {
		q = url.Values{"team": {team}}
	}
	var list admin.List[T]
	if err := c.Do(ctx, "GET", path, q, nil, &list); err != nil {
		return err
	}
	if conn.json {
		return printJSON(stdout, list)
	}
	return show(c, list)
}

// teamNames maps team ids to names for display; a caller that may not list
// teams (a team's key) gets an empty map and sees ids.
func teamNames(ctx context.Context, c *admin.Client) map[string]string {
	var list admin.List[admin.Team]
	names := map[string]string{}
	if c.Do(ctx, "GET", "/admin/teams", nil, nil, &list) == nil {
		for _, t := range list.Data {
			names[t.ID] = t.Name
		}
	}
	return names
}

func keysShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var conn adminFlags
	fs := newFlagSet("keys show", "tollgate keys show ID [flags]",
		"Shows a key's settings and its secrets by prefix (a rotated key has two during the grace).", stderr)
	conn.register(fs)
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	c, done, err := conn.connect(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	var k admin.Key
	if err := c.Do(ctx, "GET", "/admin/keys/"+url.PathEscape(id), nil, nil, &k); err != nil {
		return err
	}
	if conn.json {
		return printJSON(stdout, k)
	}
	printKey(stdout, k)
	return nil
}

func printKey(w io.Writer, k admin.Key) {
	tw := newTable(w)
	fmt.Fprintf(tw, "id\t%s\n", k.ID)
	fmt.Fprintf(tw, "team\t%s\n", k.TeamID)
	fmt.Fprintf(tw, "name\t%s\n", k.Name)
	fmt.Fprintf(tw, "status\t%s\n", k.Status)
	fmt.Fprintf(tw, "models\t%s\n", listOrAll(k.AllowedModels))
	fmt.Fprintf(tw, "tiers\t%s\n", listOrAll(k.AllowedTiers))
	fmt.Fprintf(tw, "criticality\t%s\n", dash(k.DefaultCriticality))
	fmt.Fprintf(tw, "limits\t%s\n", limitsLong(k.Limits))
	fmt.Fprintf(tw, "budget\t%s\n", budgetLong(k.Budget))
	fmt.Fprintf(tw, "created\t%s\n", stamp(k.CreatedAt))
	fmt.Fprintf(tw, "rotated\t%s\n", stamp(k.RotatedAt))
	if k.ExpiresAt != nil {
		fmt.Fprintf(tw, "expires\t%s\n", stamp(*k.ExpiresAt))
	}
	if k.RevokedAt != nil {
		fmt.Fprintf(tw, "revoked\t%s\n", stamp(*k.RevokedAt))
	}
	for _, c := range k.Credentials {
		until := "current"
		if c.NotAfter != nil {
			until = "works until " + stamp(*c.NotAfter)
		}
		fmt.Fprintf(tw, "secret\t%s issued %s, %s\n", c.Prefix, stamp(c.CreatedAt), until)
	}
	tw.Flush()
}

func keysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var conn adminFlags
	fs := newFlagSet("keys revoke", "tollgate keys revoke ID [flags]",
		"Revokes a key: every secret of it stops working at once. It cannot be undone.", stderr)
	conn.register(fs)
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	c, done, err := conn.connect(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	var k admin.Key
	if err := c.Do(ctx, "POST", "/admin/keys/"+url.PathEscape(id)+"/revoke", nil, nil, &k); err != nil {
		return err
	}
	if conn.json {
		return printJSON(stdout, k)
	}
	fmt.Fprintf(stdout, "Revoked key %s (%s) at %s.\n", k.Name, k.ID, stamp(*k.RevokedAt))
	return nil
}

func keysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		conn  adminFlags
		grace string
	)
	fs := newFlagSet("keys rotate", "tollgate keys rotate ID [--grace 24h] [flags]",
		"Issues a new secret for a key. The old one keeps working for the grace period, then stops;\n"+
			"the key id, its settings and its usage history stay.", stderr)
	conn.register(fs)
	fs.StringVar(&grace, "grace", "24h", "how long the old secret keeps working (0s: stop it now)")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	c, done, err := conn.connect(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	var ks admin.KeySecret
	if err := c.Do(ctx, "POST", "/admin/keys/"+url.PathEscape(id)+"/rotate", nil, admin.RotateRequest{Grace: &grace}, &ks); err != nil {
		return err
	}
	if conn.json {
		return printJSON(stdout, ks)
	}
	fmt.Fprintf(stdout, "Rotated key %s (%s).\n", ks.Key.Name, ks.Key.ID)
	printSecret(stdout, ks.Secret)
	for _, c := range ks.Key.Credentials {
		if c.NotAfter != nil && c.NotAfter.After(ks.Key.RotatedAt) {
			fmt.Fprintf(stdout, "The old secret %s keeps working until %s.\n", c.Prefix, stamp(*c.NotAfter))
		}
	}
	return nil
}

func keysRotationDue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return listByTeam(ctx, args, stdout, stderr, "keys rotation-due", "Lists keys near or past their team's maximum key age.",
		"/admin/keys/rotation-due", func(_ *admin.Client, list admin.List[tenant.RotationNotice]) error {
			tw := newTable(stdout)
			fmt.Fprintln(tw, "KEY\tTEAM\tNAME\tDUE\tSTATE")
			for _, n := range list.Data {
				state := "due soon"
				if n.Overdue {
					state = "OVERDUE: no longer works"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.KeyID, n.TeamID, n.Name, stamp(n.Due), state)
			}
			return tw.Flush()
		})
}

// parseID parses a command that takes exactly one id.
func parseID(fs *flag.FlagSet, args []string) (string, error) {
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("%s: give exactly one key ID", fs.Name())
	}
	return pos[0], nil
}

// parseFlagsOnly parses a command that takes no positional arguments and
// returns the names of the flags given.
func parseFlagsOnly(fs *flag.FlagSet, args []string) (map[string]bool, error) {
	pos, set, err := parseArgs(fs, args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("%s: unexpected argument %q", fs.Name(), pos[0])
	}
	return set, err
}

func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

func listOrAll(l []string) string {
	if len(l) == 0 {
		return "all"
	}
	return strings.Join(l, ",")
}
