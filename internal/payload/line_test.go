package payload

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// TestCut checks the size cap at and around multi-byte characters.
func TestCut(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    string
		wantCut bool
	}{
		{"fits", "héllo", 6, "héllo", false},
		{"ascii", "hello", 3, "hel", true},
		{"before a 2-byte rune", "aé", 1, "a", true},
		{"inside a 2-byte rune", "aé", 2, "a", true},
		{"after a 2-byte rune", "aéb", 3, "aé", true},
		{"inside a 3-byte rune", "a€b", 2, "a", true},
		{"inside a 3-byte rune, later", "a€b", 3, "a", true},
		{"inside a 4-byte rune", "a😀b", 4, "a", true},
		{"after a 4-byte rune", "a😀b", 5, "a😀", true},
		{"only a rune", "😀", 3, "", true},
		{"zero", "abc", 0, "", true},
		{"not UTF-8: backs off three bytes at most", "a\x80\x80\x80\x80\x80", 5, "a\x80", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := cut([]byte(tt.in), tt.max)
			if string(got) != tt.want || cut != tt.wantCut {
				t.Errorf("cut(%q, %d) = %q, %v; want %q, %v", tt.in, tt.max, got, cut, tt.want, tt.wantCut)
			}
			if utf8.ValidString(tt.in) && !utf8.Valid(got) {
				t.Errorf("cut(%q, %d) = %q: not valid UTF-8", tt.in, tt.max, got)
			}
		})
	}
}

// TestEncode checks one line's fields and order: bodies stay the text they
// were (a JSON body is a JSON string, not an object), redacted, then cut.
func TestEncode(t *testing.T) {
	e := newEncoder(newRedactor(nil), 24)
	en := &Entry{
		Time:      time.Date(2025, 3, 1, 12, 0, 0, 5, time.FixedZone("x", 3600)),
		RequestID: "req_1", TeamID: "team_1", KeyID: "key_1", Model: "gpt-4o", Status: 200, Stream: true,
		Request:  []byte(`{"a":"<b@c.io>"}`),
		Response: []byte("data: {\"x\":\"ééééééééééééé\"}\n\n"),
	}
	b, truncated, err := e.encode(en)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2025-03-01T11:00:00.000000005Z","request_id":"req_1","team_id":"team_1","key_id":"key_1",` +
		`"model":"gpt-4o","status":200,"stream":true,"request":"{\"a\":\"<[REDACTED]>\"}",` +
		`"response":"data: {\"x\":\"éééééé","truncated":true}` + "\n"
	if diff := cmp.Diff(string(b), want); diff != "" {
		t.Errorf("encode (-got +want):\n%s", diff)
	}
	if !truncated {
		t.Error("encode: truncated = false, want true")
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Errorf("encode: line is not JSON: %v", err)
	}
}
