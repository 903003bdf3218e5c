package mockupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// chatRequest is the part of an OpenAI chat completions request the mock reads.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N                   *int            `json:"n"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
}

// chatMessage is one input message.
type chatMessage struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	ToolCalls []chatToolCall  `json:"tool_calls"`
}

// chatTool is one entry of "tools".
type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// chatToolCall is a tool call, in a message or (with Index) a stream delta.
type chatToolCall struct {
	Index    *int             `json:"index,omitempty"`
	ID       string           `json:"id,omitempty"`
	Type     string           `json:"type,omitempty"`
	Function chatFunctionCall `json:"function"`
}

// chatFunctionCall is the function part of a tool call.
type chatFunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// chatUsage is the OpenAI usage object.
type chatUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(c *call) error {
	var req chatRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return errorf(http.StatusBadRequest, "We could not parse the JSON body of your request: %v", err)
	}
	t, n, err := req.turn()
	if err != nil {
		return err
	}
	t.replyTokens = s.opts.ReplyTokens
	if err := checkContext(c, t.promptTokens); err != nil {
		return err
	}
	answers := make([]answer, n)
	usage := chatUsage{PromptTokens: t.promptTokens}
	for i := range answers {
		answers[i] = answerFor(t, i)
		usage.CompletionTokens += answers[i].outputTokens()
	}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	out := chatOutput{c: c, model: req.Model, answers: answers, usage: usage}
	if !req.Stream {
		writeJSON(c.w, http.StatusOK, out.completion())
		return nil
	}
	out.includeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	return out.stream()
}

// turn validates req and reduces it to a turn and a choice count.
func (req *chatRequest) turn() (turn, int, error) {
	var t turn
	n, err := req.limits(&t)
	if err != nil {
		return t, 0, err
	}
	chars := 0
	for _, m := range req.Messages {
		text := contentText(m.Content)
		chars += utf8.RuneCountInString(text)
		for _, tc := range m.ToolCalls {
			chars += utf8.RuneCountInString(tc.Function.Name) + utf8.RuneCountInString(tc.Function.Arguments)
		}
		if m.Role == "user" {
			t.lastUser = text
		}
	}
	t.promptTokens = estimateTokens(chars, len(req.Messages))
	t.toolResults = trailingToolResults(req.Messages)
	t.tool = req.chosenTool()
	return t, n, nil
}

// limits validates req and reads n, the output cap and the stop sequences
// into t.
func (req *chatRequest) limits(t *turn) (int, error) {
	if err := req.validate(); err != nil {
		return 0, err
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	switch {
	case req.MaxCompletionTokens != nil:
		t.maxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		t.maxTokens = *req.MaxTokens
	}
	t.stops = stopSequences(req.Stop)
	return n, nil
}

// validate rejects what the real API rejects among the fields the mock reads.
func (req *chatRequest) validate() error {
	switch {
	case req.Model == "":
		return &apiError{status: http.StatusBadRequest, message: "you must provide a model parameter", param: "model"}
	case len(req.Messages) == 0:
		return invalidValue("messages", "[] is too short - 'messages'")
	case req.N != nil && (*req.N < 1 || *req.N > 128):
		return invalidValue("n", fmt.Sprintf("%d is not in 1..128 - 'n'", *req.N))
	case req.MaxTokens != nil && *req.MaxTokens < 1:
		return invalidValue("max_tokens", fmt.Sprintf("%d is less than the minimum of 1 - 'max_tokens'", *req.MaxTokens))
	case req.MaxCompletionTokens != nil && *req.MaxCompletionTokens < 1:
		return invalidValue("max_completion_tokens",
			fmt.Sprintf("%d is less than the minimum of 1 - 'max_completion_tokens'", *req.MaxCompletionTokens))
	}
	return nil
}

// invalidValue is OpenAI's 400 for a bad parameter value.
func invalidValue(param, message string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: message, param: param, code: "invalid_value"}
}

// trailingToolResults returns the contents of the tool messages that end the
// conversation, or nil when the last message is not a tool result.
func trailingToolResults(msgs []chatMessage) []string {
	var results []string
	for i := len(msgs) - 1; i >= 0 && (msgs[i].Role == "tool" || msgs[i].Role == "function"); i-- {
		results = append([]string{contentText(msgs[i].Content)}, results...)
	}
	return results
}

// chosenTool returns the function tool the answer calls, or nil for a text
// answer (no function tools, or tool_choice "none").
func (req *chatRequest) chosenTool() *tool {
	var tools []tool
	for _, tl := range req.Tools {
		if (tl.Type == "function" || tl.Type == "") && tl.Function.Name != "" {
			tools = append(tools, tool{name: tl.Function.Name, schema: tl.Function.Parameters})
		}
	}
	if len(tools) == 0 {
		return nil
	}
	var mode string
	if json.Unmarshal(req.ToolChoice, &mode) == nil && mode == "none" {
		return nil
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
		AllowedTools struct {
			Tools []chatTool `json:"tools"`
		} `json:"allowed_tools"`
	}
	_ = json.Unmarshal(req.ToolChoice, &named) // "auto", "required" or absent: the first tool
	want := named.Function.Name
	if want == "" && len(named.AllowedTools.Tools) > 0 {
		want = named.AllowedTools.Tools[0].Function.Name
	}
	return pickTool(tools, want)
}

// pickTool returns the tool named want, or the first tool when want is "".
// A named tool that was not declared is called with "{}" arguments.
func pickTool(tools []tool, want string) *tool {
	if want == "" {
		return &tools[0]
	}
	for i := range tools {
		if tools[i].name == want {
			return &tools[i]
		}
	}
	return &tool{name: want}
}

// contentText returns the text of a message content: a string, or the
// concatenated "text" of an array of parts.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(raw, &parts) // null or another shape holds no text
	text := ""
	for _, p := range parts {
		text += p.Text
	}
	return text
}

// stopSequences reads "stop": a string or an array of strings.
func stopSequences(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

// checkContext answers the context_limit fault when the prompt is over it.
func checkContext(c *call, promptTokens int) error {
	limit := c.fault.contextLimit
	if limit == 0 || promptTokens <= limit {
		return nil
	}
	if c.proto == protoAnthropic {
		return errorf(http.StatusBadRequest, "prompt is too long: %d tokens > %d maximum", promptTokens, limit)
	}
	return &apiError{
		status: http.StatusBadRequest,
		message: fmt.Sprintf("This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. "+
			"Please reduce the length of the messages.", limit, promptTokens),
		typ:   "invalid_request_error",
		code:  "context_length_exceeded",
		param: "messages",
	}
}

// openAIFinishReason names f in OpenAI's terms.
func openAIFinishReason(f finish) string {
	switch f {
	case finishLength:
		return "length"
	case finishTool:
		return "tool_calls"
	}
	return "stop"
}

// chatOutput renders the answers to one chat request.
type chatOutput struct {
	c            *call
	model        string
	answers      []answer
	usage        chatUsage
	includeUsage bool
}

func (o *chatOutput) id() string {
	return "chatcmpl-mock" + strconv.Itoa(o.c.seq)
}

func (o *chatOutput) toolCallID(choice int) string {
	return fmt.Sprintf("call_mock%d_%d", o.c.seq, choice)
}
