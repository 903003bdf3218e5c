// Package config loads, validates and compiles Tollgate's one YAML file into an
// immutable Config. The lifecycle is fixed: decode strictly (unknown keys are
// errors) → defaults → validate (every problem as FILE:LINE) → compile.
package config

import (
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// Tier names, cheapest first.
const (
	TierBudget   = "budget"
	TierStandard = "standard"
	TierPremium  = "premium"
)

// Tiers lists the tier names, cheapest first.
var Tiers = []string{TierBudget, TierStandard, TierPremium}

// Profiles lists the profile names.
var Profiles = []string{"dev", "staging", "production"}

// AutoAlias is the built-in model name that means "this tier's own chain".
const AutoAlias = "auto"

// Config is a compiled, validated configuration. It is immutable once built:
// share it freely, never modify it.
type Config struct {
	// Source is the file it came from ("" for the built-in demo).
	Source string
	Server Server
	// Providers by name.
	Providers map[string]*Provider
	// Models by the name clients send.
	Models map[string]*Model
	// Tiers maps a tier name to its ordered chain of model names: primary first.
	Tiers map[string][]string
	// Aliases maps an alias to tier name → ordered chain of model names. An
	// alias without an entry for a tier uses that tier's chain.
	Aliases map[string]map[string][]string
	// Profiles by name; all three always exist after compile.
	Profiles map[string]*Profile
	// DefaultProfile is used when neither flag nor environment names one.
	DefaultProfile string
	// Store says where teams, keys and the usage ledger live.
	Store Store
	// PayloadLogging is opt-in logging of request and response bodies; off
	// unless it names teams.
	PayloadLogging PayloadLogging

	// routes and clientModels are precomputed by Parse so that Chain and
	// ClientModels cost a map lookup; a Config built by hand has neither and
	// takes the slower path.
	routes       map[string]*route
	clientModels []string
}

// Store is the persistence backend.
type Store struct {
	Driver string // "sqlite" (the default)
	// Path is the SQLite file; default "tollgate.db" beside the config file
	// (in the working directory for the demo).
	Path string
	// Journal is where usage records spill when the store falls behind;
	// default Path + ".journal".
	Journal string
}

// Server holds listener settings.
type Server struct {
	Listen       string // default 127.0.0.1:8080
	MaxBodyBytes int64  // default 10 MiB
}

// Provider is one upstream account.
type Provider struct {
	Name    string
	Kind    string // openai | anthropic | mock
	BaseURL string // without trailing slash; for mock, empty means the built-in in-process mock
	APIKeys []string
	// Headers are sent upstream on every request (for example OpenAI-Organization).
	Headers map[string]string
	// Catalog is the price catalogue's litellm_provider this provider's models
	// are priced by ("" = by Kind).
	Catalog string
	// KeyCooldown is how long a key rests after a 429 when the upstream gave no
	// Retry-After; default 30s.
	KeyCooldown time.Duration
	// Protocol is how the gateway talks to the provider: http1 (default) or
	// http2.
	Protocol string
}

// Model is a name clients may send, bound to one or more deployments.
type Model struct {
	Name            string
	Provider        string
	Upstream        string // upstream model name; defaults to Name
	Type            string // chat | embedding
	ContextWindow   int    // max input tokens; 0 = unknown
	MaxOutputTokens int    // 0 = unknown
	Price           meter.Price
	// PriceSource says where Price came from: "config", "free" (price: 0) or
	// "catalogue:KEY".
	PriceSource string
	// Fallbacks is the chain after this model when a client names it directly.
	Fallbacks []string

	// Deployments serve this model: the same model on several providers,
	// regions or accounts. Always at least one; a model written with
	// provider/upstream at its top level has exactly one, and Provider and
	// Upstream above are always Deployments[0]'s.
	Deployments []*Deployment
	// Balancing picks among healthy deployments: BalanceWeighted (default) or
	// BalanceLatency (power of two choices over EWMA latency and in-flight count).
	Balancing string
	// Timeouts overrides the profile's, field by field; zero fields inherit.
	Timeouts Timeouts
	// ContextPolicy overrides the profile's ("" inherits).
	ContextPolicy string
	// HoldBack overrides the profile's when Set.
	HoldBack HoldBack
	// Limits are rate limits on this model across all teams; zero is none.
	Limits RateLimits
	// HoldBackOff is true when the file says `hold_back: off` (or false):
	// this model holds nothing back even when its profile does. HoldBack is
	// then unset. Profile.For applies it.
	HoldBackOff bool
}

// RateLimits are requests and tokens per minute; zero means unlimited.
type RateLimits struct {
	RPM int
	TPM int
}

// Balancing strategies.
const (
	BalanceWeighted = "weighted"
	BalanceLatency  = "latency"
)

// Context-window policies: what happens when prompt + max output does not fit.
const (
	ContextReject   = "reject"   // 400 context_length_exceeded, no upstream call
	ContextTrim     = "trim"     // drop the oldest turns until it fits
	ContextFallback = "fallback" // move to the next model in the chain with a larger window
)

// Criticality levels a request may carry in X-Tollgate-Criticality.
var Criticalities = []string{"critical", "standard", "background"}

// Deployment is one place a model is served.
type Deployment struct {
	// ID is stable and unique across the file: the `id` key, else
	// "MODEL" for a single deployment and "MODEL#N" (N from 1) for several.
	// Breakers, logs and explain name deployments by it.
	ID       string
	Model    string // the model it serves
	Provider string
	Upstream string // upstream model name; defaults to the model's name
	Weight   int    // relative share under weighted balancing; default 1, 1..1000
}

// Timeouts bound one request. Zero means "inherit" in a model override and
// "no limit" nowhere: compile fills every profile field.
type Timeouts struct {
	Connect   time.Duration // TCP+TLS connect; default 5s
	FirstByte time.Duration // request sent → response headers, and → first stream event; default 60s
	Idle      time.Duration // longest gap between stream events; default 60s
	Total     time.Duration // the whole request, all attempts; the profile's request_timeout
}

// HoldBack buffers the start of a stream so that an upstream failure inside
// the window can still fall back invisibly. Off unless Set.
//
// When Set, at least one of Duration and Tokens is above zero; a zero one
// sets no bound of its own (tokens only: hold until that many chunks, or
// the stream ends).
type HoldBack struct {
	Set      bool
	Duration time.Duration // hold at most this long…
	Tokens   int           // …or this many content chunks, whichever comes first
}

// Breaker configures the per-deployment circuit breakers.
type Breaker struct {
	Failures    int           // consecutive failures that open it; default 5
	ErrorRate   float64       // failure share in Window that opens it; default 0.5
	MinRequests int           // requests in Window before ErrorRate applies; default 20
	Window      time.Duration // default 60s
	Cooldown    time.Duration // open → half-open; default 30s
}

// Profile is a set of defaults chosen per environment.
type Profile struct {
	Name               string
	DefaultTier        string
	MaxRetries         int
	RequestTimeout     time.Duration
	ContextWindowLimit int // 0 = no profile-wide limit
	Alerts             Alerts

	// Criticality maps critical/standard/background to a tier. Defaults:
	// critical → premium, standard → DefaultTier, background → budget.
	Criticality map[string]string
	// Timeouts are the defaults for every model; Total equals RequestTimeout.
	Timeouts Timeouts
	// ContextPolicy is reject (default), trim or fallback.
	ContextPolicy string
	// HoldBack is off by default.
	HoldBack HoldBack
	// RetryBudget is how many retries may go out per client request, over
	// a sliding 10 s window; default 0.2. Retries past it are skipped (the
	// chain moves on) so a failing provider is not stormed.
	RetryBudget float64
	// Breaker configures circuit breakers.
	Breaker Breaker

	// effective holds For's answer per model of the same Config, filled by
	// Parse; a Profile built by hand has none and For merges on the spot.
	effective map[*Model]Effective
}

// Alerts holds a profile's alert rules; package alert evaluates them. A
// threshold of 0 turns its alert off.
type Alerts struct {
	FallbackRate     float64       // default 0.15
	LatencyP95       time.Duration // default 800ms
	MonthlyBudgetUSD float64       // default 5000; for display, MonthlyBudget is exact
	// MonthlyBudget is MonthlyBudgetUSD as integer money, parsed exactly from
	// the file's decimal text; 0 disables the alert.
	MonthlyBudget meter.Nanos

	// ErrorRate is the share of requests in Window that ended with a status
	// of 500 or more; default 0.05.
	ErrorRate float64
	// BreakerOpen is how long a deployment's breaker may stay away from
	// closed (open or half-open) before it alerts; default 1m.
	BreakerOpen time.Duration
	// Window is the sliding window of FallbackRate, LatencyP95 and
	// ErrorRate; default 5m, always positive.
	Window time.Duration
	// MinRequests is how many requests Window must hold before a rate or
	// p95 alert may fire; default 20, at least 1.
	MinRequests int
	// Cooldown is how long a firing alert waits before it is sent again
	// while it still holds; default 15m, always positive.
	Cooldown time.Duration
	// Webhooks receive every alert event; none by default.
	Webhooks []Webhook
}

// Webhook is one HTTP endpoint alert events are POSTed to. Its URL may hold
// a secret (a Slack webhook's path does): log it redacted.
type Webhook struct {
	URL    string // absolute http or https URL
	Format string // WebhookJSON (default) or WebhookSlack
}

// Webhook body formats.
const (
	WebhookJSON  = "json"  // the event as a JSON object
	WebhookSlack = "slack" // a Slack-compatible {"text": "…"} message
)

// WebhookFormats lists the webhook body formats.
var WebhookFormats = []string{WebhookJSON, WebhookSlack}
