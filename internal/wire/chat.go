package wire

import (
	"encoding/json"
	"errors"
)

// The messages of an OpenAI chat.completions request, as the gateway's
// readers decode them: the token counter (meter.Tokenizer.CountChat) and the
// Anthropic translator (provider). The types hold the union of what those
// readers use; whatever else a message carries (audio, a file's name, …) is
// skipped by the decoder. They are for reading only: the gateway forwards the
// client's bytes, never a re-encoded message, so Content and ImageURL have no
// MarshalJSON.
//
// Every field is typed as OpenAI documents it, so a value of the wrong JSON
// type (a number for a name, say) fails json.Unmarshal even when the reader
// at hand ignores that field. Where the readers must differ (what to make of
// an image_url that is not an object), the type decodes every form and
// records which it saw, and each reader applies its own rule.

// ChatMessage is one message of any role.
type ChatMessage struct {
	// Role is nil when "role" is absent or null: a pointer, so that the
	// token counter can reject a message without a role but count "".
	Role    *string `json:"role"`
	Name    string  `json:"name"`
	Content Content `json:"content"`
	// Refusal is an assistant message's refusal text.
	Refusal   string     `json:"refusal"`
	ToolCalls []ToolCall `json:"tool_calls"`
	// ToolCallID is the call a role "tool" message answers.
	ToolCallID string `json:"tool_call_id"`
	// FunctionCall is the legacy (pre-tools) call of an assistant message;
	// nil when absent or null.
	FunctionCall *FunctionCall `json:"function_call"`
}

// Content is a message's content: a string (Text), an array of parts
// (Parts), or null. Parts is nil unless the content was an array, and non-nil
// (possibly empty) if it was, so that "content":[] can be told from "". Null
// and an absent content both leave the zero value, as "" does.
//
// It decodes the value in place rather than keeping a json.RawMessage copy to
// decode again: the token counter depends on that to keep its allocations
// flat.
type Content struct {
	Text  string
	Parts []ContentPart
}

// ErrContentType is the error Content.UnmarshalJSON returns for a value that
// is not a string, an array or null. encoding/json returns it unwrapped, so a
// reader may match it with errors.Is to word the problem its own way.
var ErrContentType = errors.New("content is not a string, an array of parts or null")

// UnmarshalJSON decodes a string, an array of parts or null, and returns
// ErrContentType for anything else.
func (c *Content) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case '"':
		return json.Unmarshal(b, &c.Text)
	case '[':
		return json.Unmarshal(b, &c.Parts)
	case 'n':
		return nil
	}
	return ErrContentType
}

// ContentPart is one element of an array Content. Type says which other
// field applies: "text" (Text), "refusal" (Refusal), "image_url" (ImageURL),
// "file" (File). Parts of other types (input_audio, …) keep only their Type.
type ContentPart struct {
	Type    string `json:"type"`
	Text    string `json:"text"`
	Refusal string `json:"refusal"`
	// ImageURL is nil when "image_url" is absent or null.
	ImageURL *ImageURL `json:"image_url"`
	// File is nil when "file" is absent or null.
	File *File `json:"file"`
	// CacheControl is LiteLLM's extension for Anthropic prompt caching, kept
	// as sent: a JSON null is the four bytes "null", not nil.
	CacheControl json.RawMessage `json:"cache_control"`
}

// ImageURL is an image part's image_url. OpenAI documents an object,
// {"url": …, "detail": "auto" | "low" | "high"}; older clients sent the URL
// as a bare string. Any value that is not an object or null decodes without
// error and sets Bare (a string's value goes to URL), and each reader decides
// what it means: the token counter charges such an image at auto detail,
// while the Anthropic translator refuses it.
type ImageURL struct {
	// URL is an http(s) URL or a data: URL, which may be megabytes long.
	// Every reader pays for copying it, the token counter included, which
	// does not need it.
	URL    string `json:"url"`
	Detail string `json:"detail"`
	// Bare reports that image_url was not an object. It is never cleared:
	// with a key given twice, one non-object value is enough to set it.
	Bare bool `json:"-"`
}

// UnmarshalJSON decodes an object strictly (url and detail must be strings or
// null) and any other value leniently, as described on ImageURL.
func (u *ImageURL) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case '{':
		type object ImageURL // the same fields, without this method
		return json.Unmarshal(b, (*object)(u))
	case '"':
		u.Bare = true
		return json.Unmarshal(b, &u.URL)
	case 'n':
		return nil
	}
	u.Bare = true
	return nil
}

// File is a file part's file: an uploaded file's id, or the file itself as a
// base64 data: URL in FileData.
type File struct {
	FileID   string `json:"file_id"`
	FileData string `json:"file_data"`
}

// ToolCall is one of an assistant message's earlier tool calls: a function
// call (Type "function", or absent in older clients) or a custom tool call
// (Type "custom").
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
	Custom   CustomCall   `json:"custom"`
}

// FunctionCall is the function of a function tool call, and the shape of the
// legacy function_call. Arguments is JSON text as the model wrote it, which
// need not be valid JSON.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// CustomCall is the custom of a custom tool call: the tool's name and its
// free-form input.
type CustomCall struct {
	Name  string `json:"name"`
	Input string `json:"input"`
}

// firstByte is the first byte of a JSON value after any whitespace, or 0.
// encoding/json hands UnmarshalJSON the value without leading whitespace;
// this also serves direct callers.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}
