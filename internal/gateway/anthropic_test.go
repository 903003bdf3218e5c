package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// The premium tier's primary is an anthropic-kind provider: the same OpenAI
// client works unchanged through the translation.
func TestAnthropicProviderThroughGateway(t *testing.T) {
	s := startStack(t)
	c := s.client(option.WithHeader("X-Tollgate-Tier", "premium"))
	ctx := context.Background()

	p := chatParams("chat", "Say something nice")
	p.Messages = append([]openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You are kind.")}, p.Messages...)
	var resp *http.Response
	got, err := c.Chat.Completions.New(ctx, p, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Tollgate-Provider") != "ant" || got.Choices[0].Message.Content == "" ||
		got.Choices[0].FinishReason != "stop" || got.Usage.CompletionTokens == 0 {
		t.Errorf("provider %q, answer %+v, usage %+v", resp.Header.Get("X-Tollgate-Provider"), got.Choices[0], got.Usage)
	}
	rec := s.mock.Stats().Requests
	last := rec[len(rec)-1]
	if last.Path != "/v1/messages" || last.APIKey != "anthropic-key" || last.Authorization != "" {
		t.Errorf("upstream saw path %q x-api-key %q authorization %q", last.Path, last.APIKey, last.Authorization)
	}
	var ab struct {
		Model  string `json:"model"`
		System any    `json:"system"`
	}
	json.Unmarshal(last.Body, &ab)
	if ab.Model != "claude-up" || ab.System == nil {
		t.Errorf("anthropic body model %q system %v", ab.Model, ab.System)
	}

	// A streamed tool call, accumulated by the SDK.
	p = chatParams("chat", "Weather in Oslo?")
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name: "get_weather", Parameters: openai.FunctionParameters{
			"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
	})}
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(ctx, p)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Name != "get_weather" || acc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("accumulated %+v, want one get_weather call", acc.Choices[0])
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(calls[0].Function.Arguments), &args); err != nil || args["city"] == nil {
		t.Errorf("arguments %q: %v", calls[0].Function.Arguments, err)
	}
	if acc.Usage.PromptTokens == 0 || acc.Usage.CompletionTokens == 0 {
		t.Errorf("stream usage %+v", acc.Usage)
	}

	// And the tool result goes back through the translation.
	p.Messages = append(p.Messages, acc.Choices[0].Message.ToParam(), openai.ToolMessage("rainy", calls[0].ID))
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
	second, err := c.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if second.Choices[0].FinishReason != "stop" || second.Choices[0].Message.Content == "" {
		t.Errorf("after tool result: %+v", second.Choices[0])
	}
}

// Anthropic's 529 overloaded is retried, then the chain falls back to m1.
func TestAnthropicOverloadedFallsBack(t *testing.T) {
	s := startStack(t)
	s.mock.AddFault(mockupstreamRule("claude-up", "status=529,retry_after_ms=1", 0))
	code, hdr, body := s.post(t, "/v1/chat/completions", hi, "X-Tollgate-Tier", "premium")
	if code != 200 || hdr.Get("X-Tollgate-Model") != "m1" || hdr.Get("X-Tollgate-Fallback") != "true" {
		t.Errorf("status %d model %q fallback %q: %s", code, hdr.Get("X-Tollgate-Model"), hdr.Get("X-Tollgate-Fallback"), body)
	}
	if n := s.calls("claude-up"); n != 2 {
		t.Errorf("claude-up calls = %d, want 2 (one retry)", n)
	}
}
