package provider

// This file translates Anthropic's answers into OpenAI's: the non-streaming
// message (anthropic.md §6.2–6.4), the event stream (§6.5) and errors (§6.6).
// As in openai_anthropic.go, anthChat* types are OpenAI shapes and the other
// anth* types are Anthropic's.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// anthResponse is an Anthropic message: the non-streaming answer, and the
// message inside message_start.
type anthResponse struct {
	ID         string          `json:"id"`
	Model      string          `json:"model"`
	Content    []anthRespBlock `json:"content"`
	StopReason string          `json:"stop_reason"`
	Usage      *anthUsage      `json:"usage"`
}

// anthRespBlock is a response content block; only text and tool_use are read,
// other types (thinking, server tools, …) are skipped.
type anthRespBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// anthUsage is Anthropic's usage; nil fields were absent, which matters in
// message_delta, where present fields replace earlier values.
type anthUsage struct {
	InputTokens              *int `json:"input_tokens"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens"`
	OutputTokens             *int `json:"output_tokens"`
}

// anthTokens is the usage of one answer so far.
type anthTokens struct {
	input, cacheWrite, cacheRead, output int
}

// merge replaces the counts u reports.
func (t *anthTokens) merge(u *anthUsage) {
	if u == nil {
		return
	}
	anthReplace(&t.input, u.InputTokens)
	anthReplace(&t.cacheWrite, u.CacheCreationInputTokens)
	anthReplace(&t.cacheRead, u.CacheReadInputTokens)
	anthReplace(&t.output, u.OutputTokens)
}

// anthReplace sets *dst to *src when src is present.
func anthReplace(dst, src *int) {
	if src != nil {
		*dst = *src
	}
}

// prompt is OpenAI's prompt_tokens: everything sent, cached or not.
func (t anthTokens) prompt() int { return t.input + t.cacheWrite + t.cacheRead }

// chat is the OpenAI usage object.
func (t anthTokens) chat() *anthChatUsage {
	return &anthChatUsage{PromptTokens: t.prompt(), CompletionTokens: t.output,
		TotalTokens:         t.prompt() + t.output,
		PromptTokensDetails: anthChatPromptDetails{CachedTokens: t.cacheRead, CacheWriteTokens: t.cacheWrite}}
}

// wire is the usage the gateway meters.
func (t anthTokens) wire() *wire.Usage {
	return &wire.Usage{PromptTokens: t.prompt(), CompletionTokens: t.output, TotalTokens: t.prompt() + t.output,
		PromptDetails:     &wire.PromptTokensDetails{CachedTokens: t.cacheRead, CacheWriteTokens: t.cacheWrite},
		CompletionDetails: &wire.CompletionDetails{}}
}

// anthChatUsage is OpenAI's usage object, with the newer cache_write_tokens.
type anthChatUsage struct {
	PromptTokens            int                       `json:"prompt_tokens"`
	CompletionTokens        int                       `json:"completion_tokens"`
	TotalTokens             int                       `json:"total_tokens"`
	PromptTokensDetails     anthChatPromptDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails anthChatCompletionDetails `json:"completion_tokens_details"`
}

// anthChatPromptDetails is usage.prompt_tokens_details.
type anthChatPromptDetails struct {
	CachedTokens     int `json:"cached_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens"`
}

// anthChatCompletionDetails is usage.completion_tokens_details; Anthropic does
// not report thinking tokens apart, so reasoning_tokens is always 0.
type anthChatCompletionDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// anthChatCompletion is an OpenAI chat.completion.
type anthChatCompletion struct {
	ID      string           `json:"id"`
	Object  string           `json:"object"`
	Created int64            `json:"created"`
	Model   string           `json:"model"`
	Choices []anthChatChoice `json:"choices"`
	Usage   *anthChatUsage   `json:"usage,omitempty"`
}

// anthChatChoice is one choice of a chat.completion.
type anthChatChoice struct {
	Index        int                `json:"index"`
	Message      anthChatOutMessage `json:"message"`
	Logprobs     *struct{}          `json:"logprobs"` // always null
	FinishReason string             `json:"finish_reason"`
}

// anthChatOutMessage is the assistant message of a chat.completion.
type anthChatOutMessage struct {
	Role      string                `json:"role"`
	Content   *string               `json:"content"`
	Refusal   *string               `json:"refusal"` // always null
	ToolCalls []anthChatOutToolCall `json:"tool_calls,omitempty"`
}

// anthChatOutToolCall is a tool call in a message, or a fragment of one in a
// chunk (then Index is set, and ID, Type and Name only on the first fragment).
type anthChatOutToolCall struct {
	Index    *int                `json:"index,omitempty"`
	ID       string              `json:"id,omitempty"`
	Type     string              `json:"type,omitempty"`
	Function anthChatOutFunction `json:"function"`
}

// anthChatOutFunction is a tool call's function.
type anthChatOutFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// anthropicFinishReason maps stop_reason to finish_reason (§6.3). pause_turn
// and unknown reasons become "stop", as LiteLLM does.
func anthropicFinishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop"
}

// anthropicToChat translates a non-streaming Anthropic message into an OpenAI
// chat.completion created at now, and returns its usage (nil when the message
// had none).
func anthropicToChat(body []byte, now time.Time) ([]byte, *wire.Usage, error) {
	var m anthResponse
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, nil, fmt.Errorf("decode anthropic message: %w", err)
	}
	msg, err := anthropicChatMessage(m.Content)
	if err != nil {
		return nil, nil, err
	}
	out := anthChatCompletion{ID: m.ID, Object: "chat.completion", Created: now.Unix(), Model: m.Model,
		Choices: []anthChatChoice{{Message: msg, FinishReason: anthropicFinishReason(m.StopReason)}}}
	var usage *wire.Usage
	if m.Usage != nil {
		var t anthTokens
		t.merge(m.Usage)
		out.Usage, usage = t.chat(), t.wire()
	}
	b, err := json.Marshal(out)
	return b, usage, err
}

// anthropicChatMessage joins the text blocks into content (null when there are
// none) and turns tool_use blocks into tool_calls.
func anthropicChatMessage(blocks []anthRespBlock) (anthChatOutMessage, error) {
	msg := anthChatOutMessage{Role: "assistant"}
	var text strings.Builder
	hasText := false
	for _, b := range blocks {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
			hasText = true
		case "tool_use":
			args, err := anthropicArguments(b.Input)
			if err != nil {
				return msg, fmt.Errorf("tool_use %s: %w", b.ID, err)
			}
			msg.ToolCalls = append(msg.ToolCalls, anthChatOutToolCall{ID: b.ID, Type: "function",
				Function: anthChatOutFunction{Name: b.Name, Arguments: args}})
		}
	}
	if hasText {
		s := text.String()
		msg.Content = &s
	}
	return msg, nil
}

// anthropicArguments is a tool_use input as a compact JSON string; a missing
// input is {}.
func anthropicArguments(input json.RawMessage) (string, error) {
	if len(input) == 0 {
		return "{}", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, input); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// anthChatChunk is an OpenAI chat.completion.chunk. Usage is only on the
// final usage chunk, whose Choices is empty.
type anthChatChunk struct {
	ID      string                `json:"id"`
	Object  string                `json:"object"`
	Created int64                 `json:"created"`
	Model   string                `json:"model"`
	Choices []anthChatChunkChoice `json:"choices"`
	Usage   *anthChatUsage        `json:"usage,omitempty"`
}

// anthChatChunkChoice is the single choice of a chunk.
type anthChatChunkChoice struct {
	Index        int           `json:"index"`
	Delta        anthChatDelta `json:"delta"`
	Logprobs     *struct{}     `json:"logprobs"` // always null
	FinishReason *string       `json:"finish_reason"`
}

// anthChatDelta is a chunk's delta; absent fields mean "no change".
type anthChatDelta struct {
	Role      string                `json:"role,omitempty"`
	Content   *string               `json:"content,omitempty"`
	ToolCalls []anthChatOutToolCall `json:"tool_calls,omitempty"`
}

// anthEvent is the data of any Anthropic stream event; which fields are set
// depends on Type.
type anthEvent struct {
	Type         string         `json:"type"`
	Message      *anthResponse  `json:"message"`       // message_start
	Index        int            `json:"index"`         // content_block_*
	ContentBlock *anthRespBlock `json:"content_block"` // content_block_start
	Delta        struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"` // content_block_delta, message_delta
	Usage *anthUsage     `json:"usage"` // message_delta
	Error *anthErrorBody `json:"error"` // error
}

// anthropicStream turns Anthropic's event stream into OpenAI chunks. It is
// used by one goroutine at a time.
type anthropicStream struct {
	// ctx is the request's context. Stream.Next takes none, and a failed read
	// must still tell a client that left (KindCanceled) from a broken upstream.
	ctx     context.Context
	name    string
	body    io.ReadCloser
	sse     *wire.SSEReader
	created int64

	id, model string
	tokens    anthTokens
	toolIndex map[int]int // Anthropic block index → OpenAI tool_calls index
	finished  bool        // the finish_reason chunk went out
	stopped   bool        // message_stop arrived
	usageSent bool        // the usage chunk went out
	err       error       // sticky: once set, every Next returns it
	closed    bool
}

var _ Stream = (*anthropicStream)(nil)

// newAnthropicStream reads events from body; chunks carry created as their
// creation time.
func newAnthropicStream(ctx context.Context, name string, body io.ReadCloser, created time.Time) *anthropicStream {
	return &anthropicStream{ctx: ctx, name: name, body: body, sse: wire.NewSSEReader(body),
		created: created.Unix(), toolIndex: map[int]int{}}
}

// Next returns the next chunk. After message_stop it yields the finish chunk
// if none went out yet, then the usage chunk, then io.EOF. An error event is
// returned as a *Error of KindStatus; a stream that ends before message_stop
// as a KindTransport *Error wrapping io.ErrUnexpectedEOF.
func (s *anthropicStream) Next() ([]byte, error) {
	for s.err == nil {
		chunk, err := s.step()
		if err != nil {
			s.err = err
			break
		}
		if chunk != nil {
			return chunk, nil
		}
	}
	return nil, s.err
}

// Close closes the upstream body; later calls do nothing.
func (s *anthropicStream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.sse.Release()
	if s.stopped {
		drainEnd(s.body)
	}
	return s.body.Close()
}

// Usage returns the final usage once message_stop has arrived, and nil
// before; the same figures travel in the final usage chunk.
func (s *anthropicStream) Usage() *wire.Usage {
	if !s.stopped {
		return nil
	}
	return s.tokens.wire()
}

// step handles one event, returning its chunk or nil when it yields none.
func (s *anthropicStream) step() ([]byte, error) {
	if s.stopped {
		return s.final()
	}
	ev, err := s.sse.Next()
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("anthropic stream ended before message_stop: %w", io.ErrUnexpectedEOF)
		}
		return nil, transportError(s.ctx, s.name, err)
	}
	if len(bytes.TrimSpace(ev.Data)) == 0 {
		return nil, nil
	}
	var e anthEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return nil, malformed(s.name, fmt.Errorf("decode anthropic %q event: %w", ev.Name, err))
	}
	return s.event(&e)
}

// event translates one decoded event.
func (s *anthropicStream) event(e *anthEvent) ([]byte, error) {
	switch e.Type {
	case "message_start":
		return s.start(e.Message)
	case "content_block_start":
		return s.blockStart(e.Index, e.ContentBlock)
	case "content_block_delta":
		return s.blockDelta(e)
	case "message_delta":
		s.tokens.merge(e.Usage)
		if e.Delta.StopReason == "" || s.finished {
			return nil, nil
		}
		return s.finish(anthropicFinishReason(e.Delta.StopReason))
	case "message_stop":
		s.stopped = true
		return s.final()
	case "error":
		return nil, anthropicStreamError(s.name, e.Error)
	}
	return nil, nil // ping, content_block_stop, and types added later
}

// start handles message_start: the role chunk.
func (s *anthropicStream) start(m *anthResponse) ([]byte, error) {
	if m == nil {
		return nil, malformed(s.name, errors.New("message_start without message"))
	}
	s.id, s.model = m.ID, m.Model
	s.tokens.merge(m.Usage)
	empty := ""
	return s.chunk(anthChatDelta{Role: "assistant", Content: &empty}, nil)
}

// blockStart handles content_block_start: text blocks start with their
// (normally empty) text, tool_use blocks open a tool call.
func (s *anthropicStream) blockStart(index int, b *anthRespBlock) ([]byte, error) {
	if b == nil {
		return nil, malformed(s.name, errors.New("content_block_start without content_block"))
	}
	switch b.Type {
	case "text":
		return s.text(b.Text)
	case "tool_use":
		k := len(s.toolIndex)
		s.toolIndex[index] = k
		return s.chunk(anthChatDelta{ToolCalls: []anthChatOutToolCall{{Index: &k, ID: b.ID, Type: "function",
			Function: anthChatOutFunction{Name: b.Name}}}}, nil)
	}
	return nil, nil
}

// blockDelta handles content_block_delta: text and tool-argument pieces.
// Thinking, signature and citation deltas have no OpenAI form.
func (s *anthropicStream) blockDelta(e *anthEvent) ([]byte, error) {
	switch e.Delta.Type {
	case "text_delta":
		return s.text(e.Delta.Text)
	case "input_json_delta":
		k, ok := s.toolIndex[e.Index]
		if !ok || e.Delta.PartialJSON == "" {
			return nil, nil
		}
		return s.chunk(anthChatDelta{ToolCalls: []anthChatOutToolCall{{Index: &k,
			Function: anthChatOutFunction{Arguments: e.Delta.PartialJSON}}}}, nil)
	}
	return nil, nil
}

// text is a content chunk, or nothing for empty text.
func (s *anthropicStream) text(t string) ([]byte, error) {
	if t == "" {
		return nil, nil
	}
	return s.chunk(anthChatDelta{Content: &t}, nil)
}

// finish is the chunk that carries finish_reason.
func (s *anthropicStream) finish(reason string) ([]byte, error) {
	s.finished = true
	return s.chunk(anthChatDelta{}, &reason)
}

// final yields, after message_stop, the finish chunk if message_delta gave
// none, then the usage chunk, then io.EOF.
func (s *anthropicStream) final() ([]byte, error) {
	switch {
	case !s.finished:
		reason := "stop"
		if len(s.toolIndex) > 0 {
			reason = "tool_calls"
		}
		return s.finish(reason)
	case !s.usageSent:
		s.usageSent = true
		return json.Marshal(anthChatChunk{ID: s.id, Object: "chat.completion.chunk", Created: s.created,
			Model: s.model, Choices: []anthChatChunkChoice{}, Usage: s.tokens.chat()})
	}
	return nil, io.EOF
}

// chunk marshals a one-choice chunk.
func (s *anthropicStream) chunk(d anthChatDelta, finish *string) ([]byte, error) {
	return json.Marshal(anthChatChunk{ID: s.id, Object: "chat.completion.chunk", Created: s.created,
		Model: s.model, Choices: []anthChatChunkChoice{{Delta: d, FinishReason: finish}}})
}

// anthErrorBody is the "error" object of Anthropic's error body and of the
// stream's error event.
type anthErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Details *struct {
		ErrorCode string `json:"error_code"`
	} `json:"details"`
}

// anthErrorMapping is the OpenAI form of one Anthropic error type.
type anthErrorMapping struct {
	status int // used for errors inside a stream, which carry no HTTP status
	typ    string
	code   string
}

// anthErrorTypes maps Anthropic error types to OpenAI's vocabulary (§6.6).
// 401/403 keep their status: the gateway reads them as a failure of its own
// upstream credentials. An overload inside a stream becomes 503, the nearest
// standard status to 529.
var anthErrorTypes = map[string]anthErrorMapping{
	"invalid_request_error": {http.StatusBadRequest, "invalid_request_error", ""},
	"authentication_error":  {http.StatusUnauthorized, "authentication_error", "invalid_api_key"},
	"permission_error":      {http.StatusForbidden, "permission_error", "permission_denied"},
	"billing_error":         {http.StatusPaymentRequired, "insufficient_quota", "insufficient_quota"},
	"not_found_error":       {http.StatusNotFound, "invalid_request_error", "model_not_found"},
	"request_too_large":     {http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large"},
	"rate_limit_error":      {http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded"},
	"api_error":             {http.StatusInternalServerError, "server_error", "server_error"},
	"timeout_error":         {http.StatusGatewayTimeout, "server_error", "upstream_timeout"},
	"overloaded_error":      {http.StatusServiceUnavailable, "server_error", "upstream_overloaded"},
}

// anthTypeForStatus names the Anthropic error type a status stands for, for
// bodies that are not Anthropic's (a CDN's 413 or 504 page).
var anthTypeForStatus = map[int]string{
	400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
	403: "permission_error", 404: "not_found_error", 413: "request_too_large",
	429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error",
}

// anthropicErrorMapping picks the OpenAI type and code for an Anthropic error
// body answered with status (0 inside a stream).
func anthropicErrorMapping(status int, e *anthErrorBody) anthErrorMapping {
	m, ok := anthErrorTypes[e.Type]
	if !ok {
		m = anthErrorTypes[anthTypeForStatus[status]]
	}
	switch {
	case m.typ == "invalid_request_error" && strings.Contains(strings.ToLower(e.Message), "prompt is too long"):
		m.code = "context_length_exceeded"
	case e.Details != nil && e.Details.ErrorCode == "enforced_spend_limit_reached":
		// A monthly spend cap arrives as a 429 rate_limit_error; waiting will not help.
		m.typ, m.code = "insufficient_quota", "insufficient_quota"
	}
	return m
}

// anthropicStatusError is the *Error for a non-2xx answer with body.
func anthropicStatusError(provider string, resp *http.Response, body []byte) *Error {
	var env struct {
		Error anthErrorBody `json:"error"`
	}
	_ = json.Unmarshal(body, &env) // a body that is not Anthropic's leaves env empty
	m := anthropicErrorMapping(resp.StatusCode, &env.Error)
	return statusError(provider, resp, m.typ, m.code, env.Error.Message)
}

// anthropicStreamError is the *Error for an error event inside a stream.
func anthropicStreamError(provider string, e *anthErrorBody) *Error {
	if e == nil {
		e = &anthErrorBody{}
	}
	m := anthropicErrorMapping(0, e)
	if m.status == 0 {
		m = anthErrorMapping{http.StatusBadGateway, "server_error", "upstream_error"}
	}
	msg := e.Message
	if msg == "" {
		msg = "upstream stream error " + e.Type
	}
	return &Error{Kind: KindStatus, Status: m.status, Provider: provider, Type: m.typ, Code: m.code,
		Message: msg, Err: fmt.Errorf("anthropic stream error event %s: %s", e.Type, e.Message)}
}
