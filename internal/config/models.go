package config

import (
	"fmt"

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
}

func (d *decoder) models(c *Config, p pair) map[string]*modelSrc {
	src := make(map[string]*modelSrc)
	if p.val == nil {
		return src
	}
	ps, _ := d.entries(p.val, "models")
	for _, q := range ps {
		m, fallbacks := d.model(c, q)
		if m == nil {
			continue
		}
		c.Models[q.name] = m
		src[q.name] = &modelSrc{key: q.key, fallbacks: fallbacks}
	}
	// Fallbacks name other models, and must agree with their type: a second pass.
	for _, q := range ps {
		if s := src[q.name]; s != nil && s.fallbacks != nil {
			d.fallbacks(c, c.Models[q.name], s.fallbacks)
		}
	}
	return src
}

func (d *decoder) model(c *Config, q pair) (*Model, *yaml.Node) {
	what := "models." + q.name
	switch q.name {
	case "":
		d.errorf(q.key, "models: a model name must not be empty")
		return nil, nil
	case AutoAlias:
		d.errorf(q.key, "models: the name %q is reserved: it means the tier's own chain", AutoAlias)
		return nil, nil
	}
	f := d.fields(q.val, what, "provider", "upstream", "type", "context_window", "max_output_tokens", "price", "fallbacks")
	m := &Model{Name: q.name, Upstream: q.name}

	var pr *Provider
	if p, has := f["provider"]; has {
		if s, ok := d.str(p.val, what+".provider"); ok {
			m.Provider = s
			if pr = c.Providers[s]; pr == nil {
				d.errorf(deref(p.val), "%s.provider: provider %q is not defined", what, s)
			}
		}
	} else {
		d.errorf(q.key, "%s: provider is required", what)
	}
	if u, has := f["upstream"]; has {
		if s, ok := d.str(u.val, what+".upstream"); ok {
			if s == "" {
				d.errorf(deref(u.val), "%s.upstream: must not be empty (leave it out to use the model name)", what)
			} else {
				m.Upstream = s
			}
		}
	}

	entry, found := catalogEntry(pr, m.Upstream)
	d.modelType(m, q.key, f, what, entry, found)
	m.ContextWindow = entry.MaxInputTokens
	if p, has := f["context_window"]; has {
		m.ContextWindow, _ = d.intRange(p.val, what+".context_window", 0, maxInt)
	}
	m.MaxOutputTokens = entry.MaxOutputTokens
	if p, has := f["max_output_tokens"]; has {
		m.MaxOutputTokens, _ = d.intRange(p.val, what+".max_output_tokens", 0, maxInt)
	}
	d.price(m, pr, f["price"], q.key, what, entry, found)
	return m, f["fallbacks"].val
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
