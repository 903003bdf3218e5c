package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	team := call[admin.Team](t, e, masterKey, "POST", "/admin/teams", `{"name": "search"}`, 201)
	created := call[admin.KeySecret](t, e, masterKey, "POST", "/admin/keys", `{
		"team": "search", "name": "indexer",
		"allowed_models": ["gpt-4o-mini"], "allowed_tiers": ["budget", "standard"],
		"default_criticality": "background", "expires_in": "30d",
		"limits": {"rpm": 10}, "budget": {"limit_usd": 5, "period": "daily"}
	}`, 201)
	now := e.clock.now()
	expires := now.Add(30 * 24 * time.Hour)
	want := admin.Key{
		ID: created.Key.ID, TeamID: team.ID, Name: "indexer", Status: "active",
		AllowedModels: []string{"gpt-4o-mini"}, AllowedTiers: []string{"budget", "standard"},
		DefaultCriticality: "background", ExpiresAt: &expires, CreatedAt: now, RotatedAt: now,
		Limits:      tenant.Limits{RPM: 10},
		Budget:      &admin.Budget{LimitUSD: "5.00", LimitNanos: 5_000_000_000, Period: "daily"},
		Credentials: []admin.Credential{{Prefix: tenant.Prefix(created.Secret), CreatedAt: now}},
	}
	if diff := cmp.Diff(created.Key, want); diff != "" {
		t.Errorf("POST /admin/keys key (-got +want):\n%s", diff)
	}
	if !tenant.LooksLikeKey(created.Secret) {
		t.Fatalf("secret %q does not look like a key", created.Secret)
	}
	if code := e.authCode(t, created.Secret); code != "" {
		t.Fatalf("the new secret does not authenticate: %s", code)
	}

	// Show: credentials by prefix; never a hash, never the secret.
	status, raw := e.do(t, masterKey, "GET", "/admin/keys/"+created.Key.ID, nil)
	if status != 200 {
		t.Fatalf("GET key: %d %s", status, raw)
	}
	for _, leak := range []string{"hash", created.Secret, strings.TrimPrefix(created.Secret, "tg-")[10:]} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("GET /admin/keys/{id} shows %q: %s", leak, raw)
		}
	}
	list := call[admin.List[admin.Key]](t, e, masterKey, "GET", "/admin/keys?team=search", nil, 200)
	if len(list.Data) != 1 || list.Data[0].ID != created.Key.ID || list.Data[0].Credentials != nil {
		t.Errorf("GET /admin/keys?team=search = %+v, want the one key without credentials", list.Data)
	}

	// Patch: lists and criticality clear, expiry goes away with null.
	patched := call[admin.Key](t, e, masterKey, "PATCH", "/admin/keys/"+created.Key.ID,
		`{"name": "indexer-2", "allowed_models": null, "allowed_tiers": [], "default_criticality": "", "expires_at": null, "limits": {"tpm": 500}, "budget": null}`, 200)
	want.Name, want.AllowedModels, want.AllowedTiers, want.DefaultCriticality, want.ExpiresAt = "indexer-2", nil, nil, "", nil
	want.Limits, want.Budget = tenant.Limits{RPM: 10, TPM: 500}, nil
	if diff := cmp.Diff(patched, want); diff != "" {
		t.Errorf("PATCH (-got +want):\n%s", diff)
	}
	wantError(t, e, masterKey, "PATCH", "/admin/keys/"+created.Key.ID, `{"team": "other"}`, 400, "invalid_value", "team")

	// Rotate: both secrets work until the grace ends, then only the new one.
	e.clock.advance(time.Hour)
	rotated := call[admin.KeySecret](t, e, masterKey, "POST", "/admin/keys/"+created.Key.ID+"/rotate", `{"grace": "2h"}`, 200)
	if rotated.Secret == created.Secret || rotated.Key.ID != created.Key.ID {
		t.Fatalf("rotate gave secret %q for key %q", rotated.Secret, rotated.Key.ID)
	}
	graceEnd := e.clock.now().Add(2 * time.Hour)
	creds := rotated.Key.Credentials
	if len(creds) != 2 || creds[0].Prefix != tenant.Prefix(rotated.Secret) || creds[0].NotAfter != nil ||
		creds[1].NotAfter == nil || !creds[1].NotAfter.Equal(graceEnd) {
		t.Errorf("credentials after rotate = %+v, want the new one first and the old one ending at %s", creds, graceEnd)
	}
	if !rotated.Key.RotatedAt.Equal(e.clock.now()) {
		t.Errorf("rotated_at %s, want %s", rotated.Key.RotatedAt, e.clock.now())
	}
	for _, s := range []string{created.Secret, rotated.Secret} {
		if code := e.authCode(t, s); code != "" {
			t.Errorf("within the grace, %s… is refused: %s", s[:8], code)
		}
	}
	e.clock.advance(2*time.Hour + time.Second)
	if code := e.authCode(t, created.Secret); code != "api_key_rotated" {
		t.Errorf("after the grace, the old secret gives %q, want api_key_rotated", code)
	}
	if code := e.authCode(t, rotated.Secret); code != "" {
		t.Errorf("after the grace, the new secret is refused: %s", code)
	}

	// Revoke: every secret stops at once; a revoked key does not rotate.
	revoked := call[admin.Key](t, e, masterKey, "POST", "/admin/keys/"+created.Key.ID+"/revoke", nil, 200)
	if revoked.Status != "revoked" || revoked.RevokedAt == nil {
		t.Errorf("after revoke: status %q, revoked_at %v", revoked.Status, revoked.RevokedAt)
	}
	if code := e.authCode(t, rotated.Secret); code != "api_key_revoked" {
		t.Errorf("revoked key's secret gives %q, want api_key_revoked", code)
	}
	again := call[admin.Key](t, e, masterKey, "POST", "/admin/keys/"+created.Key.ID+"/revoke", `{}`, 200)
	if !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Errorf("revoking twice moved revoked_at from %s to %s", revoked.RevokedAt, again.RevokedAt)
	}
	wantError(t, e, masterKey, "POST", "/admin/keys/"+created.Key.ID+"/rotate", nil, 409, "key_revoked", "")
	wantError(t, e, masterKey, "POST", "/admin/keys/key_nope/revoke", nil, 404, "key_not_found", "")
	wantError(t, e, masterKey, "POST", "/admin/keys/key_nope/rotate", nil, 404, "key_not_found", "")
	wantError(t, e, masterKey, "GET", "/admin/keys/key_nope", nil, 404, "key_not_found", "")
}

func TestRotateDefaultGrace(t *testing.T) {
	e := newEnv(t)
	_, key, secret := e.seedTeam(t, "search")
	call[admin.KeySecret](t, e, masterKey, "POST", "/admin/keys/"+key.ID+"/rotate", nil, 200)
	e.clock.advance(24*time.Hour - time.Second)
	if code := e.authCode(t, secret); code != "" {
		t.Errorf("old secret refused within the default day of grace: %s", code)
	}
	e.clock.advance(time.Second)
	if code := e.authCode(t, secret); code != "api_key_rotated" {
		t.Errorf("old secret after a day: %q, want api_key_rotated", code)
	}
}

func TestKeyValidation(t *testing.T) {
	e := newEnv(t)
	call[admin.Team](t, e, masterKey, "POST", "/admin/teams", `{"name": "search"}`, 201)
	for _, c := range []struct {
		name, body  string
		status      int
		code, param string
	}{
		{"no team", `{"name": "a"}`, 400, "missing_required_parameter", "team"},
		{"no name", `{"team": "search"}`, 400, "missing_required_parameter", "name"},
		{"unknown team", `{"team": "nope", "name": "a"}`, 404, "team_not_found", "team"},
		{"bad tier", `{"team": "search", "name": "a", "allowed_tiers": ["gold"]}`, 400, "invalid_value", "allowed_tiers"},
		{"tiers not a list", `{"team": "search", "name": "a", "allowed_tiers": "budget"}`, 400, "invalid_value", "allowed_tiers"},
		{"empty model", `{"team": "search", "name": "a", "allowed_models": [""]}`, 400, "invalid_value", "allowed_models"},
		{"bad criticality", `{"team": "search", "name": "a", "default_criticality": "urgent"}`, 400, "invalid_value", "default_criticality"},
		{"both expiries", `{"team": "search", "name": "a", "expires_at": "2030-01-01T00:00:00Z", "expires_in": "1h"}`, 400, "invalid_value", "expires_in"},
		{"past expiry", `{"team": "search", "name": "a", "expires_at": "2020-01-01T00:00:00Z"}`, 400, "invalid_value", "expires_at"},
		{"bad expiry", `{"team": "search", "name": "a", "expires_at": "tomorrow"}`, 400, "invalid_value", "expires_at"},
		{"zero expires_in", `{"team": "search", "name": "a", "expires_in": "0s"}`, 400, "invalid_value", "expires_in"},
		{"key budget period", `{"team": "search", "name": "a", "budget": {"limit_usd": "1", "period": "yearly"}}`, 400, "invalid_value", "budget.period"},
		{"unknown field", `{"team": "search", "name": "a", "models": ["x"]}`, 400, "unknown_parameter", "models"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e, masterKey, "POST", "/admin/keys", c.body, c.status, c.code, c.param)
		})
	}
	_, key, _ := e.seedTeam(t, "ads")
	wantError(t, e, masterKey, "POST", "/admin/keys/"+key.ID+"/rotate", `{"grace": "soon"}`, 400, "invalid_value", "grace")
	wantError(t, e, masterKey, "POST", "/admin/keys/"+key.ID+"/rotate", `{"grace": "-1h"}`, 400, "invalid_value", "grace")
	wantError(t, e, masterKey, "POST", "/admin/keys/"+key.ID+"/revoke", `{"now": true}`, 400, "unknown_parameter", "now")
	wantError(t, e, masterKey, "GET", "/admin/keys?tem=ads", nil, 400, "unknown_parameter", "tem")
	wantError(t, e, masterKey, "GET", "/admin/keys?team=nope", nil, 404, "team_not_found", "team")
}

func TestRotationDue(t *testing.T) {
	e := newEnv(t)
	call[admin.Team](t, e, masterKey, "POST", "/admin/teams", `{"name": "search", "max_key_age": "30d", "rotation_warning": "7d"}`, 201)
	ks := call[admin.KeySecret](t, e, masterKey, "POST", "/admin/keys", `{"team": "search", "name": "app"}`, 201)
	_, _, other := e.seedTeam(t, "ads") // no policy: never due

	due := call[admin.List[tenant.RotationNotice]](t, e, masterKey, "GET", "/admin/keys/rotation-due", nil, 200)
	if len(due.Data) != 0 {
		t.Errorf("fresh key is due: %+v", due.Data)
	}
	e.clock.advance(24 * 24 * time.Hour)
	due = call[admin.List[tenant.RotationNotice]](t, e, masterKey, "GET", "/admin/keys/rotation-due?team=search", nil, 200)
	if len(due.Data) != 1 || due.Data[0].KeyID != ks.Key.ID || due.Data[0].Overdue {
		t.Errorf("6 days before max age: %+v, want one notice, not overdue", due.Data)
	}
	// The team's own key sees its notices, not other teams'.
	mine := call[admin.List[tenant.RotationNotice]](t, e, ks.Secret, "GET", "/admin/keys/rotation-due", nil, 200)
	if len(mine.Data) != 1 {
		t.Errorf("team key sees %+v", mine.Data)
	}
	if theirs := call[admin.List[tenant.RotationNotice]](t, e, other, "GET", "/admin/keys/rotation-due", nil, 200); len(theirs.Data) != 0 {
		t.Errorf("another team's key sees %+v", theirs.Data)
	}
	e.clock.advance(7 * 24 * time.Hour)
	due = call[admin.List[tenant.RotationNotice]](t, e, masterKey, "GET", "/admin/keys/rotation-due", nil, 200)
	if len(due.Data) != 1 || !due.Data[0].Overdue {
		t.Errorf("past max age: %+v, want overdue", due.Data)
	}
	if k := call[admin.Key](t, e, masterKey, "GET", "/admin/keys/"+ks.Key.ID, nil, 200); k.Status != "too_old" {
		t.Errorf("status past max age = %q, want too_old", k.Status)
	}
}

// TestTeamActor: a team's key reads its own team's keys and notices, and
// nothing else; another team's things are not found rather than forbidden.
func TestTeamActor(t *testing.T) {
	e := newEnv(t)
	search, searchKey, searchSecret := e.seedTeam(t, "search")
	_, adsKey, _ := e.seedTeam(t, "ads")

	list := call[admin.List[admin.Key]](t, e, searchSecret, "GET", "/admin/keys", nil, 200)
	if len(list.Data) != 1 || list.Data[0].ID != searchKey.ID {
		t.Errorf("team key lists %+v, want only its team's key", list.Data)
	}
	call[admin.List[admin.Key]](t, e, searchSecret, "GET", "/admin/keys?team="+search.ID, nil, 200)
	call[admin.Key](t, e, searchSecret, "GET", "/admin/keys/"+searchKey.ID, nil, 200)

	wantError(t, e, searchSecret, "GET", "/admin/keys?team=ads", nil, 404, "team_not_found", "team")
	wantError(t, e, searchSecret, "GET", "/admin/keys?team=nope", nil, 404, "team_not_found", "team")
	wantError(t, e, searchSecret, "GET", "/admin/keys/"+adsKey.ID, nil, 404, "key_not_found", "key")
	wantError(t, e, searchSecret, "GET", "/admin/keys/rotation-due?team=ads", nil, 404, "team_not_found", "team")

	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/teams", `{"name": "mine"}`},
		{"GET", "/admin/teams", ""},
		{"GET", "/admin/teams/search", ""},
		{"PATCH", "/admin/teams/search", `{"limits": {"rpm": 0}}`},
		{"POST", "/admin/keys", `{"team": "search", "name": "more"}`},
		{"PATCH", "/admin/keys/" + searchKey.ID, `{"name": "x"}`},
		{"POST", "/admin/keys/" + searchKey.ID + "/rotate", ""},
		{"POST", "/admin/keys/" + searchKey.ID + "/revoke", ""},
		{"POST", "/admin/keys/" + adsKey.ID + "/revoke", ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		wantError(t, e, searchSecret, c.method, c.path, body, 403, "permission_denied", "")
	}
	if code := e.authCode(t, searchSecret); code != "" {
		t.Errorf("the team key's own calls changed it: %s", code)
	}
	// Unknown paths are still 404 for a team key, not 403.
	wantError(t, e, searchSecret, "GET", "/admin/secrets", nil, 404, "unknown_endpoint", "")
}
