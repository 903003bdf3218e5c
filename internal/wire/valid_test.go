package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// chatBody is a chat completion as OpenAI-compatible APIs return it: about
// 1.4 KB, most of it one content string with the escapes a model's answer
// has (newlines, quotes, a non-ASCII character sent as \u).
const chatBody = `{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Sure! Here is a short overview of how a reverse proxy handles retries.\n\n1. **Classify the failure.** If nothing was sent to the upstream (the dial failed, or the connection was refused), the request can be retried on another upstream without risk.\n2. **Never retry after bytes reached the client.** Once the status line and headers are out, a second attempt would produce a second response, which HTTP cannot express.\n3. **Respect the client.** If the client went away, stop: the error is \"499 client closed request\", not the provider's fault.\n\nA typical configuration looks like this:\n\n` + "```" + `yaml\nretries: 2\ntry_interval: 250ms\n` + "```" + `\n\nThe interval matters because an upstream that just failed is likely to fail again within a few milliseconds \u2014 waiting a little gives it a chance to recover, and spreads the load. Bound the total time with the request's deadline.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,"completion_tokens":246,"total_tokens":1363,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}`

// logprobsBody is the other extreme at the same size: many short strings and
// numbers, as in a completion that returns logprobs.
var logprobsBody = func() string {
	var b strings.Builder
	b.WriteString(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"logprobs":{"content":[`)
	for i, tok := range strings.Fields("The cat sat on the mat and was happy") {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"token":%q,"logprob":%g,"bytes":[%d,%d],"top_logprobs":[{"token":"a","logprob":-1.5},{"token":"b","logprob":-2.25e-5}]}`,
			tok, -float64(37*i+1)/7919, tok[0], tok[len(tok)-1])
	}
	b.WriteString(`]},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":11,"total_tokens":20}}`)
	return b.String()
}()

// validCases are inputs where a validator could go wrong. Their expected
// answers are not written down: each is whatever encoding/json.Valid says.
var validCases = []struct{ name, in string }{
	{"empty", ``},
	{"only space", " \t\r\n"},
	{"chat body", chatBody},
	{"logprobs body", logprobsBody},
	{"padded", " \n{\"a\" : [ 1 , 2 ] }\r\n\t"},
	{"two values", `{} {}`},
	{"trailing garbage", `{}x`},
	{"other space", "\v{}"},
	{"nbsp", "\u00a0{}"},

	{"empty object", `{}`},
	{"empty array", `[]`},
	{"empty object with space", `{ }`},
	{"nested empties", `[{},[],[[]],{"a":{}}]`},
	{"mismatched close", `[}`},
	{"mismatched close object", `{]`},
	{"unclosed array", `[1,2`},
	{"unclosed object", `{"a":1`},
	{"extra close", `[]]`},
	{"trailing comma array", `[1,]`},
	{"trailing comma object", `{"a":1,}`},
	{"leading comma", `[,1]`},
	{"double comma", `[1,,2]`},
	{"missing comma", `[1 2]`},
	{"missing colon", `{"a" 1}`},
	{"missing value", `{"a":}`},
	{"number key", `{1:2}`},
	{"bare key", `{a:1}`},
	{"colon in array", `[1:2]`},
	{"comma at top", `1,2`},
	{"space before colon", "{\"a\"\n:\t1}"},
	{"close only", `}`},

	{"true", `true`},
	{"false", `false`},
	{"null", `null`},
	{"short true", `tru`},
	{"truex", `truex`},
	{"True", `True`},
	{"nul in array", `[nul]`},
	{"literals glued", `[truefalse]`},
	{"null then comma", `[null,false,true]`},

	{"zero", `0`},
	{"minus zero", `-0`},
	{"leading zero", `01`},
	{"minus leading zero", `-01`},
	{"minus only", `-`},
	{"minus space", `- 1`},
	{"plus", `+1`},
	{"fraction", `1.5`},
	{"dot only", `1.`},
	{"leading dot", `.5`},
	{"exponent", `1e10`},
	{"exponent upper signed", `-1.25E+10`},
	{"exponent minus", `2e-3`},
	{"exponent empty", `1e`},
	{"exponent sign only", `1e+`},
	{"exponent after dot", `1.e5`},
	{"two dots", `1.2.3`},
	{"hex", `0x10`},
	{"big", `123456789012345678901234567890e999999`},
	{"Infinity", `Infinity`},
	{"NaN", `NaN`},
	{"number then string", `[1"a"]`},

	{"string", `"hello"`},
	{"empty string", `""`},
	{"unterminated", `"abc`},
	{"unterminated long", `"abcdefghijklmnopqrstuvwxyz`},
	{"escaped quote at end", `"abc\"`},
	{"escapes", `"\" \\ \/ \b \f \n \r \t"`},
	{"bad escape", `"\x"`},
	{"escaped apostrophe", `"\'"`},
	{"escaped zero", `"\0"`},
	{"unicode escape", `"\u00e9\uD83D\uDE00"`},
	{"lone surrogate", `"\uD800"`},
	{"short unicode", `"\u12"`},
	{"unicode bad hex", `"\u12G4"`},
	{"unicode at end", `"\u`},
	{"backslash at end", `"\`},
	{"tab raw", "\"a\tb\""},
	{"newline raw", "\"a\nb\""},
	{"nul raw", "\"a\x00b\""},
	{"0x1f raw", "\"\x1f\""},
	{"0x7f raw", "\"\x7f\""},
	{"single quotes", `'a'`},
	{"utf8", `"héllo, 世界 🙂"`},
	{"invalid utf8", "\"\xff\xfe\""},
	{"truncated utf8", "\"\xe4\xb8\""},
	{"surrogate as utf8", "\"\xed\xa0\x80\""},
	{"invalid utf8 outside string", "[\xff]"},
	{"quote after 8 bytes", `"abcdefgh"`},
	{"quote after 7 bytes", `"abcdefg"`},
	{"backslash at word edge", `"abcdefg\nhijklmno\"pqrstuv"`},
	{"escaped backslash then quote", `"abcdefg\\"`},
	{"control after long run", "\"abcdefghijklmnopqrstuvw\x01xyz\""},
	{"bytes 0x80 and up", "\"\x80\x9f\xa0\xa2\xdc\xe0\xff\xc0\""},
	{"many escapes", `"\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\"`},

	{"depth 10000", strings.Repeat("[", 10000) + strings.Repeat("]", 10000)},
	{"depth 10001", strings.Repeat("[", 10001) + strings.Repeat("]", 10001)},
	{"objects depth 10000", strings.Repeat(`{"a":`, 9999) + "{}" + strings.Repeat("}", 9999)},
	{"objects depth 10001", strings.Repeat(`{"a":`, 10000) + "{}" + strings.Repeat("}", 10000)},
	{"deep then shallow", strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + " "},
	{"depth 10000 siblings", "[" + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + "," + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + "]"},
	{"unclosed deep", strings.Repeat("[", 20000)},
}

func TestValid(t *testing.T) {
	for _, tt := range validCases {
		t.Run(tt.name, func(t *testing.T) {
			checkValid(t, []byte(tt.in))
		})
	}
}

// Every byte value, at every offset from the start of a string's contents
// up to past two eight-byte words, either ends the string early, is refused
// or is ordinary, as encoding/json decides. This covers each lane of the
// eight-byte test and the byte-by-byte tail.
func TestValidStringBytes(t *testing.T) {
	for n := range 20 {
		for c := range 256 {
			in := []byte(`"` + strings.Repeat("x", n+3) + `"`)
			in[1+n] = byte(c)
			checkValid(t, in)
		}
	}
}

func checkValid(t *testing.T, in []byte) {
	t.Helper()
	if got, want := Valid(in), json.Valid(in); got != want {
		t.Errorf("Valid(%.80q) = %v, want %v (encoding/json.Valid)", in, got, want)
	}
}

// FuzzValid compares Valid with encoding/json.Valid. The deep-nesting cases
// are left out of the seeds: at tens of kilobytes each they slowed the fuzzer
// tenfold, and TestValid covers them.
func FuzzValid(f *testing.F) {
	for _, tt := range validCases {
		if len(tt.in) < 4096 {
			f.Add([]byte(tt.in))
		}
	}
	f.Add([]byte(`[[[{"a":[{"b":[]}]}]]]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkValid(t, in)
	})
}

// BenchmarkValid compares Valid with the validators it replaces or imitates,
// on the two bodies. Valid's gain is in long strings; on short tokens it
// should not lose.
func BenchmarkValid(b *testing.B) {
	validators := []struct {
		name  string
		valid func([]byte) bool
	}{
		{"Valid", Valid},
		{"gjson", gjson.ValidBytes},
		{"encoding_json", json.Valid},
	}
	for _, body := range []struct{ name, in string }{{"chat", chatBody}, {"logprobs", logprobsBody}} {
		in := []byte(body.in)
		for _, v := range validators {
			b.Run(body.name+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					if !v.valid(in) {
						b.Fatal("invalid")
					}
				}
			})
		}
	}
}

func TestValidMember(t *testing.T) {
	tests := []struct {
		name, in string
		valid    bool
		value    string // "" when none
	}{
		{"chat completion", chatBody, true, `{"prompt_tokens":1117,"completion_tokens":246,"total_tokens":1363,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`},
		{"spaced", " {\n \"a\" : 1 ,\t\"usage\" :\r\n { \"x\" : [1, 2] } \n} \n", true, `{ "x" : [1, 2] }`},
		{"last of repeated", `{"usage":{"a":1},"b":2,"usage":{"a":3}}`, true, `{"a":3}`},
		{"null", `{"usage":null}`, true, `null`},
		{"nested only", `{"choices":[{"usage":{"a":1}}],"x":{"usage":2}}`, true, ""},
		{"escaped key", `{"us\u0061ge":{"a":1}}`, true, ""},
		{"prefix key", `{"usages":1,"usag":2}`, true, ""},
		{"key in a string", `{"a":"\"usage\":{\"b\":1}"}`, true, ""},
		{"empty object", ` {} `, true, ""},
		{"array", `[{"usage":1}]`, true, ""},
		{"scalar", `"usage"`, true, ""},
		{"invalid after usage", `{"usage":{"a":1},"b":}`, false, ""},
		{"invalid usage", `{"usage":{"a":1,}}`, false, ""},
		{"trailing garbage", `{"usage":1} x`, false, ""},
		{"unclosed", `{"usage":1`, false, ""},
		{"unclosed after comma", `{"usage":1,`, false, ""},
		{"no colon", `{"usage" 1}`, false, ""},
		{"bare key", `{usage:1}`, false, ""},
		{"empty", ``, false, ""},
		{"two objects", `{"usage":1}{}`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			valid, value := ValidMember([]byte(tt.in), "usage")
			if valid != tt.valid || string(value) != tt.value {
				t.Errorf("ValidMember(%.60q) = %v, %q; want %v, %q", tt.in, valid, value, tt.valid, tt.value)
			}
			if valid != json.Valid([]byte(tt.in)) {
				t.Errorf("ValidMember(%.60q) = %v, encoding/json.Valid says otherwise", tt.in, valid)
			}
		})
	}
}

// At the nesting limit an object's members get one level less: ValidMember
// refuses exactly what Valid (and encoding/json) refuse.
func TestValidMemberDepth(t *testing.T) {
	for _, n := range []int{maxDepth - 2, maxDepth - 1, maxDepth} {
		in := []byte(`{"usage":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`)
		valid, value := ValidMember(in, "usage")
		if want := json.Valid(in); valid != want || valid != (value != nil) {
			t.Errorf("nesting %d: ValidMember = %v (value %v), want %v", n+1, valid, value != nil, want)
		}
	}
}

// FuzzValidMember holds ValidMember to Valid and encoding/json.Valid, and
// its value to the last top-level member called "usage" as Members walks
// the object (when no key is escaped, which Members leaves to others).
func FuzzValidMember(f *testing.F) {
	for _, s := range []string{chatBody, `{"usage":{"a":1},"usage":[2]}`, `{"a":{"usage":1},"usage" : null }`, `{}`, `[]`, `{"us\u0061ge":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		valid, value := ValidMember(in, "usage")
		if want := json.Valid(in); valid != want {
			t.Fatalf("ValidMember(%q) = %v, encoding/json.Valid = %v", in, valid, want)
		}
		if !valid {
			if value != nil {
				t.Fatalf("ValidMember(%q): invalid, yet value %q", in, value)
			}
			return
		}
		var want []byte
		if Members(in, func(k, v []byte, _ int) bool {
			if string(k) == "usage" {
				want = v
			}
			return true
		}) && !bytes.Equal(value, want) {
			t.Fatalf("ValidMember(%q) value %q, Members finds %q", in, value, want)
		}
	})
}

// BenchmarkValidMember is ValidMember on a chat completion against what it
// replaced in the gateway: Valid, then a backwards search for the key and a
// scan to the end of its object.
func BenchmarkValidMember(b *testing.B) {
	in := []byte(chatBody)
	b.Run("ValidMember", func(b *testing.B) {
		for b.Loop() {
			if ok, v := ValidMember(in, "usage"); !ok || v == nil {
				b.Fatal("no usage")
			}
		}
	})
	b.Run("Valid+LastIndex", func(b *testing.B) {
		key := []byte(`"usage":`)
		for b.Loop() {
			if !Valid(in) || bytes.LastIndex(in, key) < 0 {
				b.Fatal("no usage")
			}
		}
	})
}
