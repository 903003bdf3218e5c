package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const chainSrc = `providers:
  p: {kind: mock}
models:
  cheap: {provider: p, price: 0}
  mid: {provider: p, price: 0}
  top: {provider: p, price: 0, fallbacks: [mid]}
  emb: {provider: p, type: embedding, price: 0}
tiers:
  budget: [cheap, mid]
  standard: [mid, cheap]
  premium: [top, mid]
aliases:
  chat:
    budget: cheap
    premium: [top, cheap]
  embed: emb
`

func TestChain(t *testing.T) {
	parsed, _ := mustParse(t, chainSrc, noEnv)
	// The same config built by hand has no precomputed routes: Chain must
	// give the same answers on its slow path.
	byHand := &Config{
		Models: map[string]*Model{
			"cheap": {Name: "cheap"}, "mid": {Name: "mid"}, "top": {Name: "top", Fallbacks: []string{"mid"}}, "emb": {Name: "emb"},
		},
		Tiers: map[string][]string{"budget": {"cheap", "mid"}, "standard": {"mid", "cheap"}, "premium": {"top", "mid"}},
		Aliases: map[string]map[string][]string{
			"chat":  {"budget": {"cheap"}, "premium": {"top", "cheap"}},
			"embed": {"budget": {"emb"}, "standard": {"emb"}, "premium": {"emb"}},
		},
	}
	tests := []struct {
		name, tier string
		want       []string
		wantOK     bool
	}{
		{"chat", "budget", []string{"cheap"}, true},
		{"chat", "standard", []string{"mid", "cheap"}, true}, // no entry: the tier's chain
		{"chat", "premium", []string{"top", "cheap"}, true},
		{"embed", "standard", []string{"emb"}, true},
		{"auto", "budget", []string{"cheap", "mid"}, true},
		{"auto", "premium", []string{"top", "mid"}, true},
		{"top", "budget", []string{"top", "mid"}, true}, // a model: itself + fallbacks, in any tier
		{"mid", "premium", []string{"mid"}, true},
		{"unknown", "budget", nil, false},
		{"chat", "gold", nil, false},
		{"", "budget", nil, false},
	}
	for _, cfg := range []struct {
		name string
		c    *Config
	}{{"parsed", parsed}, {"by hand", byHand}} {
		for _, tt := range tests {
			t.Run(cfg.name+"/"+tt.name+"/"+tt.tier, func(t *testing.T) {
				got, ok := cfg.c.Chain(tt.name, tt.tier)
				if ok != tt.wantOK {
					t.Errorf("Chain(%q, %q) ok = %v, want %v", tt.name, tt.tier, ok, tt.wantOK)
				}
				if diff := cmp.Diff(got, tt.want); diff != "" {
					t.Errorf("Chain(%q, %q) (-got +want):\n%s", tt.name, tt.tier, diff)
				}
			})
		}
	}
}

// TestChainNoAlloc holds Chain to its hot-path promise.
func TestChainNoAlloc(t *testing.T) {
	c, _ := mustParse(t, chainSrc, noEnv)
	for _, name := range []string{"chat", "auto", "top", "unknown"} {
		allocs := testing.AllocsPerRun(100, func() { c.Chain(name, TierStandard) })
		if allocs != 0 {
			t.Errorf("Chain(%q, standard) allocates %v times, want 0", name, allocs)
		}
	}
}

func BenchmarkChain(b *testing.B) {
	c, _, err := Parse("b.yaml", []byte(chainSrc), noEnv)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c.Chain("chat", TierPremium)
	}
}

func TestClientModels(t *testing.T) {
	c, _ := mustParse(t, chainSrc, noEnv)
	want := []string{"auto", "chat", "cheap", "emb", "embed", "mid", "top"}
	got := c.ClientModels()
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("ClientModels() (-got +want):\n%s", diff)
	}
	got[0] = "mangled"
	if c.ClientModels()[0] != "auto" {
		t.Error("ClientModels() returned the Config's own slice; a caller changed it")
	}
	empty, _ := mustParse(t, "providers: {p: {kind: mock}}\n", noEnv)
	if got := empty.ClientModels(); len(got) != 0 {
		t.Errorf("ClientModels() with no models = %q, want none (not even auto)", got)
	}
}

func TestProfile(t *testing.T) {
	c, _ := mustParse(t, base, noEnv)
	for _, name := range Profiles {
		if p, ok := c.Profile(name); !ok || p.Name != name {
			t.Errorf("Profile(%q) = %v, %v; want the %s profile", name, p, ok, name)
		}
	}
	if p, ok := c.Profile("prod"); ok {
		t.Errorf(`Profile("prod") = %v, true; want false`, p)
	}
}
