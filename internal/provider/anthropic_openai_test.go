package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// TestAnthropicResponseGolden translates every response/<case>.anthropic.json
// and compares the result with response/<case>.openai.json.
func TestAnthropicResponseGolden(t *testing.T) {
	for _, name := range anthCases(t, "response", ".anthropic.json") {
		t.Run(name, func(t *testing.T) {
			in := anthReadFile(t, filepath.Join(anthTestdata, "response", name+".anthropic.json"))
			got, _, err := anthropicToChat(in, anthTestTime)
			if err != nil {
				t.Fatalf("anthropicToChat: %v", err)
			}
			anthGoldenJSON(t, filepath.Join(anthTestdata, "response", name+".openai.json"), got)
		})
	}
}

// TestAnthropicResponseUsage checks the metered usage of a non-streaming
// answer: prompt tokens include cache reads and writes (§6.4).
func TestAnthropicResponseUsage(t *testing.T) {
	in := anthReadFile(t, filepath.Join(anthTestdata, "response", "tool_use.anthropic.json"))
	_, got, err := anthropicToChat(in, anthTestTime)
	if err != nil {
		t.Fatal(err)
	}
	want := &wire.Usage{PromptTokens: 312 + 100 + 2048, CompletionTokens: 61, TotalTokens: 312 + 100 + 2048 + 61,
		PromptDetails: &wire.PromptTokensDetails{CachedTokens: 2048, CacheWriteTokens: 100}, CompletionDetails: &wire.CompletionDetails{}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("usage (-got +want):\n%s", diff)
	}
	if _, u, err := anthropicToChat([]byte(`{"id":"m","content":[]}`), anthTestTime); err != nil || u != nil {
		t.Errorf("message without usage: usage %+v, err %v; want nil, nil", u, err)
	}
	for _, bad := range []string{`not json`, `{"content":[{"type":"tool_use","input":{bad}}]}`} {
		if _, _, err := anthropicToChat([]byte(bad), anthTestTime); err == nil {
			t.Errorf("anthropicToChat(%s) succeeded, want an error", bad)
		}
	}
}

// anthDrain reads a stream to its end, returning the chunks and the final
// error, and checks that the error is sticky.
func anthDrain(t *testing.T, s Stream) ([][]byte, error) {
	t.Helper()
	var chunks [][]byte
	for range 1000 {
		c, err := s.Next()
		if err != nil {
			if _, again := s.Next(); again != err {
				t.Errorf("Next after %v returned %v, want the same error", err, again)
			}
			return chunks, err
		}
		chunks = append(chunks, bytes.Clone(c))
	}
	t.Fatal("stream did not end after 1000 chunks")
	return nil, nil
}

// anthEndLine describes how a stream ended, for the last line of a chunks golden.
func anthEndLine(err error) []byte {
	end := map[string]any{"end": "eof"}
	if err != io.EOF {
		e, ok := AsProviderError(err)
		end = map[string]any{"end": "error", "provider_error": ok,
			"unexpected_eof": errors.Is(err, io.ErrUnexpectedEOF)}
		if ok {
			kinds := map[ErrorKind]string{KindStatus: "status", KindTransport: "transport", KindTimeout: "timeout", KindCanceled: "canceled"}
			end["kind"], end["status"], end["type"], end["code"], end["message"] = kinds[e.Kind], e.Status, e.Type, e.Code, e.Message
		}
	}
	b, _ := json.Marshal(end)
	return b
}

// TestAnthropicStreamGolden replays every stream/<case>.sse through the
// stream translator and compares the chunks, one JSON per line, and a last
// line saying how the stream ended, with stream/<case>.chunks.jsonl.
func TestAnthropicStreamGolden(t *testing.T) {
	for _, name := range anthCases(t, "stream", ".sse") {
		t.Run(name, func(t *testing.T) {
			in := anthReadFile(t, filepath.Join(anthTestdata, "stream", name+".sse"))
			s := newAnthropicStream(context.Background(), "anthropic", io.NopCloser(bytes.NewReader(in)), anthTestTime)
			chunks, err := anthDrain(t, s)
			got := append(chunks, anthEndLine(err))
			path := filepath.Join(anthTestdata, "stream", name+".chunks.jsonl")
			if *anthropicUpdate {
				if err := os.WriteFile(path, append(bytes.Join(got, []byte("\n")), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var wantLines []any
			for _, line := range strings.Split(strings.TrimSpace(string(anthReadFile(t, path))), "\n") {
				wantLines = append(wantLines, anthDecode(t, []byte(line)))
			}
			var gotLines []any
			for _, c := range got {
				gotLines = append(gotLines, anthDecode(t, c))
			}
			if diff := cmp.Diff(gotLines, wantLines); diff != "" {
				t.Errorf("%s (-got +want):\n%s", path, diff)
			}
		})
	}
}

// TestAnthropicStreamUsage checks the usage a finished stream reports
// through its Usage method, including the cache writes that message_delta
// replaced, and that none is reported before message_stop.
func TestAnthropicStreamUsage(t *testing.T) {
	in := anthReadFile(t, filepath.Join(anthTestdata, "stream", "thinking_two_tools.sse"))
	s := newAnthropicStream(context.Background(), "anthropic", io.NopCloser(bytes.NewReader(in)), anthTestTime)
	if _, err := s.Next(); err != nil || s.Usage() != nil {
		t.Fatalf("after the first chunk: err %v, usage %+v; want nil, nil", err, s.Usage())
	}
	if _, err := anthDrain(t, s); err != io.EOF {
		t.Fatalf("stream ended with %v, want io.EOF", err)
	}
	want := &wire.Usage{PromptTokens: 60, CompletionTokens: 88, TotalTokens: 148,
		PromptDetails: &wire.PromptTokensDetails{CacheWriteTokens: 10}, CompletionDetails: &wire.CompletionDetails{}}
	if diff := cmp.Diff(s.Usage(), want); diff != "" {
		t.Errorf("Usage() (-got +want):\n%s", diff)
	}
}

// anthCloseCounter counts Close calls.
type anthCloseCounter struct {
	io.Reader
	n int
}

func (c *anthCloseCounter) Close() error { c.n++; return nil }

// TestAnthropicStreamClose checks that Close closes the body once however
// often it is called.
func TestAnthropicStreamClose(t *testing.T) {
	body := &anthCloseCounter{Reader: strings.NewReader("")}
	s := newAnthropicStream(context.Background(), "anthropic", body, anthTestTime)
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if body.n != 1 {
		t.Errorf("body closed %d times, want 1", body.n)
	}
}

// TestAnthropicErrorMapping checks the translation of Anthropic's error
// answers (§6.6) and what the gateway may do next.
func TestAnthropicErrorMapping(t *testing.T) {
	body := func(typ, msg string) string {
		return `{"type":"error","error":{"type":"` + typ + `","message":"` + msg + `"},"request_id":"req_1"}`
	}
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantType   string
		wantCode   string
		retryable  bool
		fallback   bool
		retryAfter time.Duration
	}{
		{"context overflow", 400, nil, body("invalid_request_error", "prompt is too long: 210266 tokens > 200000 maximum"),
			"invalid_request_error", "context_length_exceeded", false, false, 0},
		{"other bad request", 400, nil, body("invalid_request_error", "max_tokens: Field required"),
			"invalid_request_error", "", false, false, 0},
		{"bad key", 401, nil, body("authentication_error", "invalid x-api-key"),
			"authentication_error", "invalid_api_key", false, true, 0},
		{"billing", 402, nil, body("billing_error", "credit balance too low"),
			"insufficient_quota", "insufficient_quota", false, true, 0},
		{"permission", 403, nil, body("permission_error", "no access"),
			"permission_error", "permission_denied", false, true, 0},
		{"unknown model", 404, nil, body("not_found_error", "model: claude-x"),
			"invalid_request_error", "model_not_found", false, false, 0},
		{"too large from the CDN", 413, nil, `<html>413 Request Entity Too Large</html>`,
			"invalid_request_error", "request_too_large", false, false, 0},
		{"rate limited", 429, http.Header{"Retry-After": {"7"}}, body("rate_limit_error", "slow down"),
			"rate_limit_error", "rate_limit_exceeded", true, true, 7 * time.Second},
		{"spend cap", 429, nil, `{"type":"error","error":{"type":"rate_limit_error","message":"cap","details":{"error_code":"enforced_spend_limit_reached"}}}`,
			"insufficient_quota", "insufficient_quota", false, true, 0},
		{"api error", 500, nil, body("api_error", "internal"),
			"server_error", "server_error", true, true, 0},
		{"bad gateway without body", 502, nil, ``,
			"server_error", "", true, true, 0},
		{"timeout page", 504, nil, `upstream request timeout`,
			"server_error", "upstream_timeout", true, true, 0},
		{"overloaded", 529, http.Header{"Retry-After": {"2"}}, body("overloaded_error", "Overloaded"),
			"server_error", "upstream_overloaded", true, true, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := anthropicStatusError("anthropic", &http.Response{StatusCode: tt.status, Header: h}, []byte(tt.body))
			got := []any{e.Kind, e.Status, e.Type, e.Code, e.Retryable(), e.Fallbackable(), e.RetryAfter, e.Provider}
			want := []any{KindStatus, tt.status, tt.wantType, tt.wantCode, tt.retryable, tt.fallback, tt.retryAfter, "anthropic"}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("anthropicStatusError(%d, %s) (-got +want):\n%s", tt.status, tt.body, diff)
			}
			if e.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

// TestAnthropicStreamErrorMapping checks the status each error event type
// stands for, since an error inside a stream carries none.
func TestAnthropicStreamErrorMapping(t *testing.T) {
	tests := []struct {
		typ, msg  string
		status    int
		code      string
		retryable bool
	}{
		{"overloaded_error", "Overloaded", 503, "upstream_overloaded", true},
		{"rate_limit_error", "slow", 429, "rate_limit_exceeded", true},
		{"api_error", "oops", 500, "server_error", true},
		{"invalid_request_error", "prompt is too long: 5 tokens > 4 maximum", 400, "context_length_exceeded", false},
		{"brand_new_error", "", 502, "upstream_error", true},
	}
	for _, tt := range tests {
		e := anthropicStreamError("anthropic", &anthErrorBody{Type: tt.typ, Message: tt.msg})
		got := []any{e.Kind, e.Status, e.Code, e.Retryable(), e.Message != ""}
		want := []any{KindStatus, tt.status, tt.code, tt.retryable, true}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("anthropicStreamError(%s) (-got +want):\n%s", tt.typ, diff)
		}
	}
}
