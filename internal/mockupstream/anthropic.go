package mockupstream

import (
	"encoding/json"
	"net/http"
	"unicode/utf8"
)

// messagesRequest is the part of an Anthropic Messages request the mock reads.
type messagesRequest struct {
	Model         string             `json:"model"`
	MaxTokens     *int               `json:"max_tokens"`
	Messages      []anthropicMessage `json:"messages"`
	System        json.RawMessage    `json:"system"`
	StopSequences []string           `json:"stop_sequences"`
	Stream        bool               `json:"stream"`
	Tools         []anthropicTool    `json:"tools"`
	ToolChoice    *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
	CacheControl json.RawMessage `json:"cache_control"`
}

// anthropicMessage is one input message; Content is a string or blocks.
type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// anthropicBlock is one input content block, of any type.
type anthropicBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	Content      json.RawMessage `json:"content"`
	CacheControl json.RawMessage `json:"cache_control"`
}

// anthropicTool is one entry of "tools".
type anthropicTool struct {
	Type         string          `json:"type"`
	Name         string          `json:"name"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl json.RawMessage `json:"cache_control"`
}

// anthropicTurn is a turn plus the Anthropic-only prompt split.
type anthropicTurn struct {
	turn
	cacheRead int // input tokens reported as read from the cache
}

// messages serves POST /v1/messages.
func (s *Server) messages(c *call) error {
	var req messagesRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	t, err := req.turn()
	if err != nil {
		return err
	}
	t.replyTokens = s.opts.ReplyTokens
	if err := checkContext(c, t.promptTokens); err != nil {
		return err
	}
	out := messageOutput{c: c, model: req.Model, answer: answerFor(t.turn, 0)}
	out.usage = anthropicUsage{
		InputTokens:          t.promptTokens - t.cacheRead,
		CacheReadInputTokens: t.cacheRead,
		OutputTokens:         out.answer.outputTokens(),
	}
	if !req.Stream {
		writeJSON(c.w, http.StatusOK, out.message())
		return nil
	}
	return out.stream()
}

// turn validates req and reduces it to a turn.
func (req *messagesRequest) turn() (anthropicTurn, error) {
	var t anthropicTurn
	switch {
	case req.Model == "":
		return t, errorf(http.StatusBadRequest, "model: Field required")
	case req.MaxTokens == nil:
		return t, errorf(http.StatusBadRequest, "max_tokens: Field required")
	case *req.MaxTokens < 1:
		return t, errorf(http.StatusBadRequest, "max_tokens: Input should be greater than or equal to 1")
	case len(req.Messages) == 0:
		return t, errorf(http.StatusBadRequest, "messages: at least one message is required")
	}
	t.maxTokens = *req.MaxTokens
	t.stops = req.StopSequences
	system := blocksOf(req.System)
	systemChars := textChars(system)
	chars, count := systemChars, len(req.Messages)
	if len(system) > 0 {
		count++
	}
	cached := present(req.CacheControl) || anyCacheControl(system)
	for _, tl := range req.Tools {
		cached = cached || present(tl.CacheControl)
	}
	for _, m := range req.Messages {
		blocks := blocksOf(m.Content)
		chars += textChars(blocks)
		cached = cached || anyCacheControl(blocks)
		if m.Role == "user" {
			t.lastUser = blockText(blocks)
		}
	}
	t.promptTokens = estimateTokens(chars, count)
	if cached {
		t.cacheRead = ceilDiv(systemChars, 4)
	}
	t.toolResults = lastToolResults(req.Messages)
	t.tool = req.chosenTool()
	return t, nil
}

// chosenTool returns the client tool the answer calls, or nil for a text
// answer (no client tools, or tool_choice "none").
func (req *messagesRequest) chosenTool() *tool {
	var tools []tool
	for _, tl := range req.Tools {
		if (tl.Type == "" || tl.Type == "custom") && tl.Name != "" {
			tools = append(tools, tool{name: tl.Name, schema: tl.InputSchema})
		}
	}
	if len(tools) == 0 || (req.ToolChoice != nil && req.ToolChoice.Type == "none") {
		return nil
	}
	want := ""
	if req.ToolChoice != nil && req.ToolChoice.Type == "tool" {
		want = req.ToolChoice.Name
	}
	return pickTool(tools, want)
}

// lastToolResults returns the contents of the tool_result blocks of the last
// message when it is a user message holding some, else nil.
func lastToolResults(msgs []anthropicMessage) []string {
	last := msgs[len(msgs)-1]
	if last.Role != "user" {
		return nil
	}
	var results []string
	for _, b := range blocksOf(last.Content) {
		if b.Type == "tool_result" {
			results = append(results, blockText(blocksOf(b.Content)))
		}
	}
	return results
}

// blocksOf reads a content that is a string (one text block) or blocks.
func blocksOf(raw json.RawMessage) []anthropicBlock {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil
		}
		return []anthropicBlock{{Type: "text", Text: s}}
	}
	var blocks []anthropicBlock
	_ = json.Unmarshal(raw, &blocks) // null or another shape holds no blocks
	return blocks
}

// blockText concatenates the text blocks.
func blockText(blocks []anthropicBlock) string {
	text := ""
	for _, b := range blocks {
		if b.Type == "text" {
			text += b.Text
		}
	}
	return text
}

// textChars counts the characters of blocks that reach the model as text:
// text, tool_use names and inputs, and tool_result contents.
func textChars(blocks []anthropicBlock) int {
	n := 0
	for _, b := range blocks {
		switch b.Type {
		case "text":
			n += utf8.RuneCountInString(b.Text)
		case "tool_use":
			n += utf8.RuneCountInString(b.Name) + utf8.RuneCount(b.Input)
		case "tool_result":
			n += textChars(blocksOf(b.Content))
		}
	}
	return n
}

// anyCacheControl reports whether a block, or a block inside a
// tool_result, carries cache_control.
func anyCacheControl(blocks []anthropicBlock) bool {
	for _, b := range blocks {
		if present(b.CacheControl) || (b.Type == "tool_result" && anyCacheControl(blocksOf(b.Content))) {
			return true
		}
	}
	return false
}

// anthropicStopReason names f in Anthropic's terms.
func anthropicStopReason(f finish) string {
	switch f {
	case finishLength:
		return "max_tokens"
	case finishStop:
		return "stop_sequence"
	case finishTool:
		return "tool_use"
	}
	return "end_turn"
}

// present reports whether an optional JSON field was sent and is not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}
