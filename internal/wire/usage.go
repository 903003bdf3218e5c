package wire

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
