package gateway

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// benchBody is a realistic chat request: a system prompt, a few turns and a tool.
var benchBody = []byte(`{"model":"chat","temperature":0.2,"stream":false,"messages":[` +
	`{"role":"system","content":"` + strings.Repeat("You are a helpful assistant. ", 20) + `"},` +
	`{"role":"user","content":"` + strings.Repeat("Tell me about the weather. ", 30) + `"},` +
	`{"role":"assistant","content":"` + strings.Repeat("It is sunny. ", 30) + `"},` +
	`{"role":"user","content":"And tomorrow?"}],` +
	`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`)

func BenchmarkInspectChat(b *testing.B) {
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := inspectChat(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpstreamBody(b *testing.B) {
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	f, err := inspectChat(benchBody)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := upstreamBody(benchBody, f.edits, "gpt-4o-mini-2024-07-18", true); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzInspectChat: any body gets either fields or a *wire.Error, never a panic.
func FuzzInspectChat(f *testing.F) {
	for _, s := range []string{string(benchBody), `{}`, `{"model":5}`, `[]`, `{"model":"m","messages":[{"role":1}]}`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		f, err := inspectChat(body)
		if err == nil && (f.Model == "" || f.Messages == 0) {
			t.Fatalf("accepted %q without model or messages", body)
		}
		if err != nil {
			if _, ok := errors.AsType[*wire.Error](err); !ok {
				t.Fatalf("error %T is not a *wire.Error", err)
			}
		}
	})
}

func TestInspectChatRoles(t *testing.T) {
	cases := []struct {
		body string
		code string // "" = accepted
	}{
		{`{"model":"m","messages":[{"role":"user","content":"x"}]}`, ""},
		{`{"model":"m","messages":[{"role":"\u0075ser","content":"x"}]}`, ""},
		{`{"model":"m","messages":[{"role":"wizard"}]}`, "invalid_value"},
		{`{"model":"m","messages":[{"role":null}]}`, "invalid_value"},
		{`{"model":"m","messages":[{}]}`, "invalid_value"},
		{`{"model":"m","messages":[{"role":7}]}`, "invalid_type"},
	}
	for _, tc := range cases {
		_, err := inspectChat([]byte(tc.body))
		got := ""
		if e, ok := errors.AsType[*wire.Error](err); ok {
			got = e.Code
		}
		if got != tc.code {
			t.Errorf("inspectChat(%s) code %q (%v), want %q", tc.body, got, err, tc.code)
		}
	}
}

// upstreamBody changes the model (and for streams asks for usage) and leaves
// every other byte as the client sent it.
func TestUpstreamBody(t *testing.T) {
	cases := []struct {
		name, body string
		stream     bool
		want       string
	}{
		{"plain", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`, false,
			`{"model":"up-1","messages":[{"role":"user","content":"hi"}]}`},
		{"spaces kept", `{ "messages" : [{"role":"user","content":"hi"}], "model" : "chat" }`, false,
			`{ "messages" : [{"role":"user","content":"hi"}], "model" : "up-1" }`},
		{"stream, no options", `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`, true,
			`{"stream_options":{"include_usage":true},"model":"up-1","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"stream, usage asked", `{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, true,
			`{"model":"up-1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`},
		{"stream, usage not asked", `{"model":"chat","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]}`, true,
			`{"model":"up-1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`},
		{"escaped model", `{"model":"ch\u0061t","messages":[{"role":"user","content":"hi"}]}`, false,
			`{"model":"up-1","messages":[{"role":"user","content":"hi"}]}`},
	}
	for _, tc := range cases {
		f, err := inspectChat([]byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := upstreamBody([]byte(tc.body), f.edits, "up-1", tc.stream)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", tc.name, got, err, tc.want)
		}
	}
	if got, _ := upstreamBody([]byte(`{"model":"a","messages":[{"role":"user"}]}`), bodyEdits{model: span{9, 12}}, `we"ird`, false); string(got) != `{"model":"we\"ird","messages":[{"role":"user"}]}` {
		t.Errorf("quoting: %s", got)
	}
}

// FuzzUpstreamBody: whatever inspectChat accepts, the rewritten body is
// valid JSON naming the new model, and a stream's asks for usage.
func FuzzUpstreamBody(f *testing.F) {
	for _, s := range []string{string(benchBody), `{"model":"m","stream":true,"messages":[{"role":"user"}]}`,
		`{"stream_options":null,"model":"m","messages":[{"role":"user"}]}`} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, stream bool) {
		fields, err := inspectChat(body)
		if err != nil {
			return
		}
		out, err := upstreamBody(body, fields.edits, "new-model", stream)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if !gjson.ValidBytes(out) || gjson.GetBytes(out, "model").Str != "new-model" {
			t.Fatalf("%q → %q", body, out)
		}
		if stream && !gjson.GetBytes(out, "stream_options.include_usage").Bool() {
			t.Fatalf("stream without usage: %q → %q", body, out)
		}
	})
}
