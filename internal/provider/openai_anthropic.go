package provider

// This file translates an OpenAI chat.completions request body into an
// Anthropic Messages request body (shared/providers/anthropic.md §6.1).
//
// Identifiers here start with "anth" to keep them apart from the other
// adapters in this package: anthChat* are the OpenAI chat shapes as this
// adapter reads them (the messages are wire.ChatMessage, shared with the
// token counter), every other anth* type is Anthropic's wire format.
//
// Fields with no Anthropic equivalent are handled as follows. A field that
// would silently change what the client gets back is rejected with a 400
// before any upstream call; a sampling hint whose loss leaves the answer's
// shape intact is dropped.
//
//	OpenAI field                     Anthropic / action
//	model                            model (Request.Model wins when set)
//	messages[system|developer]       top-level system, in order, wherever they occur
//	max_completion_tokens|max_tokens max_tokens (the former wins); absent → 4096
//	temperature                      temperature, passed through unclamped: the upstream
//	                                 rejects values over 1 with a 400 that names the range
//	top_p                            top_p (sent even together with temperature)
//	stop (string | list)             stop_sequences
//	stream                           stream (Request.Stream wins)
//	tools[type=function]             tools[{name, description, input_schema, strict}]
//	tools[other types]               400 unsupported_parameter
//	tool_choice                      auto|none|required→any|{function}→{tool}; allowed_tools → 400
//	parallel_tool_calls: false       tool_choice.disable_parallel_tool_use (auto if no choice)
//	user                             metadata.user_id, dropped when it looks like an email or phone
//	response_format json_schema      output_config.format (native structured output; models
//	                                 without it answer 400 upstream)
//	response_format json_object      dropped: OpenAI already requires the prompt to ask for JSON
//	response_format text             dropped
//	n > 1                            400 unsupported_parameter
//	logprobs: true, top_logprobs > 0 400 unsupported_parameter
//	audio, functions, function_call  400 unsupported_parameter
//	seed, presence_penalty,          dropped (sampling hints)
//	frequency_penalty, logit_bias
//	reasoning_effort                 dropped: thinking is not enabled (see translateAnthropicRequest)
//	stream_options, store, metadata, dropped (usage always streams; the rest is OpenAI-only)
//	service_tier, modalities, …
//
// Content parts: text (empty ones dropped), image_url (data: URL → base64
// source, http(s) → url source; an image_url that is not an object, such as a
// bare URL string, is a 400 invalid_json), file with file_data (→ document);
// input_audio, file_id and other part types are a 400 unsupported_value.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// defaultAnthropicMaxTokens is sent as max_tokens when the client set no
// limit. Anthropic requires the field and OpenAI does not; 4096 is what
// LiteLLM sends, and every current Claude model can produce at least that.
// A client that needs longer answers must say so.
const defaultAnthropicMaxTokens = 4096

// anthChatRequest is the part of an OpenAI chat request this adapter reads.
type anthChatRequest struct {
	Model               string              `json:"model"`
	Messages            []wire.ChatMessage  `json:"messages"`
	MaxTokens           *int                `json:"max_tokens"`
	MaxCompletionTokens *int                `json:"max_completion_tokens"`
	Temperature         *float64            `json:"temperature"`
	TopP                *float64            `json:"top_p"`
	Stop                anthChatStop        `json:"stop"`
	Stream              bool                `json:"stream"`
	Tools               []anthChatTool      `json:"tools"`
	ToolChoice          json.RawMessage     `json:"tool_choice"`
	ParallelToolCalls   *bool               `json:"parallel_tool_calls"`
	ResponseFormat      *anthChatRespFormat `json:"response_format"`
	User                string              `json:"user"`
	N                   *int                `json:"n"`
	Logprobs            *bool               `json:"logprobs"`
	TopLogprobs         *int                `json:"top_logprobs"`
	Audio               json.RawMessage     `json:"audio"`
	Functions           json.RawMessage     `json:"functions"`
	FunctionCall        json.RawMessage     `json:"function_call"`
}

// anthChatTool is one entry of tools.
type anthChatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
}

// anthChatRespFormat is response_format.
type anthChatRespFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Schema json.RawMessage `json:"schema"`
	} `json:"json_schema"`
}

// anthChatStop is stop: a string, a list of strings, or null.
type anthChatStop []string

// UnmarshalJSON accepts a string, a list of strings or null.
func (s *anthChatStop) UnmarshalJSON(b []byte) error {
	switch anthFirstByte(b) {
	case '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = anthChatStop{one}
		return nil
	case 'n':
		*s = nil
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// anthRequest is the Anthropic Messages request body.
type anthRequest struct {
	Model         string            `json:"model"`
	MaxTokens     int               `json:"max_tokens"`
	System        json.RawMessage   `json:"system,omitempty"`
	Messages      []anthMessage     `json:"messages"`
	Temperature   *float64          `json:"temperature,omitempty"`
	TopP          *float64          `json:"top_p,omitempty"`
	StopSequences []string          `json:"stop_sequences,omitempty"`
	Stream        bool              `json:"stream,omitempty"`
	Tools         []anthTool        `json:"tools,omitempty"`
	ToolChoice    *anthToolChoice   `json:"tool_choice,omitempty"`
	Metadata      *anthMetadata     `json:"metadata,omitempty"`
	OutputConfig  *anthOutputConfig `json:"output_config,omitempty"`
}

// anthMessage is one Anthropic message; Content is always in block form.
type anthMessage struct {
	Role    string      `json:"role"`
	Content []anthBlock `json:"content"`
}

// anthBlock is an Anthropic content block of any type; unused fields are
// omitted. Input is always set on tool_use blocks.
type anthBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	Source       *anthSource     `json:"source,omitempty"`
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      json.RawMessage `json:"content,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// anthSource is an image or document source.
type anthSource struct {
	Type      string `json:"type"` // base64 | url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// anthTool is a client tool definition.
type anthTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
	Strict      *bool           `json:"strict,omitempty"`
}

// anthToolChoice is tool_choice.
type anthToolChoice struct {
	Type                   string `json:"type"` // auto | any | tool | none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// anthMetadata is the request metadata.
type anthMetadata struct {
	UserID string `json:"user_id"`
}

// anthOutputConfig carries native structured output.
type anthOutputConfig struct {
	Format anthOutputFormat `json:"format"`
}

// anthOutputFormat is output_config.format.
type anthOutputFormat struct {
	Type   string          `json:"type"` // json_schema
	Schema json.RawMessage `json:"schema"`
}

// anthNoopTool is sent when the history holds tool calls but the client sent
// no tools: Anthropic rejects tool_use/tool_result blocks without a tools
// list (anthropic.md §2.1 rule 4). tool_choice none keeps it from being called.
var anthNoopTool = anthTool{
	Name:        "tollgate_noop",
	Description: "Placeholder so that earlier tool calls in the conversation are accepted. Do not call.",
	InputSchema: json.RawMessage(`{"type":"object","properties":{}}`),
}

// anthEmptySchema is the input_schema for a function declared without parameters.
var anthEmptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// translateAnthropicRequest decodes an OpenAI chat request body and builds the
// Anthropic request. Errors are *Error with status 400.
//
// Extended thinking is never enabled: with thinking on, Anthropic requires
// earlier tool-calling turns to be replayed with their signed thinking
// blocks, which OpenAI clients do not keep, so multi-turn tool use would fail.
func translateAnthropicRequest(body []byte) (*anthRequest, error) {
	var in anthChatRequest
	if err := json.Unmarshal(body, &in); err != nil {
		if errors.Is(err, wire.ErrContentType) {
			err = errAnthContentType
		}
		return nil, anthBadRequest("invalid_json", "decode chat request: %v", err)
	}
	if err := checkAnthropicImageForms(in.Messages); err != nil {
		return nil, err
	}
	if err := checkAnthropicUnsupported(&in); err != nil {
		return nil, err
	}
	out := &anthRequest{Model: in.Model, MaxTokens: anthropicMaxTokens(&in),
		Temperature: in.Temperature, TopP: in.TopP, StopSequences: in.Stop, Stream: in.Stream}
	if out.MaxTokens < 1 {
		return nil, anthBadRequest("invalid_value", "max_tokens must be at least 1")
	}
	var err error
	if out.System, out.Messages, err = translateAnthropicMessages(in.Messages); err != nil {
		return nil, err
	}
	if out.Tools, out.ToolChoice, err = translateAnthropicTools(&in, anthHasToolBlocks(out.Messages)); err != nil {
		return nil, err
	}
	if in.User != "" && !anthLooksLikeContact(in.User) {
		out.Metadata = &anthMetadata{UserID: in.User}
	}
	if out.OutputConfig, err = translateAnthropicFormat(in.ResponseFormat); err != nil {
		return nil, err
	}
	return out, nil
}

// errAnthContentType is this adapter's wording of wire.ErrContentType, which
// its clients have seen since it shipped.
var errAnthContentType = errors.New("content must be a string, an array of parts or null")

// checkAnthropicImageForms rejects, as malformed JSON, an image_url that is
// not an object in a part of any type: the form wire.ImageURL accepts as Bare
// for the token counter's sake, and which this adapter has never read.
func checkAnthropicImageForms(msgs []wire.ChatMessage) error {
	for i := range msgs {
		for j, p := range msgs[i].Content.Parts {
			if p.ImageURL != nil && p.ImageURL.Bare {
				return anthBadRequest("invalid_json", "decode chat request: messages[%d].content[%d].image_url is not an object", i, j)
			}
		}
	}
	return nil
}

// checkAnthropicUnsupported rejects the fields whose loss would change what
// the client gets back.
func checkAnthropicUnsupported(in *anthChatRequest) error {
	switch {
	case in.N != nil && *in.N > 1:
		return anthBadRequest("unsupported_parameter", "n > 1 is not supported by Anthropic models")
	case in.Logprobs != nil && *in.Logprobs, in.TopLogprobs != nil && *in.TopLogprobs > 0:
		return anthBadRequest("unsupported_parameter", "logprobs are not supported by Anthropic models")
	case anthIsSet(in.Audio):
		return anthBadRequest("unsupported_parameter", "audio output is not supported by Anthropic models")
	case anthIsSet(in.Functions), anthIsSet(in.FunctionCall):
		return anthBadRequest("unsupported_parameter", "functions/function_call are not supported here; use tools")
	}
	return nil
}

// anthropicMaxTokens picks max_completion_tokens, then max_tokens, then the default.
func anthropicMaxTokens(in *anthChatRequest) int {
	switch {
	case in.MaxCompletionTokens != nil:
		return *in.MaxCompletionTokens
	case in.MaxTokens != nil:
		return *in.MaxTokens
	}
	return defaultAnthropicMaxTokens
}

// translateAnthropicMessages splits system text from the conversation and
// converts the rest, merging consecutive messages of the same Anthropic role.
func translateAnthropicMessages(msgs []wire.ChatMessage) (json.RawMessage, []anthMessage, error) {
	var system []anthBlock
	var systemStrings int
	var out []anthMessage
	for i := range msgs {
		m := &msgs[i]
		if role := anthRole(m); role == "system" || role == "developer" {
			blocks, err := anthropicTextBlocks(i, m.Content)
			if err != nil {
				return nil, nil, err
			}
			if m.Content.Parts == nil {
				systemStrings++
			}
			system = append(system, blocks...)
			continue
		}
		role, blocks, err := translateAnthropicMessage(i, m)
		if err != nil {
			return nil, nil, err
		}
		out = appendAnthropicMessage(out, role, blocks)
	}
	if len(out) == 0 {
		return nil, nil, anthBadRequest("invalid_value", "messages: at least one non-empty user or assistant message is required")
	}
	return anthropicSystem(system, systemStrings), out, nil
}

// anthropicSystem encodes the system prompt: a plain string when it came from
// one string-content message, text blocks otherwise.
func anthropicSystem(blocks []anthBlock, fromStrings int) json.RawMessage {
	if len(blocks) == 0 {
		return nil
	}
	var v any = blocks
	if len(blocks) == 1 && fromStrings == 1 && blocks[0].CacheControl == nil {
		v = blocks[0].Text
	}
	b, _ := json.Marshal(v) // strings and blocks always marshal
	return b
}

// appendAnthropicMessage appends blocks as a message of role, merging into the
// previous message when it has the same role. tool_result blocks are kept
// first, as Anthropic requires. Empty messages are dropped.
func appendAnthropicMessage(out []anthMessage, role string, blocks []anthBlock) []anthMessage {
	if len(blocks) == 0 {
		return out
	}
	if n := len(out); n > 0 && out[n-1].Role == role {
		out[n-1].Content = anthToolResultsFirst(append(out[n-1].Content, blocks...))
		return out
	}
	return append(out, anthMessage{Role: role, Content: anthToolResultsFirst(blocks)})
}

// anthToolResultsFirst moves tool_result blocks before all others, keeping order
// within each group.
func anthToolResultsFirst(blocks []anthBlock) []anthBlock {
	sorted := make([]anthBlock, 0, len(blocks))
	for _, b := range blocks {
		if b.Type == "tool_result" {
			sorted = append(sorted, b)
		}
	}
	if len(sorted) == 0 || len(sorted) == len(blocks) {
		return blocks
	}
	for _, b := range blocks {
		if b.Type != "tool_result" {
			sorted = append(sorted, b)
		}
	}
	return sorted
}

// translateAnthropicMessage converts one non-system message; i is its
// position, for error messages.
func translateAnthropicMessage(i int, m *wire.ChatMessage) (string, []anthBlock, error) {
	role := anthRole(m)
	switch role {
	case "user":
		blocks, err := anthropicUserBlocks(i, m.Content)
		return "user", blocks, err
	case "assistant":
		blocks, err := anthropicAssistantBlocks(i, m)
		return "assistant", blocks, err
	case "tool":
		block, err := anthropicToolResult(i, m)
		return "user", []anthBlock{block}, err
	}
	return "", nil, anthBadRequest("invalid_value", "messages[%d]: role %q is not supported", i, role)
}

// anthRole is a message's role, "" when absent or null.
func anthRole(m *wire.ChatMessage) string {
	if m.Role == nil {
		return ""
	}
	return *m.Role
}

// anthropicTextBlocks converts content that may only hold text (system,
// developer, tool).
func anthropicTextBlocks(i int, c wire.Content) ([]anthBlock, error) {
	if c.Parts == nil {
		return anthTextBlock(c.Text, nil), nil
	}
	var out []anthBlock
	for j, p := range c.Parts {
		if p.Type != "text" {
			return nil, anthBadRequest("unsupported_value", "messages[%d].content[%d]: only text parts are allowed here, got %q", i, j, p.Type)
		}
		out = append(out, anthTextBlock(p.Text, p.CacheControl)...)
	}
	return out, nil
}

// anthTextBlock is a text block, or nothing for empty text: Anthropic rejects
// empty text blocks.
func anthTextBlock(text string, cacheControl json.RawMessage) []anthBlock {
	if text == "" {
		return nil
	}
	return []anthBlock{{Type: "text", Text: text, CacheControl: cacheControl}}
}

// anthropicUserBlocks converts user content.
func anthropicUserBlocks(i int, c wire.Content) ([]anthBlock, error) {
	if c.Parts == nil {
		return anthTextBlock(c.Text, nil), nil
	}
	var out []anthBlock
	for j := range c.Parts {
		b, err := anthropicUserPart(&c.Parts[j])
		if err != nil {
			return nil, anthBadRequest(err.Code, "messages[%d].content[%d]: %s", i, j, err.Message)
		}
		out = append(out, b...)
	}
	return out, nil
}

// anthropicUserPart converts one user content part.
func anthropicUserPart(p *wire.ContentPart) ([]anthBlock, *Error) {
	switch p.Type {
	case "text":
		return anthTextBlock(p.Text, p.CacheControl), nil
	case "image_url":
		if p.ImageURL == nil {
			return nil, anthBadRequest("invalid_value", "image_url part without image_url")
		}
		src, err := anthropicSource(p.ImageURL.URL, true)
		if err != nil {
			return nil, err
		}
		return []anthBlock{{Type: "image", Source: src, CacheControl: p.CacheControl}}, nil
	case "file":
		if p.File == nil || p.File.FileData == "" {
			return nil, anthBadRequest("unsupported_value", "file parts need file_data; uploaded file ids are not supported by Anthropic")
		}
		src, err := anthropicSource(p.File.FileData, false)
		if err != nil {
			return nil, err
		}
		return []anthBlock{{Type: "document", Source: src, CacheControl: p.CacheControl}}, nil
	}
	return nil, anthBadRequest("unsupported_value", "content part type %q is not supported by Anthropic models", p.Type)
}

// anthropicSource converts a data: URL to a base64 source and, when allowURL,
// an http(s) URL to a url source.
func anthropicSource(u string, allowURL bool) (*anthSource, *Error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isBase64 || mediaType == "" {
			return nil, anthBadRequest("invalid_value", "data URL must have the form data:<media type>;base64,<data>")
		}
		return &anthSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if allowURL && (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) {
		return &anthSource{Type: "url", URL: u}, nil
	}
	return nil, anthBadRequest("invalid_value", "URL must be a base64 data: URL or an http(s) URL")
}

// anthropicAssistantBlocks converts an assistant message: text first, then
// one tool_use block per tool call.
func anthropicAssistantBlocks(i int, m *wire.ChatMessage) ([]anthBlock, error) {
	var out []anthBlock
	if m.Content.Parts == nil {
		out = anthTextBlock(m.Content.Text, nil)
	}
	for j, p := range m.Content.Parts {
		switch p.Type {
		case "text":
			out = append(out, anthTextBlock(p.Text, p.CacheControl)...)
		case "refusal":
			out = append(out, anthTextBlock(p.Refusal, nil)...)
		default:
			return nil, anthBadRequest("unsupported_value", "messages[%d].content[%d]: assistant part type %q is not supported", i, j, p.Type)
		}
	}
	for j := range m.ToolCalls {
		b, err := anthropicToolUse(&m.ToolCalls[j])
		if err != nil {
			return nil, anthBadRequest("invalid_value", "messages[%d].tool_calls[%d]: %s", i, j, err.Error())
		}
		out = append(out, b)
	}
	return out, nil
}

// anthropicToolUse converts an earlier tool call; its arguments must be a JSON
// object (an empty string counts as {}).
func anthropicToolUse(tc *wire.ToolCall) (anthBlock, error) {
	if tc.Type != "" && tc.Type != "function" {
		return anthBlock{}, fmt.Errorf("tool call type %q is not supported", tc.Type)
	}
	if tc.ID == "" || tc.Function.Name == "" {
		return anthBlock{}, errors.New("tool call needs an id and a function name")
	}
	args := bytes.TrimSpace([]byte(tc.Function.Arguments))
	if len(args) == 0 {
		args = []byte("{}")
	}
	if args[0] != '{' || !json.Valid(args) {
		return anthBlock{}, errors.New("function.arguments is not a JSON object")
	}
	return anthBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: args}, nil
}

// anthropicToolResult converts a role "tool" message into a tool_result block.
func anthropicToolResult(i int, m *wire.ChatMessage) (anthBlock, error) {
	if m.ToolCallID == "" {
		return anthBlock{}, anthBadRequest("invalid_value", "messages[%d]: tool message without tool_call_id", i)
	}
	b := anthBlock{Type: "tool_result", ToolUseID: m.ToolCallID}
	var v any
	if m.Content.Parts == nil {
		if m.Content.Text != "" {
			v = m.Content.Text
		}
	} else {
		blocks, err := anthropicTextBlocks(i, m.Content)
		if err != nil {
			return anthBlock{}, err
		}
		if len(blocks) > 0 {
			v = blocks
		}
	}
	if v != nil {
		b.Content, _ = json.Marshal(v) // strings and blocks always marshal
	}
	return b, nil
}

// anthHasToolBlocks reports whether the conversation holds tool_use or
// tool_result blocks.
func anthHasToolBlocks(msgs []anthMessage) bool {
	for _, m := range msgs {
		for _, b := range m.Content {
			if b.Type == "tool_use" || b.Type == "tool_result" {
				return true
			}
		}
	}
	return false
}

// translateAnthropicTools converts tools, tool_choice and parallel_tool_calls.
// history reports tool blocks in the conversation; without tools they need
// the placeholder tool.
func translateAnthropicTools(in *anthChatRequest, history bool) ([]anthTool, *anthToolChoice, error) {
	tools := make([]anthTool, 0, len(in.Tools))
	for i := range in.Tools {
		t, err := anthropicTool(i, &in.Tools[i])
		if err != nil {
			return nil, nil, err
		}
		tools = append(tools, t)
	}
	if len(tools) == 0 {
		if history {
			return []anthTool{anthNoopTool}, &anthToolChoice{Type: "none"}, nil
		}
		return nil, nil, nil // tool_choice without tools would be rejected
	}
	choice, err := anthropicToolChoice(in.ToolChoice)
	if err != nil {
		return nil, nil, err
	}
	if in.ParallelToolCalls != nil && !*in.ParallelToolCalls {
		if choice == nil {
			choice = &anthToolChoice{Type: "auto"}
		}
		choice.DisableParallelToolUse = choice.Type != "none"
	}
	return tools, choice, nil
}

// anthropicTool converts one function tool.
func anthropicTool(i int, t *anthChatTool) (anthTool, error) {
	if t.Type != "function" {
		return anthTool{}, anthBadRequest("unsupported_parameter", "tools[%d]: tool type %q is not supported by Anthropic models", i, t.Type)
	}
	if t.Function.Name == "" {
		return anthTool{}, anthBadRequest("invalid_value", "tools[%d]: function.name is required", i)
	}
	schema := t.Function.Parameters
	if !anthIsSet(schema) {
		schema = anthEmptySchema
	}
	return anthTool{Name: t.Function.Name, Description: t.Function.Description,
		InputSchema: schema, Strict: t.Function.Strict}, nil
}

// anthropicToolChoice converts tool_choice; nil means "not set".
func anthropicToolChoice(raw json.RawMessage) (*anthToolChoice, error) {
	if !anthIsSet(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none":
			return &anthToolChoice{Type: s}, nil
		case "required":
			return &anthToolChoice{Type: "any"}, nil
		}
		return nil, anthBadRequest("invalid_value", "tool_choice %q is not one of auto, none, required", s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Function.Name == "" {
		return nil, anthBadRequest("unsupported_parameter", "tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":…}}")
	}
	return &anthToolChoice{Type: "tool", Name: obj.Function.Name}, nil
}

// translateAnthropicFormat maps response_format json_schema to Anthropic's
// native structured output; json_object and text need nothing.
func translateAnthropicFormat(f *anthChatRespFormat) (*anthOutputConfig, error) {
	if f == nil || f.Type != "json_schema" {
		return nil, nil
	}
	if f.JSONSchema == nil || !anthIsSet(f.JSONSchema.Schema) {
		return nil, anthBadRequest("invalid_value", "response_format.json_schema.schema is required")
	}
	return &anthOutputConfig{Format: anthOutputFormat{Type: "json_schema", Schema: f.JSONSchema.Schema}}, nil
}

// anthLooksLikeContact reports whether a user id looks like an email address or
// a phone number, which Anthropic asks never to be sent as metadata.user_id.
func anthLooksLikeContact(s string) bool {
	if strings.Contains(s, "@") {
		return true
	}
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("+-(). ", r):
		default:
			return false
		}
	}
	return digits >= 7
}

// anthBadRequest is a 400 invalid_request_error raised before any upstream call.
func anthBadRequest(code, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: KindStatus, Status: http.StatusBadRequest, Type: "invalid_request_error",
		Code: code, Message: msg, Err: errors.New(msg)}
}

// anthIsSet reports whether a raw field was present and not null.
func anthIsSet(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// anthFirstByte is the first non-space byte of a JSON value, or 0.
func anthFirstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
