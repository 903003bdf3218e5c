package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// explainBody is POST /admin/explain's request: the routing inputs, and an
// optional chat request to count tokens of.
type explainBody struct {
	route.ExplainRequest
	Request json.RawMessage `json:"request"`
}

// explain answers how a request would be routed right now, with the live
// breaker and latency state.
func (g *Gateway) explain(hc *call, c caller) error {
	if !c.master {
		return &wire.Error{Status: http.StatusForbidden, Type: "permission_error", Code: "permission_denied",
			Message: "explain needs the master key"}
	}
	body, err := readBody(hc, 1<<20)
	if err != nil {
		return err
	}
	var in explainBody
	if err := decode(body, &in); err != nil {
		return err
	}
	if in.Model == "" {
		return wire.BadRequest("missing_required_parameter", "model", "you must provide a model parameter")
	}
	if len(in.Request) > 0 && string(in.Request) != "null" {
		in.Body = in.Request
	}
	st := g.state.Load()
	ex, err := route.Explain(st.cfg, st.prof, in.ExplainRequest, g.health.Health)
	if err != nil {
		return planError(err)
	}
	out, _ := json.MarshalIndent(ex, "", "  ")
	writeJSON(hc.fc, http.StatusOK, out)
	return nil
}

// alerts lists active and recent alerts (master key).
func (g *Gateway) alerts(hc *call, c caller) error {
	if !c.master {
		return &wire.Error{Status: http.StatusForbidden, Type: "permission_error", Code: "permission_denied",
			Message: "alerts need the master key"}
	}
	if g.opts.Alerts == nil {
		writeJSON(hc.fc, http.StatusOK, []byte(`{"active":[],"history":[]}`))
		return nil
	}
	out, _ := json.MarshalIndent(g.opts.Alerts.Alerts(), "", "  ")
	writeJSON(hc.fc, http.StatusOK, out)
	return nil
}
