package config

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// Provider kinds: the wire format a provider speaks.
const (
	// KindOpenAI is any OpenAI-compatible API: OpenAI, DeepSeek, Groq, vLLM, Ollama…
	KindOpenAI = "openai"
	// KindAnthropic is Anthropic's Messages API.
	KindAnthropic = "anthropic"
	// KindMock is the built-in fake upstream, or a mock-upstream process at BaseURL.
	KindMock = "mock"
)

// Kinds lists the provider kinds.
var Kinds = []string{KindOpenAI, KindAnthropic, KindMock}

// Upstream protocols: how the gateway talks to a provider.
const (
	// ProtocolHTTP1 is HTTP/1.1 on the gateway's own transport, one
	// connection per request in flight: the least CPU per request.
	ProtocolHTTP1 = "http1"
	// ProtocolHTTP2 is HTTP/2 (h2 over TLS, h2c with prior knowledge over
	// plain http): many requests, long streams above all, share a few
	// connections.
	ProtocolHTTP2 = "http2"
)

// Protocols lists the upstream protocols.
var Protocols = []string{ProtocolHTTP1, ProtocolHTTP2}

// DefaultAnthropicBaseURL is base_url for an anthropic provider that sets none.
const DefaultAnthropicBaseURL = "https://api.anthropic.com"

// DefaultKeyCooldown is how long an API key rests after a 429 that carried no
// Retry-After, unless the provider sets key_cooldown.
const DefaultKeyCooldown = 30 * time.Second

// reservedHeaders may not appear in a provider's headers: the gateway sets
// them per request, and credentials belong in api_key where they are redacted.
var reservedHeaders = map[string]string{
	"Authorization":     "set api_key instead",
	"X-Api-Key":         "set api_key instead",
	"Host":              "the gateway sets it from base_url",
	"Content-Length":    "the gateway sets it",
	"Content-Type":      "the gateway sets it",
	"Transfer-Encoding": "the gateway sets it",
	"Connection":        "hop-by-hop headers are not forwarded",
}

func (d *decoder) providers(c *Config, p pair) {
	if p.val == nil {
		return
	}
	ps, _ := d.entries(p.val, "providers")
	for _, q := range ps {
		if q.name == "" {
			d.errorf(q.key, "providers: a provider name must not be empty")
			continue
		}
		// An invalid provider is kept, so that its models are not also
		// told it is undefined; the Config is discarded anyway.
		pr, ok := d.provider(q)
		c.Providers[q.name] = pr
		if !ok {
			d.badProviders[q.name] = true
		}
	}
}

func (d *decoder) provider(q pair) (*Provider, bool) {
	what := "providers." + q.name
	f := d.fields(q.val, what, "kind", "base_url", "api_key", "api_keys", "headers", "catalog", "key_cooldown", "protocol")
	pr := &Provider{Name: q.name, KeyCooldown: DefaultKeyCooldown, Protocol: ProtocolHTTP1}
	ok := true
	if k, has := f["kind"]; has {
		s, good := d.str(k.val, what+".kind")
		switch {
		case !good:
			ok = false
		case !contains(Kinds, s):
			d.errorf(deref(k.val), "%s.kind: unknown kind %q (want openai, anthropic or mock)", what, s)
			ok = false
		}
		pr.Kind = s
	} else if contains(Kinds, q.name) {
		pr.Kind = q.name // a provider named "anthropic" is of kind anthropic
	} else {
		d.errorf(q.key, "%s: kind is required (openai, anthropic or mock)", what)
		ok = false
	}

	if b, has := f["base_url"]; has {
		s, good := d.str(b.val, what+".base_url")
		if good {
			pr.BaseURL, good = d.baseURL(deref(b.val), what+".base_url", s)
		}
		ok = ok && good
	}
	if pr.BaseURL == "" && ok {
		switch pr.Kind {
		case KindAnthropic:
			pr.BaseURL = DefaultAnthropicBaseURL
		case KindOpenAI:
			d.errorf(q.key, "%s: base_url is required for kind openai (e.g. https://api.openai.com/v1)", what)
			ok = false
		}
	}

	ok = d.apiKeys(pr, q, f) && ok
	if h, has := f["headers"]; has {
		hs, good := d.headers(h.val, what+".headers")
		pr.Headers, ok = hs, ok && good
	}
	if cat, has := f["catalog"]; has {
		s, good := d.str(cat.val, what+".catalog")
		if good && !meter.CatalogHasProvider(s) {
			d.errorf(deref(cat.val), "%s.catalog: %q is not a litellm_provider in the price catalogue (e.g. openai, deepseek, groq, together_ai)", what, s)
			good = false
		}
		pr.Catalog, ok = s, ok && good
	}
	if k, has := f["key_cooldown"]; has {
		v, good := d.positiveDuration(k.val, what+".key_cooldown")
		if good {
			pr.KeyCooldown = v
		}
		ok = ok && good
	}
	if v, has := f["protocol"]; has {
		s, good := d.oneOf(v.val, what+".protocol", "protocol", Protocols)
		if good {
			pr.Protocol = s
		}
		ok = ok && good
	}
	return pr, ok
}

// baseURL checks an upstream base URL and returns it without a trailing slash.
func (d *decoder) baseURL(n *yaml.Node, what, s string) (string, bool) {
	if s == "" {
		return "", true // as if absent: the kind's default, or the in-process mock
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		d.errorf(n, "%s: want an absolute http or https URL such as https://api.openai.com/v1", what)
	case u.User != nil:
		d.errorf(n, "%s: must not carry credentials; set api_key", what)
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "?"):
		d.errorf(n, "%s: must not have a query or fragment, got %q", what, u.Redacted())
	default:
		return strings.TrimRight(s, "/"), true
	}
	return "", false
}

// apiKeys reads api_key or api_keys. A key that expands to "" counts as none,
// so `api_key: ${KEY:-}` makes a key optional; a literal "" in api_keys is
// an error (it can only be a slip).
func (d *decoder) apiKeys(pr *Provider, q pair, f map[string]pair) bool {
	what := "providers." + q.name
	one, hasOne := f["api_key"]
	many, hasMany := f["api_keys"]
	ok := true
	switch {
	case hasOne && hasMany:
		d.errorf(many.key, "%s: set api_key or api_keys, not both", what)
		return false
	case hasOne:
		if s, good := d.str(one.val, what+".api_key"); !good {
			ok = false
		} else if s != "" {
			pr.APIKeys = []string{s}
		}
	case hasMany:
		keys, nodes, good := d.stringList(many.val, what+".api_keys")
		ok = good
		for i, k := range keys {
			switch {
			case k != "":
				pr.APIKeys = append(pr.APIKeys, k)
			case !d.expanded[nodes[i]]:
				d.errorf(nodes[i], "%s.api_keys[%d]: empty key", what, i)
				ok = false
			}
		}
	}
	if ok && len(pr.APIKeys) == 0 && (pr.Kind == KindOpenAI || pr.Kind == KindAnthropic) {
		d.warnf(q.key, "%s: no api_key; requests go upstream without credentials (fine for a local vLLM or Ollama)", what)
	}
	return ok
}

// headers reads extra upstream headers. Names are canonicalised; a header
// whose value is empty is not sent (so `${ORG:-}` makes one optional);
// values are never echoed in messages, since they may hold secrets.
func (d *decoder) headers(n *yaml.Node, what string) (map[string]string, bool) {
	ps, ok := d.entries(n, what)
	out := make(map[string]string, len(ps))
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		name := http.CanonicalHeaderKey(p.name)
		v, good := d.str(p.val, what+"."+p.name)
		switch {
		case !good:
			ok = false
			continue
		case !validHeaderName(p.name):
			d.errorf(p.key, "%s: %q is not a valid header name", what, p.name)
		case reservedHeaders[name] != "":
			d.errorf(p.key, "%s: %s may not be set here: %s", what, name, reservedHeaders[name])
		case strings.ContainsAny(v, "\r\n\x00"):
			d.errorf(deref(p.val), "%s.%s: the value must not contain line breaks or NUL", what, p.name)
		default:
			if _, dup := seen[name]; dup {
				d.errorf(p.key, "%s: header %s is set twice (names are case-insensitive)", what, name)
				ok = false
				continue
			}
			seen[name] = true
			if v != "" {
				out[name] = v
			}
			continue
		}
		ok = false
	}
	return out, ok
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c <= ' ' || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 || c == 0x7f {
			return false
		}
	}
	return true
}
