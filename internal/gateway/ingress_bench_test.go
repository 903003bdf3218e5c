package gateway

import (
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
