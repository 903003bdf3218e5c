package route

import (
	"fmt"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
)

// ExplainRequest is what `tollgate explain` and POST /admin/explain ask about.
type ExplainRequest struct {
	Model       string `json:"model"`
	Tier        string `json:"tier,omitempty"`
	Criticality string `json:"criticality,omitempty"`
	// Body is an optional chat request; without it token counts are zero.
	Body []byte `json:"-"`
}

// Explanation is a routing decision written out: how a request would be
// served, and what would apply. It is how routing rules are shown to teams.
type Explanation struct {
	Profile     string       `json:"profile"`
	Model       string       `json:"model"`
	Tier        string       `json:"tier"`
	TierFrom    string       `json:"tier_from"` // header, criticality or profile default
	Criticality string       `json:"criticality,omitempty"`
	Candidates  []Candidate  `json:"candidates"`
	Retry       RetrySummary `json:"retry"`
}

// Candidate is one model of the chain.
type Candidate struct {
	Position      int          `json:"position"` // 0 is the primary
	Model         string       `json:"model"`
	Balancing     string       `json:"balancing"`
	Deployments   []Deployment `json:"deployments"`
	ContextWindow int          `json:"context_window"` // 0: unknown, not checked
	ContextPolicy string       `json:"context_policy"`
	Tokenizer     string       `json:"tokenizer"`
	PromptTokens  int          `json:"prompt_tokens"`
	MaxOutput     int          `json:"max_output_tokens"`
	Fits          bool         `json:"fits"`
	MaxCostUSD    float64      `json:"max_cost_usd"` // prompt × input price + max output × output price
	PriceSource   string       `json:"price_source"`
	Timeouts      Timeouts     `json:"timeouts"`
	HoldBack      string       `json:"hold_back"`
}

// Deployment is one deployment of a candidate, with its live health.
type Deployment struct {
	ID        string  `json:"id"`
	Provider  string  `json:"provider"`
	Upstream  string  `json:"upstream"`
	Weight    int     `json:"weight"`
	Breaker   string  `json:"breaker"`
	LatencyMS float64 `json:"ewma_latency_ms"`
	InFlight  int64   `json:"in_flight"`
}

// Timeouts are a candidate's effective timeouts, as Go durations.
type Timeouts struct {
	Connect   string `json:"connect"`
	FirstByte string `json:"first_byte"`
	Idle      string `json:"idle"`
	Total     string `json:"total"`
}

// RetrySummary is the retry policy in force.
type RetrySummary struct {
	MaxRetries    int     `json:"max_retries_per_model"`
	Backoff       string  `json:"backoff"`
	RetryAfterCap string  `json:"retry_after_cap"`
	RetryBudget   float64 `json:"retry_budget"`
	Retried       string  `json:"retried"`
	NeverRetried  string  `json:"never_retried"`
}

// Explain plans req as the gateway would and describes every candidate. h
// supplies live breaker and latency state; nil means a fresh gateway's.
func Explain(cfg *config.Config, prof *config.Profile, req ExplainRequest, h *Health) (Explanation, error) {
	plan, err := Resolve(cfg, prof, Request{Model: req.Model, Tier: req.Tier, Criticality: req.Criticality})
	if err != nil {
		return Explanation{}, err
	}
	ex := Explanation{Profile: prof.Name, Model: req.Model, Tier: plan.Tier, TierFrom: tierFrom(req),
		Criticality: req.Criticality, Retry: RetrySummary{
			MaxRetries: prof.MaxRetries, Backoff: fmt.Sprintf("jittered exponential from %v to %v", backoffBase, backoffCap),
			RetryAfterCap: "60s", RetryBudget: prof.RetryBudget,
			Retried:      "408, 409, 429 (not insufficient_quota), 5xx, 529, connection errors, timeouts, malformed bodies — before the first byte",
			NeverRetried: "400, 401, 403, 404, 413, 422"}}
	for i, m := range plan.Candidates {
		ex.Candidates = append(ex.Candidates, explainModel(cfg, prof, i, m, req.Body, h))
	}
	return ex, nil
}

func tierFrom(req ExplainRequest) string {
	switch {
	case req.Tier != "":
		return "header"
	case req.Criticality != "":
		return "criticality"
	}
	return "profile default"
}

func explainModel(cfg *config.Config, prof *config.Profile, pos int, m *config.Model, body []byte, h *Health) Candidate {
	eff := prof.For(m)
	c := Candidate{Position: pos, Model: m.Name, Balancing: m.Balancing, ContextWindow: eff.ContextWindow,
		ContextPolicy: eff.ContextPolicy, PriceSource: m.PriceSource, HoldBack: holdBackText(eff.HoldBack),
		Timeouts: Timeouts{Connect: eff.Timeouts.Connect.String(), FirstByte: eff.Timeouts.FirstByte.String(),
			Idle: eff.Timeouts.Idle.String(), Total: eff.Timeouts.Total.String()}}
	tok := meter.TokenizerFor(cfg.Providers[m.Provider].Kind, m.Upstream)
	c.Tokenizer = tok.Name()
	c.MaxOutput = m.MaxOutputTokens
	if len(body) > 0 {
		c.PromptTokens, _ = tok.CountChat(body)
		c.MaxOutput = meter.MaxOutput(body, m.MaxOutputTokens)
	}
	c.Fits = eff.ContextWindow <= 0 || c.PromptTokens+meter.MaxOutput(body, 0) <= eff.ContextWindow
	c.MaxCostUSD = (m.Price.Input.Of(c.PromptTokens) + m.Price.Output.Of(c.MaxOutput)).USD()
	for _, d := range m.Deployments {
		dep := Deployment{ID: d.ID, Provider: d.Provider, Upstream: d.Upstream, Weight: d.Weight, Breaker: Closed.String()}
		if h != nil {
			dep.Breaker = h.Breakers.State(d.ID).String()
			lat, inflight := h.Balancer.Snapshot(d.ID)
			dep.LatencyMS, dep.InFlight = float64(lat.Microseconds())/1000, inflight
		}
		c.Deployments = append(c.Deployments, dep)
	}
	return c
}

func holdBackText(hb config.HoldBack) string {
	if !hb.Set {
		return "off"
	}
	return fmt.Sprintf("first %d chunks or %v", hb.Tokens, hb.Duration)
}
