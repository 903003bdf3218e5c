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
