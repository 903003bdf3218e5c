package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tenant"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// defaultGrace is how long an old secret keeps working after a rotation when
// the request names no grace: a day, time enough to roll the new one out.
const defaultGrace = 24 * time.Hour

// createKey serves POST /admin/keys.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request, _ Actor, _ string) error {
	var req KeyRequest
	if err := readJSON(w, r, &req, false); err != nil {
		return err
	}
	switch {
	case req.Team == nil:
		return missing("team")
	case req.Name == nil:
		return missing("name")
	}
	ctx := r.Context()
	team, err := h.st.Team(ctx, *req.Team)
	if err != nil {
		return teamErr(err, *req.Team)
	}
	k := &tenant.Key{TeamID: team.ID}
	if err := applyKey(&req, k, h.now()); err != nil {
		return err
	}
	secret, k, err := h.svc.CreateKey(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return teamNotFound(*req.Team) // deleted since we looked
	}
	if err != nil {
		return fmt.Errorf("create key in team %q: %w", team.ID, err)
	}
	return h.writeSecret(ctx, w, http.StatusCreated, k.ID, team, secret)
}

// writeSecret answers with the key as stored now and its new secret.
func (h *Handler) writeSecret(ctx context.Context, w http.ResponseWriter, status int, id string, team *tenant.Team, secret string) error {
	k, creds, err := h.st.Key(ctx, id)
	if err != nil {
		return keyErr(err, id)
	}
	return writeJSON(w, status, KeySecret{Key: keyView(k, team, creds, h.now()), Secret: secret})
}

// listKeys serves GET /admin/keys?team=…; a team's key sees its own team's.
func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request, a Actor, _ string) error {
	ctx := r.Context()
	teamID, err := h.teamQuery(r, a)
	if err != nil {
		return err
	}
	keys, err := h.st.Keys(ctx, teamID)
	if err != nil {
		return err
	}
	teams, err := h.teamsByID(ctx)
	if err != nil {
		return err
	}
	now := h.now()
	out := List[Key]{Object: "list", Data: make([]Key, 0, len(keys))}
	for _, k := range keys {
		out.Data = append(out.Data, keyView(k, teams[k.TeamID], nil, now))
	}
	return writeJSON(w, http.StatusOK, out)
}

// showKey serves GET /admin/keys/{id}, with the credentials' prefixes.
func (h *Handler) showKey(w http.ResponseWriter, r *http.Request, a Actor, id string) error {
	k, creds, team, err := h.key(r.Context(), a, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, keyView(k, team, creds, h.now()))
}

// patchKey serves PATCH /admin/keys/{id}.
func (h *Handler) patchKey(w http.ResponseWriter, r *http.Request, a Actor, id string) error {
	var req KeyRequest
	if err := readJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Team != nil {
		return invalidValue("team", "a key cannot move to another team; create a key there and revoke this one")
	}
	ctx := r.Context()
	k, creds, team, err := h.key(ctx, a, id)
	if err != nil {
		return err
	}
	if err := applyKey(&req, k, h.now()); err != nil {
		return err
	}
	if err := h.svc.UpdateKey(ctx, k); err != nil {
		return keyErr(err, id)
	}
	return writeJSON(w, http.StatusOK, keyView(k, team, creds, h.now()))
}

// revokeKey serves POST /admin/keys/{id}/revoke. Revoking twice is not an
// error: the key stays revoked as of the first time.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, a Actor, id string) error {
	if err := readJSON(w, r, &struct{}{}, true); err != nil {
		return err
	}
	ctx := r.Context()
	if _, _, _, err := h.key(ctx, a, id); err != nil {
		return err
	}
	if _, err := h.svc.Revoke(ctx, id); err != nil {
		return keyErr(err, id)
	}
	k, creds, team, err := h.key(ctx, a, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, keyView(k, team, creds, h.now()))
}

// rotateKey serves POST /admin/keys/{id}/rotate {"grace": "24h"}.
func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request, a Actor, id string) error {
	var req RotateRequest
	if err := readJSON(w, r, &req, true); err != nil {
		return err
	}
	grace := defaultGrace
	if req.Grace != nil {
		d, err := durationField(*req.Grace, "grace")
		if err != nil {
			return err
		}
		grace = d
	}
	ctx := r.Context()
	k, _, team, err := h.key(ctx, a, id)
	if err != nil {
		return err
	}
	if k.RevokedAt != nil {
		return &wire.Error{Status: http.StatusConflict, Type: "invalid_request_error", Code: CodeKeyRevoked,
			Message: fmt.Sprintf("key %q is revoked and cannot be rotated; create a new key", id)}
	}
	secret, _, err := h.svc.Rotate(ctx, id, grace)
	if err != nil {
		return keyErr(err, id)
	}
	return h.writeSecret(ctx, w, http.StatusOK, id, team, secret)
}

// teamQuery reads a key route's only query parameter, ?team=, and resolves
// it for the actor (a team's key is held to its own team).
func (h *Handler) teamQuery(r *http.Request, a Actor) (string, error) {
	q, err := query(r, "team")
	if err != nil {
		return "", err
	}
	return h.teamScope(r.Context(), a, q.Get("team"))
}

// rotationDue serves GET /admin/keys/rotation-due?team=….
func (h *Handler) rotationDue(w http.ResponseWriter, r *http.Request, a Actor, _ string) error {
	ctx := r.Context()
	teamID, err := h.teamQuery(r, a)
	if err != nil {
		return err
	}
	notices, err := h.svc.RotationDue(ctx, teamID)
	if err != nil {
		return err
	}
	if notices == nil {
		notices = []tenant.RotationNotice{}
	}
	return writeJSON(w, http.StatusOK, List[tenant.RotationNotice]{Object: "list", Data: notices})
}

// key loads a key the actor may see, with its credentials and team. Another
// team's key is key_not_found to a team's key, as if it did not exist.
func (h *Handler) key(ctx context.Context, a Actor, id string) (*tenant.Key, []*tenant.Credential, *tenant.Team, error) {
	k, creds, err := h.st.Key(ctx, id)
	if err != nil {
		return nil, nil, nil, keyErr(err, id)
	}
	if !a.Master && k.TeamID != a.TeamID {
		return nil, nil, nil, keyNotFound(id)
	}
	team, err := h.st.Team(ctx, k.TeamID)
	if err != nil {
		return nil, nil, nil, teamErr(err, k.TeamID)
	}
	return k, creds, team, nil
}

// teamScope resolves the team a listing is for. A team's key is always
// scoped to its own team; naming another one (or one that does not exist)
// is team_not_found, so a key cannot probe for other teams' names.
func (h *Handler) teamScope(ctx context.Context, a Actor, idOrName string) (string, error) {
	if idOrName == "" {
		if a.Master {
			return "", nil
		}
		return a.TeamID, nil
	}
	t, err := h.st.Team(ctx, idOrName)
	if err != nil {
		return "", teamErr(err, idOrName)
	}
	if !a.Master && t.ID != a.TeamID {
		return "", teamNotFound(idOrName)
	}
	return t.ID, nil
}

func (h *Handler) teamsByID(ctx context.Context) (map[string]*tenant.Team, error) {
	teams, err := h.st.Teams(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*tenant.Team, len(teams))
	for _, t := range teams {
		m[t.ID] = t
	}
	return m, nil
}

// applyKey validates req and sets what it has on k; now dates expires_in.
func applyKey(req *KeyRequest, k *tenant.Key, now time.Time) error {
	if req.Name != nil {
		if err := checkName("name", *req.Name, "key_"); err != nil {
			return err
		}
		k.Name = *req.Name
	}
	if req.AllowedModels.Set {
		k.AllowedModels = nil
		if v := req.AllowedModels.Value; v != nil && len(*v) > 0 {
			if err := checkList(*v, "allowed_models", nil); err != nil {
				return err
			}
			k.AllowedModels = *v
		}
	}
	if req.AllowedTiers.Set {
		k.AllowedTiers = nil
		if v := req.AllowedTiers.Value; v != nil && len(*v) > 0 {
			if err := checkList(*v, "allowed_tiers", tiers); err != nil {
				return err
			}
			k.AllowedTiers = *v
		}
	}
	if c := req.DefaultCriticality; c != nil {
		if *c != "" && !slices.Contains(criticalities, *c) {
			return invalidValue("default_criticality", "default_criticality must be one of %s, not %q", strings.Join(criticalities, ", "), *c)
		}
		k.DefaultCriticality = *c
	}
	if err := applyExpiry(req, k, now); err != nil {
		return err
	}
	if err := applyLimits(req.Limits, &k.Limits, "limits"); err != nil {
		return err
	}
	b, err := applyBudget(req.Budget, k.Budget, "budget")
	if err != nil {
		return err
	}
	k.Budget = b
	return nil
}

// applyExpiry sets expires_at (RFC 3339, or null for never) or expires_in
// (from now); an expiry must lie in the future.
func applyExpiry(req *KeyRequest, k *tenant.Key, now time.Time) error {
	switch {
	case req.ExpiresAt.Set && req.ExpiresIn != nil:
		return invalidValue("expires_in", "give expires_at or expires_in, not both")
	case req.ExpiresIn != nil:
		d, err := durationField(*req.ExpiresIn, "expires_in")
		if err != nil {
			return err
		}
		if d == 0 {
			return invalidValue("expires_in", "expires_in must be more than 0; to stop a key, revoke it")
		}
		t := now.Add(d).UTC()
		k.ExpiresAt = &t
	case req.ExpiresAt.Set && req.ExpiresAt.Value == nil:
		k.ExpiresAt = nil
	case req.ExpiresAt.Set:
		t, err := time.Parse(time.RFC3339Nano, *req.ExpiresAt.Value)
		if err != nil {
			return invalidValue("expires_at", "expires_at must be an RFC 3339 time such as 2026-12-31T00:00:00Z, not %q", *req.ExpiresAt.Value)
		}
		if !t.After(now) {
			return invalidValue("expires_at", "expires_at %s is not in the future; to stop a key, revoke it", *req.ExpiresAt.Value)
		}
		t = t.UTC()
		k.ExpiresAt = &t
	}
	return nil
}

// query returns the request's query, refusing parameters the route does not
// take, so a misspelt filter is not silently ignored.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidValue("", "the query string is malformed: %v", err)
	}
	for name := range q {
		if !slices.Contains(allowed, name) {
			return nil, wire.BadRequest(CodeUnknownParameter, name, fmt.Sprintf("unknown query parameter %q; this route takes %s", name, strings.Join(allowed, ", ")))
		}
	}
	return q, nil
}
