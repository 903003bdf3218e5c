package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tenant"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// masterKey is what the test gateway takes as the master key.
const masterKey = "sk-master-test"

// clock is a settable time for the service and the handler.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is an admin API over a real SQLite file, behind an httptest server
// that authenticates like the gateway: the master key, or a virtual key
// through tenant.Service.
type env struct {
	st    *store.SQLite
	svc   *tenant.Service
	clock *clock
	url   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "tollgate.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	svc := tenant.NewService(st, c.now)
	h := admin.New(svc, st, st, c.now)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		a := admin.Actor{Master: true}
		if secret != masterKey {
			p, err := svc.Authenticate(r.Context(), secret)
			if err != nil {
				wire.WriteError(w, &wire.Error{Status: http.StatusUnauthorized, Type: "authentication_error",
					Code: "invalid_api_key", Message: err.Error()})
				return
			}
			a = admin.Actor{TeamID: p.Team.ID, KeyID: p.Key.ID}
		}
		if err := h.ServeAdmin(w, r, a); err != nil {
			wire.WriteError(w, err)
		}
	}))
	t.Cleanup(srv.Close)
	return &env{st: st, svc: svc, clock: c, url: srv.URL}
}

// do sends body (a string is sent as is) and returns the status and body.
func (e *env) do(t *testing.T, auth, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// call is do that wants status and decodes the answer into a T.
func call[T any](t *testing.T, e *env, auth, method, path string, body any, status int) T {
	t.Helper()
	got, raw := e.do(t, auth, method, path, body)
	if got != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, status, raw)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
	}
	return v
}

// wantError checks that a call fails with status and code (and param, when
// given) in an OpenAI envelope.
func wantError(t *testing.T, e *env, auth, method, path string, body any, status int, code, param string) {
	t.Helper()
	got, raw := e.do(t, auth, method, path, body)
	var env struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Error.Code == nil || env.Error.Message == "" || env.Error.Type == "" {
		t.Fatalf("%s %s: not an OpenAI error envelope: %s", method, path, raw)
	}
	if got != status || *env.Error.Code != code {
		t.Errorf("%s %s %v: got %d %s, want %d %s (%s)", method, path, body, got, *env.Error.Code, status, code, env.Error.Message)
	}
	if param != "" && (env.Error.Param == nil || *env.Error.Param != param) {
		t.Errorf("%s %s %v: param %v, want %q", method, path, body, env.Error.Param, param)
	}
}

// seedTeam creates a team and a key in it, returning the team, the key and
// its secret.
func (e *env) seedTeam(t *testing.T, name string) (admin.Team, admin.Key, string) {
	t.Helper()
	team := call[admin.Team](t, e, masterKey, "POST", "/admin/teams", map[string]any{"name": name}, 201)
	ks := call[admin.KeySecret](t, e, masterKey, "POST", "/admin/keys", map[string]any{"team": name, "name": name + "-app"}, 201)
	return team, ks.Key, ks.Secret
}

// authCode returns the tenant.AuthError code of authenticating secret, or "".
func (e *env) authCode(t *testing.T, secret string) string {
	t.Helper()
	_, err := e.svc.Authenticate(context.Background(), secret)
	if err == nil {
		return ""
	}
	ae, ok := err.(*tenant.AuthError)
	if !ok {
		t.Fatalf("Authenticate: %v, want an *AuthError", err)
	}
	return ae.Code
}
