package config

import (
	"fmt"
	"net/url"
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
	DefaultAlertErrorRate   = 0.05
	DefaultAlertBreakerOpen = time.Minute
	DefaultAlertWindow      = 5 * time.Minute
	DefaultAlertMinRequests = 20
	DefaultAlertCooldown    = 15 * time.Minute
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
			ErrorRate:        DefaultAlertErrorRate,
			BreakerOpen:      DefaultAlertBreakerOpen,
			Window:           DefaultAlertWindow,
			MinRequests:      DefaultAlertMinRequests,
			Cooldown:         DefaultAlertCooldown,
		},
		Criticality: make(map[string]string, len(Criticalities)),
		Timeouts: Timeouts{
			Connect:   DefaultConnectTimeout,
			FirstByte: DefaultFirstByteTimeout,
			Idle:      DefaultIdleTimeout,
		},
		ContextPolicy: DefaultContextPolicy,
		RetryBudget:   DefaultRetryBudget,
		Breaker:       DefaultBreaker,
	}
}

// finish fills what depends on other keys of the same profile: the total
// timeout is request_timeout, and criticality standard follows default_tier.
func (pr *Profile) finish() {
	pr.Timeouts.Total = pr.RequestTimeout
	for crit, tier := range map[string]string{"critical": TierPremium, "standard": pr.DefaultTier, "background": TierBudget} {
		if pr.Criticality[crit] == "" {
			pr.Criticality[crit] = tier
		}
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

// finishProfiles completes every profile, written or not.
func finishProfiles(c *Config) {
	for _, name := range Profiles {
		c.Profiles[name].finish()
	}
}

func (d *decoder) profile(pr *Profile, q pair) (tierNode *yaml.Node) {
	what := "profiles." + q.name
	f := d.fields(q.val, what, "default_tier", "max_retries", "request_timeout", "context_window_limit", "alerts",
		"criticality", "timeouts", "context_policy", "hold_back", "retry_budget", "breaker")
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
		if v, ok := d.positiveDuration(p.val, what+".request_timeout"); ok {
			pr.RequestTimeout = v
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
	d.profilePolicies(pr, f, what)
	return tierNode
}

// profilePolicies reads the per-request policies every model inherits.
func (d *decoder) profilePolicies(pr *Profile, f map[string]pair, what string) {
	if p, has := f["criticality"]; has {
		d.criticality(pr, p.val, what+".criticality")
	}
	if p, has := f["timeouts"]; has {
		nodes := d.timeouts(&pr.Timeouts, p.val, what+".timeouts", true)
		d.exceeds(nodes, pr.Timeouts, what+".timeouts", pr.RequestTimeout, "the profile's request_timeout")
	}
	if p, has := f["context_policy"]; has {
		if s, ok := d.oneOf(p.val, what+".context_policy", "policy", ContextPolicies); ok {
			pr.ContextPolicy = s
		}
	}
	if p, has := f["hold_back"]; has {
		if hb, _, ok := d.holdBack(p.val, what+".hold_back"); ok {
			pr.HoldBack = hb // off leaves it unset, as by default
		}
	}
	if p, has := f["retry_budget"]; has {
		if v, ok := d.fraction(p.val, what+".retry_budget", "a share of attempts", false); ok {
			pr.RetryBudget = v
		}
	}
	if p, has := f["breaker"]; has {
		d.breaker(&pr.Breaker, p.val, what+".breaker")
	}
}

// criticality reads the criticality → tier mapping; finish fills the rest.
func (d *decoder) criticality(pr *Profile, n *yaml.Node, what string) {
	f := d.fields(n, what, Criticalities...)
	for _, crit := range Criticalities {
		p, has := f[crit]
		if !has {
			continue
		}
		s, ok := d.str(p.val, what+"."+crit)
		switch {
		case !ok:
		case !contains(Tiers, s):
			d.errorf(deref(p.val), "%s.%s: %q is not a tier (want %s)", what, crit, s, orList(Tiers))
		default:
			pr.Criticality[crit] = s
		}
	}
}

// alerts reads the alert rules over a's defaults; a threshold of 0 turns its
// alert off.
func (d *decoder) alerts(a *Alerts, n *yaml.Node, what string) {
	f := d.fields(n, what, "fallback_rate", "latency_p95", "monthly_budget_usd",
		"error_rate", "breaker_open", "window", "min_requests", "cooldown", "webhooks")
	if p, has := f["fallback_rate"]; has {
		if v, ok := d.fraction(p.val, what+".fallback_rate", "a fraction of requests", false); ok {
			a.FallbackRate = v
		}
	}
	if p, has := f["latency_p95"]; has {
		if v, ok := d.nonNegativeDuration(p.val, what+".latency_p95"); ok {
			a.LatencyP95 = v
		}
	}
	if p, has := f["monthly_budget_usd"]; has {
		if v, ok := d.scaled(p.val, what+".monthly_budget_usd", 9, "$0.000000001"); ok {
			a.MonthlyBudget = meter.Nanos(v)
			a.MonthlyBudgetUSD = a.MonthlyBudget.USD()
		}
	}
	if p, has := f["error_rate"]; has {
		if v, ok := d.fraction(p.val, what+".error_rate", "a fraction of requests", false); ok {
			a.ErrorRate = v
		}
	}
	if p, has := f["breaker_open"]; has {
		if v, ok := d.nonNegativeDuration(p.val, what+".breaker_open"); ok {
			a.BreakerOpen = v
		}
	}
	d.alertWindow(a, f, what)
	if p, has := f["webhooks"]; has {
		a.Webhooks = d.webhooks(p.val, what+".webhooks")
	}
}

// alertWindow reads the keys that shape when rate alerts fire and repeat.
func (d *decoder) alertWindow(a *Alerts, f map[string]pair, what string) {
	if p, has := f["window"]; has {
		if v, ok := d.positiveDuration(p.val, what+".window"); ok {
			a.Window = v
		}
	}
	if p, has := f["min_requests"]; has {
		if v, ok := d.intRange(p.val, what+".min_requests", 1, maxInt); ok {
			a.MinRequests = v
		}
	}
	if p, has := f["cooldown"]; has {
		if v, ok := d.positiveDuration(p.val, what+".cooldown"); ok {
			a.Cooldown = v
		}
	}
}

// nonNegativeDuration decodes a duration that may be 0 (an alert turned off)
// but not below.
func (d *decoder) nonNegativeDuration(n *yaml.Node, what string) (time.Duration, bool) {
	v, ok := d.duration(n, what)
	if !ok {
		return 0, false
	}
	if v < 0 {
		d.errorf(deref(n), "%s: must not be negative, got %s", what, v)
		return 0, false
	}
	return v, true
}

// webhooks reads the list of alert webhooks. Bad entries are reported and
// left out.
func (d *decoder) webhooks(n *yaml.Node, what string) []Webhook {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: want a list of {url, format} mappings, got %s", what, describe(n))
		return nil
	}
	var out []Webhook
	for i, item := range n.Content {
		if w, ok := d.webhook(item, fmt.Sprintf("%s[%d]", what, i)); ok {
			out = append(out, w)
		}
	}
	return out
}

func (d *decoder) webhook(n *yaml.Node, what string) (Webhook, bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: want a mapping with url and format, got %s", what, describe(n))
		return Webhook{}, false
	}
	f := d.fields(n, what, "url", "format")
	w, ok := Webhook{Format: WebhookJSON}, true
	if p, has := f["url"]; has {
		s, good := d.str(p.val, what+".url")
		if good {
			good = d.webhookURL(deref(p.val), what+".url", s)
		}
		w.URL, ok = s, good
	} else {
		d.errorf(n, "%s: url is required", what)
		ok = false
	}
	if p, has := f["format"]; has {
		s, good := d.oneOf(p.val, what+".format", "format", WebhookFormats)
		w.Format, ok = s, ok && good
	}
	return w, ok
}

// webhookURL checks that s is an absolute http or https URL. Its text is
// never quoted back: the path or query may be a secret.
func (d *decoder) webhookURL(n *yaml.Node, what, s string) bool {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		d.errorf(n, "%s: want an absolute http or https URL such as https://hooks.example.com/alerts", what)
	case u.Fragment != "":
		d.errorf(n, "%s: must not have a fragment (#…); it is never sent", what)
	default:
		return true
	}
	return false
}
