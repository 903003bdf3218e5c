package meter

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCatalogParses guards the catalogue data: a bad refresh must fail here
// before catalog_table.go is generated from it.
func TestCatalogParses(t *testing.T) {
	entries, providers, err := parseCatalog(readCatalogJSON(t))
	if err != nil {
		t.Fatalf("parseCatalog(%s) error: %v", catalogJSONPath, err)
	}
	// SOURCE.md: 2 984 top-level keys, two of which are not models.
	if got, want := len(entries), 2982; got != want {
		t.Errorf("parseCatalog(JSON) has %d entries, want %d", got, want)
	}
	for _, skipped := range []string{"sample_spec", "fallback_generalizations"} {
		if _, ok := entries[skipped]; ok {
			t.Errorf("parseCatalog(JSON) kept %q", skipped)
		}
	}
	for _, p := range []string{"openai", "anthropic", "deepseek", "groq"} {
		if !providers[p] {
			t.Errorf("providers lacks %q", p)
		}
	}
}

func TestLookupCatalog(t *testing.T) {
	tests := []struct {
		name   string
		hint   string
		model  string
		want   CatalogEntry
		wantOK bool
	}{
		{
			name: "openai gpt-4o-mini", hint: "openai", model: "gpt-4o-mini", wantOK: true,
			want: CatalogEntry{
				Key: "gpt-4o-mini", Provider: "openai", Mode: "chat",
				MaxInputTokens: 128000, MaxOutputTokens: 16384,
				Price:  Price{Input: 150000, Output: 600000, CachedInput: 75000, CacheWrite: 150000},
				Priced: true, HasCachedInput: true,
			},
		},
		{
			name: "deepseek bare key", hint: "deepseek", model: "deepseek-chat", wantOK: true,
			want: CatalogEntry{
				Key: "deepseek-chat", Provider: "deepseek", Mode: "chat",
				MaxInputTokens: 131072, MaxOutputTokens: 8192,
				Price:  Price{Input: 280000, Output: 420000, CachedInput: 28000, CacheWrite: 280000},
				Priced: true, HasCachedInput: true,
			},
		},
		{
			name: "anthropic claude-sonnet-4-5", hint: "anthropic", model: "claude-sonnet-4-5", wantOK: true,
			want: CatalogEntry{
				Key: "claude-sonnet-4-5", Provider: "anthropic", Mode: "chat",
				MaxInputTokens: 200000, MaxOutputTokens: 64000,
				Price:  Price{Input: 3000000, Output: 15000000, CachedInput: 300000, CacheWrite: 3750000},
				Priced: true, HasCachedInput: true, HasCacheWrite: true,
			},
		},
		{
			name: "anthropic claude-opus-4-1", hint: "anthropic", model: "claude-opus-4-1", wantOK: true,
			want: CatalogEntry{
				Key: "claude-opus-4-1", Provider: "anthropic", Mode: "chat",
				MaxInputTokens: 200000, MaxOutputTokens: 32000,
				Price:  Price{Input: 15000000, Output: 75000000, CachedInput: 1500000, CacheWrite: 18750000},
				Priced: true, HasCachedInput: true, HasCacheWrite: true,
			},
		},
		{
			// The embedding has no max_input_tokens fallback to do, no output
			// price to speak of and no cache prices.
			name: "openai embedding", hint: "openai", model: "text-embedding-3-small", wantOK: true,
			want: CatalogEntry{
				Key: "text-embedding-3-small", Provider: "openai", Mode: "embedding",
				MaxInputTokens: 8191,
				Price:          Price{Input: 20000, CachedInput: 20000, CacheWrite: 20000},
				Priced:         true,
			},
		},
		{
			name: "prefixed key", hint: "groq", model: "qwen/qwen3-32b", wantOK: true,
			want: CatalogEntry{
				Key: "groq/qwen/qwen3-32b", Provider: "groq", Mode: "chat",
				MaxInputTokens: 131000, MaxOutputTokens: 131000,
				Price:  Price{Input: 290000, Output: 590000, CachedInput: 290000, CacheWrite: 290000},
				Priced: true,
			},
		},
		// gpt-4o exists as a bare OpenAI key, but Azure's price differs:
		// the hint must keep us from borrowing OpenAI's.
		{name: "bare key of another provider", hint: "anthropic", model: "gpt-4o"},
		{name: "unknown model", hint: "openai", model: "gpt-9-imaginary"},
		{name: "empty hint", hint: "", model: "gpt-4o"},
		{name: "skipped stub", hint: "openai", model: "sample_spec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LookupCatalog(tt.hint, tt.model)
			if ok != tt.wantOK {
				t.Fatalf("LookupCatalog(%q, %q) ok = %v, want %v", tt.hint, tt.model, ok, tt.wantOK)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("LookupCatalog(%q, %q) (-got +want):\n%s", tt.hint, tt.model, diff)
			}
		})
	}
}

// TestCatalogUnpriced checks that an entry carrying only tiered_pricing
// (DashScope) is reported as unpriced rather than free.
func TestCatalogUnpriced(t *testing.T) {
	e, ok := LookupCatalog("dashscope", "qwen3-max")
	if !ok {
		t.Fatal(`LookupCatalog("dashscope", "qwen3-max") not found`)
	}
	if e.Priced {
		t.Errorf("LookupCatalog(dashscope, qwen3-max).Priced = true, want false (tiered pricing only)")
	}
}

func TestCatalogRecordErrors(t *testing.T) {
	tests := []struct {
		name, data string
	}{
		{"not an object", `[]`},
		{"bad entry", `{"m": {"input_cost_per_token": "x"}}`},
		{"fractional size", `{"m": {"litellm_provider": "a", "max_input_tokens": 1.5}}`},
		{"negative price", `{"m": {"litellm_provider": "a", "input_cost_per_token": -1e-6}}`},
		{"trailing data", `{} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseCatalog([]byte(tt.data)); err == nil {
				t.Errorf("parseCatalog(%s) = nil error, want one", tt.data)
			}
		})
	}
}

func TestCatalogHasProvider(t *testing.T) {
	if !CatalogHasProvider("deepseek") {
		t.Error(`CatalogHasProvider("deepseek") = false, want true`)
	}
	if CatalogHasProvider("deepsek") {
		t.Error(`CatalogHasProvider("deepsek") = true, want false`)
	}
}
