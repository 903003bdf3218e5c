package config

import (
	"os"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes. It must never panic, and whatever it
// accepts must be internally consistent: every chain it serves names defined
// models, and every problem has a severity and a message.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		base,
		chainSrc,
		"",
		"---\n",
		"providers: {p: {kind: mock}}\n",
		"a: &x [*x]\n",
		"models: &m {m: *m}\n",
		"providers:\n  p:\n    kind: openai\n    base_url: ${U:-http://h}\n    api_keys: [\"${K}\"]\n",
		base + "aliases:\n  chat: {budget: [m, m]}\nprofiles: {dev: {alerts: {monthly_budget_usd: 1e400}}}\n",
		base + "server: {max_body_bytes: 99999999999GiB}\n",
		base + "  n:\n    deployments:\n      - {id: a, provider: p, weight: 3}\n      - {provider: p, upstream: x}\n" +
			"    price: 0\n    balancing: latency\n    hold_back: off\n    timeouts: {idle: 5s, total: 9s}\n" +
			"profiles:\n  production:\n    criticality: {background: standard}\n    timeouts: {first_byte: 30s}\n" +
			"    hold_back: {tokens: 3}\n    breaker: {failures: 2, error_rate: 0.5}\n",
		forSrc,
		"\t\x00: [\n",
	} {
		f.Add([]byte(seed))
	}
	for _, path := range []string{"../../examples/tollgate.yaml", "../../examples/local-mock.yaml"} {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	lookup := envOf(map[string]string{"K": "k", "OPENAI_API_KEY": "k", "DEEPSEEK_API_KEY": "k", "ANTHROPIC_API_KEY": "k"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, problems, err := Parse("f.yaml", data, lookup)
		for _, p := range problems {
			if p.Message == "" || (p.Severity != Warning && p.Severity != Error) {
				t.Errorf("malformed problem %#v", p)
			}
		}
		if (err == nil) != (Errors(problems) == 0) || (err == nil) != (c != nil) {
			t.Fatalf("Parse: err %v with %d errors and Config %v", err, Errors(problems), c != nil)
		}
		if c == nil {
			return
		}
		for _, name := range c.ClientModels() {
			for _, tier := range Tiers {
				chain, _ := c.Chain(name, tier)
				for _, m := range chain {
					if c.Models[m] == nil {
						t.Errorf("Chain(%q, %q) = %q names undefined model %q", name, tier, chain, m)
					}
				}
			}
		}
		ids := make(map[string]bool)
		for name, m := range c.Models {
			if len(m.Deployments) == 0 || m.Provider != m.Deployments[0].Provider || m.Upstream != m.Deployments[0].Upstream {
				t.Fatalf("model %s: Provider %q, Upstream %q, Deployments %v", name, m.Provider, m.Upstream, m.Deployments)
			}
			for _, dep := range m.Deployments {
				if dep.Model != name || ids[dep.ID] || dep.Weight < 1 || dep.Weight > MaxWeight || c.Providers[dep.Provider] == nil {
					t.Errorf("model %s: bad deployment %+v", name, dep)
				}
				ids[dep.ID] = true
			}
		}
		for _, name := range Profiles {
			p, ok := c.Profile(name)
			if !ok {
				t.Errorf("profile %s missing", name)
				continue
			}
			for _, crit := range Criticalities {
				if !contains(Tiers, p.Criticality[crit]) {
					t.Errorf("profile %s: criticality %s maps to %q", name, crit, p.Criticality[crit])
				}
			}
			for _, m := range c.Models {
				if e := p.For(m); e.Timeouts.Total <= 0 || e.Timeouts.Connect <= 0 || !contains(ContextPolicies, e.ContextPolicy) {
					t.Errorf("profile %s, model %s: For = %+v", name, m.Name, e)
				}
			}
		}
	})
}
