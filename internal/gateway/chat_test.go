package gateway_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/valyala/fasthttp"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

func chatParams(model, prompt string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}}
}

func TestChatNonStream(t *testing.T) {
	s := startStack(t)
	var resp *http.Response
	c := s.client()
	got, err := c.Chat.Completions.New(context.Background(), chatParams("chat", "Say hello"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("Chat.Completions.New: %v", err)
	}
	if len(got.Choices) != 1 || got.Choices[0].Message.Content == "" {
		t.Fatalf("choices = %+v, want one with content", got.Choices)
	}
	if got.Usage.PromptTokens == 0 || got.Usage.CompletionTokens == 0 ||
		got.Usage.TotalTokens != got.Usage.PromptTokens+got.Usage.CompletionTokens {
		t.Errorf("usage = %+v, want non-zero and consistent", got.Usage)
	}
	want := map[string]string{"X-Tollgate-Tier": "budget", "X-Tollgate-Model": "m1", "X-Tollgate-Provider": "up",
		"X-Tollgate-Attempts": "1", "X-Tollgate-Fallback": "false"}
	for k, v := range want {
		if g := resp.Header.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Errorf("X-Request-Id = %q, want req_…", resp.Header.Get("X-Request-Id"))
	}
	if ms, err := strconv.ParseFloat(resp.Header.Get("X-Tollgate-Overhead-Ms"), 64); err != nil || ms < 0 || ms > 1000 {
		t.Errorf("X-Tollgate-Overhead-Ms = %q, want a small non-negative number", resp.Header.Get("X-Tollgate-Overhead-Ms"))
	}
	if n := s.calls("m1"); n != 1 {
		t.Errorf("m1 calls = %d, want 1", n)
	}
}

// x-tollgate-overhead-ms leaves out the upstream's time: with an upstream
// that takes 80 ms before it answers, the header stays far below it, and
// the answer itself takes at least that long. Over the HTTP/1.1 transport
// the provider measures the wait from the request written; the gateway's
// own work around it stays in the header.
func TestOverheadHeaderLeavesOutTheUpstream(t *testing.T) {
	s := startStack(t)
	const latency = 80 * time.Millisecond
	s.mock.AddFault(mockupstream.Rule{Model: "m2", Fault: "latency=80ms"})
	for _, stream := range []bool{false, true} {
		body := `{"model":"m2","messages":[{"role":"user","content":"hi"}],"stream":` + strconv.FormatBool(stream) + `}`
		began := time.Now()
		code, h, _ := s.post(t, "/v1/chat/completions", body)
		took := time.Since(began)
		ms, err := strconv.ParseFloat(h.Get("X-Tollgate-Overhead-Ms"), 64)
		if code != 200 || err != nil || took < latency || ms < 0 || ms >= 40 {
			t.Errorf("stream=%v: %d in %v, X-Tollgate-Overhead-Ms = %q: want 200 after ≥ %v, and the header under 40 ms",
				stream, code, took, h.Get("X-Tollgate-Overhead-Ms"), latency)
		}
	}
}

func TestChatStreamAccumulates(t *testing.T) {
	s := startStack(t)
	c := s.client()
	ctx := context.Background()
	plain, err := c.Chat.Completions.New(ctx, chatParams("m2", "Tell me a story"))
	if err != nil {
		t.Fatal(err)
	}
	p := chatParams("m2", "Tell me a story")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(ctx, p)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if chunks < 3 {
		t.Errorf("got %d chunks, want a real stream", chunks)
	}
	if got, want := acc.Choices[0].Message.Content, plain.Choices[0].Message.Content; got != want {
		t.Errorf("streamed content = %q, want the non-stream answer %q", got, want)
	}
	if acc.Usage.CompletionTokens != plain.Usage.CompletionTokens || acc.Usage.PromptTokens != plain.Usage.PromptTokens {
		t.Errorf("stream usage = %+v, want %+v", acc.Usage, plain.Usage)
	}
	// The gateway asked upstream for usage on the client's behalf either way.
	last := s.mock.Stats().Requests
	var body struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	json.Unmarshal(last[len(last)-1].Body, &body)
	if !body.StreamOptions.IncludeUsage {
		t.Error("upstream request did not ask for stream_options.include_usage")
	}
}

// A client that did not ask for usage must not receive the usage-only chunk
// the gateway requested for itself, but the log line still has the tokens.
func TestStreamStripsUsageChunkClientDidNotAskFor(t *testing.T) {
	s := startStack(t)
	code, hdr, body := s.post(t, "/v1/chat/completions", `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi there"}]}`)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content-type %q: %s", code, hdr.Get("Content-Type"), body)
	}
	events := strings.Split(strings.TrimSpace(string(body)), "\n\n")
	if events[len(events)-1] != "data: [DONE]" {
		t.Errorf("last event = %q, want data: [DONE]", events[len(events)-1])
	}
	for _, ev := range events[:len(events)-1] {
		var c struct {
			Choices []json.RawMessage `json:"choices"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &c); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		if len(c.Choices) == 0 {
			t.Errorf("client got a chunk without choices (the usage chunk it did not ask for): %s", ev)
		}
	}
	lines := s.logLines(t)
	if len(lines) != 1 || lines[0]["completion_tokens"].(float64) == 0 || lines[0]["estimated_cost"].(float64) <= 0 {
		t.Errorf("log lines = %v, want one with tokens and cost", lines)
	}
}

func TestToolsRoundTrip(t *testing.T) {
	s := startStack(t)
	c := s.client()
	ctx := context.Background()
	p := chatParams("m1", "What is the weather in Oslo?")
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name: "get_weather", Parameters: openai.FunctionParameters{
			"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
	})}
	first, err := c.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	msg := first.Choices[0].Message
	if first.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" {
		t.Fatalf("first answer = %+v, want one get_weather tool call", first.Choices[0])
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(msg.ToolCalls[0].Function.Arguments), &args); err != nil {
		t.Fatalf("tool arguments %q are not JSON: %v", msg.ToolCalls[0].Function.Arguments, err)
	}
	p.Messages = append(p.Messages, msg.ToParam(), openai.ToolMessage("sunny, 4 C", msg.ToolCalls[0].ID))
	second, err := c.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(second.Choices[0].Message.Content, "sunny, 4 C") {
		t.Errorf("second answer %q does not use the tool result", second.Choices[0].Message.Content)
	}
}

// Every OpenAI field the client sends reaches an OpenAI-compatible upstream
// unchanged; only the model name is rewritten.
func TestFieldsPassThroughUnchanged(t *testing.T) {
	s := startStack(t)
	in := `{"model":"chat","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],` +
		`"temperature":0.3,"top_p":0.9,"seed":42,"n":2,"stop":["\n\n"],"user":"u-17","logprobs":true,"top_logprobs":2,` +
		`"response_format":{"type":"json_object"},"tool_choice":"none","presence_penalty":0.1,"frequency_penalty":0.2,` +
		`"logit_bias":{"50256":-100},"max_completion_tokens":50,"parallel_tool_calls":false,"metadata":{"k":"v"},` +
		`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"x_vendor_extension":{"a":[1,2]}}`
	code, _, body := s.post(t, "/v1/chat/completions", in)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	reqs := s.mock.Stats().Requests
	var got, want map[string]any
	json.Unmarshal(reqs[len(reqs)-1].Body, &got)
	json.Unmarshal([]byte(in), &want)
	want["model"] = "m1"
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("upstream body differs (-got +want):\n%s", d)
	}
	if auth := reqs[len(reqs)-1].Authorization; auth != "Bearer upstream-key" {
		t.Errorf("upstream Authorization = %q, want the provider key, never the client's", auth)
	}
}

func TestEmbeddingsAndModels(t *testing.T) {
	s := startStack(t)
	c := s.client()
	ctx := context.Background()
	emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "emb",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) != 2 || len(emb.Data[0].Embedding) == 0 || emb.Usage.PromptTokens == 0 {
		t.Errorf("embeddings = %d items, usage %+v", len(emb.Data), emb.Usage)
	}
	page, err := c.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	for _, want := range []string{"auto", "chat", "claude", "emb", "m1", "m2"} {
		if !contains(ids, want) {
			t.Errorf("models %v lack %q", ids, want)
		}
	}
	m, err := c.Models.Get(ctx, "chat")
	if err != nil || m.ID != "chat" {
		t.Errorf("Models.Get(chat) = %+v, %v", m, err)
	}
	// A chat model cannot serve embeddings.
	code, _, body := s.post(t, "/v1/embeddings", `{"model":"m1","input":"x"}`)
	if _, c := errorBody(t, body); code != 400 || c != "model_not_supported" {
		t.Errorf("embeddings on a chat model: %d %s", code, body)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestTierHeaderSelectsChain(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct{ tier, model, provider string }{
		{"budget", "m1", "up"}, {"standard", "m2", "up"}, {"premium", "claude", "ant"},
	} {
		t.Run(tc.tier, func(t *testing.T) {
			code, hdr, body := s.post(t, "/v1/chat/completions", `{"model":"auto","messages":[{"role":"user","content":"hi"}]}`,
				"X-Tollgate-Tier", tc.tier)
			if code != 200 || hdr.Get("X-Tollgate-Model") != tc.model || hdr.Get("X-Tollgate-Provider") != tc.provider ||
				hdr.Get("X-Tollgate-Tier") != tc.tier {
				t.Errorf("tier %s: status %d model %q provider %q: %s", tc.tier, code, hdr.Get("X-Tollgate-Model"),
					hdr.Get("X-Tollgate-Provider"), body)
			}
		})
	}
}

func TestLogLineFields(t *testing.T) {
	s := startStack(t)
	code, hdr, _ := s.post(t, "/v1/chat/completions", `{"model":"m1","messages":[{"role":"user","content":"secret prompt text"}]}`)
	if code != 200 {
		t.Fatal(code)
	}
	lines := s.logLines(t)
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1", len(lines))
	}
	l := lines[0]
	for _, k := range []string{"event", "tier", "model", "latency_ms", "tokens", "estimated_cost", "fallback_triggered",
		"timestamp", "request_id", "provider", "attempts", "prompt_tokens", "completion_tokens", "ttfb_ms", "status", "error_code"} {
		if _, ok := l[k]; !ok {
			t.Errorf("log line lacks %q: %v", k, l)
		}
	}
	if l["request_id"] != hdr.Get("X-Request-Id") || l["model"] != "m1" || l["status"].(float64) != 200 {
		t.Errorf("log line = %v", l)
	}
	// m1 is priced at $1 per million input tokens and $2 per million output tokens.
	wantCost := (l["prompt_tokens"].(float64)*1 + l["completion_tokens"].(float64)*2) / 1e6
	if got := l["estimated_cost"].(float64); got < wantCost*0.999 || got > wantCost*1.001 {
		t.Errorf("estimated_cost = %v, want %v", got, wantCost)
	}
	if strings.Contains(string(s.logs.Bytes()), "secret prompt text") || strings.Contains(string(s.logs.Bytes()), masterKey) {
		t.Error("log holds the prompt or the key")
	}
}

// A request's reported latency ends when its response is complete, not
// when the settler gets to it (up to settleEvery later): the log line's
// latency_ms never exceeds what the client measured around the request.
func TestLatencyEndsWithTheResponse(t *testing.T) {
	s := startStack(t)
	took := map[string]float64{} // request id → client-side milliseconds
	for i := range 12 {
		body := `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`
		if i%3 == 2 {
			body = `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		}
		start := time.Now()
		code, hdr, _ := s.post(t, "/v1/chat/completions", body)
		took[hdr.Get("X-Request-Id")] = float64(time.Since(start)) / 1e6
		if code != 200 {
			t.Fatalf("request %d: status %d", i, code)
		}
		time.Sleep(3 * time.Millisecond) // spread the requests over the settler's ticks
	}
	lines := s.logLines(t)
	if len(lines) != len(took) {
		t.Fatalf("%d log lines for %d requests", len(lines), len(took))
	}
	for _, l := range lines {
		id, _ := l["request_id"].(string)
		client, ok := took[id]
		if !ok {
			t.Fatalf("log line for an unknown request %q", id)
		}
		if got := l["latency_ms"].(float64); got > client || got <= 0 {
			t.Errorf("request %s: latency_ms %.3f, client measured %.3f ms (stream %v)", id, got, client, l["stream"])
		}
	}
}

// TestSettledByTheConnection: a request that came over a connection is
// settled by that connection's goroutine once its response went out, not
// handed to the settler (whose ticks wake a thread); a request handled
// without a connection of the server still is, and nothing is left
// unsettled either way.
func TestSettledByTheConnection(t *testing.T) {
	s := startStack(t)
	c := s.client()
	for i := range 9 {
		if i%3 != 2 {
			if _, err := c.Chat.Completions.New(context.Background(), chatParams("m1", "hi")); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			continue
		}
		st := c.Chat.Completions.NewStreaming(context.Background(), chatParams("m1", "hi"))
		for st.Next() {
		}
		if err := st.Err(); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	// A bad request is settled the same way: it has a ledger record too.
	if code, _, _ := s.post(t, "/v1/chat/completions", `{"model":`); code != http.StatusBadRequest {
		t.Fatalf("malformed body: status %d", code)
	}
	// So is one whose connection closes after the response (fasthttp's
	// loop ends without reporting the connection idle).
	if code, _, b := s.post(t, "/v1/chat/completions", `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`,
		"Connection", "close"); code != http.StatusOK {
		t.Fatalf("request with Connection: close: status %d: %s", code, b)
	}
	if n := len(s.logLines(t)); n != 11 {
		t.Fatalf("%d log lines for 11 requests", n)
	}
	if n := s.gw.SettlerSettled(); n != 0 {
		t.Errorf("the settler settled %d of 11 requests that came over connections, want 0", n)
	}

	var fc fasthttp.RequestCtx
	var req fasthttp.Request
	fc.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	fc.Request.Header.SetMethod(http.MethodPost)
	fc.Request.SetRequestURI("/v1/chat/completions")
	fc.Request.Header.Set("Authorization", "Bearer "+masterKey)
	fc.Request.SetBodyString(`{"model":"m1","messages":[{"role":"user","content":"hi"}]}`)
	s.gw.Server().Handler(&fc)
	if fc.Response.StatusCode() != http.StatusOK {
		t.Fatalf("in-process request: status %d: %s", fc.Response.StatusCode(), fc.Response.Body())
	}
	if n := len(s.logLines(t)); n != 12 {
		t.Fatalf("%d log lines for 12 requests", n)
	}
	if n := s.gw.SettlerSettled(); n != 1 {
		t.Errorf("the settler settled %d requests, want the 1 handled without a connection", n)
	}
}
