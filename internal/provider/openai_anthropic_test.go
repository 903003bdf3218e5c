package provider

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// anthropicUpdate rewrites the golden files under testdata/anthropic. It is
// not called -update: a flag is defined once per test binary, and the other
// adapters' tests in this package may want their own.
var anthropicUpdate = flag.Bool("anthropic.update", false, "rewrite the golden files in testdata/anthropic")

// anthTestdata is the golden-file directory of the Anthropic adapter.
const anthTestdata = "testdata/anthropic"

// anthTestTime is the fixed clock of the Anthropic tests (2026-01-01).
var anthTestTime = time.Unix(1767225600, 0)

// anthCases returns the case names of the files in testdata/anthropic/dir
// ending in suffix.
func anthCases(t *testing.T, dir, suffix string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(anthTestdata, dir, "*"+suffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no %s cases in %s: %v", suffix, dir, err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), suffix)
	}
	return names
}

// anthReadFile reads a test file or fails.
func anthReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// anthGoldenJSON compares got with the JSON golden file at path, as decoded
// values, or rewrites the file under -anthropic.update.
func anthGoldenJSON(t *testing.T, path string, got []byte) {
	t.Helper()
	if *anthropicUpdate {
		var buf bytes.Buffer
		if err := json.Indent(&buf, got, "", "  "); err != nil {
			t.Fatalf("indent %s: %v\n%s", path, err, got)
		}
		buf.WriteByte('\n')
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(anthDecode(t, got), anthDecode(t, anthReadFile(t, path))); diff != "" {
		t.Errorf("%s mismatch (-got +want):\n%s", path, diff)
	}
}

// anthDecode decodes JSON into a generic value, failing on invalid JSON.
func anthDecode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return v
}

// TestAnthropicRequestGolden translates every request/<case>.openai.json and
// compares the result with request/<case>.anthropic.json.
func TestAnthropicRequestGolden(t *testing.T) {
	for _, name := range anthCases(t, "request", ".openai.json") {
		t.Run(name, func(t *testing.T) {
			in := anthReadFile(t, filepath.Join(anthTestdata, "request", name+".openai.json"))
			req, err := translateAnthropicRequest(in)
			if err != nil {
				t.Fatalf("translateAnthropicRequest: %v", err)
			}
			got, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			anthGoldenJSON(t, filepath.Join(anthTestdata, "request", name+".anthropic.json"), got)
		})
	}
}

// TestAnthropicRequestErrors checks that requests Anthropic cannot serve as
// asked fail with a 400 and a stable code, before any upstream call.
func TestAnthropicRequestErrors(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body, code string
	}{
		{"not JSON", `{"model":`, "invalid_json"},
		{"content is a number", `{"messages":[{"role":"user","content":5}]}`, "invalid_json"},
		{"stop is a number", `{"stop":5,` + user + `}`, "invalid_json"},
		{"n over 1", `{"n":2,` + user + `}`, "unsupported_parameter"},
		{"logprobs", `{"logprobs":true,` + user + `}`, "unsupported_parameter"},
		{"top_logprobs", `{"top_logprobs":3,` + user + `}`, "unsupported_parameter"},
		{"audio output", `{"audio":{"voice":"alloy","format":"wav"},` + user + `}`, "unsupported_parameter"},
		{"legacy functions", `{"functions":[{"name":"f"}],` + user + `}`, "unsupported_parameter"},
		{"custom tool", `{"tools":[{"type":"custom","custom":{"name":"x"}}],` + user + `}`, "unsupported_parameter"},
		{"tool without name", `{"tools":[{"type":"function","function":{}}],` + user + `}`, "invalid_value"},
		{"allowed_tools choice", `{"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[]}},` + user + `}`, "unsupported_parameter"},
		{"unknown choice", `{"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes",` + user + `}`, "invalid_value"},
		{"json_schema without schema", `{"response_format":{"type":"json_schema","json_schema":{"name":"x"}},` + user + `}`, "invalid_value"},
		{"max_tokens zero", `{"max_tokens":0,` + user + `}`, "invalid_value"},
		{"no messages", `{"messages":[]}`, "invalid_value"},
		{"only system", `{"messages":[{"role":"system","content":"be nice"}]}`, "invalid_value"},
		{"only empty user", `{"messages":[{"role":"user","content":""}]}`, "invalid_value"},
		{"unknown role", `{"messages":[{"role":"critic","content":"hi"}]}`, "invalid_value"},
		{"legacy function role", `{"messages":[{"role":"function","name":"f","content":"1"}]}`, "invalid_value"},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"hi"}]}`, "unsupported_value"},
		{"input_audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]}`, "unsupported_value"},
		{"file id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, "unsupported_value"},
		{"image_url missing", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, "invalid_value"},
		{"data URL not base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "invalid_value"},
		{"ftp URL", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "invalid_value"},
		{"arguments not JSON", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}`, "invalid_value"},
		{"arguments an array", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "invalid_value"},
		{"tool call without id", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, "invalid_value"},
		{"tool result without id", `{"messages":[{"role":"user","content":"hi"},{"role":"tool","content":"x"}]}`, "invalid_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := translateAnthropicRequest([]byte(tt.body))
			e, ok := AsProviderError(err)
			if !ok {
				t.Fatalf("translateAnthropicRequest(%s) = %+v, %v; want a *Error", tt.body, req, err)
			}
			got := [4]any{e.Kind, e.Status, e.Type, e.Code}
			want := [4]any{KindStatus, 400, "invalid_request_error", tt.code}
			if got != want || e.Message == "" || e.Retryable() || e.Fallbackable() {
				t.Errorf("translateAnthropicRequest(%s) error = %v (kind, status, type, code %v, retryable %v); want %v, not retryable",
					tt.body, e, got, e.Retryable(), want)
			}
		})
	}
}

// TestAnthropicRequestContactUserID checks that user ids that look like
// contact details never reach metadata.user_id.
func TestAnthropicRequestContactUserID(t *testing.T) {
	for user, want := range map[string]bool{
		"user-7f3a": true, "42": true, "5f0c8a0e-3b1d-4c55-9c1e-8f5d2f6a7b90": true,
		"ola@example.com": false, "+47 912 34 567": false, "(555) 123-4567": false,
	} {
		body, _ := json.Marshal(map[string]any{"user": user, "messages": []any{map[string]any{"role": "user", "content": "hi"}}})
		req, err := translateAnthropicRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.Metadata != nil && req.Metadata.UserID == user; got != want {
			t.Errorf("user %q: metadata %+v, want sent=%v", user, req.Metadata, want)
		}
	}
}

// FuzzAnthropicRequest checks that the request translator never panics, and
// that whatever it accepts encodes to valid JSON with a positive max_tokens,
// while whatever it rejects is a 400 *Error.
func FuzzAnthropicRequest(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(anthTestdata, "request", "*.openai.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"messages":[{"role":"tool","content":[{"type":"text","text":""}]}],"stop":null,"tool_choice":null}`))
	f.Add([]byte(`{"messages":[{"role":"assistant","content":[{"type":"refusal","refusal":"no"}],"tool_calls":[{"id":"a","function":{"name":"f","arguments":" {}"}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := translateAnthropicRequest(body)
		if err != nil {
			if e, ok := AsProviderError(err); !ok || e.Status != 400 || e.Code == "" {
				t.Fatalf("error %v is not a 400 *Error with a code", err)
			}
			return
		}
		out, err := json.Marshal(req)
		if err != nil || !json.Valid(out) {
			t.Fatalf("accepted request does not encode: %v", err)
		}
		if req.MaxTokens < 1 || len(req.Messages) == 0 {
			t.Fatalf("accepted request has max_tokens %d and %d messages", req.MaxTokens, len(req.Messages))
		}
	})
}
