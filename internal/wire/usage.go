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
// response). ok is false when raw is not a JSON object; raw must be valid
// JSON. Numbers that are not integers read as their integer part; of a key
// given twice, the first counts.
//
// The shape every provider sends (keys without escapes, counts as integer
// literals) is read by scanUsage in one pass with no allocation but the
// result; anything else goes to parseUsageAny, which handles every valid
// input. In a profile of the gateway under load the gjson path alone was
// ~2% of all CPU, most of it converting each number through ParseFloat.
func ParseUsage(raw []byte) (u *Usage, ok bool) {
	if u, ok := scanUsage(raw); ok {
		return u, true
	}
	return parseUsageAny(raw)
}

// Bits of the keys scanUsage and parseUsageAny have seen.
const (
	seenPrompt uint8 = 1 << iota
	seenCompletion
	seenTotal
	seenPromptDetails
	seenCompletionDetails
)

// scanUsage is ParseUsage for the common shape; ok false means "not that
// shape" (or not an object), never a wrong result.
func scanUsage(raw []byte) (u *Usage, ok bool) {
	// One allocation holds the usage and both details.
	box := &struct {
		u Usage
		p PromptTokensDetails
		c CompletionDetails
	}{}
	u = &box.u
	var seen uint8
	ok = Members(raw, func(k, v []byte, _ int) bool {
		switch string(k) {
		case "prompt_tokens":
			return firstInt(&seen, seenPrompt, &u.PromptTokens, v)
		case "completion_tokens":
			return firstInt(&seen, seenCompletion, &u.CompletionTokens, v)
		case "total_tokens":
			return firstInt(&seen, seenTotal, &u.TotalTokens, v)
		case "prompt_tokens_details":
			if !firstObject(&seen, seenPromptDetails, v) {
				return true // a repeat, or not an object: no details, as in parseUsageAny
			}
			d := &box.p
			u.PromptDetails = d
			var dseen uint8
			return Members(v, func(k, v []byte, _ int) bool {
				switch string(k) {
				case "cached_tokens":
					return firstInt(&dseen, 1, &d.CachedTokens, v)
				case "cache_write_tokens":
					return firstInt(&dseen, 2, &d.CacheWriteTokens, v)
				}
				return true
			})
		case "completion_tokens_details":
			if !firstObject(&seen, seenCompletionDetails, v) {
				return true
			}
			d := &box.c
			u.CompletionDetails = d
			var dseen uint8
			return Members(v, func(k, v []byte, _ int) bool {
				if string(k) == "reasoning_tokens" {
					return firstInt(&dseen, 1, &d.ReasoningTokens, v)
				}
				return true
			})
		}
		return true
	})
	if !ok {
		return nil, false
	}
	return u, true
}

// firstObject reports whether v is an object and bit was not yet in *seen,
// which it adds: the first of a key counts, whatever its value.
func firstObject(seen *uint8, bit uint8, v []byte) bool {
	first := *seen&bit == 0
	*seen |= bit
	return first && v[0] == '{'
}

// firstInt stores the integer literal v in *dst unless bit is already in
// *seen. It reports false for anything but an integer literal of at most 18
// digits (a float, a string, null, ...), which scanUsage leaves to
// parseUsageAny.
func firstInt(seen *uint8, bit uint8, dst *int, v []byte) bool {
	if *seen&bit != 0 {
		return true
	}
	*seen |= bit
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	if len(digits) < len(v) {
		n = -n
	}
	*dst = n
	return true
}

// parseUsageAny is ParseUsage for any valid input, through gjson.
func parseUsageAny(raw []byte) (u *Usage, ok bool) {
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
			if first(seenPrompt) {
				u.PromptTokens = int(v.Int())
			}
		case "completion_tokens":
			if first(seenCompletion) {
				u.CompletionTokens = int(v.Int())
			}
		case "total_tokens":
			if first(seenTotal) {
				u.TotalTokens = int(v.Int())
			}
		case "prompt_tokens_details":
			if first(seenPromptDetails) && v.IsObject() {
				u.PromptDetails = &PromptTokensDetails{CachedTokens: int(v.Get("cached_tokens").Int()),
					CacheWriteTokens: int(v.Get("cache_write_tokens").Int())}
			}
		case "completion_tokens_details":
			if first(seenCompletionDetails) && v.IsObject() {
				u.CompletionDetails = &CompletionDetails{ReasoningTokens: int(v.Get("reasoning_tokens").Int())}
			}
		}
		return true
	})
	return u, true
}
