package payload

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// TestRedact checks each built-in kind, what each must leave alone, and a
// configured pattern.
func TestRedact(t *testing.T) {
	vkey := tenant.NewSecret()
	r := newRedactor([]*regexp.Regexp{regexp.MustCompile(`ssn-\d{3}-\d{2}-\d{4}`)})
	tests := []struct {
		name, in, want string
	}{
		// Cards.
		{"card with spaces", "pay 4111 1111 1111 1111 now", "pay [REDACTED] now"},
		{"card with dashes", "pay 5555-5555-5555-4444.", "pay [REDACTED]."},
		{"card in one run", "card=4242424242424242&x=1", "card=[REDACTED]&x=1"},
		{"amex, 15 digits", "amex 3782 822463 10005", "amex [REDACTED]"},
		{"card amid other numbers", "order 12 4111 1111 1111 1111 exp 12 27", "order 12 [REDACTED] exp 12 27"},
		{"card after an id", "ID12 4111 1111 1111 1111", "ID12 [REDACTED]"},
		{"bad Luhn kept", "ref 4111111111111112 ok", "ref 4111111111111112 ok"},
		{"20 digits kept", "id 41111111111111110000", "id 41111111111111110000"},
		{"12 digits kept", "id 411111111111", "id 411111111111"},
		{"small numbers kept", "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0", "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"},
		{"digits glued to a word kept", "x4111111111111111", "x4111111111111111"},
		{"fraction kept", "pi is 3.4111111111111111 or so", "pi is 3.4111111111111111 or so"},
		{"exponent kept", "n = 4111111111111111e-3", "n = 4111111111111111e-3"},
		{"leading zero kept", "id 0000000000000000", "id 0000000000000000"},
		{"card at the end of a sentence", "it is 4111111111111111.", "it is [REDACTED]."},

		// E-mail addresses.
		{"email", "write to bob.smith+tag@example.co.uk today", "write to [REDACTED] today"},
		{"two emails", "a@b.io,c@d.org", "[REDACTED],[REDACTED]"},
		{"not an email", "user@localhost and @handle", "user@localhost and @handle"},

		// Keys.
		{"openai key", "key sk-proj-AbCdEfGhIjKlMnOpQrStUv123 end", "key [REDACTED] end"},
		{"plain sk key", `"sk-abcdefghijklmnop1234"`, `"[REDACTED]"`},
		{"anthropic key", "x-api-key: sk-ant-api03-AbCdEfGhIjKlMnOp_qr-st", "x-api-key: [REDACTED]"},
		{"virtual key", "my key is " + vkey + ".", "my key is [REDACTED]."},
		{"aws id", "AKIAIOSFODNN7EXAMPLE/ASIAIOSFODNN7EXAMPLE", "[REDACTED]/[REDACTED]"},
		{"github token", "ghp_" + strings.Repeat("a1", 18), "[REDACTED]"},
		{"github fine-grained", "github_pat_" + strings.Repeat("B2_", 20), "[REDACTED]"},
		{"slack token", "xoxb-1234-5678-AbCdEf", "[REDACTED]"},
		{"bearer", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_Ab-9", "Authorization: Bearer [REDACTED]"},
		{"bearer lower case", "bearer  abcdefghijklmnopqrstuvwxyz==", "bearer  [REDACTED]"},
		{"bearer in prose kept", "the bearer of bad news", "the bearer of bad news"},
		{"hyphenated word kept", "a task-management-system-design doc", "a task-management-system-design doc"},
		{"sk inside a word kept", "risk-abcdefghijklmnopqrst", "risk-abcdefghijklmnopqrst"},
		{"key after a refused one", "task-abcdefghijklmnop-sk-abcdefghijklmnopqrst", "task-abcdefghijklmnop-[REDACTED]"},
		{"short sk kept", "pip install sk-learn", "pip install sk-learn"},

		// The configured pattern.
		{"custom", "ssn-123-45-6789 and ssn-12-3", "[REDACTED] and ssn-12-3"},

		// Nothing to do.
		{"empty", "", ""},
		{"plain", "hello world", "hello world"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(r.redact([]byte(tt.in))); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRedactJSON checks that redacting a JSON body leaves valid JSON: no
// escape sequence is cut in half, and a card written as a bare number
// becomes a string.
func TestRedactJSON(t *testing.T) {
	r := newRedactor([]*regexp.Regexp{regexp.MustCompile(`secret\\?`)})
	tests := []struct {
		name, in, want string
	}{
		{"key after a newline escape", `{"content":"key:\nsk-abcdefghijklmnopqrstu"}`, `{"content":"key:\n[REDACTED]"}`},
		{"key after a unicode escape", `{"content":"\u00e9sk-abcdefghijklmnopqrstu"}`, `{"content":"\u00e9[REDACTED]"}`},
		{"email after a newline escape", `{"content":"hi\nbob@example.com"}`, `{"content":"hi\n[REDACTED]"}`},
		{"email after a unicode escape", `{"content":"caf\u00e9bob@example.com"}`, `{"content":"caf\u00e9[REDACTED]"}`},
		{"bearer after a tab escape", `{"h":"x\tBearer abcdefghijklmnopqrstuvwx"}`, `{"h":"x\tBearer [REDACTED]"}`},
		{"card in a string", `{"content":"card 4111 1111 1111 1111"}`, `{"content":"card [REDACTED]"}`},
		{"card as a number", `{"seed": 4111111111111111, "n": 1}`, `{"seed": "[REDACTED]", "n": 1}`},
		{"card as a negative number", `[-4111111111111111]`, `["[REDACTED]"]`},
		{"card as a whole body", `4111111111111111`, `"[REDACTED]"`},
		{"decimal kept", `{"x": 4111111111111111.5}`, `{"x": 4111111111111111.5}`},
		{"card after an escaped quote", `{"a":"x\" 4111111111111111"}`, `{"a":"x\" [REDACTED]"}`},
		{"custom match ends in an escape", `{"a":"secret\"b"}`, `{"a":"[REDACTED]\"b"}`},
		{"event stream", "data: {\"seed\":4111111111111111}\n\ndata: {\"c\":\"4111111111111111\"}\n\n",
			"data: {\"seed\":\"[REDACTED]\"}\n\ndata: {\"c\":\"[REDACTED]\"}\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(r.redact([]byte(tt.in)))
			if got != tt.want {
				t.Errorf("redact(%s) = %s, want %s", tt.in, got, tt.want)
			}
			if json.Valid([]byte(tt.in)) && !json.Valid([]byte(got)) {
				t.Errorf("redact(%s) = %s: no longer valid JSON", tt.in, got)
			}
		})
	}
}

// TestRedactKeepsInput checks that redact never writes into its argument:
// the caller's buffer may still be in use.
func TestRedactKeepsInput(t *testing.T) {
	in := []byte("mail bob@example.com, card 4111111111111111")
	orig := string(in)
	newRedactor(nil).redact(in)
	if string(in) != orig {
		t.Errorf("redact changed its input to %q", in)
	}
}

// FuzzRedact checks that redaction never panics and keeps a JSON body valid
// JSON.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"role":"user","content":"hi bob@example.com\nsk-abcdefghijklmnopqrstu"}],"seed":4111111111111111}`,
		`"\\\\\"\u00e9 4111 1111 1111 1111"`,
		"data: {\"a\":\"Bearer abcdefghijklmnopqrstuvwxyz\"}\n\n",
		`\`, `\u`, `"\u12`,
	} {
		f.Add([]byte(s))
	}
	r := newRedactor(nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		out := r.redact(in)
		if json.Valid(in) && !json.Valid(out) {
			t.Errorf("redact(%q) = %q: no longer valid JSON", in, out)
		}
	})
}

// TestLuhn pins the check against known numbers.
func TestLuhn(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"4111111111111111", true},
		{"4111-1111-1111-1111", true},
		{"378282246310005", true},
		{"6011111111111117", true},
		{"4111111111111112", false},
		{"411111111111", false},         // 12 digits
		{"41111111111111111111", false}, // 20 digits
	} {
		if got := luhnSpan([]byte(tt.in), 0, len(tt.in)); got != tt.want {
			t.Errorf("luhnSpan(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
