package gateway

import (
	"encoding/json"
	"testing"
)

// usageIsNull says "no usage here" exactly when decoding the chunk would
// find no usage object, for the shapes providers send — and it never hides
// a real one.
func TestUsageIsNull(t *testing.T) {
	for _, chunk := range []string{
		`{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}`,
		`{"id":"c","choices":[],"usage" : null }`,
		`{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`,
		`{"usage":{"prompt_tokens":3},"choices":[{"delta":{"content":"usage"}}]}`,
		`{"choices":[{"delta":{"content":"usage"}}],"usage":null}`,
		`{"choices":[{"delta":{"content":"the \"usage\": null"}}],"usage":{"total_tokens":2}}`,
		`{"choices":[{"delta":{"content":"usage"}}]}`,
	} {
		var c struct {
			Usage *json.RawMessage `json:"usage"`
		}
		if err := json.Unmarshal([]byte(chunk), &c); err != nil {
			t.Fatalf("%s: %v", chunk, err)
		}
		hasUsage := c.Usage != nil && string(*c.Usage) != "null"
		if got := usageIsNull([]byte(chunk)); got && hasUsage {
			t.Errorf("%s: usageIsNull = true, but it carries usage %s", chunk, *c.Usage)
		}
		if got := usageIsNull([]byte(chunk)); !got && !hasUsage && chunk != `{"choices":[{"delta":{"content":"usage"}}]}` {
			t.Errorf("%s: usageIsNull = false for a chunk without usage (the fast path missed it)", chunk)
		}
	}
}
