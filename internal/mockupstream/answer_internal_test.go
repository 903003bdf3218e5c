package mockupstream

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSplitTokensRoundTrip(t *testing.T) {
	for _, s := range []string{"", "one", "Mock reply to: a  b\nc.", "  leading", "trailing  ", "   ", "ünï cødé ✓"} {
		tokens := splitTokens(s)
		if got := strings.Join(tokens, ""); got != s {
			t.Errorf("splitTokens(%q) joins to %q", s, got)
		}
		for i, tok := range tokens {
			if strings.TrimSpace(tok) == "" && i != len(tokens)-1 { // only trailing space may stand alone
				t.Errorf("splitTokens(%q): token %d %q has no word", s, i, tok)
			}
		}
	}
	if got := splitTokens("a b c"); !cmp.Equal(got, []string{"a", " b", " c"}) {
		t.Errorf(`splitTokens("a b c") = %q`, got)
	}
}

func TestArgsFor(t *testing.T) {
	tests := []struct {
		schema string
		want   string
	}{
		{``, `{}`},
		{`{"type":"object"}`, `{}`},
		{`{"type":"object","properties":{"s":{"type":"string"},"n":{"type":"number"},"i":{"type":"integer"},"b":{"type":"boolean"}}}`,
			`{"b":true,"i":1,"n":1,"s":"mock"}`},
		{`{"properties":{"e":{"enum":["x","y"]},"a":{"type":"array"},"u":{"type":["null","integer"]}}}`, `{"a":[],"e":"x","u":1}`},
		{`{"type":"object","properties":{"o":{"type":"object","properties":{"k":{"type":"string"}}}}}`, `{"o":{"k":"mock"}}`},
		{`{"type":"string"}`, `{}`},
		{`not json`, `{}`},
	}
	for _, tc := range tests {
		got := argsFor(json.RawMessage(tc.schema))
		if got != tc.want {
			t.Errorf("argsFor(%s) = %s, want %s", tc.schema, got, tc.want)
		}
		pieces := splitArgs(got)
		if len(pieces) < 2 || strings.Join(pieces, "") != got {
			t.Errorf("splitArgs(%s) = %q, want 2+ pieces joining to it", got, pieces)
		}
	}
}

func TestCut(t *testing.T) {
	full := "one two three four"
	tests := []struct {
		name  string
		max   int
		stops []string
		want  answer
	}{
		{"natural", 0, nil, answer{tokens: []string{"one", " two", " three", " four"}, finish: finishNatural}},
		{"length", 2, nil, answer{tokens: []string{"one", " two"}, finish: finishLength}},
		{"stop", 0, []string{" three"}, answer{tokens: []string{"one", " two"}, finish: finishStop, stopSeq: " three"}},
		{"earliest stop", 0, []string{"four", "two"}, answer{tokens: []string{"one", " "}, finish: finishStop, stopSeq: "two"}},
		{"stop beyond the cap", 2, []string{"four"}, answer{tokens: []string{"one", " two"}, finish: finishLength}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cut(full, tc.max, tc.stops)
			if d := cmp.Diff(got, tc.want, cmp.AllowUnexported(answer{})); d != "" {
				t.Errorf("cut(%q, %d, %q) (-got +want):\n%s", full, tc.max, tc.stops, d)
			}
		})
	}
}

func TestParseFault(t *testing.T) {
	ms := func(d time.Duration) *time.Duration { return &d }
	tps := 20.5
	tests := []struct {
		spec string
		want fault
	}{
		{"", noFault},
		{"status=429, retry_after=1.5,retry_after_ms=1500,code=c,type=t", fault{status: 429, retryAfter: "1.5", retryAfterMS: "1500",
			code: "c", typ: "t", resetAfter: -1, streamErrorAfter: -1}},
		{"hang", fault{hang: true, resetAfter: -1, streamErrorAfter: -1}},
		{"malformed=true,reset_after=0", fault{malformed: true, resetAfter: 0, streamErrorAfter: -1}},
		{"context_limit=100,stream_error_after=4", fault{contextLimit: 100, resetAfter: -1, streamErrorAfter: 4}},
		{"latency=1s,ttft=20ms,tps=20.5", fault{latency: ms(time.Second), ttft: ms(20 * time.Millisecond), tps: &tps, resetAfter: -1, streamErrorAfter: -1}},
	}
	for _, tc := range tests {
		got, err := parseFault(tc.spec)
		tc.want.spec = tc.spec
		if err != nil {
			t.Errorf("parseFault(%q): %v", tc.spec, err)
			continue
		}
		if d := cmp.Diff(got, tc.want, cmp.AllowUnexported(fault{})); d != "" {
			t.Errorf("parseFault(%q) (-got +want):\n%s", tc.spec, d)
		}
	}
	for _, bad := range []string{"status=99", "status=600", "retry_after=-1", "hang=maybe", "tps=-1", "ttft=-1s", "code=", "context_limit=0", "nope"} {
		if _, err := parseFault(bad); err == nil {
			t.Errorf("parseFault(%q) succeeded", bad)
		}
	}
}

// The default answer is 12 tokens, echoes up to 5 words, and differs by choice.
func TestReplyText(t *testing.T) {
	long := replyText("one two three four five six seven", 0, 0)
	if !strings.HasPrefix(long, "Mock reply to: one two three four five ") || strings.Contains(long, "six") ||
		len(splitTokens(long)) != replyTokens || !strings.HasSuffix(long, ".") {
		t.Errorf("replyText = %q", long)
	}
	if replyText("x", 0, 0) == replyText("x", 1, 0) || replyText("x", 0, 0) != replyText("x", 0, 0) {
		t.Error("choices must differ, and the same input must give the same text")
	}
}

// Options.ReplyTokens sets the answer's length; the start stays the same.
func TestReplyTextLength(t *testing.T) {
	short := replyText("one two", 0, 0)
	long := replyText("one two", 0, 200)
	if n := len(splitTokens(long)); n != 200 || !strings.HasPrefix(long, strings.TrimSuffix(short, ".")) {
		t.Errorf("replyText(n=200) has %d tokens: %q", n, long)
	}
	if got := replyText("one two three four five six", 0, 3); len(splitTokens(got)) != 8 {
		t.Errorf("replyText(n=3) = %q, want the prefix and the echoed words only", got)
	}
}
