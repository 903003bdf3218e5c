package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

func TestDefaults(t *testing.T) {
	c, _ := mustParse(t, base, noEnv)
	if c.Source != "t.yaml" {
		t.Errorf("Source = %q, want t.yaml", c.Source)
	}
	if diff := cmp.Diff(c.Server, Server{Listen: "127.0.0.1:8080", MaxBodyBytes: 10 << 20}); diff != "" {
		t.Errorf("Server (-got +want):\n%s", diff)
	}
	if c.DefaultProfile != "dev" {
		t.Errorf("DefaultProfile = %q, want dev", c.DefaultProfile)
	}
	alerts := Alerts{FallbackRate: 0.15, LatencyP95: 800 * time.Millisecond, MonthlyBudgetUSD: 5000, MonthlyBudget: 5000_000_000_000,
		ErrorRate: 0.05, BreakerOpen: time.Minute, Window: 5 * time.Minute, MinRequests: 20, Cooldown: 15 * time.Minute}
	profile := func(name, tier string, retries int) *Profile {
		return &Profile{Name: name, DefaultTier: tier, MaxRetries: retries, RequestTimeout: 120 * time.Second, Alerts: alerts,
			Criticality:   map[string]string{"critical": "premium", "standard": tier, "background": "budget"},
			Timeouts:      Timeouts{Connect: 5 * time.Second, FirstByte: 60 * time.Second, Idle: 60 * time.Second, Total: 120 * time.Second},
			ContextPolicy: "reject",
			RetryBudget:   0.2,
			Breaker:       Breaker{Failures: 5, ErrorRate: 0.5, MinRequests: 20, Window: 60 * time.Second, Cooldown: 30 * time.Second},
		}
	}
	want := map[string]*Profile{
		"dev":        profile("dev", "budget", 1),
		"staging":    profile("staging", "standard", 2),
		"production": profile("production", "premium", 3),
	}
	if diff := cmp.Diff(c.Profiles, want, cmpopts.IgnoreUnexported(Profile{})); diff != "" {
		t.Errorf("Profiles (-got +want):\n%s", diff)
	}
	wantModel := &Model{Name: "m", Provider: "p", Upstream: "m", Type: "chat", PriceSource: "free",
		Deployments: []*Deployment{{ID: "m", Model: "m", Provider: "p", Upstream: "m", Weight: 1}}, Balancing: "weighted"}
	if diff := cmp.Diff(c.Models["m"], wantModel); diff != "" {
		t.Errorf(`Models["m"] (-got +want):\n%s`, diff)
	}
	if diff := cmp.Diff(c.Providers["p"], &Provider{Name: "p", Kind: "mock", KeyCooldown: 30 * time.Second, Protocol: "http1"}); diff != "" {
		t.Errorf(`Providers["p"] (-got +want):\n%s`, diff)
	}
}

func TestExplicitValues(t *testing.T) {
	src := `server:
  listen: ":9000"
  max_body_bytes: 512KB
default_profile: production
providers:
  anthropic: {api_key: k}       # kind from the name; base_url by default
  local:
    kind: openai
    base_url: http://localhost:11434/v1/
    api_key: x
    headers: {openai-organization: org-1}
    protocol: http2
models:
  m:
    provider: local
    upstream: llama3.1:8b
    type: chat
    context_window: 1e6
    max_output_tokens: 4_096
    price: {input: 0.1, output: 0.2, cached_input: 0.05, cache_write: 0.125}
tiers: {budget: [m], standard: [m], premium: [m]}
profiles:
  staging:
    default_tier: premium
    max_retries: 0
    request_timeout: 2m30s
    context_window_limit: 8192
    alerts: {fallback_rate: 0, latency_p95: 1.5s, monthly_budget_usd: 0.000000001}
`
	c, problems := mustParse(t, src, noEnv)
	if len(problems) != 0 {
		t.Errorf("problems:\n%s", joinProblems(problems))
	}
	if c.Server != (Server{Listen: ":9000", MaxBodyBytes: 512_000}) || c.DefaultProfile != "production" {
		t.Errorf("Server = %+v, DefaultProfile = %q", c.Server, c.DefaultProfile)
	}
	wantProviders := map[string]*Provider{
		"anthropic": {Name: "anthropic", Kind: "anthropic", BaseURL: "https://api.anthropic.com", APIKeys: []string{"k"}, KeyCooldown: 30 * time.Second, Protocol: "http1"},
		"local": {Name: "local", Kind: "openai", BaseURL: "http://localhost:11434/v1", APIKeys: []string{"x"},
			Headers: map[string]string{"Openai-Organization": "org-1"}, KeyCooldown: 30 * time.Second, Protocol: "http2"},
	}
	if diff := cmp.Diff(c.Providers, wantProviders, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Providers (-got +want):\n%s", diff)
	}
	wantModel := &Model{
		Name: "m", Provider: "local", Upstream: "llama3.1:8b", Type: "chat", ContextWindow: 1_000_000, MaxOutputTokens: 4096,
		Price:       meter.Price{Input: 100_000, Output: 200_000, CachedInput: 50_000, CacheWrite: 125_000},
		PriceSource: "config",
		Deployments: []*Deployment{{ID: "m", Model: "m", Provider: "local", Upstream: "llama3.1:8b", Weight: 1}}, Balancing: "weighted",
	}
	if diff := cmp.Diff(c.Models["m"], wantModel); diff != "" {
		t.Errorf(`Models["m"] (-got +want):\n%s`, diff)
	}
	wantStaging := &Profile{Name: "staging", DefaultTier: "premium", MaxRetries: 0, RequestTimeout: 150 * time.Second,
		ContextWindowLimit: 8192, Alerts: Alerts{LatencyP95: 1500 * time.Millisecond, MonthlyBudgetUSD: 1e-9, MonthlyBudget: 1,
			ErrorRate: 0.05, BreakerOpen: time.Minute, Window: 5 * time.Minute, MinRequests: 20, Cooldown: 15 * time.Minute}}
	// The keys this test is about; the policies have their own tests.
	policies := cmpopts.IgnoreFields(Profile{}, "Criticality", "Timeouts", "ContextPolicy", "HoldBack", "RetryBudget", "Breaker")
	if diff := cmp.Diff(c.Profiles["staging"], wantStaging, policies, cmpopts.IgnoreUnexported(Profile{})); diff != "" {
		t.Errorf(`Profiles["staging"] (-got +want):\n%s`, diff)
	}
}

// TestCatalogueDefaults checks what the embedded price catalogue fills in,
// and that the file wins over it.
func TestCatalogueDefaults(t *testing.T) {
	src := `providers:
  openai: {kind: openai, base_url: https://api.openai.com/v1, api_key: k}
  deepseek: {kind: openai, base_url: https://api.deepseek.com, api_key: k, catalog: deepseek}
  anthropic: {kind: anthropic, api_key: k}
  mock: {kind: mock}
models:
  gpt-4o-mini: {provider: openai}
  small: {provider: openai, upstream: gpt-4o-mini, context_window: 1000, price: {input: 1, output: 2}}
  deepseek-chat: {provider: deepseek}
  claude-sonnet-4-5: {provider: anthropic, price: {input: 2, output: 10}}
  text-embedding-3-small: {provider: openai}
  demo: {provider: mock, upstream: claude-sonnet-4-5}
  own: {provider: mock, price: {input: 1, output: 2}}
tiers: {budget: [gpt-4o-mini], standard: [gpt-4o-mini], premium: [gpt-4o-mini]}
`
	c, problems := mustParse(t, src, noEnv)
	if len(problems) != 0 {
		t.Errorf("problems:\n%s", joinProblems(problems))
	}
	tests := []struct {
		model string
		want  Model
	}{
		{"gpt-4o-mini", Model{Type: "chat", ContextWindow: 128000, MaxOutputTokens: 16384,
			Price: meter.Price{Input: 150_000, Output: 600_000, CachedInput: 75_000, CacheWrite: 150_000}, PriceSource: "catalogue:gpt-4o-mini"}},
		// The file's price and window win; the catalogue still knows the
		// cache-read price, which the file did not give.
		{"small", Model{Type: "chat", ContextWindow: 1000, MaxOutputTokens: 16384,
			Price: meter.Price{Input: 1_000_000, Output: 2_000_000, CachedInput: 75_000, CacheWrite: 1_000_000}, PriceSource: "config"}},
		{"deepseek-chat", Model{Type: "chat", ContextWindow: 131072, MaxOutputTokens: 8192,
			Price: meter.Price{Input: 280_000, Output: 420_000, CachedInput: 28_000, CacheWrite: 280_000}, PriceSource: "catalogue:deepseek-chat"}},
		{"claude-sonnet-4-5", Model{Type: "chat", ContextWindow: 200000, MaxOutputTokens: 64000,
			Price: meter.Price{Input: 2_000_000, Output: 10_000_000, CachedInput: 300_000, CacheWrite: 3_750_000}, PriceSource: "config"}},
		{"text-embedding-3-small", Model{Type: "embedding", ContextWindow: 8191,
			Price: meter.Price{Input: 20_000, CachedInput: 20_000, CacheWrite: 20_000}, PriceSource: "catalogue:text-embedding-3-small"}},
		// A mock model named after a real one is priced like it.
		{"demo", Model{Type: "chat", ContextWindow: 200000, MaxOutputTokens: 64000,
			Price: meter.Price{Input: 3_000_000, Output: 15_000_000, CachedInput: 300_000, CacheWrite: 3_750_000}, PriceSource: "catalogue:claude-sonnet-4-5"}},
		// Not in the catalogue: cache prices default to the input price.
		{"own", Model{Type: "chat",
			Price: meter.Price{Input: 1_000_000, Output: 2_000_000, CachedInput: 1_000_000, CacheWrite: 1_000_000}, PriceSource: "config"}},
	}
	ignore := cmpopts.IgnoreFields(Model{}, "Name", "Provider", "Upstream", "Fallbacks", "Deployments", "Balancing")
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			if diff := cmp.Diff(*c.Models[tt.model], tt.want, ignore); diff != "" {
				t.Errorf("Models[%q] (-got +want):\n%s", tt.model, diff)
			}
		})
	}
}

// TestCatalogueModeWarning checks that a catalogue mode other than chat or
// embedding is flagged, not silently routed as chat.
func TestCatalogueModeWarning(t *testing.T) {
	src := base + "  dall-e-3: {provider: o, price: 0}\n" + "  x: {provider: o, upstream: dall-e-3, type: chat, price: 0}\n"
	src = "providers:\n  o: {kind: openai, base_url: https://h, api_key: k}\n" + src[len("providers:\n"):]
	_, problems := mustParse(t, src, noEnv)
	if !findProblem(problems, 7, Warning, `mode "image_generation", neither chat nor embedding`) {
		t.Errorf("no mode warning on line 7; got:\n%s", joinProblems(problems))
	}
	if len(problems) != 1 {
		t.Errorf("want 1 problem (an explicit type silences it), got:\n%s", joinProblems(problems))
	}
}
