package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// TrimError says that even the messages Trim must keep do not fit: Needed is
// their prompt tokens plus the output tokens, more than Window. The gateway
// answers it with 400 context_length_exceeded.
type TrimError struct{ Needed, Window int }

func (e *TrimError) Error() string {
	return fmt.Sprintf("the request needs %d tokens even without its older messages, more than the context window of %d",
		e.Needed, e.Window)
}

// Trim drops the oldest turns of an OpenAI chat request body until
// count(body) + maxOutput ≤ window, and returns the new body and how many
// messages it dropped. A body that already fits comes back as is, the same
// slice, with 0.
//
// It keeps every system and developer message, and the latest user message
// and all that follows it (the last message, if none is from the user). It
// never separates an assistant message with tool_calls from the tool
// messages that answer it (matched by tool_call_id; legacy function messages
// go with the assistant function_call before them): they go together or stay
// together. It drops from the oldest other message forward and, once the
// rest fits, goes on dropping while the first remaining turn is not a user
// message, so the conversation still opens with the user, as some providers
// require. If even the kept minimum does not fit, it returns a *TrimError.
//
// Only the "messages" array is rewritten, from its elements' own bytes; every
// other byte of the body stays as it was. The array is the last top-level
// key that equals "messages" ignoring case, the one encoding/json reads.
//
// count is the whole-body counter, normally meter.Tokenizer.CountChat, and
// must be additive as that one is: the count of a body is that of the body
// with no messages plus each message's own, which is the count of
// {"messages":[m]} less that of {"messages":[]}. Trim counts each message
// once that way and subtracts; it then counts the result once more to make
// sure, and drops further if a counter is not quite additive.
func Trim(body []byte, count func(body []byte) (int, error), maxOutput, window int) (out []byte, dropped int, err error) {
	maxOutput = max(maxOutput, 0)
	fits := func(prompt int) bool { return prompt <= window && maxOutput <= window-prompt }
	prompt, err := count(body)
	if err != nil {
		return nil, 0, fmt.Errorf("count prompt: %w", err)
	}
	if fits(prompt) {
		return body, 0, nil
	}
	c, err := parseConversation(body)
	if err != nil {
		return nil, 0, err
	}
	if err := c.countMessages(count); err != nil {
		return nil, 0, err
	}
	groups, next := c.droppable(), 0
	for {
		for next < len(groups) && (!fits(prompt) || c.opensWithNonUser(groups[next])) {
			prompt -= c.drop(groups[next])
			next++
		}
		if c.dropped == 0 || !fits(prompt) {
			return nil, 0, &TrimError{Needed: saturatingAdd(prompt, maxOutput), Window: window}
		}
		// The sum says it fits; count the result to be sure.
		out = c.trimmed()
		if prompt, err = count(out); err != nil {
			return nil, 0, fmt.Errorf("count trimmed prompt: %w", err)
		}
		if fits(prompt) {
			return out, c.dropped, nil
		}
		if next == len(groups) {
			return nil, 0, &TrimError{Needed: saturatingAdd(prompt, maxOutput), Window: window}
		}
	}
}

func saturatingAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// conversation is a chat body taken apart for trimming.
type conversation struct {
	body       []byte
	start, end int               // the messages array is body[start:end]
	raw        []json.RawMessage // each message's bytes, as sent
	info       []messageInfo
	tokens     []int   // each message's own count
	groups     [][]int // message indexes that go together, by first index
	groupOf    []int   // per message: its group
	protected  []bool  // per group: never dropped
	gone       []bool  // per message: dropped
	dropped    int
}

// messageInfo is what trimming needs to know of a message.
type messageInfo struct {
	Role       string `json:"role"`
	ToolCallID string `json:"tool_call_id"`
	ToolCalls  []struct {
		ID string `json:"id"`
	} `json:"tool_calls"`
	FunctionCall json.RawMessage `json:"function_call"`
}

func (m *messageInfo) callsTools() bool    { return m.Role == "assistant" && len(m.ToolCalls) > 0 }
func (m *messageInfo) callsFunction() bool { return m.Role == "assistant" && len(m.FunctionCall) > 0 }

func parseConversation(body []byte) (*conversation, error) {
	start, end, err := messagesSpan(body)
	if err != nil {
		return nil, err
	}
	c := &conversation{body: body, start: start, end: end}
	if err := json.Unmarshal(body[start:end], &c.raw); err != nil {
		return nil, fmt.Errorf("decode messages: %w", err)
	}
	c.info = make([]messageInfo, len(c.raw))
	for i, m := range c.raw {
		if err := json.Unmarshal(m, &c.info[i]); err != nil {
			return nil, fmt.Errorf("decode messages[%d]: %w", i, err)
		}
	}
	c.gone = make([]bool, len(c.raw))
	c.group()
	return c, nil
}

// messagesSpan finds the value of the top-level "messages" key.
func messagesSpan(body []byte) (start, end int, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, 0, errors.New("chat request is not a JSON object")
	}
	start = -1
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, fmt.Errorf("decode chat request: %w", err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, 0, fmt.Errorf("decode chat request: %w", err)
		}
		if key, _ := tok.(string); strings.EqualFold(key, "messages") {
			end = int(dec.InputOffset())
			start = end - len(v)
		}
	}
	if start < 0 {
		return 0, 0, errors.New("chat request has no messages")
	}
	return start, end, nil
}

// group puts each assistant message with tool_calls together with the tool
// messages that answer it, and marks the groups that must stay.
func (c *conversation) group() {
	leader := make([]int, len(c.info))
	caller := map[string]int{} // tool call id → index of the assistant message
	for i := range c.info {
		m := &c.info[i]
		leader[i] = i
		switch {
		case m.callsTools():
			for _, tc := range m.ToolCalls {
				caller[tc.ID] = i
			}
		case m.Role == "tool":
			if at, ok := caller[m.ToolCallID]; ok {
				leader[i] = leader[at]
			} else if i > 0 && (c.info[i-1].Role == "tool" || c.info[i-1].callsTools()) {
				leader[i] = leader[i-1] // an answer we cannot match stays with its block
			}
		case m.Role == "function":
			if i > 0 && (c.info[i-1].Role == "function" || c.info[i-1].callsFunction()) {
				leader[i] = leader[i-1]
			}
		}
	}
	tail := len(c.info) - 1 // the latest user message, else the last one
	for i := len(c.info) - 1; i >= 0; i-- {
		if c.info[i].Role == "user" {
			tail = i
			break
		}
	}
	index := map[int]int{} // leader → group
	c.groupOf = make([]int, len(leader))
	for i, l := range leader {
		g, ok := index[l]
		if !ok {
			g = len(c.groups)
			index[l] = g
			c.groups = append(c.groups, nil)
			c.protected = append(c.protected, false)
		}
		c.groups[g] = append(c.groups[g], i)
		c.groupOf[i] = g
		role := c.info[i].Role
		if role == "system" || role == "developer" || i >= tail {
			c.protected[g] = true
		}
	}
}

// countMessages counts each message alone, as {"messages":[m]} less
// {"messages":[]}.
func (c *conversation) countMessages(count func([]byte) (int, error)) error {
	empty, err := count([]byte(`{"messages":[]}`))
	if err != nil {
		return fmt.Errorf("count empty prompt: %w", err)
	}
	c.tokens = make([]int, len(c.raw))
	var b []byte
	for i, m := range c.raw {
		b = append(append(append(b[:0], `{"messages":[`...), m...), "]}"...)
		n, err := count(b)
		if err != nil {
			return fmt.Errorf("count messages[%d]: %w", i, err)
		}
		c.tokens[i] = n - empty
	}
	return nil
}

// droppable returns the groups that may go, oldest first.
func (c *conversation) droppable() []int {
	var gs []int
	for g := range c.groups {
		if !c.protected[g] {
			gs = append(gs, g)
		}
	}
	return gs
}

// drop removes group g and returns the tokens it held.
func (c *conversation) drop(g int) int {
	n := 0
	for _, i := range c.groups[g] {
		c.gone[i] = true
		n += c.tokens[i]
		c.dropped++
	}
	return n
}

// opensWithNonUser reports whether the first message left, other than
// system and developer ones, belongs to group g and is not from the user.
func (c *conversation) opensWithNonUser(g int) bool {
	for i, m := range c.info {
		if c.gone[i] || m.Role == "system" || m.Role == "developer" {
			continue
		}
		return c.groupOf[i] == g && m.Role != "user"
	}
	return false
}

// trimmed rebuilds the request without the dropped messages.
func (c *conversation) trimmed() []byte {
	var b bytes.Buffer
	b.Grow(len(c.body))
	b.Write(c.body[:c.start])
	b.WriteByte('[')
	sep := false
	for i, m := range c.raw {
		if c.gone[i] {
			continue
		}
		if sep {
			b.WriteByte(',')
		}
		b.Write(m)
		sep = true
	}
	b.WriteByte(']')
	b.Write(c.body[c.end:])
	return b.Bytes()
}
