package mockupstream

import (
	"encoding/json"
	"fmt"
)

// systemFingerprint is sent on every chat response, as OpenAI does.
const systemFingerprint = "fp_mockupstream"

// chatCompletion is a non-stream chat completions response.
type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	ServiceTier       string       `json:"service_tier"`
	Choices           []chatChoice `json:"choices"`
	Usage             chatUsage    `json:"usage"`
}

// chatChoice is one choice of a chatCompletion.
type chatChoice struct {
	Index        int            `json:"index"`
	Message      chatOutMessage `json:"message"`
	Logprobs     *struct{}      `json:"logprobs"`
	FinishReason string         `json:"finish_reason"`
}

// chatOutMessage is the assistant message of a choice.
type chatOutMessage struct {
	Role        string         `json:"role"`
	Content     *string        `json:"content"`
	Refusal     *string        `json:"refusal"`
	ToolCalls   []chatToolCall `json:"tool_calls,omitempty"`
	Annotations []any          `json:"annotations"`
}

// chatChunk is one chat.completion.chunk of a stream.
type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	// Usage is null on every chunk but the last when usage was asked for,
	// and absent otherwise.
	Usage json.RawMessage `json:"usage,omitempty"`
}

// chunkChoice is one choice of a chunk.
type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

// chunkDelta is what a chunk adds to its choice.
type chunkDelta struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

// completion is the non-stream response.
func (o *chatOutput) completion() chatCompletion {
	resp := chatCompletion{
		ID:                o.id(),
		Object:            "chat.completion",
		Created:           o.c.created.Unix(),
		Model:             o.model,
		SystemFingerprint: systemFingerprint,
		ServiceTier:       "default",
		Usage:             o.usage,
	}
	for i, a := range o.answers {
		msg := chatOutMessage{Role: "assistant", Annotations: []any{}}
		if a.finish == finishTool {
			msg.ToolCalls = []chatToolCall{{
				ID:       o.toolCallID(i),
				Type:     "function",
				Function: chatFunctionCall{Name: a.toolName, Arguments: a.toolArgs},
			}}
		} else {
			text := a.text()
			msg.Content = &text
		}
		resp.Choices = append(resp.Choices, chatChoice{Index: i, Message: msg, FinishReason: openAIFinishReason(a.finish)})
	}
	return resp
}

// stream sends the answers as a chunk stream: the role of every choice,
// each choice's content, the finish chunks, the usage chunk if asked for,
// then [DONE].
func (o *chatOutput) stream() error {
	st := startStream(o.c, o.streamError)
	for i, a := range o.answers {
		delta := chunkDelta{Role: "assistant"}
		if a.finish != finishTool {
			delta.Content = new("")
		}
		if err := st.sendJSON("", o.chunk(i, delta, nil)); err != nil {
			return err
		}
	}
	for i, a := range o.answers {
		if err := o.streamContent(st, i, a); err != nil {
			return err
		}
	}
	if err := st.end(); err != nil {
		return err
	}
	for i, a := range o.answers {
		if err := st.sendJSON("", o.chunk(i, chunkDelta{}, new(openAIFinishReason(a.finish)))); err != nil {
			return err
		}
	}
	if o.includeUsage {
		if err := o.sendUsage(st); err != nil {
			return err
		}
	}
	return st.send("", []byte("[DONE]"))
}

// streamContent sends the content events of choice i: one per text token,
// or a tool call header then its argument pieces.
func (o *chatOutput) streamContent(st *stream, i int, a answer) error {
	if a.finish != finishTool {
		ev, err := newTokenEvent(o.chunk(i, chunkDelta{Content: new(tokenSlot)}, nil))
		if err != nil {
			return err
		}
		var data []byte
		for _, tok := range a.tokens {
			if data, err = ev.with(data, tok); err != nil {
				return err
			}
			if err := st.contentData("", data); err != nil {
				return err
			}
		}
		return nil
	}
	head := chatToolCall{Index: new(0), ID: o.toolCallID(i), Type: "function", Function: chatFunctionCall{Name: a.toolName}}
	if err := st.content("", o.chunk(i, chunkDelta{ToolCalls: []chatToolCall{head}}, nil)); err != nil {
		return err
	}
	for _, piece := range splitArgs(a.toolArgs) {
		frag := chatToolCall{Index: new(0), Function: chatFunctionCall{Arguments: piece}}
		if err := st.content("", o.chunk(i, chunkDelta{ToolCalls: []chatToolCall{frag}}, nil)); err != nil {
			return err
		}
	}
	return nil
}

// chunk builds a one-choice chunk.
func (o *chatOutput) chunk(i int, delta chunkDelta, finishReason *string) chatChunk {
	ch := o.chunkHead()
	ch.Choices = []chunkChoice{{Index: i, Delta: delta, FinishReason: finishReason}}
	if o.includeUsage {
		ch.Usage = json.RawMessage("null")
	}
	return ch
}

func (o *chatOutput) chunkHead() chatChunk {
	return chatChunk{
		ID:                o.id(),
		Object:            "chat.completion.chunk",
		Created:           o.c.created.Unix(),
		Model:             o.model,
		SystemFingerprint: systemFingerprint,
	}
}

// sendUsage sends the usage chunk, whose choices are empty.
func (o *chatOutput) sendUsage(st *stream) error {
	usage, err := json.Marshal(o.usage)
	if err != nil {
		return fmt.Errorf("encode usage: %w", err)
	}
	ch := o.chunkHead()
	ch.Choices = []chunkChoice{}
	ch.Usage = usage
	return st.sendJSON("", ch)
}

// streamError sends the in-stream error of the stream_error_after fault.
func (o *chatOutput) streamError(st *stream) error {
	e := &apiError{status: 500, message: "mock upstream: injected stream error", typ: o.c.fault.typ, code: o.c.fault.code}
	return st.sendJSON("", struct {
		Error openAIErrorBody `json:"error"`
	}{e.openAIBody()})
}
