package meter

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
)

// catalogJSON is LiteLLM's public price and context-window map (MIT; origin,
// date and licence in catalog/NOTICE).
//
//go:embed catalog/model_prices_and_context_window.json
var catalogJSON []byte

// CatalogEntry is what the embedded price catalogue knows about one upstream
// model. Sizes are 0 when the catalogue does not give them.
type CatalogEntry struct {
	// Key is the catalogue key that matched, e.g. "gpt-4o-mini" or "groq/llama-3.1-8b-instant".
	Key string
	// Provider is the entry's litellm_provider, e.g. "openai", "deepseek".
	Provider string
	// Mode is the entry's mode: "chat", "embedding", "responses", … ("" when absent).
	Mode string
	// MaxInputTokens is max_input_tokens, or max_tokens when the entry has no
	// max_input_tokens (the same fallback LiteLLM applies).
	MaxInputTokens int
	// MaxOutputTokens is max_output_tokens; the ambiguous legacy max_tokens is
	// never used for it.
	MaxOutputTokens int
	// Price holds the entry's prices. CachedInput falls back to the DeepSeek
	// style input_cost_per_token_cache_hit and then to Input, CacheWrite to
	// Input (both conservative); HasCachedInput and HasCacheWrite say whether
	// the catalogue really gave them.
	Price Price
	// Priced reports that the catalogue gives a per-token price: an input price,
	// and an output price unless the mode is "embedding". A missing price is
	// unknown, never free.
	Priced bool
	// HasCachedInput reports that the entry gives a cache-read price.
	HasCachedInput bool
	// HasCacheWrite reports that the entry gives a cache-creation price.
	HasCacheWrite bool
}

// catalogRecord is the subset of a catalogue entry the gateway reads. Pointers
// tell "absent" (or JSON null) from zero.
type catalogRecord struct {
	Provider        string   `json:"litellm_provider"`
	Mode            string   `json:"mode"`
	MaxInputTokens  *float64 `json:"max_input_tokens"`
	MaxOutputTokens *float64 `json:"max_output_tokens"`
	MaxTokens       *float64 `json:"max_tokens"`
	Input           *float64 `json:"input_cost_per_token"`
	Output          *float64 `json:"output_cost_per_token"`
	CacheRead       *float64 `json:"cache_read_input_token_cost"`
	CacheHit        *float64 `json:"input_cost_per_token_cache_hit"`
	CacheWrite      *float64 `json:"cache_creation_input_token_cost"`
}

// catalog is the parsed catalogue, built once on first use: most processes
// that import meter never price anything from it, and parsing 1.6 MB of JSON
// costs tens of milliseconds.
var catalog struct {
	once      sync.Once
	entries   map[string]CatalogEntry
	providers map[string]bool
}

func loadCatalog() {
	entries, providers, err := parseCatalog(catalogJSON)
	if err != nil {
		// The data is embedded at build time and TestCatalogParses covers
		// it, so this is a broken build, not a runtime condition.
		panic(fmt.Sprintf("meter: embedded price catalogue: %v", err))
	}
	catalog.entries, catalog.providers = entries, providers
}

// parseCatalog decodes the catalogue object entry by entry, skipping the
// documentation stub sample_spec (its values are strings) and the routing
// rules in fallback_generalizations.
func parseCatalog(data []byte) (map[string]CatalogEntry, map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("want a JSON object, got %v (%v)", tok, err)
	}
	entries := make(map[string]CatalogEntry, 3000)
	providers := make(map[string]bool, 128)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key, _ := tok.(string)
		if key == "sample_spec" || key == "fallback_generalizations" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, nil, fmt.Errorf("skip %q: %w", key, err)
			}
			continue
		}
		var rec catalogRecord
		if err := dec.Decode(&rec); err != nil {
			return nil, nil, fmt.Errorf("entry %q: %w", key, err)
		}
		e, err := rec.entry(key)
		if err != nil {
			return nil, nil, fmt.Errorf("entry %q: %w", key, err)
		}
		entries[key] = e
		providers[e.Provider] = true
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("data after the catalogue object")
	}
	return entries, providers, nil
}

func (r *catalogRecord) entry(key string) (CatalogEntry, error) {
	e := CatalogEntry{Key: key, Provider: r.Provider, Mode: r.Mode}
	var err error
	size := func(f *float64) int {
		if f == nil || err != nil {
			return 0
		}
		if *f < 0 || *f != math.Trunc(*f) || *f > math.MaxInt32 {
			err = fmt.Errorf("token count %v is not a whole number", *f)
			return 0
		}
		return int(*f)
	}
	e.MaxInputTokens = size(r.MaxInputTokens)
	if r.MaxInputTokens == nil {
		e.MaxInputTokens = size(r.MaxTokens)
	}
	e.MaxOutputTokens = size(r.MaxOutputTokens)
	price := func(f *float64) PerMillion {
		if f == nil {
			return 0
		}
		if *f < 0 || math.IsNaN(*f) || math.IsInf(*f, 0) {
			err = fmt.Errorf("price %v is negative", *f)
			return 0
		}
		return PerMillionFromPerToken(*f)
	}
	e.Price.Input = price(r.Input)
	e.Price.Output = price(r.Output)
	e.Priced = r.Input != nil && (r.Output != nil || r.Mode == "embedding")
	switch {
	case r.CacheRead != nil:
		e.Price.CachedInput, e.HasCachedInput = price(r.CacheRead), true
	case r.CacheHit != nil:
		e.Price.CachedInput, e.HasCachedInput = price(r.CacheHit), true
	default:
		e.Price.CachedInput = e.Price.Input
	}
	if r.CacheWrite != nil {
		e.Price.CacheWrite, e.HasCacheWrite = price(r.CacheWrite), true
	} else {
		e.Price.CacheWrite = e.Price.Input
	}
	return e, err
}

// LookupCatalog finds the catalogue entry for the upstream model id served by
// a provider whose catalogue hint is providerHint: the config's `catalog:`
// key, or else the provider kind ("openai", "anthropic").
//
// Matching, first hit wins:
//  1. the bare key model, if its litellm_provider is providerHint
//     (bare keys are the vendor's own API: "gpt-4o-mini", "deepseek-chat");
//  2. the key providerHint + "/" + model, whatever its litellm_provider
//     ("groq/llama-3.1-8b-instant", "vertex_ai/claude-sonnet-4-5").
//
// Nothing is guessed across hosts: the same model on Azure or OpenRouter
// costs something else, so "gpt-4o" with hint "azure" does not match the
// bare OpenAI key.
func LookupCatalog(providerHint, model string) (CatalogEntry, bool) {
	if providerHint == "" || model == "" {
		return CatalogEntry{}, false
	}
	catalog.once.Do(loadCatalog)
	if e, ok := catalog.entries[model]; ok && e.Provider == providerHint {
		return e, true
	}
	e, ok := catalog.entries[providerHint+"/"+model]
	return e, ok
}

// CatalogHasProvider reports whether some catalogue entry has litellm_provider
// name, so that a misspelt `catalog:` hint is caught when the config loads.
func CatalogHasProvider(name string) bool {
	catalog.once.Do(loadCatalog)
	return catalog.providers[name]
}
