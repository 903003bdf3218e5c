package meter

import "time"

// Record is one request in the usage ledger. Every request that reached the
// pipeline has one, rejected ones included, so the ledger is complete.
type Record struct {
	Time           time.Time     `json:"time"`
	RequestID      string        `json:"request_id"`
	TeamID         string        `json:"team_id,omitempty"` // "" for the master key
	KeyID          string        `json:"key_id,omitempty"`
	Endpoint       string        `json:"endpoint"`
	Tier           string        `json:"tier,omitempty"`
	Criticality    string        `json:"criticality,omitempty"`
	Downgraded     bool          `json:"downgraded,omitempty"` // moved to a cheaper tier by the team's budget
	RequestedModel string        `json:"requested_model,omitempty"`
	ServedModel    string        `json:"served_model,omitempty"`
	Provider       string        `json:"provider,omitempty"`
	Deployment     string        `json:"deployment,omitempty"`
	Attempts       int           `json:"attempts"`
	Fallback       bool          `json:"fallback"`
	PromptTokens   int           `json:"prompt_tokens"`
	Completion     int           `json:"completion_tokens"`
	CachedTokens   int           `json:"cached_tokens"`
	Cost           Nanos         `json:"cost_nanos"`
	Latency        time.Duration `json:"latency_ns"`
	TTFB           time.Duration `json:"ttfb_ns"`
	Status         int           `json:"status"`
	ErrorCode      string        `json:"error_code,omitempty"`
}
