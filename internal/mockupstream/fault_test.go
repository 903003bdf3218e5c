package mockupstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// openAIErr is the OpenAI error envelope, with every key required.
type openAIErr struct {
	Error struct {
		Message *string `json:"message"`
		Type    *string `json:"type"`
		Param   any     `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// anthropicErr is the Anthropic error body.
type anthropicErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestFaultStatus(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	tests := []struct {
		name      string
		path      string
		body      string
		spec      string
		status    int
		headers   map[string]string
		errorType string // OpenAI type or Anthropic error.type
		code      string // OpenAI only
	}{
		{"openai 429", "/v1/chat/completions", chatBody("m1", "hi", ""), "status=429,retry_after=2", 429,
			map[string]string{"Retry-After": "2"}, "requests", "rate_limit_exceeded"},
		{"openai quota", "/v1/chat/completions", chatBody("m1", "hi", ""), "status=429,code=insufficient_quota,type=insufficient_quota", 429,
			nil, "insufficient_quota", "insufficient_quota"},
		{"openai 503 ms", "/chat/completions", chatBody("m1", "hi", `"stream":true`), "status=503, retry_after_ms=150", 503,
			map[string]string{"retry-after-ms": "150"}, "server_error", "server_is_overloaded"},
		{"openai 500", "/v1/chat/completions", chatBody("m1", "hi", ""), "status=500", 500, nil, "server_error", "server_error"},
		{"embeddings 400", "/v1/embeddings", `{"model":"e","input":"x"}`, "status=400", 400, nil, "invalid_request_error", ""},
		{"anthropic 529", "/v1/messages", messagesBody("c", "hi", ""), "status=529,retry_after=1", 529,
			map[string]string{"Retry-After": "1"}, "overloaded_error", ""},
		{"anthropic 429", "/v1/messages", messagesBody("c", "hi", `"stream":true`), "status=429", 429, nil, "rate_limit_error", ""},
		{"anthropic 500", "/v1/messages", messagesBody("c", "hi", ""), "status=500", 500, nil, "api_error", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := append([]string{mockupstream.FaultHeader, tc.spec}, anthropicHdr...)
			code, h, body := post(t, ts, tc.path, tc.body, hdr...)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			for k, v := range tc.headers {
				if h.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
				}
			}
			if tc.path == "/v1/messages" {
				var e anthropicErr
				if err := json.Unmarshal(body, &e); err != nil || e.Type != "error" || e.Error.Type != tc.errorType || e.Error.Message == "" {
					t.Errorf("body %s, want an Anthropic %s error", body, tc.errorType)
				}
				return
			}
			var e openAIErr
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == nil || e.Error.Type == nil || *e.Error.Type != tc.errorType {
				t.Fatalf("body %s, want an OpenAI envelope of type %s", body, tc.errorType)
			}
			if !strings.Contains(string(body), `"param":`) || !strings.Contains(string(body), `"code":`) {
				t.Errorf("body %s lacks param or code", body)
			}
			if got := ""; tc.code != "" && (e.Error.Code == nil || *e.Error.Code != tc.code) {
				if e.Error.Code != nil {
					got = *e.Error.Code
				}
				t.Errorf("code %q, want %q", got, tc.code)
			}
		})
	}
}

// A fault spec that does not parse is a 400 naming it, from the header or a rule.
func TestFaultBadSpec(t *testing.T) {
	m, ts := start(t, mockupstream.Options{})
	for _, spec := range []string{"status=abc", "status=200", "frobnicate=1", "latency=fast", "reset_after=-1"} {
		code, _, body := post(t, ts, "/v1/chat/completions", chatBody("m1", "hi", ""), mockupstream.FaultHeader, spec)
		if code != 400 || !strings.Contains(string(body), "bad fault spec") {
			t.Errorf("header %q: %d %s", spec, code, body)
		}
		if code, _, body := post(t, ts, "/_faults", `{"fault":"`+spec+`"}`); code != 400 {
			t.Errorf("POST /_faults %q: %d %s", spec, code, body)
		}
	}
	if n := len(m.Faults()); n != 0 {
		t.Errorf("%d rules added by bad posts", n)
	}
}

// hang answers nothing and returns when the client gives up, so nothing leaks.
func TestFaultHang(t *testing.T) {
	m, ts := start(t, mockupstream.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(chatBody("m1", "hi", "")))
	req.Header.Set(mockupstream.FaultHeader, "hang")
	began := time.Now()
	resp, err := ts.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("hang answered %d", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) < 100*time.Millisecond {
		t.Errorf("client error %v after %v, want its own deadline", err, time.Since(began))
	}
	// Recorded on arrival, and finished (with no status) once the client left.
	waitFor(t, "the hung handler to return", func() bool { return m.Stats().Models["m1"].Statuses[0] == 1 })
	if rec := m.Stats().Requests; len(rec) != 1 || rec[0].Fault != "hang" {
		t.Errorf("records %+v", rec)
	}
}

// reset_after gives the client the first N content chunks, then a broken
// connection rather than a clean end; without a stream it resets at once.
func TestFaultResetAfter(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	resp := send(t, ts, "/v1/chat/completions", chatBody("m1", "hi", `"stream":true`), mockupstream.FaultHeader, "reset_after=3")
	events, err := readSSE(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error %v, want unexpected EOF", err)
	}
	data := dataOf(events)
	if len(data) != 4 || countContaining(data, "[DONE]") != 0 || countContaining(data, "finish_reason\":\"") != 0 {
		t.Errorf("got %d events (want the role chunk and 3 content chunks): %v", len(data), data)
	}

	// More than the stream has: all the content, then still no clean end.
	resp = send(t, ts, "/v1/messages", messagesBody("c", "hi", `"stream":true`), append(anthropicHdr, mockupstream.FaultHeader, "reset_after=50")...)
	events, err = readSSE(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || countContaining(namesOf(events), "content_block_delta") != 12 ||
		countContaining(namesOf(events), "message_stop") != 0 {
		t.Errorf("reset_after=50: events %v, error %v", namesOf(events), err)
	}

	oc := openAIClient(ts)
	_, err = oc.Chat.Completions.New(testCtx(t), userParams("m1", "hi"), optionFault("reset_after=0"))
	if err == nil {
		t.Error("non-stream reset: the SDK got an answer")
	}

	ac := anthropicClient(ts)
	stream := ac.Messages.NewStreaming(testCtx(t), anthropicParams("c", "hi"), aOptionFault("reset_after=2"))
	var msg anthropic.Message
	for stream.Next() {
		_ = msg.Accumulate(stream.Current())
	}
	if stream.Err() == nil || msg.Content[0].Text != "Mock reply" {
		t.Errorf("anthropic stream reset: err %v, text %q", stream.Err(), msg.Content[0].Text)
	}
}

// malformed: a 200 body that is not JSON, or a stream data line that is not.
func TestFaultMalformed(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	code, _, body := post(t, ts, "/v1/chat/completions", chatBody("m1", "hi", ""), mockupstream.FaultHeader, "malformed")
	if code != 200 || json.Valid(body) {
		t.Errorf("non-stream: %d %s, want 200 and invalid JSON", code, body)
	}
	oc := openAIClient(ts)
	stream := oc.Chat.Completions.NewStreaming(testCtx(t), userParams("m1", "hi"), optionFault("malformed"))
	for stream.Next() {
	}
	var syntax *json.SyntaxError
	if !errors.As(stream.Err(), &syntax) {
		t.Errorf("openai stream error %v, want a JSON syntax error", stream.Err())
	}
	ac := anthropicClient(ts)
	astream := ac.Messages.NewStreaming(testCtx(t), anthropicParams("c", "hi"), aOptionFault("malformed"))
	for astream.Next() {
	}
	if astream.Err() == nil {
		t.Error("anthropic stream with a malformed event succeeded")
	}
}

// context_limit answers each provider's context-length error when the
// prompt estimate is over the limit, and nothing special at the limit.
func TestFaultContextLimit(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	user := strings.Repeat("abcd", 10) // 40 chars: ceil(40/4) + 4 = 14 tokens
	code, _, body := post(t, ts, "/v1/chat/completions", chatBody("m1", user, ""), mockupstream.FaultHeader, "context_limit=10")
	var e openAIErr
	if json.Unmarshal(body, &e); code != 400 || e.Error.Code == nil || *e.Error.Code != "context_length_exceeded" ||
		e.Error.Param != "messages" || *e.Error.Type != "invalid_request_error" {
		t.Errorf("openai over the limit: %d %s", code, body)
	}
	if code, _, body := post(t, ts, "/v1/chat/completions", chatBody("m1", user, ""), mockupstream.FaultHeader, "context_limit=14"); code != 200 {
		t.Errorf("openai at the limit: %d %s", code, body)
	}
	code, _, body = post(t, ts, "/v1/messages", messagesBody("c", user, ""), append(anthropicHdr, mockupstream.FaultHeader, "context_limit=10")...)
	var a anthropicErr
	if json.Unmarshal(body, &a); code != 400 || a.Error.Type != "invalid_request_error" || a.Error.Message != "prompt is too long: 14 tokens > 10 maximum" {
		t.Errorf("anthropic over the limit: %d %s", code, body)
	}
}

// stream_error_after sends N content events, then the API's in-stream error
// and a clean close without the normal end; the SDKs raise it.
func TestFaultStreamErrorAfter(t *testing.T) {
	_, ts := start(t, mockupstream.Options{})
	resp := send(t, ts, "/v1/chat/completions", chatBody("m1", "hi", `"stream":true`), mockupstream.FaultHeader, "stream_error_after=2,code=upstream_overloaded")
	events, err := readSSE(resp.Body)
	data := dataOf(events)
	if err != nil || len(data) != 4 || !strings.Contains(data[3], `"error":{`) || !strings.Contains(data[3], "upstream_overloaded") {
		t.Errorf("events %v, err %v; want role, 2 content chunks, an error", data, err)
	}
	oc := openAIClient(ts)
	stream := oc.Chat.Completions.NewStreaming(testCtx(t), userParams("m1", "hi"), optionFault("stream_error_after=1"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if stream.Err() == nil || acc.Choices[0].Message.Content != "Mock" {
		t.Errorf("openai SDK: err %v content %q", stream.Err(), acc.Choices[0].Message.Content)
	}

	resp = send(t, ts, "/v1/messages", messagesBody("c", "hi", `"stream":true`), append(anthropicHdr, mockupstream.FaultHeader, "stream_error_after=3")...)
	events, _ = readSSE(resp.Body)
	last := events[len(events)-1]
	if last.name != "error" || !strings.Contains(last.data, "overloaded_error") || countContaining(namesOf(events), "content_block_delta") != 3 {
		t.Errorf("anthropic events %v, last %s", namesOf(events), last.data)
	}
	ac := anthropicClient(ts)
	astream := ac.Messages.NewStreaming(testCtx(t), anthropicParams("c", "hi"), aOptionFault("stream_error_after=0"))
	for astream.Next() {
	}
	if astream.Err() == nil || !strings.Contains(astream.Err().Error(), "overloaded_error") {
		t.Errorf("anthropic SDK error %v, want overloaded_error", astream.Err())
	}
}

// Rules apply in order to matching models, Times counts down, the header
// wins without spending a rule, and DELETE /_faults clears them.
func TestFaultRules(t *testing.T) {
	m, ts := start(t, mockupstream.Options{})
	statusOf := func(model string, hdr ...string) int {
		t.Helper()
		code, _, _ := post(t, ts, "/v1/chat/completions", chatBody(model, "hi", ""), hdr...)
		return code
	}
	m.AddFault(mockupstream.Rule{Model: "m1", Fault: "status=503", Times: 2})
	if code, _, body := post(t, ts, "/_faults", `{"model":"*","fault":"status=429","times":1}`); code != 201 {
		t.Fatalf("POST /_faults: %d %s", code, body)
	}
	var got []int
	for _, step := range []struct {
		model string
		hdr   []string
	}{
		{"m1", nil}, // 503, 1 left
		{"m1", []string{mockupstream.FaultHeader, "status=500"}}, // the header wins
		{"m2", nil}, // 429 from "*", now spent
		{"m1", nil}, // 503, m1 rule spent
		{"m1", nil}, // 200
		{"m2", nil}, // 200
	} {
		got = append(got, statusOf(step.model, step.hdr...))
	}
	if d := cmp.Diff(got, []int{503, 500, 429, 503, 200, 200}); d != "" {
		t.Errorf("statuses (-got +want):\n%s", d)
	}
	m.AddFault(mockupstream.Rule{Model: "m1", Fault: "status=502"})
	m.AddFault(mockupstream.Rule{Model: "", Fault: "status=504", Times: 3})
	if statusOf("m1") != 502 || statusOf("m1") != 502 || statusOf("m3") != 504 {
		t.Error("later rules did not apply in order")
	}
	if d := cmp.Diff(m.Faults(), []mockupstream.Rule{{Model: "m1", Fault: "status=502"}, {Model: "", Fault: "status=504", Times: 2}}); d != "" {
		t.Errorf("live rules (-got +want):\n%s", d)
	}
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/_faults", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if statusOf("m1") != 200 || len(m.Faults()) != 0 {
		t.Error("DELETE /_faults left rules")
	}
}

// latency delays the headers; ttft the first content event; tps the rest.
func TestFaultTiming(t *testing.T) {
	_, ts := start(t, mockupstream.Options{Latency: 30 * time.Millisecond})
	began := time.Now()
	post(t, ts, "/v1/chat/completions", chatBody("m1", "hi", ""))
	if d := time.Since(began); d < 30*time.Millisecond {
		t.Errorf("Options.Latency 30ms: answered in %v", d)
	}
	began = time.Now()
	post(t, ts, "/v1/chat/completions", chatBody("m1", "hi", ""), mockupstream.FaultHeader, "latency=80ms")
	if d := time.Since(began); d < 80*time.Millisecond {
		t.Errorf("latency=80ms: answered in %v", d)
	}

	began = time.Now()
	resp := send(t, ts, "/v1/chat/completions", chatBody("m1", "hi", `"stream":true`), mockupstream.FaultHeader, "latency=0s,ttft=60ms,tps=200")
	if d := time.Since(began); d >= 60*time.Millisecond {
		t.Errorf("stream headers took %v, want them before the TTFT", d)
	}
	var stamps []time.Duration
	events, err := readTimed(resp.Body, began, &stamps)
	if err != nil || len(events) != 15 { // role, 12 tokens, finish, [DONE]
		t.Fatalf("%d events, %v", len(events), err)
	}
	if first := stamps[1]; first < 60*time.Millisecond {
		t.Errorf("first content after %v, want ttft 60ms", first)
	}
	// 11 more tokens at 200/s: at least 55 ms after the first.
	if spread := stamps[12] - stamps[1]; spread < 50*time.Millisecond {
		t.Errorf("12 tokens spread over %v, want >= 55ms at 200 tps", spread)
	}
}

// readTimed reads data lines, noting when each arrived relative to since.
func readTimed(r io.Reader, since time.Time, stamps *[]time.Duration) ([]string, error) {
	var out []string
	buf := make([]byte, 64<<10)
	var pending string
	for {
		n, err := r.Read(buf)
		pending += string(buf[:n])
		for {
			i := strings.Index(pending, "\n\n")
			if i < 0 {
				break
			}
			out = append(out, strings.TrimPrefix(pending[:i], "data: "))
			*stamps = append(*stamps, time.Since(since))
			pending = pending[i+2:]
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
