package meter

import (
	"sort"
	"strings"
)

// The price catalogue is LiteLLM's public price and context-window map (MIT;
// origin, date and licence in catalog/NOTICE), compiled into catalog_table.go:
// a sorted table of the entries the gateway reads, with no pointers and no
// initialiser, searched in place. Decoding the 1.6 MB JSON instead cost about
// 20 ms of CPU and 1.8 MB of fresh heap (450 page faults) in every process
// that loaded a configuration, the gateway's start included; the table costs
// nothing until a lookup touches a dozen of its rows. The JSON stays the
// source: after refreshing it, regenerate the table (go generate
// ./internal/meter); TestCatalogTable fails while the two disagree.
//
//go:generate go test -run ^TestCatalogTable$ -update-catalog-table

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

// catalogRow is one entry of catalog_table.go, in the order of its key.
type catalogRow struct {
	keyEnd          uint32 // the key is catalogKeys[previous row's keyEnd:keyEnd]
	provider        uint8  // index in catalogProviders
	mode            uint8  // index in catalogModes
	flags           uint8  // catalogPriced | catalogHasCachedInput | catalogHasCacheWrite
	maxInputTokens  int32
	maxOutputTokens int32
	input           PerMillion
	output          PerMillion
	cachedInput     PerMillion
	cacheWrite      PerMillion
}

// catalogRow flags.
const (
	catalogPriced = 1 << iota
	catalogHasCachedInput
	catalogHasCacheWrite
)

// catalogKey returns the key of row i.
func catalogKey(i int) string {
	var start uint32
	if i > 0 {
		start = catalogRows[i-1].keyEnd
	}
	return catalogKeys[start:catalogRows[i].keyEnd]
}

// catalogLookup finds the entry whose key is exactly key.
func catalogLookup(key string) (CatalogEntry, bool) {
	i, ok := sort.Find(len(catalogRows), func(i int) int { return strings.Compare(key, catalogKey(i)) })
	if !ok {
		return CatalogEntry{}, false
	}
	r := &catalogRows[i]
	return CatalogEntry{
		Key:             catalogKey(i),
		Provider:        catalogProviders[r.provider],
		Mode:            catalogModes[r.mode],
		MaxInputTokens:  int(r.maxInputTokens),
		MaxOutputTokens: int(r.maxOutputTokens),
		Price:           Price{Input: r.input, Output: r.output, CachedInput: r.cachedInput, CacheWrite: r.cacheWrite},
		Priced:          r.flags&catalogPriced != 0,
		HasCachedInput:  r.flags&catalogHasCachedInput != 0,
		HasCacheWrite:   r.flags&catalogHasCacheWrite != 0,
	}, true
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
	if e, ok := catalogLookup(model); ok && e.Provider == providerHint {
		return e, true
	}
	return catalogLookup(providerHint + "/" + model)
}

// CatalogHasProvider reports whether some catalogue entry has litellm_provider
// name, so that a misspelt `catalog:` hint is caught when the config loads.
func CatalogHasProvider(name string) bool {
	// catalogProviders holds exactly the providers of the entries, sorted.
	_, ok := sort.Find(len(catalogProviders), func(i int) int { return strings.Compare(name, catalogProviders[i]) })
	return ok
}
