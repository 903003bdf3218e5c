// Package telemetry holds what the gateway tells operators: one structured log
// line per request, Prometheus metrics, and OpenTelemetry traces (with W3C
// trace context carried upstream). Alerts are in the alert package.
package telemetry

import (
	"context"
	"log/slog"
	"time"
)

// Request is what one request did, as logged when it settles. It never holds
// prompts, completions or keys.
type Request struct {
	ID               string
	Endpoint         string
	Tier             string
	Criticality      string
	TeamID           string
	KeyID            string // the public key id, never the secret
	Downgraded       bool
	RequestedModel   string
	Model            string // the configured model that served (or last tried)
	Provider         string
	Deployment       string
	Stream           bool
	Attempts         int
	Fallback         bool
	Trimmed          int // messages dropped to fit the context window
	Status           int
	ErrorCode        string
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int
	UsageReported    bool // false when the upstream sent no usage
	CostUSD          float64
	CostEstimated    bool // no usage reported: the reservation was charged
	Latency          time.Duration
	TTFB             time.Duration
	Overhead         time.Duration
	Time             time.Time
}

// LogRequest writes the llm_request_completed line. The field names of the
// design note (event, tier, model, latency_ms, tokens, estimated_cost,
// fallback_triggered, timestamp) are kept so dashboards built on it work.
func LogRequest(ctx context.Context, log *slog.Logger, r *Request) {
	level := slog.LevelInfo
	if r.Status >= 500 {
		level = slog.LevelWarn
	}
	if h, ok := log.Handler().(*JSONHandler); ok && h.logRequest(level, r) {
		return
	}
	if !log.Enabled(ctx, level) {
		return
	}
	log.LogAttrs(ctx, level, "request",
		slog.String("event", "llm_request_completed"),
		slog.String("request_id", r.ID),
		slog.String("endpoint", r.Endpoint),
		slog.String("tier", r.Tier),
		slog.String("criticality", r.Criticality),
		slog.String("team_id", r.TeamID),
		slog.String("key_id", r.KeyID),
		slog.Bool("downgraded", r.Downgraded),
		slog.String("requested_model", r.RequestedModel),
		slog.String("model", r.Model),
		slog.String("provider", r.Provider),
		slog.String("deployment", r.Deployment),
		slog.Bool("stream", r.Stream),
		slog.Int("attempts", r.Attempts),
		slog.Bool("fallback_triggered", r.Fallback),
		slog.Int("context_trimmed", r.Trimmed),
		slog.Int("status", r.Status),
		slog.String("error_code", r.ErrorCode),
		slog.Int("prompt_tokens", r.PromptTokens),
		slog.Int("completion_tokens", r.CompletionTokens),
		slog.Int("cached_tokens", r.CachedTokens),
		slog.Int("tokens", r.PromptTokens+r.CompletionTokens),
		slog.Bool("usage_reported", r.UsageReported),
		slog.Float64("estimated_cost", r.CostUSD),
		slog.Bool("cost_estimated", r.CostEstimated),
		slog.Float64("latency_ms", ms(r.Latency)),
		slog.Float64("ttfb_ms", ms(r.TTFB)),
		slog.Float64("overhead_ms", ms(r.Overhead)),
		slog.String("timestamp", r.Time.UTC().Format(time.RFC3339Nano)),
	)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
