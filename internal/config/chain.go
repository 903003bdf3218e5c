package config

import (
	"slices"
	"sort"
)

// route holds, for one client-facing name, the chain per tier in the order
// of Tiers. Chains are shared slices.
type route struct {
	chains [3][]string
}

// tierIndex maps a tier name to its index in Tiers, or -1.
func tierIndex(tier string) int {
	switch tier {
	case TierBudget:
		return 0
	case TierStandard:
		return 1
	case TierPremium:
		return 2
	}
	return -1
}

// precompute builds the lookup tables behind Chain and ClientModels. It runs
// once, on a validated Config, before the Config is shared.
func (c *Config) precompute() {
	c.routes = make(map[string]*route, len(c.Models)+len(c.Aliases)+1)
	for name, m := range c.Models {
		chain := append(make([]string, 0, 1+len(m.Fallbacks)), name)
		chain = append(chain, m.Fallbacks...)
		c.routes[name] = &route{chains: [3][]string{chain, chain, chain}}
	}
	auto := &route{}
	for i, t := range Tiers {
		auto.chains[i] = c.Tiers[t]
	}
	c.routes[AutoAlias] = auto
	for name, byTier := range c.Aliases {
		r := &route{}
		for i, t := range Tiers {
			if ch, ok := byTier[t]; ok {
				r.chains[i] = ch
			} else {
				r.chains[i] = c.Tiers[t]
			}
		}
		c.routes[name] = r
	}
	c.clientModels = c.listClientModels()
	c.precomputeEffective()
}

// Profile returns the named profile (dev, staging or production).
func (c *Config) Profile(name string) (*Profile, bool) {
	p, ok := c.Profiles[name]
	return p, ok && p != nil
}

// Chain returns the ordered model names that serve name in tier: for an
// alias, its entry for the tier or else the tier's chain; for AutoAlias, the
// tier's chain; for a model, the model followed by its Fallbacks (the same in
// every tier; fallbacks of fallbacks are not followed). ok is false when name
// is unknown, tier is not one of Tiers, or the chain is empty.
//
// It is on the request path: on a Config from Load or Parse it is one map
// lookup and does not allocate. The returned slice is shared: do not modify it.
func (c *Config) Chain(name, tier string) (chain []string, ok bool) {
	i := tierIndex(tier)
	if i < 0 {
		return nil, false
	}
	if c.routes == nil {
		return c.slowChain(name, tier)
	}
	r, found := c.routes[name]
	if !found {
		return nil, false
	}
	chain = r.chains[i]
	return chain, len(chain) > 0
}

// slowChain is Chain for a Config built by hand, without precomputed routes.
func (c *Config) slowChain(name, tier string) ([]string, bool) {
	var chain []string
	if byTier, isAlias := c.Aliases[name]; isAlias || name == AutoAlias {
		var explicit bool
		if chain, explicit = byTier[tier]; !explicit {
			chain = c.Tiers[tier]
		}
	} else if m, isModel := c.Models[name]; isModel {
		chain = append([]string{name}, m.Fallbacks...)
	}
	return chain, len(chain) > 0
}

// ClientModels returns the sorted names a client may ask for: the models, the
// aliases, and AutoAlias when there are models. The slice is the caller's.
func (c *Config) ClientModels() []string {
	if c.clientModels != nil {
		return slices.Clone(c.clientModels)
	}
	return c.listClientModels()
}

func (c *Config) listClientModels() []string {
	names := make([]string, 0, len(c.Models)+len(c.Aliases)+1)
	for name := range c.Models {
		names = append(names, name)
	}
	for name := range c.Aliases {
		names = append(names, name)
	}
	if len(c.Models) > 0 {
		names = append(names, AutoAlias)
	}
	sort.Strings(names)
	return names
}
