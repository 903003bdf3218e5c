package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// anthUpstream is a fake Anthropic API: it answers /v1/messages from the
// golden files and records what it received.
type anthUpstream struct {
	t *testing.T

	mu       sync.Mutex // guards the fields below
	headers  []http.Header
	bodies   []map[string]any
	paths    []string
	response string // response/<case>.anthropic.json for non-streaming calls
	stream   string // stream/<case>.sse for streaming calls
}

func (u *anthUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		u.t.Errorf("upstream got a body that is not JSON: %v", err)
	}
	u.mu.Lock()
	u.headers = append(u.headers, r.Header.Clone())
	u.bodies = append(u.bodies, body)
	u.paths = append(u.paths, r.URL.Path)
	u.mu.Unlock()
	if body["stream"] != true {
		w.Header().Set("Content-Type", "application/json")
		w.Write(anthReadFile(u.t, filepath.Join(anthTestdata, "response", u.response+".anthropic.json")))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sse := anthReadFile(u.t, filepath.Join(anthTestdata, "stream", u.stream+".sse"))
	for _, ev := range bytes.SplitAfter(sse, []byte("\n\n")) {
		w.Write(ev)
		w.(http.Flusher).Flush()
	}
}

// anthRelay is a minimal gateway in front of a: it sends the client's body
// through Do and writes the answer the way the gateway's relay does, so that a
// real OpenAI SDK can read it.
func anthRelay(t *testing.T, a *Anthropic) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var peek struct {
			Stream bool `json:"stream"`
		}
		json.Unmarshal(body, &peek)
		resp, err := a.Do(r.Context(), &Request{Endpoint: Chat, Body: body, Model: "claude-sonnet-4-5",
			Stream: peek.Stream, RequestID: "req-42"})
		if err != nil {
			t.Errorf("Do: %v", err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if resp.Stream == nil {
			w.Header().Set("Content-Type", "application/json")
			w.Write(resp.Body)
			return
		}
		defer resp.Stream.Close()
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			chunk, err := resp.Stream.Next()
			if err == io.EOF {
				io.WriteString(w, "data: [DONE]\n\n")
				return
			}
			if err != nil {
				t.Errorf("stream: %v", err)
				return
			}
			if !json.Valid(chunk) {
				t.Errorf("chunk is not valid JSON: %s", chunk)
			}
			w.Write([]byte("data: "))
			w.Write(chunk)
			w.Write([]byte("\n\n"))
			w.(http.Flusher).Flush()
		}
	}))
}

// anthWeatherParams is the OpenAI request of the end-to-end test.
func anthWeatherParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "premium",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Weather in Bergen?")},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: "get_weather", Parameters: shared.FunctionParameters{"type": "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}}}})},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
}

// TestAnthropicEndToEnd drives the adapter with the official OpenAI Go SDK
// through a minimal relay, against a fake Anthropic API: non-streaming,
// streaming (through the SDK's accumulator), then non-streaming again, and
// checks what reached the upstream.
func TestAnthropicEndToEnd(t *testing.T) {
	up := &anthUpstream{t: t, response: "tool_use", stream: "text_tool_use"}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	a := NewAnthropic(Account{Name: "anthropic", BaseURL: upSrv.URL + "/v1/", Keys: []string{"k-one", "k-two"},
		Headers: map[string]string{"anthropic-beta": "tools-2099", "x-api-key": "from-config"}}, upSrv.Client())
	relay := anthRelay(t, a)
	defer relay.Close()
	client := openai.NewClient(option.WithBaseURL(relay.URL), option.WithAPIKey("client-key"), option.WithMaxRetries(0))
	ctx := context.Background()

	completion, err := client.Chat.Completions.New(ctx, anthWeatherParams())
	if err != nil {
		t.Fatalf("non-streaming call: %v", err)
	}
	anthCheckCompletion(t, completion, "Checking the weather.", `{"city":"Bergen","note":"<&>"}`, 2460, 61)

	stream := client.Chat.Completions.NewStreaming(ctx, anthWeatherParams())
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		if !acc.AddChunk(stream.Current()) {
			t.Fatalf("accumulator rejected chunk %d: %s", chunks, stream.Current().RawJSON())
		}
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("streaming call: %v", err)
	}
	if chunks != 8 {
		t.Errorf("got %d chunks, want 8", chunks)
	}
	anthCheckCompletion(t, &acc.ChatCompletion, "Checking the weather.", `{"city": "Bergen"}`, 2360, 61)

	if _, err := client.Chat.Completions.New(ctx, anthWeatherParams()); err != nil {
		t.Fatalf("second non-streaming call: %v", err)
	}
	anthCheckUpstream(t, up)
}

// anthCheckCompletion checks an SDK-decoded completion.
func anthCheckCompletion(t *testing.T, c *openai.ChatCompletion, content, args string, prompt, completion int64) {
	t.Helper()
	if len(c.Choices) != 1 {
		t.Fatalf("got %d choices, want 1", len(c.Choices))
	}
	msg := c.Choices[0].Message
	if msg.Content != content || c.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("content %q, finish %q; want %q, tool_calls", msg.Content, c.Choices[0].FinishReason, content)
	}
	if len(msg.ToolCalls) == 0 {
		t.Fatal("no tool calls")
	}
	call := msg.ToolCalls[0]
	if call.ID != "toolu_01B" || call.Function.Name != "get_weather" || call.Function.Arguments != args {
		t.Errorf("tool call %s %s(%s), want toolu_01B get_weather(%s)", call.ID, call.Function.Name, call.Function.Arguments, args)
	}
	var parsed map[string]any
	if err := json.Unmarshal([]byte(call.Function.Arguments), &parsed); err != nil || parsed["city"] != "Bergen" {
		t.Errorf("arguments %q do not parse to city=Bergen: %v", call.Function.Arguments, err)
	}
	if c.Usage.PromptTokens != prompt || c.Usage.CompletionTokens != completion ||
		c.Usage.TotalTokens != prompt+completion || c.Usage.PromptTokensDetails.CachedTokens != 2048 {
		t.Errorf("usage %+v, want prompt %d, completion %d, cached 2048", c.Usage, prompt, completion)
	}
}

// anthCheckUpstream checks the three requests the fake Anthropic API got.
func anthCheckUpstream(t *testing.T, up *anthUpstream) {
	t.Helper()
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.headers) != 3 {
		t.Fatalf("upstream got %d requests, want 3", len(up.headers))
	}
	var keys []string
	for i, h := range up.headers {
		keys = append(keys, h.Get("X-Api-Key"))
		got := []string{up.paths[i], h.Get("Anthropic-Version"), h.Get("Content-Type"), h.Get("Anthropic-Beta"),
			h.Get("X-Request-Id"), h.Get("Authorization")}
		want := []string{"/v1/messages", "2023-06-01", "application/json", "tools-2099", "req-42", ""}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("request %d path and headers (-got +want):\n%s", i, diff)
		}
		for name := range h {
			if strings.HasPrefix(strings.ToLower(name), "x-stainless") {
				t.Errorf("request %d: client header %s was forwarded", i, name)
			}
		}
		b := up.bodies[i]
		if b["model"] != "claude-sonnet-4-5" || b["max_tokens"] != float64(defaultAnthropicMaxTokens) ||
			b["system"] != "Be brief." || (b["stream"] == true) != (i == 1) || b["stream_options"] != nil {
			t.Errorf("request %d body: %v", i, b)
		}
	}
	if diff := cmp.Diff(keys, []string{"k-one", "k-two", "k-one"}); diff != "" {
		t.Errorf("x-api-key rotation (-got +want):\n%s", diff)
	}
}

// TestAnthropicBaseURL checks that base URLs with or without /v1 and a
// trailing slash all reach /v1/messages.
func TestAnthropicBaseURL(t *testing.T) {
	up := &anthUpstream{t: t, response: "text"}
	srv := httptest.NewServer(up)
	defer srv.Close()
	for _, base := range []string{srv.URL, srv.URL + "/", srv.URL + "/v1", srv.URL + "/v1/"} {
		a := NewAnthropic(Account{Name: "anthropic", BaseURL: base, Keys: []string{"k"}}, srv.Client())
		if _, err := a.Do(context.Background(), &Request{Body: []byte(`{"messages":[{"role":"user","content":"hi"}]}`)}); err != nil {
			t.Errorf("base %s: %v", base, err)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if diff := cmp.Diff(up.paths, []string{"/v1/messages", "/v1/messages", "/v1/messages", "/v1/messages"}); diff != "" {
		t.Errorf("paths (-got +want):\n%s", diff)
	}
}

// TestAnthropicNoUpstreamCall checks that embeddings and untranslatable
// requests fail with a 400 without reaching the upstream.
func TestAnthropicNoUpstreamCall(t *testing.T) {
	up := &anthUpstream{t: t, response: "text"}
	srv := httptest.NewServer(up)
	defer srv.Close()
	a := NewAnthropic(Account{Name: "claude", BaseURL: srv.URL, Keys: []string{"k"}}, srv.Client())
	tests := []struct {
		name string
		req  Request
		code string
	}{
		{"embeddings", Request{Endpoint: Embeddings, Body: []byte(`{"input":"hi"}`)}, "unsupported_endpoint"},
		{"n=3", Request{Body: []byte(`{"n":3,"messages":[{"role":"user","content":"hi"}]}`)}, "unsupported_parameter"},
		{"bad arguments", Request{Body: []byte(`{"messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"nope"}}]}]}`)}, "invalid_value"},
	}
	for _, tt := range tests {
		_, err := a.Do(context.Background(), &tt.req)
		e, ok := AsProviderError(err)
		if !ok || e.Kind != KindStatus || e.Status != 400 || e.Code != tt.code || e.Provider != "claude" || e.Message == "" {
			t.Errorf("%s: Do error %v; want a 400 %s from provider claude", tt.name, err, tt.code)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.paths) != 0 {
		t.Errorf("upstream got %d requests, want none", len(up.paths))
	}
}

// TestAnthropicDoErrors checks how Do reports upstream statuses, malformed
// answers and transport failures.
func TestAnthropicDoErrors(t *testing.T) {
	body := []byte(`{"messages":[{"role":"user","content":"hi"}]}`)
	overloaded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(529)
		io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	}))
	defer overloaded.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<html>hello</html>`)
	}))
	defer garbage.Close()
	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name   string
		url    string
		ctx    context.Context
		stream bool
		want   []any // kind, status, code, retryable
	}{
		{"529", overloaded.URL, context.Background(), true, []any{KindStatus, 529, "upstream_overloaded", true}},
		{"malformed body", garbage.URL, context.Background(), false, []any{KindTransport, 0, "upstream_malformed_response", true}},
		{"refused", refused.URL, context.Background(), false, []any{KindTransport, 0, "upstream_unavailable", true}},
		{"client gone", garbage.URL, canceled, false, []any{KindCanceled, 0, "client_closed_request", false}},
	}
	for _, tt := range tests {
		a := NewAnthropic(Account{Name: "anthropic", BaseURL: tt.url, Keys: []string{"k"}}, nil)
		_, err := a.Do(tt.ctx, &Request{Body: body, Stream: tt.stream})
		e, ok := AsProviderError(err)
		if !ok {
			t.Fatalf("%s: Do error %v is not a *Error", tt.name, err)
		}
		if diff := cmp.Diff([]any{e.Kind, e.Status, e.Code, e.Retryable()}, tt.want); diff != "" {
			t.Errorf("%s: Do error %v (-got +want):\n%s", tt.name, err, diff)
		}
		if tt.name == "529" && e.RetryAfter.Seconds() != 3 {
			t.Errorf("529: RetryAfter %v, want 3s", e.RetryAfter)
		}
	}
}

// TestAnthropicStreamBroken checks a stream whose connection is cut (a
// transport error wrapping io.ErrUnexpectedEOF) and one whose client leaves
// (KindCanceled), each after the first chunk.
func TestAnthropicStreamBroken(t *testing.T) {
	start := anthReadFile(t, filepath.Join(anthTestdata, "stream", "text.sse"))
	start = start[:bytes.Index(start, []byte("\n\n"))+2] // message_start only
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(start)
		w.(http.Flusher).Flush()
		if r.Header.Get("X-Request-Id") == "hang" {
			<-r.Context().Done()
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close() // a reset mid-stream: the chunked body never ends
	}))
	defer srv.Close()

	for _, tt := range []struct {
		name, requestID string
		kind            ErrorKind
	}{{"reset", "reset", KindTransport}, {"client gone", "hang", KindCanceled}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a := NewAnthropic(Account{Name: "anthropic", BaseURL: srv.URL, Keys: []string{"k"}}, srv.Client())
			resp, err := a.Do(ctx, &Request{Body: []byte(`{"messages":[{"role":"user","content":"hi"}]}`),
				Stream: true, RequestID: tt.requestID})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Stream.Close()
			if _, err := resp.Stream.Next(); err != nil {
				t.Fatalf("first chunk: %v", err)
			}
			if tt.kind == KindCanceled {
				cancel()
			}
			_, err = resp.Stream.Next()
			e, ok := AsProviderError(err)
			if !ok || e.Kind != tt.kind {
				t.Fatalf("Next after the break: %v, want a *Error of kind %v", err, tt.kind)
			}
			if tt.kind == KindTransport && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Next after the reset: %v, want it to wrap io.ErrUnexpectedEOF", err)
			}
		})
	}
}
