package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tenant"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

var regexpKey = regexp.MustCompile(`key_[0-9a-f]{20}`)
var secretRE = regexp.MustCompile(`tg-[A-Za-z0-9_-]{43}`)

// authenticate opens the store file and reports the AuthError code of a
// secret ("" when it works), as a gateway starting on the file would.
func authenticate(t *testing.T, db, secret string) string {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = tenant.NewService(st, nil).Authenticate(ctx, secret)
	if ae, ok := err.(*tenant.AuthError); ok {
		return ae.Code
	}
	if err != nil {
		t.Fatal(err)
	}
	return ""
}

func TestKeysCLI(t *testing.T) {
	clearAdminEnv(t)
	db := filepath.Join(t.TempDir(), "tollgate.db")
	runCLI(t, runTeams, "create", "search", "--store", db)

	out := runCLI(t, runKeys, "create", "--store", db, "--team", "search", "--name", "indexer",
		"--models", "gpt-4o-mini, gpt-4o", "--tiers", "budget,standard", "--criticality", "background",
		"--expires-in", "720h", "--rpm", "5", "--budget-usd", "1.5", "--period", "daily")
	secret := secretRE.FindString(out)
	if secret == "" || !strings.Contains(out, "only time the secret is shown") {
		t.Fatalf("keys create printed no secret and warning:\n%s", out)
	}
	id := regexpKey.FindString(out)
	if code := authenticate(t, db, secret); code != "" {
		t.Fatalf("the printed secret does not authenticate: %s", code)
	}

	out = runCLI(t, runKeys, "list", "--store", db, "--team", "search")
	if !strings.Contains(out, id) || !strings.Contains(out, "search") || !strings.Contains(out, "active") ||
		!strings.Contains(out, "gpt-4o-mini,gpt-4o") || strings.Contains(out, secret) {
		t.Errorf("keys list:\n%s", out)
	}
	k := decodeJSON[admin.Key](t, runCLI(t, runKeys, "show", id, "--store", db, "--json"))
	if k.Name != "indexer" || k.DefaultCriticality != "background" || k.Limits.RPM != 5 || k.Budget == nil ||
		k.Budget.LimitNanos != 1_500_000_000 || k.Budget.Period != "daily" || k.ExpiresAt == nil || len(k.Credentials) != 1 {
		t.Errorf("keys show --json = %+v", k)
	}

	out = runCLI(t, runKeys, "rotate", id, "--grace", "1h", "--store", db)
	rotated := secretRE.FindString(out)
	if rotated == "" || rotated == secret || !strings.Contains(out, "keeps working until") {
		t.Fatalf("keys rotate:\n%s", out)
	}
	for _, s := range []string{secret, rotated} {
		if code := authenticate(t, db, s); code != "" {
			t.Errorf("within the grace a secret is refused: %s", code)
		}
	}
	if out := runCLI(t, runKeys, "show", id, "--store", db); strings.Count(out, "secret ") != 2 {
		t.Errorf("keys show after rotate lists not two secrets:\n%s", out)
	}

	out = runCLI(t, runKeys, "revoke", id, "--store", db)
	if !strings.Contains(out, "Revoked key indexer") {
		t.Errorf("keys revoke:\n%s", out)
	}
	if code := authenticate(t, db, rotated); code != "api_key_revoked" {
		t.Errorf("after revoke: %q, want api_key_revoked", code)
	}
	if out := runCLI(t, runKeys, "list", "--store", db); !strings.Contains(out, "revoked") {
		t.Errorf("keys list after revoke:\n%s", out)
	}
	runCLI(t, runKeys, "rotation-due", "--store", db)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--store", db, "--name", "x"}, "--team and --name"},
		{[]string{"create", "--store", db, "--team", "nope", "--name", "x"}, "team_not_found"},
		{[]string{"create", "--store", db, "--team", "search", "--name", "x", "--tiers", "gold"}, "allowed_tiers"},
		{[]string{"rotate", id, "--store", db}, "key_revoked"},
		{[]string{"show", "key_nope", "--store", db}, "key_not_found"},
		{[]string{"show", "--store", db}, "exactly one key ID"},
		{[]string{"list", "extra", "--store", db}, "unexpected argument"},
	} {
		if _, _, err := tryCLI(runKeys, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("keys %v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

// TestAdminCLIRemote drives the commands over HTTP against a gateway-like
// server: the master key from the environment, and a team's key that may
// only read.
func TestAdminCLIRemote(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "tollgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := tenant.NewService(st, nil)
	h := admin.New(svc, st, st, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		a := admin.Actor{Master: true}
		if secret != "sk-master" {
			p, err := svc.Authenticate(r.Context(), secret)
			if err != nil {
				wire.WriteError(w, &wire.Error{Status: 401, Type: "authentication_error", Code: "invalid_api_key", Message: "invalid API key"})
				return
			}
			a = admin.Actor{TeamID: p.Team.ID, KeyID: p.Key.ID}
		}
		if err := h.ServeAdmin(w, r, a); err != nil {
			wire.WriteError(w, err)
		}
	}))
	defer srv.Close()
	t.Setenv("TOLLGATE_URL", srv.URL)
	t.Setenv("TOLLGATE_MASTER_KEY", "sk-master")

	runCLI(t, runTeams, "create", "search")
	runCLI(t, runTeams, "create", "ads")
	secret := secretRE.FindString(runCLI(t, runKeys, "create", "--team", "search", "--name", "app"))
	runCLI(t, runKeys, "create", "--team", "ads", "--name", "other")
	if out := runCLI(t, runKeys, "list"); strings.Count(out, "key_") != 2 {
		t.Errorf("master lists:\n%s", out)
	}
	if out := runCLI(t, runKeys, "list", "--admin-key", secret); strings.Count(out, "key_") != 1 || !strings.Contains(out, "app") {
		t.Errorf("team key lists:\n%s", out)
	}
	if _, _, err := tryCLI(runTeams, "create", "mine", "--admin-key", secret); err == nil || !strings.Contains(err.Error(), "permission_denied") {
		t.Errorf("team key creating a team: %v, want permission_denied", err)
	}
	if _, _, err := tryCLI(runKeys, "list", "--team", "ads", "--admin-key", secret); err == nil || !strings.Contains(err.Error(), "team_not_found") {
		t.Errorf("team key listing another team: %v, want team_not_found", err)
	}
	if _, _, err := tryCLI(runTeams, "list", "--admin-key", "tg-wrong"); err == nil || !strings.Contains(err.Error(), "invalid_api_key") {
		t.Errorf("wrong key: %v", err)
	}
}
