package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// fakeCount charges 3 per request and, per message, 10 plus the length of its
// content: additive, like meter's counter, and easy to reckon with.
func fakeCount(body []byte) (int, error) {
	var req struct {
		Messages []struct{ Content string }
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, err
	}
	if req.Messages == nil {
		return 0, errors.New("no messages")
	}
	n := 3
	for _, m := range req.Messages {
		n += 10 + len(m.Content)
	}
	return n, nil
}

// msg is a message whose content is size bytes: it costs 10+size.
func msg(role string, size int) string {
	return fmt.Sprintf(`{"role":%q,"content":%q}`, role, strings.Repeat("x", size))
}

// call is an assistant message calling tools with these ids: it costs 10.
func call(ids ...string) string {
	var calls []string
	for _, id := range ids {
		calls = append(calls, fmt.Sprintf(`{"id":%q,"type":"function","function":{"name":"f","arguments":"{}"}}`, id))
	}
	return `{"role":"assistant","content":null,"tool_calls":[` + strings.Join(calls, ",") + `]}`
}

// result answers tool call id: it costs 10+size.
func result(id string, size int) string {
	return fmt.Sprintf(`{"role":"tool","tool_call_id":%q,"content":%q}`, id, strings.Repeat("x", size))
}

const (
	prefix = `{"model":"m", "tools":[{"type":"function","function":{"name":"f"}}],` + "\n  " + `"messages" : `
	suffix = ` , "temperature":0.20,"x-vendor":{"keep":[1, 2 ,3]},"stream":true}`
)

func chatBody(msgs []string) []byte {
	return []byte(prefix + "[" + strings.Join(msgs, ", ") + "]" + suffix)
}

func TestTrim(t *testing.T) {
	tests := []struct {
		name           string
		msgs           []string
		maxOut, window int
		keep           []int // indexes of the messages left; nil when an error is wanted
		wantErr        *TrimError
	}{
		{"fits already", []string{msg("system", 0), msg("user", 0)}, 0, 23, []int{0, 1}, nil},
		{"drops the oldest turn, whole",
			[]string{msg("system", 0), msg("user", 0), msg("assistant", 0), msg("user", 0), msg("assistant", 0), msg("user", 0)},
			0, 53, []int{0, 3, 4, 5}, nil},
		{"output counts against the window",
			[]string{msg("system", 0), msg("user", 0), msg("assistant", 0), msg("user", 0), msg("assistant", 0), msg("user", 0)},
			10, 63, []int{0, 3, 4, 5}, nil},
		{"drops more turns when needed",
			[]string{msg("system", 0), msg("user", 0), msg("assistant", 0), msg("user", 0), msg("assistant", 0), msg("user", 0)},
			0, 33, []int{0, 5}, nil},
		{"keeps system and developer messages anywhere",
			[]string{msg("system", 0), msg("user", 0), msg("developer", 0), msg("assistant", 0), msg("user", 0)},
			0, 33, []int{0, 2, 4}, nil},
		{"keeps the latest user message and what follows",
			[]string{msg("user", 50), msg("assistant", 50), msg("user", 0), call("c1"), result("c1", 0), msg("assistant", 0)},
			0, 43, []int{2, 3, 4, 5}, nil},
		{"keeps the last message when no user spoke",
			[]string{msg("system", 0), msg("assistant", 0), msg("assistant", 0), msg("assistant", 0)},
			0, 23, []int{0, 3}, nil},
		{"drops a tool call with its result, never orphaning it",
			// Dropping the user message and the call would be enough by
			// tokens, but the result must go with its call.
			[]string{msg("user", 0), call("c1"), result("c1", 50), msg("user", 0)},
			0, 73, []int{3}, nil},
		{"drops parallel tool calls with all their results",
			[]string{msg("user", 0), call("c1", "c2"), result("c1", 0), result("c2", 0), msg("assistant", 0), msg("user", 0)},
			0, 33, []int{5}, nil},
		{"keeps a call whose result is in the kept tail",
			[]string{msg("user", 0), call("c1"), msg("user", 0), result("c1", 0)},
			0, 33, []int{1, 2, 3}, nil},
		{"groups a result it cannot match with the call before it",
			[]string{msg("user", 0), call("c1"), result("zz", 0), msg("user", 0)},
			0, 23, []int{3}, nil},
		{"drops a legacy function call with its result",
			[]string{msg("user", 0), `{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}`,
				`{"role":"function","name":"f","content":""}`, msg("user", 0)},
			0, 13, []int{3}, nil},
		{"nothing to drop", []string{msg("system", 100), msg("user", 100)}, 0, 100, nil, &TrimError{Needed: 223, Window: 100}},
		{"the kept minimum does not fit",
			[]string{msg("system", 0), msg("user", 0), msg("assistant", 0), msg("user", 200)},
			7, 100, nil, &TrimError{Needed: 230, Window: 100}},
		{"a negative window fits nothing", []string{msg("user", 0), msg("user", 0)}, 0, -1, nil, &TrimError{Needed: 13, Window: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := chatBody(tt.msgs)
			out, dropped, err := Trim(body, fakeCount, tt.maxOut, tt.window)
			if tt.wantErr != nil {
				var te *TrimError
				if !errors.As(err, &te) {
					t.Fatalf("Trim() error = %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(te, tt.wantErr); diff != "" {
					t.Errorf("Trim() error (-got +want):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Trim() error = %v", err)
			}
			var kept []string
			for _, i := range tt.keep {
				kept = append(kept, tt.msgs[i])
			}
			want := []byte(prefix + "[" + strings.Join(kept, ",") + "]" + suffix)
			if len(kept) == len(tt.msgs) {
				want = body // untouched, whitespace and all
			}
			if diff := cmp.Diff(string(out), string(want)); diff != "" {
				t.Errorf("Trim() body (-got +want):\n%s", diff)
			}
			if dropped != len(tt.msgs)-len(tt.keep) {
				t.Errorf("Trim() dropped %d, want %d", dropped, len(tt.msgs)-len(tt.keep))
			}
			if n, _ := fakeCount(out); n+tt.maxOut > tt.window {
				t.Errorf("Trim() result counts %d + %d > %d", n, tt.maxOut, tt.window)
			}
		})
	}
}

func TestTrimFitsUnchanged(t *testing.T) {
	body := chatBody([]string{msg("system", 5), msg("user", 5)})
	out, dropped, err := Trim(body, fakeCount, 100, 1000)
	if err != nil || dropped != 0 || !bytes.Equal(out, body) || &out[0] != &body[0] {
		t.Errorf("Trim(fitting body) = %q, %d, %v; want the body itself, 0, nil", out, dropped, err)
	}
}

// TestTrimReadsTheMessagesEncodingJSONReads: with duplicate keys differing in
// case, encoding/json (and so the counter) takes the last; Trim must trim
// that one and leave the other alone.
func TestTrimReadsTheMessagesEncodingJSONReads(t *testing.T) {
	first := `[` + msg("user", 500) + `]`
	body := []byte(`{"messages":` + first + `,"Messages":[` + msg("user", 0) + `,` + msg("assistant", 0) + `,` + msg("user", 0) + `]}`)
	out, dropped, err := Trim(body, fakeCount, 0, 23)
	want := `{"messages":` + first + `,"Messages":[` + msg("user", 0) + `]}`
	if err != nil || dropped != 2 || string(out) != want {
		t.Errorf("Trim() = %s, %d, %v; want %s, 2", out, dropped, err, want)
	}
}

func TestTrimErrors(t *testing.T) {
	failing := func([]byte) (int, error) { return 0, errors.New("boom") }
	if _, _, err := Trim(chatBody([]string{msg("user", 0)}), failing, 0, 10); err == nil {
		t.Error("Trim() with a failing counter: no error")
	}
	for _, b := range []string{`[]`, `{"model":"m"}`, `{"messages":[1]}`} {
		always := func([]byte) (int, error) { return 100, nil }
		if _, _, err := Trim([]byte(b), always, 0, 10); err == nil {
			t.Errorf("Trim(%s): no error", b)
		}
	}
	// The counter fails on the trimmed body only.
	calls := 0
	flaky := func(b []byte) (int, error) {
		calls++
		if calls > 5 {
			return 0, errors.New("boom")
		}
		return fakeCount(b)
	}
	if _, _, err := Trim(chatBody([]string{msg("user", 0), msg("assistant", 0), msg("user", 0)}), flaky, 0, 23); err == nil {
		t.Error("Trim() with a counter failing on the result: no error")
	}
}

// TestTrimCountsEachMessageOnce: the counter runs a fixed number of times
// (the body, an empty prompt, each message, the result), however many
// messages go.
func TestTrimCountsEachMessageOnce(t *testing.T) {
	var msgs []string
	for range 50 {
		msgs = append(msgs, msg("user", 10), msg("assistant", 10))
	}
	calls := 0
	counting := func(b []byte) (int, error) { calls++; return fakeCount(b) }
	_, dropped, err := Trim(chatBody(msgs), counting, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(msgs) + 3; calls != want || dropped < 90 {
		t.Errorf("Trim() called the counter %d times and dropped %d; want %d calls", calls, dropped, want)
	}
}

// TestTrimNonAdditiveCounter: a counter that also charges for the body's
// size is not additive; Trim still returns a body that fits it.
func TestTrimNonAdditiveCounter(t *testing.T) {
	lumpy := func(b []byte) (int, error) {
		n, err := fakeCount(b)
		return n + len(b)/20, err
	}
	var msgs []string
	for range 10 {
		msgs = append(msgs, msg("user", 10), msg("assistant", 10))
	}
	body := chatBody(msgs)
	for window := 60; window < 400; window += 7 {
		out, _, err := Trim(body, lumpy, 0, window)
		var te *TrimError
		switch {
		case errors.As(err, &te):
		case err != nil:
			t.Fatalf("window %d: %v", window, err)
		default:
			if n, _ := lumpy(out); n > window {
				t.Errorf("window %d: result counts %d", window, n)
			}
		}
	}
}

// TestTrimWithTokenizer trims random conversations with the real counters
// and checks the promises: the result fits, and every system, developer and
// tail message is still there, byte for byte, with no tool result orphaned.
func TestTrimWithTokenizer(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tok := range []*meter.Tokenizer{meter.TokenizerFor("openai", "gpt-4o"), meter.TokenizerFor("anthropic", "claude-opus-4-7")} {
		for range 100 {
			msgs := genConversation(r)
			body := chatBody(msgs)
			total, err := tok.CountChat(body)
			if err != nil {
				t.Fatal(err)
			}
			maxOut := r.IntN(50)
			window := r.IntN(total + maxOut + 20)
			out, dropped, err := Trim(body, tok.CountChat, maxOut, window)
			var te *TrimError
			if errors.As(err, &te) {
				checkMinimumTooBig(t, tok, msgs, maxOut, window, te)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := tok.CountChat(out)
			if err != nil || n+maxOut > window {
				t.Fatalf("%s: trimmed body counts %d, %v; + %d > %d", tok.Name(), n, err, maxOut, window)
			}
			checkKept(t, msgs, out, dropped)
		}
	}
}

func checkKept(t *testing.T, msgs []string, out []byte, dropped int) {
	t.Helper()
	var got struct{ Messages []json.RawMessage }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != len(msgs)-dropped {
		t.Fatalf("%d messages left, %d dropped, of %d", len(got.Messages), dropped, len(msgs))
	}
	left := map[string]bool{}
	for _, m := range got.Messages {
		left[string(m)] = true
	}
	tail := lastUser(msgs)
	for i, m := range msgs {
		var info messageInfo
		json.Unmarshal([]byte(m), &info)
		if (info.Role == "system" || info.Role == "developer" || i >= tail) && !left[m] {
			t.Errorf("message %d (%s) was dropped: %s", i, info.Role, m)
		}
	}
	calls := map[string]bool{}
	for _, m := range got.Messages {
		var info messageInfo
		json.Unmarshal(m, &info)
		for _, tc := range info.ToolCalls {
			calls[tc.ID] = true
		}
		if info.Role == "tool" && !calls[info.ToolCallID] {
			t.Errorf("tool result %s left without its call", m)
		}
	}
}

func checkMinimumTooBig(t *testing.T, tok *meter.Tokenizer, msgs []string, maxOut, window int, te *TrimError) {
	t.Helper()
	tail := lastUser(msgs)
	var min []string
	for i, m := range msgs {
		var info messageInfo
		json.Unmarshal([]byte(m), &info)
		if info.Role == "system" || info.Role == "developer" || i >= tail {
			min = append(min, m)
		}
	}
	n, _ := tok.CountChat(chatBody(min))
	if te.Window != window || te.Needed != n+maxOut || te.Needed <= window {
		t.Errorf("TrimError%+v; the kept minimum needs %d + %d, window %d", *te, n, maxOut, window)
	}
}

func lastUser(msgs []string) int {
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(msgs[i], `"role":"user"`) {
			return i
		}
	}
	return len(msgs) - 1
}

// genConversation makes a system prompt and turns of user questions,
// assistant answers and tool calls with their results, ending with a user
// message and, sometimes, a tool exchange after it.
func genConversation(r *rand.Rand) []string {
	words := []string{"the", "gateway", "routes", "requests", "héllo", "日本語", "🎉", "func main() {}", "\n", "42", "don't"}
	text := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(words[r.IntN(len(words))] + " ")
		}
		s, _ := json.Marshal(b.String())
		return string(s)
	}
	msgs := []string{`{"role":"system","content":` + text(r.IntN(20)) + `}`}
	id := 0
	toolTurn := func() {
		id++
		ids := []string{fmt.Sprint("c", id)}
		if r.IntN(3) == 0 {
			id++
			ids = append(ids, fmt.Sprint("c", id))
		}
		msgs = append(msgs, call(ids...))
		for _, c := range ids {
			msgs = append(msgs, `{"role":"tool","tool_call_id":"`+c+`","content":`+text(r.IntN(30))+`}`)
		}
	}
	for range r.IntN(8) {
		msgs = append(msgs, `{"role":"user","content":`+text(r.IntN(30))+`}`)
		if r.IntN(3) == 0 {
			toolTurn()
		}
		if r.IntN(5) == 0 {
			msgs = append(msgs, `{"role":"developer","content":`+text(3)+`}`)
		}
		msgs = append(msgs, `{"role":"assistant","content":`+text(r.IntN(30))+`}`)
	}
	msgs = append(msgs, `{"role":"user","content":`+text(r.IntN(30))+`}`)
	if r.IntN(3) == 0 {
		toolTurn()
	}
	return msgs
}

func FuzzTrim(f *testing.F) {
	f.Add(chatBody([]string{msg("system", 3), msg("user", 3), call("a"), result("a", 3), msg("user", 3)}), 40)
	f.Add([]byte(`{"messages":[{"role":"user","content":"hi"}],"Messages":[]}`), 5)
	f.Add([]byte(`{"messages":[{"role":"tool","tool_call_id":"x","content":"y"},{"role":"user","content":[{"type":"text","text":"z"}]}]}`), 9)
	tok := meter.TokenizerFor("openai", "gpt-4o")
	f.Fuzz(func(t *testing.T, body []byte, window int) {
		out, dropped, err := Trim(body, tok.CountChat, 0, window)
		if err != nil {
			return
		}
		n, err := tok.CountChat(out)
		if err != nil || n > window {
			t.Fatalf("Trim() result counts %d, %v; window %d", n, err, window)
		}
		if dropped == 0 && !bytes.Equal(out, body) {
			t.Fatalf("Trim() dropped nothing but changed the body")
		}
	})
}
