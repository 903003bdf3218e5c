package wire

import (
	"unsafe"

	"github.com/tidwall/gjson"
)

// Usage is OpenAI's usage object, as providers report it and as the gateway
// meters it. Anthropic's cache-creation tokens travel in
// prompt_tokens_details.cache_write_tokens, so they survive a stream's usage chunk.
type Usage struct {
	PromptTokens      int                  `json:"prompt_tokens"`
	CompletionTokens  int                  `json:"completion_tokens"`
	TotalTokens       int                  `json:"total_tokens"`
	PromptDetails     *PromptTokensDetails `json:"prompt_tokens_details,omitempty"`
	CompletionDetails *CompletionDetails   `json:"completion_tokens_details,omitempty"`
}

// PromptTokensDetails breaks down prompt tokens.
type PromptTokensDetails struct {
	CachedTokens     int `json:"cached_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens,omitempty"`
}

// CompletionDetails breaks down completion tokens.
type CompletionDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// CachedTokens returns the prompt tokens served from the provider's cache.
func (u *Usage) CachedTokens() int {
	if u == nil || u.PromptDetails == nil {
		return 0
	}
	return u.PromptDetails.CachedTokens
}

// CacheWriteTokens returns the prompt tokens written to the provider's cache.
func (u *Usage) CacheWriteTokens() int {
	if u == nil || u.PromptDetails == nil {
		return 0
	}
	return u.PromptDetails.CacheWriteTokens
}

// ParseUsage reads a usage object without reflection (it runs on every
// response): each field is looked up in the object's bytes. ok is false when
// raw is not a JSON object; raw must be valid JSON. Numbers that are not
// integers read as their integer part.
func ParseUsage(raw []byte) (u *Usage, ok bool) {
	r := gjson.Parse(unsafe.String(unsafe.SliceData(raw), len(raw)))
	if !r.IsObject() {
		return nil, false
	}
	u = &Usage{PromptTokens: int(r.Get("prompt_tokens").Int()), CompletionTokens: int(r.Get("completion_tokens").Int()),
		TotalTokens: int(r.Get("total_tokens").Int())}
	if d := r.Get("prompt_tokens_details"); d.IsObject() {
		u.PromptDetails = &PromptTokensDetails{CachedTokens: int(d.Get("cached_tokens").Int()),
			CacheWriteTokens: int(d.Get("cache_write_tokens").Int())}
	}
	if d := r.Get("completion_tokens_details"); d.IsObject() {
		u.CompletionDetails = &CompletionDetails{ReasoningTokens: int(d.Get("reasoning_tokens").Int())}
	}
	return u, true
}
