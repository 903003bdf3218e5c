package config

import (
	"go.yaml.in/yaml/v3"
)

// maxAdvisedChain is the longest chain that draws no warning: the design
// note's pitfall 3 advises a primary plus at most one fallback, because long
// chains add latency and hide a failing provider.
const maxAdvisedChain = 2

// chain reads a chain of model names (a list, or one string) and checks that
// each names a defined model and none repeats. ok is false when any of that
// failed; names then may hold undefined names.
func (d *decoder) chain(c *Config, n *yaml.Node, what string, allowEmpty bool) (names []string, nodes []*yaml.Node, ok bool) {
	names, nodes, ok = d.stringList(n, what)
	if !ok {
		return nil, nil, false
	}
	if len(names) == 0 && !allowEmpty {
		d.errorf(deref(n), "%s: empty chain; name at least one model", what)
		return nil, nil, false
	}
	seen := make(map[string]bool, len(names))
	for i, name := range names {
		switch {
		case c.Models[name] != nil:
			if seen[name] {
				d.errorf(nodes[i], "%s: model %s appears twice", what, name)
				ok = false
			}
			seen[name] = true
		case name == AutoAlias:
			d.errorf(nodes[i], "%s: %q is not a model; chains name models", what, name)
			ok = false
		case d.aliasNames[name]:
			d.errorf(nodes[i], "%s: %s is an alias; chains name models, not aliases", what, name)
			ok = false
		default:
			d.errorf(nodes[i], "%s: model %q is not defined", what, name)
			ok = false
		}
	}
	return names, nodes, ok
}

// longChain warns about a chain longer than maxAdvisedChain.
func (d *decoder) longChain(n *yaml.Node, what string, length int) {
	if length > maxAdvisedChain {
		d.warnf(n, "%s: a chain of %d models; the design note advises a primary plus at most one fallback", what, length)
	}
}

func (d *decoder) tiers(c *Config, p pair) {
	if p.val == nil {
		return
	}
	ps, _ := d.entries(p.val, "tiers")
	for _, q := range ps {
		if !contains(Tiers, q.name) {
			d.errorf(q.key, "tiers: unknown tier %q (want budget, standard or premium)", q.name)
			continue
		}
		what := "tiers." + q.name
		names, nodes, ok := d.chain(c, q.val, what, false)
		c.Tiers[q.name] = nil // defined, even if broken: no "not defined" on top
		if !ok {
			continue
		}
		for i, name := range names {
			if c.Models[name].Type == TypeEmbedding {
				d.errorf(nodes[i], "%s: %s is an embedding model; tiers serve chat completions", what, name)
				ok = false
			}
		}
		if ok {
			d.longChain(deref(q.val), what, len(names))
			c.Tiers[q.name] = names
		}
	}
}

func (d *decoder) aliases(c *Config, p pair, models map[string]*modelSrc) {
	if p.val == nil {
		return
	}
	ps, _ := d.entries(p.val, "aliases")
	for _, q := range ps {
		what := "aliases." + q.name
		switch {
		case q.name == "":
			d.errorf(q.key, "aliases: an alias name must not be empty")
			continue
		case q.name == AutoAlias:
			d.errorf(q.key, "aliases: the name %q is reserved: it means the tier's own chain", AutoAlias)
			continue
		case models[q.name] != nil:
			d.errorf(q.key, "aliases: alias %s shadows the model of the same name (line %d); rename one", q.name, models[q.name].key.Line)
			continue
		}
		if entry, ok := d.alias(c, q, what); ok {
			c.Aliases[q.name] = entry
		}
	}
}

// alias reads one alias: a mapping tier → chain, or a single chain that
// serves every tier.
func (d *decoder) alias(c *Config, q pair, what string) (map[string][]string, bool) {
	entry := make(map[string][]string, len(Tiers))
	var all []string
	var allNodes []*yaml.Node
	ok := true
	n := deref(q.val)
	if n.Kind == yaml.MappingNode {
		tps, _ := d.entries(n, what)
		if len(tps) == 0 {
			d.errorf(q.key, "%s: maps no tier; give a chain per tier (budget, standard, premium) or one chain for all", what)
			return nil, false
		}
		for _, tp := range tps {
			if !contains(Tiers, tp.name) {
				d.errorf(tp.key, "%s: unknown tier %q (want budget, standard or premium)", what, tp.name)
				ok = false
				continue
			}
			names, nodes, good := d.chain(c, tp.val, what+"."+tp.name, false)
			if !good {
				ok = false
				continue
			}
			d.longChain(deref(tp.val), what+"."+tp.name, len(names))
			entry[tp.name] = names
			all, allNodes = append(all, names...), append(allNodes, nodes...)
		}
	} else {
		names, nodes, good := d.chain(c, n, what, false)
		if !good {
			return nil, false
		}
		d.longChain(n, what, len(names))
		for _, t := range Tiers {
			entry[t] = names
		}
		all, allNodes = names, nodes
	}
	if !ok {
		return nil, false
	}
	first := c.Models[all[0]]
	for i, name := range all {
		if m := c.Models[name]; m.Type != first.Type && m.Type != "" && first.Type != "" {
			d.errorf(allNodes[i], "%s: mixes %s and %s models (%s is %s, %s is %s)", what, first.Type, m.Type, first.Name, first.Type, name, m.Type)
			return nil, false
		}
	}
	if first.Type == TypeEmbedding && len(entry) < len(Tiers) {
		d.errorf(q.key, "%s: an embedding alias must give a chain for every tier, since a tier left out falls back to that tier's chat chain", what)
		return nil, false
	}
	return entry, true
}

// nearestTiers lists, per tier, where an undefined tier takes its chain
// from: the nearest defined tier, the cheaper one first.
var nearestTiers = map[string][]string{
	TierBudget:   {TierStandard, TierPremium},
	TierStandard: {TierBudget, TierPremium},
	TierPremium:  {TierStandard, TierBudget},
}

// missingTiers settles tiers the file leaves out. Requests pick a tier by
// profile and by criticality, so every tier must resolve to something: a
// missing tier that some profile's default_tier names (explicitly or by
// default) is an error; any other missing tier takes the nearest defined
// tier's chain, with a warning. With no models at all nothing can be routed,
// and that is a warning only (a file that sets up providers first).
func (d *decoder) missingTiers(c *Config, root *yaml.Node, tiers pair, explicit map[string]*yaml.Node) {
	if len(c.Models) == 0 {
		if Errors(d.problems) == 0 {
			d.warnf(root, "no models are defined; clients can ask for nothing")
		}
		return
	}
	at := root
	if tiers.key != nil {
		at = tiers.key
	}
	defined := make(map[string]bool, len(Tiers))
	for t := range c.Tiers {
		defined[t] = true
	}
	for _, t := range Tiers {
		if defined[t] {
			continue
		}
		if user := profileUsing(c, t); user != "" {
			if n := explicit[user]; n != nil {
				d.errorf(n, "tier %s is not defined, but profile %s uses it as default_tier; define tiers.%s", t, user, t)
			} else {
				d.errorf(at, "tier %s is not defined, but profile %s uses it as default_tier (the default for %s); define tiers.%s or set profiles.%s.default_tier",
					t, user, user, t, user)
			}
			continue
		}
		for _, from := range nearestTiers[t] {
			if defined[from] {
				d.warnf(at, "tier %s is not defined; it uses tier %s's chain", t, from)
				c.Tiers[t] = c.Tiers[from]
				break
			}
		}
	}
}

func profileUsing(c *Config, tier string) string {
	for _, name := range Profiles {
		if p := c.Profiles[name]; p != nil && p.DefaultTier == tier {
			return name
		}
	}
	return ""
}
