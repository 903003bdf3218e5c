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

	// routes and clientModels are precomputed by Parse so that Chain and
	// ClientModels cost a map lookup; a Config built by hand has neither and
	// takes the slower path.
	routes       map[string]*route
	clientModels []string
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
}

// Model is a name clients may send, bound to one provider deployment.
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
}

// Profile is a set of defaults chosen per environment.
type Profile struct {
	Name               string
	DefaultTier        string
	MaxRetries         int
	RequestTimeout     time.Duration
	ContextWindowLimit int // 0 = no profile-wide limit
	Alerts             Alerts
}

// Alerts holds alert thresholds, stored now and evaluated by the telemetry package later.
type Alerts struct {
	FallbackRate     float64       // default 0.15
	LatencyP95       time.Duration // default 800ms
	MonthlyBudgetUSD float64       // default 5000; for display, MonthlyBudget is exact
	// MonthlyBudget is MonthlyBudgetUSD as integer money, parsed exactly from
	// the file's decimal text; 0 disables the alert.
	MonthlyBudget meter.Nanos
}
