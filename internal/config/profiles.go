package config

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// Profile and alert defaults, from the design note: retries grow and the
// default tier gets dearer from dev to production.
const (
	DefaultRequestTimeout   = 120 * time.Second
	DefaultFallbackRate     = 0.15
	DefaultLatencyP95       = 800 * time.Millisecond
	DefaultMonthlyBudgetUSD = 5000
	// MaxRetriesLimit is the most retries per model a profile may ask for.
	MaxRetriesLimit = 10
)

// defaultProfiles holds each profile's default_tier and max_retries.
var defaultProfiles = map[string]struct {
	tier    string
	retries int
}{
	"dev":        {TierBudget, 1},
	"staging":    {TierStandard, 2},
	"production": {TierPremium, 3},
}

func newProfile(name string) *Profile {
	def := defaultProfiles[name]
	return &Profile{
		Name:           name,
		DefaultTier:    def.tier,
		MaxRetries:     def.retries,
		RequestTimeout: DefaultRequestTimeout,
		Alerts: Alerts{
			FallbackRate:     DefaultFallbackRate,
			LatencyP95:       DefaultLatencyP95,
			MonthlyBudgetUSD: DefaultMonthlyBudgetUSD,
			MonthlyBudget:    DefaultMonthlyBudgetUSD * 1e9,
		},
	}
}

// profiles fills all three profiles, defaults first. It returns, per
// profile, the node of an explicit default_tier.
func (d *decoder) profiles(c *Config, p pair) map[string]*yaml.Node {
	for _, name := range Profiles {
		c.Profiles[name] = newProfile(name)
	}
	explicit := make(map[string]*yaml.Node)
	if p.val == nil {
		return explicit
	}
	ps, _ := d.entries(p.val, "profiles")
	for _, q := range ps {
		if !contains(Profiles, q.name) {
			d.errorf(q.key, "profiles: unknown profile %q (want dev, staging or production)", q.name)
			continue
		}
		if n := d.profile(c.Profiles[q.name], q); n != nil {
			explicit[q.name] = n
		}
	}
	return explicit
}

func (d *decoder) profile(pr *Profile, q pair) (tierNode *yaml.Node) {
	what := "profiles." + q.name
	f := d.fields(q.val, what, "default_tier", "max_retries", "request_timeout", "context_window_limit", "alerts")
	if p, has := f["default_tier"]; has {
		if s, ok := d.str(p.val, what+".default_tier"); ok {
			if contains(Tiers, s) {
				pr.DefaultTier, tierNode = s, deref(p.val)
			} else {
				d.errorf(deref(p.val), "%s.default_tier: %q is not a tier (want budget, standard or premium)", what, s)
			}
		}
	}
	if p, has := f["max_retries"]; has {
		if v, ok := d.intRange(p.val, what+".max_retries", 0, MaxRetriesLimit); ok {
			pr.MaxRetries = v
		}
	}
	if p, has := f["request_timeout"]; has {
		if v, ok := d.duration(p.val, what+".request_timeout"); ok {
			if v <= 0 {
				d.errorf(deref(p.val), "%s.request_timeout: must be positive, got %s", what, v)
			} else {
				pr.RequestTimeout = v
			}
		}
	}
	if p, has := f["context_window_limit"]; has {
		if v, ok := d.intRange(p.val, what+".context_window_limit", 0, maxInt); ok {
			pr.ContextWindowLimit = v
		}
	}
	if p, has := f["alerts"]; has {
		d.alerts(&pr.Alerts, p.val, what+".alerts")
	}
	return tierNode
}

// alerts reads the thresholds; 0 turns an alert off.
func (d *decoder) alerts(a *Alerts, n *yaml.Node, what string) {
	f := d.fields(n, what, "fallback_rate", "latency_p95", "monthly_budget_usd")
	if p, has := f["fallback_rate"]; has {
		if r, ok := d.decimal(p.val, what+".fallback_rate"); ok {
			if r.Sign() < 0 || r.Cmp(bigOne) > 0 {
				d.errorf(deref(p.val), "%s.fallback_rate: must be between 0 and 1 (a fraction of requests), got %s", what, deref(p.val).Value)
			} else {
				a.FallbackRate, _ = r.Float64()
			}
		}
	}
	if p, has := f["latency_p95"]; has {
		if v, ok := d.duration(p.val, what+".latency_p95"); ok {
			if v < 0 {
				d.errorf(deref(p.val), "%s.latency_p95: must not be negative, got %s", what, v)
			} else {
				a.LatencyP95 = v
			}
		}
	}
	if p, has := f["monthly_budget_usd"]; has {
		if v, ok := d.scaled(p.val, what+".monthly_budget_usd", 9, "$0.000000001"); ok {
			a.MonthlyBudget = meter.Nanos(v)
			a.MonthlyBudgetUSD = a.MonthlyBudget.USD()
		}
	}
}
