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

// scanUsage reads the shapes providers send itself, and whatever it reads,
// it reads as parseUsageAny (the gjson path) does; what it cannot read it
// leaves to parseUsageAny, never half-read.
func TestScanUsageAgreesWithParseUsageAny(t *testing.T) {
	fast := []string{
		`{"prompt_tokens":5,"completion_tokens":300,"total_tokens":305,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
		` { "prompt_tokens" : 12 ,
		    "completion_tokens":	30, "total_tokens":42 } `,
		`{}`, `{ }`,
		`{"prompt_tokens":-3,"completion_tokens":0,"total_tokens":999999999999999999}`,
		`{"prompt_tokens":3,"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2},"prompt_tokens_details":{"cached_tokens":5}}`,
		`{"prompt_tokens_details":null,"completion_tokens_details":[1,{"reasoning_tokens":4}],"total_tokens":1}`,
		`{"prompt_tokens_details":"x","prompt_tokens_details":{"cached_tokens":5}}`,
		`{"extra":{"a":[1,"}]\"",{"b":null}],"prompt_tokens":77},"prompt_tokens":1,"s":"{\"prompt_tokens\":2}","t":true,"f":false,"n":null,"x":-1.5e3}`,
		`{"prompt_tokens_details":{"cache_write_tokens":8,"cached_tokens":3,"nested":{"cached_tokens":99}},"completion_tokens_details":{}}`,
		`{"completion_tokens":7,"ignored":"\u00e9\\\"","completion_tokens_details":{"reasoning_tokens":-2}}`,
	}
	slow := []string{
		`{"prompt_tokens":12.9,"completion_tokens":1e2}`,
		`{"prompt_tokens":"12"}`,
		`{"prompt_tokens":null,"total_tokens":true}`,
		`{"prompt_\u0074okens":4}`,
		`{"completion_tokens":7,"ignored\n":1}`,
		`{"total_tokens":1234567890123456789}`,
		`{"prompt_tokens_details":{"cached_tokens":2.5}}`,
		`{"completion_tokens_details":{"reasoning_tokens":"3"}}`,
		`[{"prompt_tokens":1}]`, `null`, `7`, `"x"`,
	}
	for _, raw := range append(fast, slow...) {
		want, wantOK := parseUsageAny([]byte(raw))
		got, gotOK := ParseUsage([]byte(raw))
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ParseUsage %+v (%v), gjson path %+v (%v)", raw, got, gotOK, want, wantOK)
		}
	}
	for _, raw := range fast {
		if _, ok := scanUsage([]byte(raw)); !ok {
			t.Errorf("%s: left to the gjson path", raw)
		}
	}
	for _, raw := range slow {
		if u, ok := scanUsage([]byte(raw)); ok {
			t.Errorf("%s: read by scanUsage as %+v", raw, u)
		}
	}
}

// FuzzParseUsage: on any valid JSON, ParseUsage agrees with the gjson path.
func FuzzParseUsage(f *testing.F) {
	f.Add(`{"prompt_tokens":5,"completion_tokens":300,"total_tokens":305,"prompt_tokens_details":{"cached_tokens":0}}`)
	f.Add(`{"a":[{"b":"}"}],"prompt_tokens":1.5,"completion_tokens_details":{"reasoning_tokens":2}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return
		}
		want, wantOK := parseUsageAny([]byte(raw))
		got, gotOK := ParseUsage([]byte(raw))
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ParseUsage %+v (%v), gjson path %+v (%v)", raw, got, gotOK, want, wantOK)
		}
	})
}
