package mockupstream

import (
	"encoding/json"
	"strconv"
)

// anthropicUsage is the Anthropic usage object.
type anthropicUsage struct {
	InputTokens              int                   `json:"input_tokens"`
	CacheCreationInputTokens int                   `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int                   `json:"cache_read_input_tokens"`
	CacheCreation            *anthropicCacheDetail `json:"cache_creation,omitempty"`
	OutputTokens             int                   `json:"output_tokens"`
	ServiceTier              string                `json:"service_tier,omitempty"`
}

// anthropicCacheDetail splits cache writes by TTL; the mock writes none.
type anthropicCacheDetail struct {
	Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
}

// anthropicMessageOut is a Message response (and message_start's message).
type anthropicMessageOut struct {
	ID           string             `json:"id"`
	Type         string             `json:"type"`
	Role         string             `json:"role"`
	Model        string             `json:"model"`
	Content      []anthropicContent `json:"content"`
	StopReason   *string            `json:"stop_reason"`
	StopSequence *string            `json:"stop_sequence"`
	Usage        anthropicUsage     `json:"usage"`
}

// anthropicContent is one output content block.
type anthropicContent struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

// anthropicDelta is the delta of a content_block_delta event.
type anthropicDelta struct {
	Type        string  `json:"type"`
	Text        *string `json:"text,omitempty"`
	PartialJSON *string `json:"partial_json,omitempty"`
}

// blockEvent is a content_block_start, _delta or _stop event.
type blockEvent struct {
	Type         string            `json:"type"`
	Index        int               `json:"index"`
	ContentBlock *anthropicContent `json:"content_block,omitempty"`
	Delta        *anthropicDelta   `json:"delta,omitempty"`
}

// typeOnly is an event with nothing but its type (ping, message_stop).
type typeOnly struct {
	Type string `json:"type"`
}

// messageOutput renders the answer to one Messages request.
type messageOutput struct {
	c      *call
	model  string
	answer answer
	usage  anthropicUsage
}

func (o *messageOutput) id() string {
	return "msg_mock" + strconv.Itoa(o.c.seq)
}

// message is the non-stream response.
func (o *messageOutput) message() anthropicMessageOut {
	msg := o.head()
	block := o.block()
	if o.answer.finish == finishTool {
		block.Input = json.RawMessage(o.answer.toolArgs)
	} else {
		block.Text = new(o.answer.text())
	}
	msg.Content = []anthropicContent{block}
	msg.StopReason = new(anthropicStopReason(o.answer.finish))
	msg.StopSequence = o.stopSequence()
	return msg
}

// head is the message without content or stop reason.
func (o *messageOutput) head() anthropicMessageOut {
	usage := o.usage
	usage.CacheCreation = &anthropicCacheDetail{}
	usage.ServiceTier = "standard"
	return anthropicMessageOut{
		ID:      o.id(),
		Type:    "message",
		Role:    "assistant",
		Model:   o.model,
		Content: []anthropicContent{},
		Usage:   usage,
	}
}

// block is the answer's content block as content_block_start shows it.
func (o *messageOutput) block() anthropicContent {
	if o.answer.finish == finishTool {
		return anthropicContent{Type: "tool_use", ID: "toolu_mock" + strconv.Itoa(o.c.seq), Name: o.answer.toolName, Input: json.RawMessage("{}")}
	}
	return anthropicContent{Type: "text", Text: new("")}
}

func (o *messageOutput) stopSequence() *string {
	if o.answer.finish == finishStop {
		return new(o.answer.stopSeq)
	}
	return nil
}

// stream sends the answer as Anthropic's event sequence: message_start,
// content_block_start, ping, the deltas, content_block_stop, message_delta
// and message_stop.
func (o *messageOutput) stream() error {
	st := startStream(o.c, o.streamError)
	start := o.head()
	start.Usage.OutputTokens = 1
	if err := st.sendJSON("message_start", struct {
		Type    string              `json:"type"`
		Message anthropicMessageOut `json:"message"`
	}{"message_start", start}); err != nil {
		return err
	}
	block := o.block()
	if err := st.sendJSON("content_block_start", blockEvent{Type: "content_block_start", ContentBlock: &block}); err != nil {
		return err
	}
	if err := st.sendJSON("ping", typeOnly{"ping"}); err != nil {
		return err
	}
	if err := o.streamDeltas(st); err != nil {
		return err
	}
	if err := st.end(); err != nil {
		return err
	}
	return o.streamEnd(st)
}

// streamDeltas sends the content events: a text_delta per token, or the
// tool input in input_json_delta pieces.
func (o *messageOutput) streamDeltas(st *stream) error {
	if o.answer.finish == finishTool {
		for _, piece := range splitArgs(o.answer.toolArgs) {
			d := &anthropicDelta{Type: "input_json_delta", PartialJSON: &piece}
			if err := st.content("content_block_delta", blockEvent{Type: "content_block_delta", Delta: d}); err != nil {
				return err
			}
		}
		return nil
	}
	ev, err := newTokenEvent(blockEvent{Type: "content_block_delta", Delta: &anthropicDelta{Type: "text_delta", Text: new(tokenSlot)}})
	if err != nil {
		return err
	}
	var data []byte
	for _, tok := range o.answer.tokens {
		if data, err = ev.with(data, tok); err != nil {
			return err
		}
		if err := st.contentData("content_block_delta", data); err != nil {
			return err
		}
	}
	return nil
}

// streamEnd sends content_block_stop, message_delta and message_stop.
func (o *messageOutput) streamEnd(st *stream) error {
	if err := st.sendJSON("content_block_stop", blockEvent{Type: "content_block_stop"}); err != nil {
		return err
	}
	type stop struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	if err := st.sendJSON("message_delta", struct {
		Type  string         `json:"type"`
		Delta stop           `json:"delta"`
		Usage anthropicUsage `json:"usage"`
	}{"message_delta", stop{anthropicStopReason(o.answer.finish), o.stopSequence()}, o.usage}); err != nil {
		return err
	}
	return st.sendJSON("message_stop", typeOnly{"message_stop"})
}

// streamError sends the in-stream error of the stream_error_after fault.
func (o *messageOutput) streamError(st *stream) error {
	e := &apiError{status: 529, message: "Overloaded", typ: o.c.fault.typ}
	return st.sendJSON("error", struct {
		Type  string             `json:"type"`
		Error anthropicErrorBody `json:"error"`
	}{"error", e.anthropicBody()})
}
