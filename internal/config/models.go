package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// Model types: the endpoint a model serves.
const (
	// TypeChat models serve /v1/chat/completions.
	TypeChat = "chat"
	// TypeEmbedding models serve /v1/embeddings.
	TypeEmbedding = "embedding"
)

// Types lists the model types.
var Types = []string{TypeChat, TypeEmbedding}

// mockCatalogHints are searched, in order, for a mock provider's models when
// the provider sets no catalog: so a demo on the mock can show what the same
// traffic would cost on the real thing.
var mockCatalogHints = []string{"openai", "anthropic", "deepseek"}

// modelSrc keeps a model's nodes for the passes that run after all models
// are known.
type modelSrc struct {
	key       *yaml.Node
	fallbacks *yaml.Node // nil when absent
	timeouts  timeoutNodes
}

func (d *decoder) models(c *Config, p pair) map[string]*modelSrc {
	src := make(map[string]*modelSrc)
	if p.val == nil {
		return src
	}
	ps, _ := d.entries(p.val, "models")
	for _, q := range ps {
		m, s := d.model(c, q)
		if m == nil {
			continue
		}
		c.Models[q.name] = m
		src[q.name] = s
	}
	// Fallbacks name other models, and must agree with their type: a second pass.
	for _, q := range ps {
		if s := src[q.name]; s != nil && s.fallbacks != nil {
			d.fallbacks(c, c.Models[q.name], s.fallbacks)
		}
	}
	return src
}

func (d *decoder) model(c *Config, q pair) (*Model, *modelSrc) {
	what := "models." + q.name
	switch q.name {
	case "":
		d.errorf(q.key, "models: a model name must not be empty")
		return nil, nil
	case AutoAlias:
		d.errorf(q.key, "models: the name %q is reserved: it means the tier's own chain", AutoAlias)
		return nil, nil
	}
	f := d.fields(q.val, what, "provider", "upstream", "deployments", "balancing", "type", "context_window", "max_output_tokens",
		"price", "fallbacks", "timeouts", "context_policy", "hold_back", "limits")
	m := &Model{Name: q.name, Upstream: q.name, Balancing: BalanceWeighted}

	// The catalogue is consulted for the first deployment only.
	deps := d.deployments(c, q, f, what)
	var pr *Provider
	if len(deps) > 0 {
		pr, m.Provider, m.Upstream = deps[0].pr, deps[0].Provider, deps[0].Upstream
		m.Deployments = make([]*Deployment, len(deps))
		for i, dep := range deps {
			m.Deployments[i] = dep.Deployment
		}
	}

	entry, found := catalogEntry(pr, m.Upstream)
	d.modelType(m, q.key, f, what, entry, found)
	d.anthropicEmbeddings(m, deps)
	m.ContextWindow = entry.MaxInputTokens
	if p, has := f["context_window"]; has {
		m.ContextWindow, _ = d.intRange(p.val, what+".context_window", 0, maxInt)
	}
	m.MaxOutputTokens = entry.MaxOutputTokens
	if p, has := f["max_output_tokens"]; has {
		m.MaxOutputTokens, _ = d.intRange(p.val, what+".max_output_tokens", 0, maxInt)
	}
	d.price(m, pr, f["price"], q.key, what, entry, found)
	src := &modelSrc{key: q.key, fallbacks: f["fallbacks"].val}
	src.timeouts = d.modelPolicies(m, f, what)
	if p, has := f["limits"]; has {
		m.Limits = d.rateLimits(p.val, what+".limits")
	}
	return m, src
}

// modelPolicies reads the settings a model overrides its profile's with.
func (d *decoder) modelPolicies(m *Model, f map[string]pair, what string) timeoutNodes {
	if p, has := f["balancing"]; has {
		if s, ok := d.oneOf(p.val, what+".balancing", "strategy", Balancings); ok {
			m.Balancing = s
		}
	}
	var nodes timeoutNodes
	if p, has := f["timeouts"]; has {
		nodes = d.timeouts(&m.Timeouts, p.val, what+".timeouts", false)
		if nodes.total != nil {
			// The model's total is the nearer bound: check against it here,
			// and only the total against the profiles' request_timeout.
			d.exceeds(nodes, m.Timeouts, what+".timeouts", m.Timeouts.Total, "the model's total")
			nodes.firstByte, nodes.idle = nil, nil
		}
	}
	if p, has := f["context_policy"]; has {
		if s, ok := d.oneOf(p.val, what+".context_policy", "policy", ContextPolicies); ok {
			m.ContextPolicy = s
		}
	}
	if p, has := f["hold_back"]; has {
		m.HoldBack, m.HoldBackOff, _ = d.holdBack(p.val, what+".hold_back")
	}
	return nodes
}

// catalogEntry looks the upstream model up in the price catalogue under the
// provider's catalog: hint, else its kind; see mockCatalogHints for mock.
func catalogEntry(pr *Provider, upstream string) (meter.CatalogEntry, bool) {
	if pr == nil {
		return meter.CatalogEntry{}, false
	}
	hints := []string{pr.Catalog}
	switch {
	case pr.Catalog != "":
	case pr.Kind == KindMock:
		hints = mockCatalogHints
	default:
		hints = []string{pr.Kind}
	}
	for _, h := range hints {
		if e, ok := meter.LookupCatalog(h, upstream); ok {
			return e, true
		}
	}
	return meter.CatalogEntry{}, false
}

// catalogHint describes where catalogEntry looked, for messages.
func catalogHint(pr *Provider) string {
	switch {
	case pr.Catalog != "":
		return fmt.Sprintf("under %q (the provider's catalog)", pr.Catalog)
	case pr.Kind == KindMock:
		return `under "openai", "anthropic" or "deepseek"`
	}
	return fmt.Sprintf("under %q (the provider's kind; set the provider's catalog: to look elsewhere)", pr.Kind)
}

func (d *decoder) modelType(m *Model, key *yaml.Node, f map[string]pair, what string, entry meter.CatalogEntry, found bool) {
	if p, has := f["type"]; has {
		if s, ok := d.str(p.val, what+".type"); ok {
			if contains(Types, s) {
				m.Type = s
			} else {
				d.errorf(deref(p.val), "%s.type: unknown type %q (want chat or embedding)", what, s)
			}
		}
		return
	}
	m.Type = TypeChat
	switch {
	case !found || entry.Mode == TypeChat:
	case entry.Mode == TypeEmbedding:
		m.Type = TypeEmbedding
	default:
		d.warnf(key, "%s: the price catalogue lists %q with mode %q, neither chat nor embedding; assuming chat (set type: to say so)",
			what, entry.Key, entry.Mode)
	}
}

// price sets m.Price from the file or, when the file has no price, from the
// catalogue. A model priced nowhere is an error: it would bill $0 and escape
// every budget.
func (d *decoder) price(m *Model, pr *Provider, p pair, key *yaml.Node, what string, entry meter.CatalogEntry, found bool) {
	if p.val == nil {
		switch {
		case found && entry.Priced:
			m.Price, m.PriceSource = entry.Price, "catalogue:"+entry.Key
		case pr != nil && !d.badProviders[pr.Name]: // else the provider's error says enough
			d.errorf(key, "model %s has no known price: the price catalogue has no priced entry for %q %s; "+
				"set price: {input: …, output: …} in USD per million tokens, or price: 0 if it is free on purpose",
				m.Name, m.Upstream, catalogHint(pr))
		}
		return
	}
	n := deref(p.val)
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		r, ok := d.decimal(n, what+".price")
		if !ok {
			return
		}
		if r.Sign() != 0 {
			d.errorf(n, "%s.price: a number here can only be 0 (free on purpose); give prices as {input: …, output: …} in USD per million tokens", what)
			return
		}
		m.PriceSource = "free"
		return
	}
	f := d.fields(n, what+".price", "input", "output", "cached_input", "cache_write")
	get := func(k string, required bool, def meter.PerMillion) meter.PerMillion {
		q, has := f[k]
		if !has {
			if required {
				d.errorf(p.key, "%s.price: %s is required (USD per million tokens)", what, k)
			}
			return def
		}
		v, _ := d.scaled(q.val, what+".price."+k, 6, "$0.000001 per million tokens")
		return meter.PerMillion(v)
	}
	m.Price.Input = get("input", true, 0)
	m.Price.Output = get("output", m.Type != TypeEmbedding, 0)
	cached, write := m.Price.Input, m.Price.Input
	if found && entry.HasCachedInput {
		cached = entry.Price.CachedInput
	}
	if found && entry.HasCacheWrite {
		write = entry.Price.CacheWrite
	}
	m.Price.CachedInput = get("cached_input", false, cached)
	m.Price.CacheWrite = get("cache_write", false, write)
	m.PriceSource = "config"
}

func (d *decoder) fallbacks(c *Config, m *Model, n *yaml.Node) {
	what := "models." + m.Name + ".fallbacks"
	names, nodes, ok := d.chain(c, n, what, true)
	if !ok {
		return
	}
	for i, name := range names {
		fb := c.Models[name]
		switch {
		case name == m.Name:
			d.errorf(nodes[i], "%s: a model cannot fall back to itself", what)
			ok = false
		case fb.Type != m.Type && fb.Type != "" && m.Type != "":
			d.errorf(nodes[i], "%s: %s is a %s model but %s is %s", what, name, fb.Type, m.Name, m.Type)
			ok = false
		}
	}
	if !ok {
		return
	}
	d.longChain(deref(n), what, 1+len(names))
	m.Fallbacks = names
}

// modelTimeouts warns about a model's own timeouts that exceed the
// request_timeout of some profile: that bounds the whole request, so there
// it fires first, and the model's value changes nothing. It runs once the
// profiles are read.
func (d *decoder) modelTimeouts(c *Config, src map[string]*modelSrc) {
	for _, name := range slices.Sorted(maps.Keys(src)) {
		m, s := c.Models[name], src[name]
		check := func(n *yaml.Node, k string, v time.Duration) {
			if n == nil {
				return
			}
			var over []string
			for _, p := range Profiles {
				if rt := c.Profiles[p].RequestTimeout; v > rt {
					over = append(over, fmt.Sprintf("%s (%s)", p, rt))
				}
			}
			if len(over) > 0 {
				d.warnf(n, "models.%s.timeouts.%s: %s exceeds the request_timeout of profile %s, which bounds the whole request, "+
					"so there it never fires", name, k, v, strings.Join(over, ", "))
			}
		}
		check(s.timeouts.firstByte, "first_byte", m.Timeouts.FirstByte)
		check(s.timeouts.idle, "idle", m.Timeouts.Idle)
		check(s.timeouts.total, "total", m.Timeouts.Total)
	}
}
