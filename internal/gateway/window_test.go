package gateway_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// windowConfig: "small" has a 300-token window and falls back to "big".
// POLICY is replaced per test.
const windowConfig = `
providers:
  up: {kind: openai, base_url: MOCK/v1, api_key: k}
models:
  small: {provider: up, upstream: gpt-4o-mini, context_window: 300, max_output_tokens: 100, price: {input: 1, output: 2}, fallbacks: [big]}
  big: {provider: up, upstream: gpt-4o, context_window: 100000, max_output_tokens: 1000, price: {input: 5, output: 10}}
tiers: {budget: [small], standard: [small], premium: [big]}
profiles:
  dev: {default_tier: budget, max_retries: 0, context_policy: POLICY}
`

var long = strings.Repeat("the quick brown fox jumps over the lazy dog ", 40) // ~400 tokens

func windowRequest(msgs ...string) string {
	return `{"model":"small","max_tokens":50,"temperature":0.1,"messages":[` + strings.Join(msgs, ",") + `]}`
}

func msg(role, content string) string {
	b, _ := json.Marshal(map[string]string{"role": role, "content": content})
	return string(b)
}

func TestContextReject(t *testing.T) {
	s := startStackWith(t, strings.Replace(windowConfig, "POLICY", "reject", 1))
	code, _, body := s.post(t, "/v1/chat/completions", windowRequest(msg("user", long)))
	if _, c := errorBody(t, body); code != 400 || c != "context_length_exceeded" {
		t.Errorf("got %d %s, want 400 context_length_exceeded", code, c)
	}
	if n := s.mock.Stats().Total; n != 0 {
		t.Errorf("upstream calls = %d, want none", n)
	}
	// A request that fits is untouched.
	if code, _, _ := s.post(t, "/v1/chat/completions", windowRequest(msg("user", "hi"))); code != 200 {
		t.Errorf("small request: %d", code)
	}
}

func TestContextTrim(t *testing.T) {
	s := startStackWith(t, strings.Replace(windowConfig, "POLICY", "trim", 1))
	toolCall := `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}`
	toolResult := `{"role":"tool","tool_call_id":"call_1","content":"` + long[:200] + `"}`
	in := windowRequest(msg("system", "be brief"), msg("user", long), msg("assistant", long), toolCall, toolResult,
		msg("user", "and now?"))
	code, hdr, body := s.post(t, "/v1/chat/completions", in)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if hdr.Get("X-Tollgate-Context-Trimmed") == "" || hdr.Get("X-Tollgate-Model") != "small" {
		t.Errorf("trimmed %q model %q", hdr.Get("X-Tollgate-Context-Trimmed"), hdr.Get("X-Tollgate-Model"))
	}
	reqs := s.mock.Stats().Requests
	var up struct {
		Messages []struct {
			Role       string          `json:"role"`
			Content    json.RawMessage `json:"content"`
			ToolCallID string          `json:"tool_call_id"`
			ToolCalls  []any           `json:"tool_calls"`
		} `json:"messages"`
		Temperature float64 `json:"temperature"`
	}
	json.Unmarshal(reqs[len(reqs)-1].Body, &up)
	var roles []string
	for _, m := range up.Messages {
		roles = append(roles, m.Role)
	}
	if len(roles) < 2 || roles[0] != "system" || roles[len(roles)-1] != "user" ||
		!strings.Contains(string(up.Messages[len(up.Messages)-1].Content), "and now?") {
		t.Errorf("upstream roles %v: want the system prompt first and the last user turn last", roles)
	}
	calls, results := 0, 0
	for _, m := range up.Messages {
		if len(m.ToolCalls) > 0 {
			calls++
		}
		if m.Role == "tool" {
			results++
		}
	}
	if calls != results {
		t.Errorf("tool calls %d and results %d were separated: %v", calls, results, roles)
	}
	if up.Temperature != 0.1 {
		t.Errorf("other fields changed: temperature %v", up.Temperature)
	}
}

func TestContextFallback(t *testing.T) {
	s := startStackWith(t, strings.Replace(windowConfig, "POLICY", "fallback", 1))
	code, hdr, body := s.post(t, "/v1/chat/completions", windowRequest(msg("user", long)))
	if code != 200 || hdr.Get("X-Tollgate-Model") != "big" || hdr.Get("X-Tollgate-Fallback") != "true" {
		t.Errorf("got %d model %q fallback %q: %s", code, hdr.Get("X-Tollgate-Model"), hdr.Get("X-Tollgate-Fallback"), body)
	}
	if n := s.calls("gpt-4o-mini"); n != 0 {
		t.Errorf("small got %d calls, want none", n)
	}
	// An upstream context-length error triggers the same fallback.
	s.mock.AddFault(mockupstream.Rule{Model: "gpt-4o-mini", Fault: "context_limit=5"})
	code, hdr, _ = s.post(t, "/v1/chat/completions", windowRequest(msg("user", "a short question that still fails upstream")))
	if code != 200 || hdr.Get("X-Tollgate-Model") != "big" || s.calls("gpt-4o-mini") != 1 {
		t.Errorf("upstream context error: %d model %q, small calls %d", code, hdr.Get("X-Tollgate-Model"), s.calls("gpt-4o-mini"))
	}
}
