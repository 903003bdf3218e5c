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
// response), in one pass over its keys. ok is false when raw is not a JSON
// object; raw must be valid JSON. Numbers that are not integers read as
// their integer part; of a key given twice, the first counts.
func ParseUsage(raw []byte) (u *Usage, ok bool) {
	r := gjson.Parse(unsafe.String(unsafe.SliceData(raw), len(raw)))
	if !r.IsObject() {
		return nil, false
	}
	u = &Usage{}
	var seen uint8
	first := func(bit uint8) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	r.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens":
			if first(1) {
				u.PromptTokens = int(v.Int())
			}
		case "completion_tokens":
			if first(2) {
				u.CompletionTokens = int(v.Int())
			}
		case "total_tokens":
			if first(4) {
				u.TotalTokens = int(v.Int())
			}
		case "prompt_tokens_details":
			if first(8) && v.IsObject() {
				u.PromptDetails = &PromptTokensDetails{CachedTokens: int(v.Get("cached_tokens").Int()),
					CacheWriteTokens: int(v.Get("cache_write_tokens").Int())}
			}
		case "completion_tokens_details":
			if first(16) && v.IsObject() {
				u.CompletionDetails = &CompletionDetails{ReasoningTokens: int(v.Get("reasoning_tokens").Int())}
			}
		}
		return true
	})
	return u, true
}
