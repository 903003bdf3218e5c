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
		for _, name := range Profiles {
			if _, ok := c.Profile(name); !ok {
				t.Errorf("profile %s missing", name)
			}
		}
	})
}
