package admin

import (
	"net/http"

	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// createTeam serves POST /admin/teams.
func (h *Handler) createTeam(w http.ResponseWriter, r *http.Request, _ Actor, _ string) error {
	var req TeamRequest
	if err := readJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Name == nil {
		return missing("name")
	}
	t := &tenant.Team{}
	if err := applyTeam(&req, t); err != nil {
		return err
	}
	t, err := h.svc.CreateTeam(r.Context(), t)
	if err != nil {
		return teamErr(err, *req.Name)
	}
	return writeJSON(w, http.StatusCreated, teamView(t))
}

// listTeams serves GET /admin/teams.
func (h *Handler) listTeams(w http.ResponseWriter, r *http.Request, _ Actor, _ string) error {
	teams, err := h.st.Teams(r.Context())
	if err != nil {
		return err
	}
	out := List[Team]{Object: "list", Data: make([]Team, 0, len(teams))}
	for _, t := range teams {
		out.Data = append(out.Data, teamView(t))
	}
	return writeJSON(w, http.StatusOK, out)
}

// showTeam serves GET /admin/teams/{id-or-name}.
func (h *Handler) showTeam(w http.ResponseWriter, r *http.Request, _ Actor, id string) error {
	t, err := h.st.Team(r.Context(), id)
	if err != nil {
		return teamErr(err, id)
	}
	return writeJSON(w, http.StatusOK, teamView(t))
}

// patchTeam serves PATCH /admin/teams/{id-or-name}.
func (h *Handler) patchTeam(w http.ResponseWriter, r *http.Request, _ Actor, id string) error {
	var req TeamRequest
	if err := readJSON(w, r, &req, false); err != nil {
		return err
	}
	t, err := h.st.Team(r.Context(), id)
	if err != nil {
		return teamErr(err, id)
	}
	if err := applyTeam(&req, t); err != nil {
		return err
	}
	if err := h.svc.UpdateTeam(r.Context(), t); err != nil {
		return teamErr(err, t.Name)
	}
	return writeJSON(w, http.StatusOK, teamView(t))
}

// applyTeam validates req and sets what it has on t.
func applyTeam(req *TeamRequest, t *tenant.Team) error {
	if req.Name != nil {
		if err := checkName("name", *req.Name, "team_"); err != nil {
			return err
		}
		t.Name = *req.Name
	}
	if req.Metadata.Set {
		t.Metadata = nil
		if req.Metadata.Value != nil && len(*req.Metadata.Value) > 0 {
			t.Metadata = *req.Metadata.Value
		}
	}
	if req.MaxKeyAge != nil {
		d, err := durationField(*req.MaxKeyAge, "max_key_age")
		if err != nil {
			return err
		}
		t.MaxKeyAge = d
	}
	if req.RotationWarning != nil {
		d, err := durationField(*req.RotationWarning, "rotation_warning")
		if err != nil {
			return err
		}
		t.RotationWarning = d
	}
	if err := applyLimits(req.Limits, &t.Limits, "limits"); err != nil {
		return err
	}
	b, err := applyBudget(req.Budget, t.Budget, "budget")
	if err != nil {
		return err
	}
	t.Budget = b
	if req.ProviderKeys.Set {
		t.ProviderKeys = nil
		if req.ProviderKeys.Value != nil {
			if err := checkProviderKeys(*req.ProviderKeys.Value); err != nil {
				return err
			}
			t.ProviderKeys = *req.ProviderKeys.Value
		}
	}
	return nil
}
