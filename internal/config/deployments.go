package config

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// MaxWeight is the largest deployment weight. A bound keeps the weighted
// pick's arithmetic small and catches a slip such as 1e9.
const MaxWeight = 1000

// deploymentSrc is one deployment as read, with what later checks need.
type deploymentSrc struct {
	*Deployment
	pr       *Provider  // nil when the provider is undefined or missing
	at       *yaml.Node // the list item, or the model's key for the top-level form
	provider *yaml.Node // the provider value, nil when missing
	id       *yaml.Node // the id value, nil when defaulted
	what     string     // "models.M" or "models.M.deployments[i]"
}

// deployments reads a model's deployments: the deployments list, or the
// single deployment written as provider/upstream at the model's top level.
// Every one gets an ID, unique across the file.
func (d *decoder) deployments(c *Config, q pair, f map[string]pair, what string) []deploymentSrc {
	list, hasList := f["deployments"]
	_, hasProvider := f["provider"]
	_, hasUpstream := f["upstream"]
	var deps []deploymentSrc
	switch {
	case hasList && (hasProvider || hasUpstream):
		d.errorf(list.key, "%s: set provider/upstream or deployments, not both", what)
		return nil
	case hasList:
		deps = d.deploymentList(c, q.name, list, what)
	default:
		dep, ok := d.deployment(c, q.name, q.key, f, what)
		if !ok {
			return nil
		}
		deps = []deploymentSrc{dep}
	}
	d.deploymentIDs(q.name, deps)
	return deps
}

func (d *decoder) deploymentList(c *Config, model string, p pair, what string) []deploymentSrc {
	n := deref(p.val)
	switch {
	case isNull(n) || n.Kind == yaml.SequenceNode && len(n.Content) == 0:
		d.errorf(n, "%s.deployments: empty list; give at least one {provider: …}", what)
		return nil
	case n.Kind != yaml.SequenceNode:
		d.errorf(n, "%s.deployments: want a list, got %s", what, describe(n))
		return nil
	}
	deps := make([]deploymentSrc, 0, len(n.Content))
	for i, item := range n.Content {
		iwhat := fmt.Sprintf("%s.deployments[%d]", what, i)
		f := d.fields(item, iwhat, "id", "provider", "upstream", "weight")
		if item := deref(item); item.Kind != yaml.MappingNode && !isNull(item) {
			continue // fields reported it
		}
		dep, ok := d.deployment(c, model, deref(item), f, iwhat)
		if !ok {
			continue
		}
		if q, has := f["id"]; has {
			if s, good := d.str(q.val, iwhat+".id"); good && s == "" {
				d.errorf(deref(q.val), "%s.id: must not be empty (leave it out for the default)", iwhat)
			} else if good {
				dep.ID, dep.id = s, deref(q.val)
			}
		}
		if q, has := f["weight"]; has {
			dep.Weight, _ = d.intRange(q.val, iwhat+".weight", 1, MaxWeight)
		}
		for _, prev := range deps {
			if prev.pr != nil && prev.pr == dep.pr && prev.Upstream == dep.Upstream {
				d.warnf(dep.at, "%s: same provider and upstream as %s; one deployment with a larger weight does the same", iwhat, prev.what)
				break
			}
		}
		deps = append(deps, dep)
	}
	return deps
}

// deployment reads provider and upstream from f, at a model's top level or in
// a deployments item. ok is false when f has no usable provider.
func (d *decoder) deployment(c *Config, model string, at *yaml.Node, f map[string]pair, what string) (deploymentSrc, bool) {
	dep := deploymentSrc{
		Deployment: &Deployment{Model: model, Upstream: model, Weight: 1},
		at:         at,
		what:       what,
	}
	if u, has := f["upstream"]; has {
		if s, ok := d.str(u.val, what+".upstream"); ok {
			if s == "" {
				d.errorf(deref(u.val), "%s.upstream: must not be empty (leave it out to use the model name)", what)
			} else {
				dep.Upstream = s
			}
		}
	}
	p, has := f["provider"]
	if !has {
		d.errorf(at, "%s: provider is required", what)
		return dep, false
	}
	s, ok := d.str(p.val, what+".provider")
	if !ok {
		return dep, false
	}
	dep.Provider, dep.provider = s, deref(p.val)
	if dep.pr = c.Providers[s]; dep.pr == nil {
		d.errorf(dep.provider, "%s.provider: provider %q is not defined", what, s)
	}
	return dep, true
}

// deploymentIDs gives defaulted deployments their ID ("MODEL" for one,
// "MODEL#N" for several) and reports an ID already used in the file, at the
// later use: breakers and logs name deployments by ID, so two must not share.
func (d *decoder) deploymentIDs(model string, deps []deploymentSrc) {
	for i := range deps {
		dep := &deps[i]
		at := dep.id
		if at == nil {
			at = dep.at
			dep.ID = model
			if len(deps) > 1 {
				dep.ID = model + "#" + strconv.Itoa(i+1)
			}
		}
		first, dup := d.deploymentLines[dep.ID]
		switch {
		case !dup:
			d.deploymentLines[dep.ID] = at.Line
		case dep.id != nil:
			d.errorf(at, "%s.id: deployment id %q is already used at line %d; ids are unique across the file", dep.what, dep.ID, first)
		default:
			d.errorf(at, "%s: its default deployment id %q is already used at line %d; give it an id", dep.what, dep.ID, first)
		}
	}
}

// anthropicEmbeddings reports deployments of an embedding model on an
// anthropic provider: Anthropic has no embeddings API, so every such request
// would fail upstream.
func (d *decoder) anthropicEmbeddings(m *Model, deps []deploymentSrc) {
	if m.Type != TypeEmbedding {
		return
	}
	for _, dep := range deps {
		if dep.pr != nil && dep.pr.Kind == KindAnthropic {
			d.errorf(dep.provider, "%s.provider: %s is an anthropic provider, and Anthropic has no embeddings API (%s is an embedding model)",
				dep.what, dep.Provider, m.Name)
		}
	}
}
