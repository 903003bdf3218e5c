package mockupstream_test

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

func userParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

func weatherTools() []openai.ChatCompletionToolUnionParam {
	return []openai.ChatCompletionToolUnionParam{
		openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_time"}),
		openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
			Name: "get_weather",
			Parameters: openai.FunctionParameters{
				"type": "object",
				"properties": map[string]any{
					"city":   map[string]any{"type": "string"},
					"days":   map[string]any{"type": "integer"},
					"metric": map[string]any{"type": "boolean"},
					"unit":   map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
				},
				"required": []string{"city"},
			},
		}),
	}
}

// The non-stream answer echoes the prompt, is the same for the same
// request, and has the documented usage estimate.
func TestOpenAIChatNonStream(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := openAIClient(ts)
	p := userParams("m1", "hello there friend") // 18 chars: ceil(18/4)+4 = 9 prompt tokens
	first, err := c.Chat.Completions.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Chat.Completions.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	got := first.Choices[0]
	if !strings.HasPrefix(got.Message.Content, "Mock reply to: hello there friend ") || got.FinishReason != "stop" {
		t.Errorf("choice = %q finish %q, want the echo and stop", got.Message.Content, got.FinishReason)
	}
	if again.Choices[0].Message.Content != got.Message.Content {
		t.Errorf("same request, different answers: %q then %q", got.Message.Content, again.Choices[0].Message.Content)
	}
	u := first.Usage
	if u.PromptTokens != 9 || u.CompletionTokens != 12 || u.TotalTokens != 21 {
		t.Errorf("usage = %d+%d=%d, want 9+12=21", u.PromptTokens, u.CompletionTokens, u.TotalTokens)
	}
	if first.Object != "chat.completion" || first.Model != "m1" || !strings.HasPrefix(first.ID, "chatcmpl-") {
		t.Errorf("id %q object %q model %q", first.ID, first.Object, first.Model)
	}
	other, err := c.Chat.Completions.New(testCtx(t), userParams("m1", "something else"))
	if err != nil {
		t.Fatal(err)
	}
	if other.Choices[0].Message.Content == got.Message.Content {
		t.Errorf("different prompts got the same answer %q", got.Message.Content)
	}
}

// A stream accumulated by the SDK gives the non-stream answer and usage,
// one chunk per token.
func TestOpenAIChatStreamAccumulates(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := openAIClient(ts)
	p := userParams("m1", "tell me a story")
	plain, err := c.Chat.Completions.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(testCtx(t), p)
	var acc openai.ChatCompletionAccumulator
	contentChunks := 0
	for stream.Next() {
		ch := stream.Current()
		if !acc.AddChunk(ch) {
			t.Fatalf("accumulator rejected chunk %s", ch.RawJSON())
		}
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			contentChunks++
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if got, want := acc.Choices[0].Message.Content, plain.Choices[0].Message.Content; got != want {
		t.Errorf("streamed content = %q, want %q", got, want)
	}
	if contentChunks != 12 {
		t.Errorf("%d content chunks, want one per token (12)", contentChunks)
	}
	if acc.Usage.PromptTokens != plain.Usage.PromptTokens || acc.Usage.CompletionTokens != plain.Usage.CompletionTokens {
		t.Errorf("stream usage %+v, want %+v", acc.Usage, plain.Usage)
	}
	if acc.Choices[0].FinishReason != "stop" {
		t.Errorf("finish_reason = %q", acc.Choices[0].FinishReason)
	}
}

// The raw stream follows the wire rules: "usage":null on every chunk but the
// last, a usage chunk with empty choices after the finish chunk, then [DONE].
func TestOpenAIStreamWireFormat(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	tests := []struct {
		name         string
		extra        string
		includeUsage bool
	}{
		{"with usage", `"stream":true,"stream_options":{"include_usage":true}`, true},
		{"without usage", `"stream":true`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := send(t, ts, "/v1/chat/completions", chatBody("m1", "hi", tc.extra))
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("Content-Type %q Cache-Control %q", ct, resp.Header.Get("Cache-Control"))
			}
			events, err := readSSE(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			data := dataOf(events)
			if data[len(data)-1] != "[DONE]" {
				t.Fatalf("last event %q, want [DONE]", data[len(data)-1])
			}
			chunks := data[:len(data)-1]
			if !tc.includeUsage {
				if n := countContaining(chunks, `"usage"`); n != 0 {
					t.Errorf("%d chunks carry usage without include_usage", n)
				}
				return
			}
			last := chunks[len(chunks)-1]
			if !strings.Contains(last, `"choices":[]`) || !strings.Contains(last, `"total_tokens":`) {
				t.Errorf("last chunk %s, want the usage chunk", last)
			}
			if n := countContaining(chunks[:len(chunks)-1], `"usage":null`); n != len(chunks)-1 {
				t.Errorf(`%d of %d chunks have "usage":null`, n, len(chunks)-1)
			}
			if !strings.Contains(chunks[len(chunks)-2], `"finish_reason":"stop"`) {
				t.Errorf("chunk before usage %s, want the finish chunk", chunks[len(chunks)-2])
			}
		})
	}
}

// A tool call streams as a header fragment then 2+ argument pieces, and the
// SDK accumulates it into the arguments built from the schema.
func TestOpenAIToolCallStream(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := openAIClient(ts)
	p := userParams("m1", "weather in Oslo?")
	p.Tools = weatherTools()
	p.ToolChoice = openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"})
	stream := c.Chat.Completions.NewStreaming(testCtx(t), p)
	var acc openai.ChatCompletionAccumulator
	fragments := 0
	var finished []openai.FinishedChatCompletionToolCall
	for stream.Next() {
		ch := stream.Current()
		acc.AddChunk(ch)
		if len(ch.Choices) > 0 && len(ch.Choices[0].Delta.ToolCalls) > 0 {
			fragments++
		}
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	const wantArgs = `{"city":"mock","days":1,"metric":true,"unit":"celsius"}`
	if fragments < 3 {
		t.Errorf("%d tool call fragments, want a header and 2+ argument pieces", fragments)
	}
	if len(finished) != 1 || finished[0].Name != "get_weather" || finished[0].Arguments != wantArgs {
		t.Fatalf("finished tool calls %+v, want get_weather %s", finished, wantArgs)
	}
	tc := acc.Choices[0].Message.ToolCalls
	if len(tc) != 1 || !strings.HasPrefix(tc[0].ID, "call_") || tc[0].Function.Arguments != wantArgs {
		t.Errorf("accumulated tool calls %+v", tc)
	}
	if acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("finish_reason %q, want tool_calls", acc.Choices[0].FinishReason)
	}
}

// The tool answered: the next turn quotes its result and stops; "none" and
// no tools give text; without tool_choice the first tool is called.
func TestOpenAIToolTurns(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := openAIClient(ts)
	p := userParams("m1", "what time is it?")
	p.Tools = weatherTools()
	call, err := c.Chat.Completions.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	msg := call.Choices[0].Message
	if call.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_time" ||
		msg.ToolCalls[0].Function.Arguments != "{}" {
		t.Fatalf("first turn %+v, want a get_time call with {}", call.Choices[0])
	}
	p.Messages = append(p.Messages, msg.ToParam(), openai.ToolMessage("12:30 CET", msg.ToolCalls[0].ID))
	answer, err := c.Chat.Completions.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := answer.Choices[0]; got.Message.Content != "The tool returned: 12:30 CET" || got.FinishReason != "stop" {
		t.Errorf("after the tool result: %q finish %q", got.Message.Content, got.FinishReason)
	}
	none := userParams("m1", "no tools please")
	none.Tools = weatherTools()
	none.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}
	text, err := c.Chat.Completions.New(testCtx(t), none)
	if err != nil {
		t.Fatal(err)
	}
	if len(text.Choices[0].Message.ToolCalls) != 0 || text.Choices[0].FinishReason != "stop" {
		t.Errorf(`tool_choice "none" gave %+v`, text.Choices[0])
	}
}

// max_tokens cuts with "length", a stop string with "stop", and n gives n
// different choices whose tokens add up in usage.
func TestOpenAILimitsAndChoices(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := openAIClient(ts)
	p := userParams("m1", "count")
	p.MaxTokens = openai.Int(5)
	short, err := c.Chat.Completions.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := short.Choices[0]; !strings.HasPrefix(got.Message.Content, "Mock reply to: count ") ||
		len(strings.Fields(got.Message.Content)) != 5 || got.FinishReason != "length" || short.Usage.CompletionTokens != 5 {
		t.Errorf("max_tokens 5: %q finish %q usage %d, want 5 tokens and length", got.Message.Content, got.FinishReason, short.Usage.CompletionTokens)
	}
	p = userParams("m1", "count")
	p.MaxCompletionTokens = openai.Int(100)
	p.Stop = openai.ChatCompletionNewParamsStopUnion{OfStringArray: []string{"nothing matches", " to:"}}
	stopped, err := c.Chat.Completions.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := stopped.Choices[0]; got.Message.Content != "Mock reply" || got.FinishReason != "stop" || stopped.Usage.CompletionTokens != 2 {
		t.Errorf("stop %q: %q finish %q usage %d", " to:", got.Message.Content, got.FinishReason, stopped.Usage.CompletionTokens)
	}
	p = userParams("m1", "count")
	p.N = openai.Int(3)
	many, err := c.Chat.Completions.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for i, ch := range many.Choices {
		if ch.Index != int64(i) {
			t.Errorf("choice %d has index %d", i, ch.Index)
		}
		texts = append(texts, ch.Message.Content)
	}
	if slices.Sort(texts); len(slices.Compact(texts)) != 3 || many.Usage.CompletionTokens != 36 {
		t.Errorf("n=3: %d distinct choices, %d completion tokens; want 3 and 36", len(slices.Compact(texts)), many.Usage.CompletionTokens)
	}
}

// Embeddings are unit vectors of the asked size, a function of the input
// alone, identical in float and base64 encodings.
func TestEmbeddings(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := openAIClient(ts)
	embed := func(format openai.EmbeddingNewParamsEncodingFormat, inputs ...string) *openai.CreateEmbeddingResponse {
		t.Helper()
		resp, err := c.Embeddings.New(testCtx(t), openai.EmbeddingNewParams{
			Model:          "emb",
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
			Dimensions:     openai.Int(16),
			EncodingFormat: format,
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	floats := embed(openai.EmbeddingNewParamsEncodingFormatFloat, "first text", "second")
	b64 := embed(openai.EmbeddingNewParamsEncodingFormatBase64, "second")
	if len(floats.Data) != 2 || floats.Data[1].Index != 1 {
		t.Fatalf("got %d embeddings", len(floats.Data))
	}
	for _, d := range floats.Data {
		norm := 0.0
		for _, x := range d.Embedding {
			norm += x * x
		}
		if len(d.Embedding) != 16 || math.Abs(norm-1) > 1e-5 {
			t.Errorf("embedding %d: %d dims, norm² %v; want 16 and 1", d.Index, len(d.Embedding), norm)
		}
	}
	if slices.Equal(floats.Data[0].Embedding, floats.Data[1].Embedding) {
		t.Error("different inputs got the same vector")
	}
	// JSON carries the float32 values in their shortest form, base64 exactly.
	if d := cmp.Diff(b64.Data[0].Embedding, floats.Data[1].Embedding, cmpopts.EquateApprox(0, 1e-7)); d != "" {
		t.Errorf("base64 vector differs from the float one (-got +want):\n%s", d)
	}
	// "first text" = ceil(10/4) = 3 tokens, "second" = 2.
	if floats.Usage.PromptTokens != 5 || floats.Usage.TotalTokens != 5 {
		t.Errorf("usage %+v, want 5 prompt tokens", floats.Usage)
	}
}

// GET /v1/models lists the fixed models and those seen in requests.
func TestModelsList(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := openAIClient(ts)
	if _, err := c.Chat.Completions.New(testCtx(t), userParams("seen-model", "hi")); err != nil {
		t.Fatal(err)
	}
	page, err := c.Models.List(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if !slices.Contains(ids, "seen-model") || !slices.Contains(ids, "mock-gpt") {
		t.Errorf("models %v, want seen-model and mock-gpt", ids)
	}
	if _, err := c.Models.Get(testCtx(t), "seen-model"); err != nil {
		t.Errorf("get seen-model: %v", err)
	}
	var apiErr *openai.Error
	if _, err := c.Models.Get(testCtx(t), "never-seen"); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("get never-seen: %v, want 404", err)
	}
}

// RequireKey answers 401 in each API's format unless its key header is right.
func TestRequireKey(t *testing.T) {
	_, ts := start(t, mockupstream.Options{RequireKey: "sekret"})
	var apiErr *openai.Error
	wrong := openAIClient(ts)
	_, err := wrong.Chat.Completions.New(testCtx(t), userParams("m1", "hi"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
		t.Errorf("wrong OpenAI key: %v, want 401 invalid_api_key", err)
	}
	right := openAIClient(ts, option.WithAPIKey("sekret"))
	if _, err := right.Chat.Completions.New(testCtx(t), userParams("m1", "hi")); err != nil {
		t.Errorf("right OpenAI key: %v", err)
	}
	// The Anthropic API takes x-api-key, not a bearer token.
	code, _, body := post(t, ts, "/v1/messages", messagesBody("c", "hi", ""), "anthropic-version", "2023-06-01", "Authorization", "Bearer sekret")
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e); code != 401 || e.Type != "error" || e.Error.Type != "authentication_error" {
		t.Errorf("Anthropic with a bearer token: %d %s", code, body)
	}
	if code, _, body := post(t, ts, "/v1/messages", messagesBody("c", "hi", ""), "anthropic-version", "2023-06-01", "x-api-key", "sekret"); code != 200 {
		t.Errorf("Anthropic with x-api-key: %d %s", code, body)
	}
}

// Options.ReplyTokens lengthens every text answer, in both APIs; max_tokens
// still cuts it, one stream event per token.
func TestReplyTokensOption(t *testing.T) {
	_, ts := start(t, mockupstream.Options{ReplyTokens: 150})
	var full struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	status, _, body := post(t, ts, "/v1/chat/completions", chatBody("m1", "hi", ""))
	if err := json.Unmarshal(body, &full); status != 200 || err != nil || full.Usage.CompletionTokens != 150 || full.Choices[0].FinishReason != "stop" {
		t.Fatalf("status %d, %+v (%v), want 150 completion tokens", status, full, err)
	}
	resp := send(t, ts, "/v1/chat/completions", chatBody("m1", "hi", `"stream":true,"max_tokens":20,"stream_options":{"include_usage":true}`))
	events, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	data := dataOf(events)
	if n := countContaining(data, `"delta":{"content":"`); n != 20 || countContaining(data, `"finish_reason":"length"`) != 1 ||
		countContaining(data, `"completion_tokens":20`) != 1 || data[len(data)-1] != "[DONE]" {
		t.Errorf("stream: %d content events, want 20, a length finish, a usage chunk and [DONE]: %q", n, data)
	}
	status, _, body = post(t, ts, "/v1/messages", messagesBody("m1", "hi", ""), anthropicHdr...)
	if status != 200 || !strings.Contains(string(body), `"output_tokens":150`) {
		t.Errorf("messages: status %d %s, want 150 output tokens", status, body)
	}
}
