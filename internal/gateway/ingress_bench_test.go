package gateway

import (
	"errors"

	"github.com/tollgate-gw/tollgate/internal/wire"
	"strings"
	"testing"
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
	for b.Loop() {
		if _, err := upstreamBody(benchBody, "gpt-4o-mini-2024-07-18", true); err != nil {
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
		if err == nil && (f.Model == "" || len(f.Messages) == 0) {
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
