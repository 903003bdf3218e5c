package mockupstream

import (
	"encoding/json"
	"testing"
)

// The template path must give exactly the bytes json.Marshal gives for the
// whole event, whatever the token holds: quotes, HTML, control characters,
// invalid UTF-8, line separators.
func TestTokenEventIsJSONMarshal(t *testing.T) {
	tokens := []string{"", " word", `"quoted"`, "<b>&amp;</b>", "tab\tnew\nline\r\b\f", "\x00\x1f", "bad \xff utf8", "\u2028\u2029", "ünï ✓", `back\slash`}
	chatEvent := func(tok string) any {
		o := &chatOutput{c: &call{seq: 7}, model: "mock-gpt", includeUsage: true}
		return o.chunk(1, chunkDelta{Content: new(tok)}, nil)
	}
	messageEvent := func(tok string) any {
		return blockEvent{Type: "content_block_delta", Delta: &anthropicDelta{Type: "text_delta", Text: new(tok)}}
	}
	for name, event := range map[string]func(string) any{"chat chunk": chatEvent, "content_block_delta": messageEvent} {
		ev, err := newTokenEvent(event(tokenSlot))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []byte
		for _, tok := range tokens {
			if got, err = ev.with(got, tok); err != nil {
				t.Fatalf("%s %q: %v", name, tok, err)
			}
			want, err := json.Marshal(event(tok))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%s %q:\n got %s\nwant %s", name, tok, got, want)
			}
		}
	}
}

func TestTokenEventWithoutSlot(t *testing.T) {
	if _, err := newTokenEvent(blockEvent{Type: "content_block_delta"}); err == nil {
		t.Error("an event without the token slot was accepted")
	}
}
