package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// ParseUsage reads what encoding/json would, for the shapes providers send.
func TestParseUsage(t *testing.T) {
	for _, raw := range []string{
		`{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}`,
		`{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":4,"cache_write_tokens":2},"completion_tokens_details":{"reasoning_tokens":7}}`,
		`{"completion_tokens_details":null,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":1,"prompt_tokens":1,"completion_tokens":0}`,
		`{}`,
	} {
		got, ok := ParseUsage([]byte(raw))
		var want Usage
		if err := json.Unmarshal([]byte(raw), &want); err != nil || !ok || !reflect.DeepEqual(*got, want) {
			t.Errorf("%s: got %+v (%v), want %+v", raw, got, ok, want)
		}
	}
	for _, raw := range []string{`null`, `[1]`, `"x"`, `7`} {
		if u, ok := ParseUsage([]byte(raw)); ok || u != nil {
			t.Errorf("%s: accepted as %+v", raw, u)
		}
	}
}

// Of a key given twice, the first counts, as a lookup by name would find it.
func TestParseUsageDuplicateKeys(t *testing.T) {
	u, ok := ParseUsage([]byte(`{"prompt_tokens":3,"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":1},"prompt_tokens_details":{"cached_tokens":5}}`))
	if !ok || u.PromptTokens != 3 || u.CachedTokens() != 1 {
		t.Fatalf("got %+v (%v), want prompt 3, cached 1", u, ok)
	}
}

// BenchmarkParseUsage reads the usage object of a typical chat completion.
func BenchmarkParseUsage(b *testing.B) {
	raw := []byte(`{"prompt_tokens":5,"completion_tokens":300,"total_tokens":305,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`)
	b.ReportAllocs()
	for b.Loop() {
		if u, ok := ParseUsage(raw); !ok || u.CompletionTokens != 300 {
			b.Fatal(u, ok)
		}
	}
}
