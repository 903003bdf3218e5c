package mockupstream_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

func anthropicParams(model, text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 256,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

func anthropicWeatherTool() []anthropic.ToolUnionParam {
	return []anthropic.ToolUnionParam{anthropic.ToolUnionParamOfTool(anthropic.ToolInputSchemaParam{
		Properties: map[string]any{"city": map[string]any{"type": "string"}, "days": map[string]any{"type": "number"}},
		Required:   []string{"city"},
	}, "get_weather")}
}

// accumulate runs a Messages stream through the SDK's accumulator.
func accumulate(t *testing.T, c anthropic.Client, p anthropic.MessageNewParams) (anthropic.Message, []string) {
	t.Helper()
	stream := c.Messages.NewStreaming(testCtx(t), p)
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("accumulate %s: %v", ev.Type, err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return msg, types
}

// A non-stream answer has the text, stop reason and usage; a cache_control
// block makes the system prompt count as read from the cache.
func TestAnthropicNonStream(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := anthropicClient(ts)
	p := anthropicParams("claude-x", "hello there friend")
	p.System = []anthropic.TextBlockParam{{Text: "You are terse and kind.", CacheControl: anthropic.NewCacheControlEphemeralParam()}}
	msg, err := c.Messages.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || !strings.HasPrefix(msg.Content[0].Text, "Mock reply to: hello there friend ") {
		t.Fatalf("content %+v", msg.Content)
	}
	if msg.StopReason != anthropic.StopReasonEndTurn || !strings.HasPrefix(msg.ID, "msg_") || msg.Model != "claude-x" {
		t.Errorf("stop %q id %q model %q", msg.StopReason, msg.ID, msg.Model)
	}
	// System 23 chars + user 18 chars = ceil(41/4)+2*4 = 19; the system prompt is ceil(23/4) = 6 of them.
	u := msg.Usage
	if u.InputTokens != 13 || u.CacheReadInputTokens != 6 || u.CacheCreationInputTokens != 0 || u.OutputTokens != 12 {
		t.Errorf("usage in %d cache_read %d cache_creation %d out %d, want 13 6 0 12",
			u.InputTokens, u.CacheReadInputTokens, u.CacheCreationInputTokens, u.OutputTokens)
	}
	p.System[0].CacheControl = anthropic.CacheControlEphemeralParam{}
	uncached, err := c.Messages.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if uncached.Usage.CacheReadInputTokens != 0 || uncached.Usage.InputTokens != 19 {
		t.Errorf("without cache_control: %+v, want 19 input tokens, none cached", uncached.Usage)
	}
}

// A stream has the full event sequence, and the SDK's accumulation of it
// equals the non-stream answer.
func TestAnthropicStream(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := anthropicClient(ts)
	p := anthropicParams("claude-x", "tell me a story")
	plain, err := c.Messages.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	msg, types := accumulate(t, c, p)
	want := []string{"message_start", "content_block_start"} // the SDK drops the ping
	for range 12 {
		want = append(want, "content_block_delta")
	}
	want = append(want, "content_block_stop", "message_delta", "message_stop")
	if d := cmp.Diff(types, want); d != "" {
		t.Errorf("event types (-got +want):\n%s", d)
	}
	if msg.Content[0].Text != plain.Content[0].Text || msg.StopReason != anthropic.StopReasonEndTurn {
		t.Errorf("streamed %q stop %q, want %q end_turn", msg.Content[0].Text, msg.StopReason, plain.Content[0].Text)
	}
	if msg.Usage.OutputTokens != plain.Usage.OutputTokens || msg.Usage.InputTokens != plain.Usage.InputTokens {
		t.Errorf("stream usage %+v, want %+v", msg.Usage, plain.Usage)
	}
}

// The raw stream names each event on an event: line matching its type.
func TestAnthropicStreamEventLines(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	resp := send(t, ts, "/v1/messages", messagesBody("c", "hi", `"stream":true`), anthropicHdr...)
	events, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		var typed struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(e.data), &typed); err != nil || typed.Type != e.name {
			t.Errorf("event %q has data %s", e.name, e.data)
		}
	}
	names := namesOf(events)
	if len(names) < 3 || names[2] != "ping" {
		t.Errorf("events %v, want a ping after content_block_start", names)
	}
	if n := len(events); n == 0 || events[n-1].name != "message_stop" || countContaining(dataOf(events), "[DONE]") != 0 {
		t.Errorf("events %v, want message_stop last and no [DONE]", namesOf(events))
	}
}

// A streamed tool_use block accumulates into parsed input; the tool result
// turn quotes it and ends the turn.
func TestAnthropicToolUse(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := anthropicClient(ts)
	p := anthropicParams("claude-x", "weather in Oslo?")
	p.Tools = anthropicWeatherTool()
	p.ToolChoice = anthropic.ToolChoiceParamOfTool("get_weather")
	msg, types := accumulate(t, c, p)
	if n := strings.Count(strings.Join(types, " "), "content_block_delta"); n < 2 {
		t.Errorf("%d input_json_delta events, want 2 or more", n)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "get_weather" ||
		!strings.HasPrefix(msg.Content[0].ID, "toolu_") {
		t.Fatalf("content %+v, want one get_weather tool_use", msg.Content)
	}
	var input map[string]any
	if err := json.Unmarshal(msg.Content[0].Input, &input); err != nil {
		t.Fatalf("input %s: %v", msg.Content[0].Input, err)
	}
	if d := cmp.Diff(input, map[string]any{"city": "mock", "days": 1.0}); d != "" {
		t.Errorf("tool input (-got +want):\n%s", d)
	}
	if msg.StopReason != anthropic.StopReasonToolUse {
		t.Errorf("stop_reason %q, want tool_use", msg.StopReason)
	}
	p.Messages = append(p.Messages, msg.ToParam(),
		anthropic.NewUserMessage(anthropic.NewToolResultBlock(msg.Content[0].ID, "4 degrees and rain", false)))
	answer, err := c.Messages.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if answer.Content[0].Text != "The tool returned: 4 degrees and rain" || answer.StopReason != anthropic.StopReasonEndTurn {
		t.Errorf("after the tool result: %+v stop %q", answer.Content, answer.StopReason)
	}
}

// max_tokens and stop_sequences end the answer with their stop reasons.
func TestAnthropicLimits(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	c := anthropicClient(ts)
	p := anthropicParams("claude-x", "count")
	p.MaxTokens = 3
	short, err := c.Messages.New(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if short.Content[0].Text != "Mock reply to:" || short.StopReason != anthropic.StopReasonMaxTokens || short.Usage.OutputTokens != 3 {
		t.Errorf("max_tokens 3: %q %q %d", short.Content[0].Text, short.StopReason, short.Usage.OutputTokens)
	}
	p = anthropicParams("claude-x", "count")
	p.StopSequences = []string{" reply"}
	stopped, _ := accumulate(t, c, p)
	if stopped.Content[0].Text != "Mock" || stopped.StopReason != anthropic.StopReasonStopSequence || stopped.StopSequence != " reply" {
		t.Errorf("stop sequence: %q %q %q", stopped.Content[0].Text, stopped.StopReason, stopped.StopSequence)
	}
}

// Like the real API, a request without anthropic-version is a 400.
func TestAnthropicVersionRequired(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	code, _, body := post(t, ts, "/v1/messages", messagesBody("c", "hi", ""))
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e); code != 400 || e.Type != "error" || e.Error.Type != "invalid_request_error" ||
		!strings.Contains(e.Error.Message, "anthropic-version") {
		t.Errorf("got %d %s", code, body)
	}
	code, _, body = post(t, ts, "/v1/messages", `{"model":"c","messages":[{"role":"user","content":"hi"}]}`, anthropicHdr...)
	if code != 400 || !strings.Contains(string(body), "max_tokens") {
		t.Errorf("without max_tokens: %d %s", code, body)
	}
	var apiErr *anthropic.Error
	c := anthropicClient(ts)
	if _, err := c.Messages.New(testCtx(t), anthropicParams("", "hi")); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Errorf("without model: %v", err)
	}
}
