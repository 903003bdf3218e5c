package gateway

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/wire"
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

// keep decides as decoding the chunk with encoding/json did — the usage it
// records and whether the chunk is relayed — for every shape a provider
// sends, without the reflection; where that decoding failed (choices that are
// not an array, counts written as 3.0), it still relays the chunk and now
// keeps its usage, read as a non-stream response's is.
func TestKeepMatchesDecoding(t *testing.T) {
	decode := func(chunk []byte, wantUsage bool) (*wire.Usage, bool) {
		var c struct {
			Choices []json.RawMessage `json:"choices"`
			Usage   *wire.Usage       `json:"usage"`
		}
		if json.Unmarshal(chunk, &c) != nil || c.Usage == nil {
			return nil, true
		}
		return c.Usage, wantUsage || len(c.Choices) > 0
	}
	chunks := []string{
		`{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}`,
		`{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`,
		`{"id":"c","choices":[ ],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":2}}}`,
		`{"id":"c","choices":null,"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`,
		`{"id":"c","usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`,
		`{"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4},"choices":[{"delta":{"content":"usage"}}]}`,
		`{"choices":[{"delta":{"content":"the \"usage\": null"}}],"usage":{"total_tokens":2}}`,
		`{"choices":[],"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":7,"completion_tokens":2}}`,
		`{"choices":[{"index":0}],"choices":[],"usage":{"prompt_tokens":7}}`,
		`{"choices":[],"usage":null,"x":1}`,
		`{"choices":[],"usage":7}`,
		`{"choices":[],"usage":{"prompt_tokens":3}`, // cut short: not JSON
	}
	for _, chunk := range chunks {
		for _, wantUsage := range []bool{false, true} {
			x := &exchange{wantUsage: wantUsage}
			got := x.keep([]byte(chunk))
			u, want := decode([]byte(chunk), wantUsage)
			if got != want {
				t.Errorf("%s (client asked for usage: %v): keep = %v, decoding says %v", chunk, wantUsage, got, want)
			}
			if !reflect.DeepEqual(x.usage, u) {
				t.Errorf("%s: usage %+v, decoding says %+v", chunk, x.usage, u)
			}
		}
	}
	// Choices that are not an array failed the decoding, which relayed the
	// chunk and dropped its usage; keep relays it and reads the usage.
	x := &exchange{}
	if !x.keep([]byte(`{"choices":{"index":0},"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}`)) {
		t.Error("a chunk whose choices are not an array was dropped")
	}
	if x.usage == nil || x.usage.TotalTokens != 5 {
		t.Errorf("usage of a chunk whose choices are not an array: %+v", x.usage)
	}
	x = &exchange{wantUsage: true}
	x.keep([]byte(`{"choices":[],"usage":{"prompt_tokens":3.0,"completion_tokens":1e1,"total_tokens":13}}`))
	if want, _ := wire.ParseUsage([]byte(`{"prompt_tokens":3.0,"completion_tokens":1e1,"total_tokens":13}`)); !reflect.DeepEqual(x.usage, want) || want.CompletionTokens != 10 {
		t.Errorf("usage written with non-integer literals: %+v, want %+v", x.usage, want)
	}
}
