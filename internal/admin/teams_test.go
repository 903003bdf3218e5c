package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

func TestTeamLifecycle(t *testing.T) {
	e := newEnv(t)
	created := call[admin.Team](t, e, masterKey, "POST", "/admin/teams", `{
		"name": "search",
		"metadata": {"owner": "ana"},
		"max_key_age": "90d",
		"rotation_warning": "168h",
		"limits": {"rpm": 600, "tpm": 100000},
		"budget": {"limit_usd": "50.10", "period": "monthly", "soft_percent": 80, "downgrade_percent": 90},
		"provider_keys": [{"provider": "openai", "tier": "premium", "env": "SEARCH_OPENAI_KEY"}]
	}`, 201)
	want := admin.Team{
		ID: created.ID, Name: "search", Metadata: map[string]string{"owner": "ana"}, CreatedAt: e.clock.now(),
		MaxKeyAge: "2160h", RotationWarning: "168h", Limits: tenant.Limits{RPM: 600, TPM: 100000},
		Budget:       &admin.Budget{LimitUSD: "50.10", LimitNanos: 50_100_000_000, Period: "monthly", SoftPercent: 80, DowngradePercent: 90},
		ProviderKeys: []tenant.ProviderKey{{Provider: "openai", Tier: "premium", Env: "SEARCH_OPENAI_KEY"}},
	}
	if !strings.HasPrefix(created.ID, "team_") {
		t.Errorf("id %q, want team_…", created.ID)
	}
	if diff := cmp.Diff(created, want); diff != "" {
		t.Errorf("POST /admin/teams (-got +want):\n%s", diff)
	}

	wantError(t, e, masterKey, "POST", "/admin/teams", `{"name": "search"}`, 409, "team_exists", "name")

	for _, path := range []string{"/admin/teams/" + created.ID, "/admin/teams/search"} {
		if got := call[admin.Team](t, e, masterKey, "GET", path, nil, 200); !cmp.Equal(got, want) {
			t.Errorf("GET %s (-got +want):\n%s", path, cmp.Diff(got, want))
		}
	}
	call[admin.Team](t, e, masterKey, "POST", "/admin/teams", map[string]any{"name": "ads", "budget": map[string]any{"limit_usd": 0.1}}, 201)
	list := call[admin.List[admin.Team]](t, e, masterKey, "GET", "/admin/teams", nil, 200)
	var names []string
	for _, tm := range list.Data {
		names = append(names, tm.Name)
	}
	if diff := cmp.Diff(names, []string{"ads", "search"}); diff != "" || list.Object != "list" {
		t.Errorf("GET /admin/teams names (-got +want):\n%s (object %q)", diff, list.Object)
	}
	if b := list.Data[0].Budget; b == nil || b.LimitNanos != 100_000_000 || b.LimitUSD != "0.10" || b.Period != "monthly" {
		t.Errorf("budget from the JSON number 0.1 = %+v, want exactly 100000000 nanos, monthly by default", b)
	}

	// A patch changes what it names and keeps the rest; budget fields patch
	// one by one.
	patched := call[admin.Team](t, e, masterKey, "PATCH", "/admin/teams/search",
		`{"limits": {"rpm": 60}, "budget": {"soft_percent": 50}, "metadata": null}`, 200)
	want.Limits.RPM, want.Budget.SoftPercent, want.Metadata = 60, 50, nil
	if diff := cmp.Diff(patched, want); diff != "" {
		t.Errorf("PATCH (-got +want):\n%s", diff)
	}
	if got := call[admin.Team](t, e, masterKey, "GET", "/admin/teams/search", nil, 200); !cmp.Equal(got, want) {
		t.Errorf("GET after PATCH (-got +want):\n%s", cmp.Diff(got, want))
	}
	patched = call[admin.Team](t, e, masterKey, "PATCH", "/admin/teams/"+created.ID, `{"budget": null, "max_key_age": "0s"}`, 200)
	if patched.Budget != nil || patched.MaxKeyAge != "" {
		t.Errorf(`PATCH {"budget": null, "max_key_age": "0s"} left budget %+v, max_key_age %q`, patched.Budget, patched.MaxKeyAge)
	}
	wantError(t, e, masterKey, "PATCH", "/admin/teams/search", `{"name": "ads"}`, 409, "team_exists", "name")
	wantError(t, e, masterKey, "PATCH", "/admin/teams/nope", `{"name": "x"}`, 404, "team_not_found", "")
	wantError(t, e, masterKey, "GET", "/admin/teams/nope", nil, 404, "team_not_found", "")
}

func TestTeamNameWithSlash(t *testing.T) {
	e := newEnv(t)
	call[admin.Team](t, e, masterKey, "POST", "/admin/teams", `{"name": "ml/research"}`, 201)
	if got := call[admin.Team](t, e, masterKey, "GET", "/admin/teams/ml%2Fresearch", nil, 200); got.Name != "ml/research" {
		t.Errorf("GET /admin/teams/ml%%2Fresearch = %q", got.Name)
	}
}

func TestTeamValidation(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name, body, code, param string
	}{
		{"not json", `{"name": `, "invalid_json", ""},
		{"array", `[1]`, "invalid_json", ""},
		{"empty body", ``, "invalid_json", ""},
		{"trailing data", `{"name": "a"} {}`, "invalid_json", ""},
		{"unknown field", `{"name": "a", "budjet": {}}`, "unknown_parameter", "budjet"},
		{"unknown budget field", `{"name": "a", "budget": {"limit_usd": "1", "cap": 2}}`, "unknown_parameter", "cap"},
		{"no name", `{}`, "missing_required_parameter", "name"},
		{"blank name", `{"name": "  "}`, "invalid_value", "name"},
		{"id-like name", `{"name": "team_x"}`, "invalid_value", "name"},
		{"name type", `{"name": 3}`, "invalid_value", "name"},
		{"bad duration", `{"name": "a", "max_key_age": "a month"}`, "invalid_value", "max_key_age"},
		{"negative duration", `{"name": "a", "rotation_warning": "-1h"}`, "invalid_value", "rotation_warning"},
		{"negative rpm", `{"name": "a", "limits": {"rpm": -1}}`, "invalid_value", "limits.rpm"},
		{"fractional tpm", `{"name": "a", "limits": {"tpm": 1.5}}`, "invalid_value", "limits.tpm"},
		{"budget without limit", `{"name": "a", "budget": {"period": "daily"}}`, "missing_required_parameter", "budget.limit_usd"},
		{"bad period", `{"name": "a", "budget": {"limit_usd": "5", "period": "hourly"}}`, "invalid_value", "budget.period"},
		{"soft over 100", `{"name": "a", "budget": {"limit_usd": "5", "soft_percent": 101}}`, "invalid_value", "budget.soft_percent"},
		{"downgrade negative", `{"name": "a", "budget": {"limit_usd": "5", "downgrade_percent": -1}}`, "invalid_value", "budget.downgrade_percent"},
		{"ten decimals", `{"name": "a", "budget": {"limit_usd": "0.0000000001"}}`, "invalid_value", "budget.limit_usd"},
		{"negative limit", `{"name": "a", "budget": {"limit_usd": -5}}`, "invalid_value", "budget.limit_usd"},
		{"zero limit", `{"name": "a", "budget": {"limit_usd": "0"}}`, "invalid_value", "budget.limit_usd"},
		{"negative nanos", `{"name": "a", "budget": {"limit_nanos": -1}}`, "invalid_value", "budget.limit_nanos"},
		{"huge exponent", `{"name": "a", "budget": {"limit_usd": "1e999999999"}}`, "invalid_value", "budget.limit_usd"},
		{"limit as object", `{"name": "a", "budget": {"limit_usd": {}}}`, "invalid_value", "budget.limit_usd"},
		{"limits disagree", `{"name": "a", "budget": {"limit_usd": "1", "limit_nanos": 2}}`, "invalid_value", "budget.limit_nanos"},
		{"provider key tier", `{"name": "a", "provider_keys": [{"provider": "openai", "tier": "gold", "env": "K"}]}`, "invalid_value", "provider_keys[0].tier"},
		{"provider key env", `{"name": "a", "provider_keys": [{"provider": "openai", "env": "sk-live-123!"}]}`, "invalid_value", "provider_keys[0].env"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e, masterKey, "POST", "/admin/teams", c.body, 400, c.code, c.param)
		})
	}
	list := call[admin.List[admin.Team]](t, e, masterKey, "GET", "/admin/teams", nil, 200)
	if len(list.Data) != 0 {
		t.Errorf("rejected requests created teams: %+v", list.Data)
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/admin/nope", 404, "unknown_endpoint", ""},
		{"GET", "/admin/teams/a/b", 404, "unknown_endpoint", ""},
		{"GET", "/admin/", 404, "unknown_endpoint", ""},
		{"DELETE", "/admin/teams", 405, "method_not_allowed", "GET, POST"},
		{"DELETE", "/admin/keys/key_1", 405, "method_not_allowed", "GET, PATCH"},
		{"GET", "/admin/keys/key_1/rotate", 405, "method_not_allowed", "POST"},
		{"POST", "/admin/usage", 405, "method_not_allowed", "GET"},
		{"PATCH", "/admin/keys/rotation-due", 405, "method_not_allowed", "GET"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			wantError(t, e, masterKey, c.method, c.path, nil, c.status, c.code, "")
			req, _ := http.NewRequest(c.method, e.url+c.path, nil)
			req.Header.Set("Authorization", "Bearer "+masterKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Allow"); got != c.allow {
				t.Errorf("Allow = %q, want %q", got, c.allow)
			}
		})
	}
}

// TestTrailingSlash: a trailing slash names the same route.
func TestTrailingSlash(t *testing.T) {
	e := newEnv(t)
	call[admin.List[admin.Team]](t, e, masterKey, "GET", "/admin/teams/", nil, 200)
}
