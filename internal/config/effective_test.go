package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestDeployments checks deployment defaults and IDs, and that a model's
// Provider, Upstream and catalogue defaults come from its first deployment.
func TestDeployments(t *testing.T) {
	src := `providers:
  openai: {kind: openai, base_url: https://api.openai.com/v1, api_key: k, key_cooldown: 1m}
  openai-b: {kind: openai, base_url: https://b.example.com/v1, api_key: k}
  mock: {kind: mock}
models:
  gpt-4o-mini:
    deployments:
      - provider: openai
        weight: 3
      - provider: openai-b
        upstream: gpt-4o-mini-2024-07-18
    balancing: latency
  one:
    deployments: [{id: solo, provider: mock}]
    price: 0
  plain: {provider: mock, upstream: x, price: 0}
tiers: {budget: [gpt-4o-mini], standard: [gpt-4o-mini], premium: [gpt-4o-mini]}
`
	c, problems := mustParse(t, src, noEnv)
	if len(problems) != 0 {
		t.Errorf("problems:\n%s", joinProblems(problems))
	}
	tests := []struct {
		model     string
		want      []*Deployment
		balancing string
	}{
		{"gpt-4o-mini", []*Deployment{
			{ID: "gpt-4o-mini#1", Model: "gpt-4o-mini", Provider: "openai", Upstream: "gpt-4o-mini", Weight: 3},
			{ID: "gpt-4o-mini#2", Model: "gpt-4o-mini", Provider: "openai-b", Upstream: "gpt-4o-mini-2024-07-18", Weight: 1},
		}, BalanceLatency},
		{"one", []*Deployment{{ID: "solo", Model: "one", Provider: "mock", Upstream: "one", Weight: 1}}, BalanceWeighted},
		{"plain", []*Deployment{{ID: "plain", Model: "plain", Provider: "mock", Upstream: "x", Weight: 1}}, BalanceWeighted},
	}
	for _, tt := range tests {
		m := c.Models[tt.model]
		if diff := cmp.Diff(m.Deployments, tt.want); diff != "" {
			t.Errorf("Models[%q].Deployments (-got +want):\n%s", tt.model, diff)
		}
		if m.Provider != tt.want[0].Provider || m.Upstream != tt.want[0].Upstream || m.Balancing != tt.balancing {
			t.Errorf("Models[%q]: Provider %q, Upstream %q, Balancing %q; want %q, %q, %q",
				tt.model, m.Provider, m.Upstream, m.Balancing, tt.want[0].Provider, tt.want[0].Upstream, tt.balancing)
		}
	}
	// The catalogue is read for the first deployment (openai/gpt-4o-mini):
	// openai-b would have had no price.
	if m := c.Models["gpt-4o-mini"]; m.PriceSource != "catalogue:gpt-4o-mini" || m.ContextWindow != 128000 {
		t.Errorf("gpt-4o-mini: PriceSource %q, ContextWindow %d; want the catalogue's gpt-4o-mini", m.PriceSource, m.ContextWindow)
	}
	if got := c.Providers["openai"].KeyCooldown; got != time.Minute {
		t.Errorf("openai KeyCooldown = %v, want 1m", got)
	}
	if got := c.Providers["mock"].KeyCooldown; got != DefaultKeyCooldown {
		t.Errorf("mock KeyCooldown = %v, want the default %v", got, DefaultKeyCooldown)
	}
}

// TestProfilePolicies checks the policy keys of a profile and the defaults
// of the keys left out, criticality standard following default_tier.
func TestProfilePolicies(t *testing.T) {
	src := base + `profiles:
  staging:
    default_tier: premium
    request_timeout: 90s
    criticality: {background: standard}
    timeouts: {first_byte: 20s}
    context_policy: trim
    hold_back: {duration: 200ms, tokens: 10}
    retry_budget: 0
    breaker: {failures: 3, error_rate: 1, window: 2m}
  production:
    hold_back: off
`
	c, problems := mustParse(t, src, noEnv)
	if len(problems) != 0 {
		t.Errorf("problems:\n%s", joinProblems(problems))
	}
	want := &Profile{
		Criticality:   map[string]string{"critical": "premium", "standard": "premium", "background": "standard"},
		Timeouts:      Timeouts{Connect: 5 * time.Second, FirstByte: 20 * time.Second, Idle: 60 * time.Second, Total: 90 * time.Second},
		ContextPolicy: ContextTrim,
		HoldBack:      HoldBack{Set: true, Duration: 200 * time.Millisecond, Tokens: 10},
		RetryBudget:   0,
		Breaker:       Breaker{Failures: 3, ErrorRate: 1, MinRequests: 20, Window: 2 * time.Minute, Cooldown: 30 * time.Second},
	}
	policies := cmpopts.IgnoreFields(Profile{}, "Name", "DefaultTier", "MaxRetries", "RequestTimeout", "ContextWindowLimit", "Alerts")
	if diff := cmp.Diff(c.Profiles["staging"], want, policies, cmpopts.IgnoreUnexported(Profile{})); diff != "" {
		t.Errorf(`Profiles["staging"] (-got +want):\n%s`, diff)
	}
	if got := c.Profiles["production"].HoldBack; got != (HoldBack{}) {
		t.Errorf("production HoldBack = %+v after hold_back: off, want none", got)
	}
}

// forSrc has a profile with every policy set, and models that override
// each in turn.
const forSrc = `providers:
  p: {kind: mock}
models:
  plain: {provider: p, price: 0}
  own:
    provider: p
    price: 0
    context_window: 4000
    timeouts: {connect: 1s, idle: 10s, total: 30s}
    context_policy: fallback
    hold_back: {tokens: 5}
  off:
    provider: p
    price: 0
    context_window: 100000
    hold_back: off
  small:
    provider: p
    price: 0
    context_window: 500
    hold_back: false
tiers: {budget: [plain], standard: [plain], premium: [plain]}
profiles:
  production:
    request_timeout: 45s
    context_window_limit: 8000
    timeouts: {connect: 2s, first_byte: 20s, idle: 20s}
    context_policy: trim
    hold_back: {duration: 300ms, tokens: 20}
`

// TestFor checks how For merges a model over a profile, field by field; that
// a Config built by hand gets the same answers; and that For does not
// allocate.
func TestFor(t *testing.T) {
	c, problems := mustParse(t, forSrc, noEnv)
	if len(problems) != 0 {
		t.Errorf("problems:\n%s", joinProblems(problems))
	}
	prodTimeouts := Timeouts{Connect: 2 * time.Second, FirstByte: 20 * time.Second, Idle: 20 * time.Second, Total: 45 * time.Second}
	prodHold := HoldBack{Set: true, Duration: 300 * time.Millisecond, Tokens: 20}
	tests := []struct {
		profile, model string
		want           Effective
	}{
		{"production", "plain", Effective{Timeouts: prodTimeouts, ContextPolicy: ContextTrim, HoldBack: prodHold, ContextWindow: 8000}},
		{"production", "own", Effective{
			Timeouts:      Timeouts{Connect: time.Second, FirstByte: 20 * time.Second, Idle: 10 * time.Second, Total: 30 * time.Second},
			ContextPolicy: ContextFallback,
			HoldBack:      HoldBack{Set: true, Tokens: 5},
			ContextWindow: 4000, // the model's, below the profile's limit
		}},
		{"production", "off", Effective{Timeouts: prodTimeouts, ContextPolicy: ContextTrim, ContextWindow: 8000}},
		{"production", "small", Effective{Timeouts: prodTimeouts, ContextPolicy: ContextTrim, ContextWindow: 500}},
		// dev has every default and no context_window_limit.
		{"dev", "plain", Effective{
			Timeouts:      Timeouts{Connect: 5 * time.Second, FirstByte: 60 * time.Second, Idle: 60 * time.Second, Total: 120 * time.Second},
			ContextPolicy: ContextReject,
		}},
		{"dev", "own", Effective{
			Timeouts:      Timeouts{Connect: time.Second, FirstByte: 60 * time.Second, Idle: 10 * time.Second, Total: 30 * time.Second},
			ContextPolicy: ContextFallback,
			HoldBack:      HoldBack{Set: true, Tokens: 5},
			ContextWindow: 4000,
		}},
		{"dev", "off", Effective{
			Timeouts:      Timeouts{Connect: 5 * time.Second, FirstByte: 60 * time.Second, Idle: 60 * time.Second, Total: 120 * time.Second},
			ContextPolicy: ContextReject,
			ContextWindow: 100000,
		}},
	}
	for _, tt := range tests {
		p, m := c.Profiles[tt.profile], c.Models[tt.model]
		if diff := cmp.Diff(p.For(m), tt.want); diff != "" {
			t.Errorf("Profiles[%q].For(%q) (-got +want):\n%s", tt.profile, tt.model, diff)
		}
		// By hand: copies without the precomputed table.
		hp, hm := *p, *m
		hp.effective = nil
		if diff := cmp.Diff(hp.For(&hm), tt.want); diff != "" {
			t.Errorf("hand-built %q.For(%q) (-got +want):\n%s", tt.profile, tt.model, diff)
		}
		if n := testing.AllocsPerRun(100, func() { sinkEffective = p.For(m) }); n != 0 {
			t.Errorf("Profiles[%q].For(%q): %v allocations, want 0", tt.profile, tt.model, n)
		}
	}
}

var sinkEffective Effective

func BenchmarkFor(b *testing.B) {
	c, _, err := Parse("b.yaml", []byte(forSrc), noEnv)
	if err != nil {
		b.Fatal(err)
	}
	p, m := c.Profiles["production"], c.Models["own"]
	b.ReportAllocs()
	for b.Loop() {
		sinkEffective = p.For(m)
	}
}
