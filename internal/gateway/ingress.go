package gateway

import (
	"unsafe"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tidwall/gjson"
	"net/http"
	"strconv"

	"github.com/tidwall/sjson"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// readBody returns the request body, which the server has read already
// (bounded by the limit it was started with); limit is the one configured
// now. It is valid until the response has been written.
func readBody(c *call, limit int64) ([]byte, error) {
	body := c.fc.Request.Body()
	if int64(len(body)) > limit {
		return nil, tooLarge(limit)
	}
	return body, nil
}

func tooLarge(limit int64) *wire.Error {
	return &wire.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
		Code: "request_too_large", Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

// chatFields are the only fields of a chat request the gateway reads. The
// body is scanned once (gjson over the bytes, no decoding into structs):
// message contents are skipped, and the raw body goes upstream as it came,
// with only the model name spliced in. Model is a view into the body: copy
// it to keep it past the request.
type chatFields struct {
	Model               string
	Messages            int
	Stream              bool
	IncludeUsage        bool // stream_options.include_usage
	MaxTokens           int
	MaxCompletionTokens int
	edits               bodyEdits
}

// bodyEdits are where upstreamBody changes the client's body.
type bodyEdits struct {
	model         span // the model's raw JSON string
	streamOptions span // the raw stream_options value; empty when absent
	usageAsked    bool // stream_options.include_usage is already true
}

// span is a byte range [from, to) of the body.
type span struct{ from, to int }

// maxOutput is the output one choice may produce, as the client asked;
// 0 when it did not say. The context window applies to each choice alone.
func (f *chatFields) maxOutput() int {
	if f.MaxCompletionTokens > 0 {
		return f.MaxCompletionTokens
	}
	return max(f.MaxTokens, 0)
}

// inspectChat checks the fields routing needs and reports malformed input
// with a precise code: invalid_json, invalid_type, missing_required_parameter
// or invalid_value.
func inspectChat(body []byte) (chatFields, error) {
	var f chatFields
	root, err := parseObject(body)
	if err != nil {
		return f, err
	}
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			f.Model, err = stringField("model", v)
			f.edits.model = span{v.Index, v.Index + len(v.Raw)}
		case "messages":
			f.Messages, err = checkMessages(v)
		case "stream":
			f.Stream, err = boolField("stream", v)
		case "stream_options":
			f.edits.streamOptions = span{v.Index, v.Index + len(v.Raw)}
			f.IncludeUsage, err = streamOptions(v)
			f.edits.usageAsked = f.IncludeUsage
		case "max_tokens":
			f.MaxTokens, err = intField("max_tokens", v)
		case "max_completion_tokens":
			f.MaxCompletionTokens, err = intField("max_completion_tokens", v)
		}
		return err == nil
	})
	switch {
	case err != nil:
		return f, err
	case f.Model == "":
		return f, wire.BadRequest("missing_required_parameter", "model", "you must provide a model parameter")
	case f.Messages == 0:
		return f, wire.BadRequest("missing_required_parameter", "messages", "messages must be a non-empty array")
	}
	return f, nil
}

// parseObject checks that body is one valid JSON object.
func parseObject(body []byte) (gjson.Result, error) {
	if !wire.Valid(body) {
		return gjson.Result{}, wire.BadRequest("invalid_json", "", "the request body is not valid JSON")
	}
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return root, wire.BadRequest("invalid_type", "", "the request body must be a JSON object")
	}
	return root, nil
}

// checkMessages counts the messages and checks each one's role.
func checkMessages(v gjson.Result) (int, error) {
	if v.Type == gjson.Null {
		return 0, nil
	}
	if !v.IsArray() {
		return 0, typeError("messages", "an array", v)
	}
	n := 0
	var err error
	v.ForEach(func(_, m gjson.Result) bool {
		if !m.IsObject() {
			err = typeError(fmt.Sprintf("messages[%d]", n), "an object", m)
			return false
		}
		role := m.Get("role")
		if role.Type != gjson.String && role.Type != gjson.Null && role.Exists() {
			err = typeError("messages.role", "a string", role)
			return false
		}
		switch role.Str {
		case "system", "developer", "user", "assistant", "tool", "function":
		default:
			err = wire.BadRequest("invalid_value", fmt.Sprintf("messages[%d].role", n),
				fmt.Sprintf("messages[%d].role must be one of system, developer, user, assistant, tool", n))
			return false
		}
		n++
		return true
	})
	return n, err
}

// streamOptions reads stream_options.include_usage.
func streamOptions(v gjson.Result) (bool, error) {
	if v.Type == gjson.Null {
		return false, nil
	}
	if !v.IsObject() {
		return false, typeError("stream_options", "an object", v)
	}
	return boolField("stream_options.include_usage", v.Get("include_usage"))
}

func stringField(name string, v gjson.Result) (string, error) {
	switch v.Type {
	case gjson.String:
		return v.Str, nil
	case gjson.Null:
		return "", nil
	}
	return "", typeError(name, "a string", v)
}

func boolField(name string, v gjson.Result) (bool, error) {
	switch v.Type {
	case gjson.True, gjson.False:
		return v.Bool(), nil
	case gjson.Null:
		return false, nil
	}
	return false, typeError(name, "a boolean", v)
}

func intField(name string, v gjson.Result) (int, error) {
	switch v.Type {
	case gjson.Number:
		if n, err := strconv.Atoi(v.Raw); err == nil {
			return n, nil
		}
		return 0, wire.BadRequest("invalid_type", name, name+" must be an integer, not "+v.Raw)
	case gjson.Null:
		return 0, nil
	}
	return 0, typeError(name, "an integer", v)
}

func typeError(name, want string, v gjson.Result) error {
	return wire.BadRequest("invalid_type", name, fmt.Sprintf("%s must be %s, not %s", name, want, jsonType(v)))
}

func jsonType(v gjson.Result) string {
	switch {
	case v.Type == gjson.String:
		return "a string"
	case v.Type == gjson.Number:
		return "a number"
	case v.Type == gjson.True || v.Type == gjson.False:
		return "a boolean"
	case v.IsArray():
		return "an array"
	case v.IsObject():
		return "an object"
	}
	return "null"
}

type embeddingFields struct {
	Model string // a view into the body, like chatFields.Model
	edits bodyEdits
}

func inspectEmbeddings(body []byte) (embeddingFields, error) {
	var f embeddingFields
	root, err := parseObject(body)
	if err != nil {
		return f, err
	}
	input := false
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			f.Model, err = stringField("model", v)
			f.edits.model = span{v.Index, v.Index + len(v.Raw)}
		case "input":
			input = v.Type != gjson.Null
		}
		return err == nil
	})
	switch {
	case err != nil:
		return f, err
	case f.Model == "":
		return f, wire.BadRequest("missing_required_parameter", "model", "you must provide a model parameter")
	case !input:
		return f, wire.BadRequest("missing_required_parameter", "input", "you must provide an input parameter")
	}
	return f, nil
}

// decode unmarshals a request body, turning decoder errors into client errors.
func decode(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return wire.BadRequest("invalid_type", "", "the request body must be a JSON object")
		}
		return wire.BadRequest("invalid_type", te.Field,
			fmt.Sprintf("%s must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value))
	}
	e := wire.BadRequest("invalid_json", "", "the request body is not valid JSON")
	e.Cause = err
	return e
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string", "ptr":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}

// upstreamBody rewrites what differs between the client's body and an
// attempt's: the model name, and for streams the usage request. Everything
// else passes byte for byte, in one allocation.
func upstreamBody(body []byte, e bodyEdits, model string, stream bool) ([]byte, error) {
	if e.model.to <= e.model.from || e.model.to > len(body) {
		return nil, errors.New("no model in the body")
	}
	out := make([]byte, 0, len(body)+len(model)+len(usageOption)+8)
	addUsage := stream && !e.usageAsked
	switch {
	case addUsage && e.streamOptions.to == 0:
		// Absent: insert it first. The body is an object with at least a
		// model, so a comma always follows.
		brace := bytes.IndexByte(body, '{') + 1
		out = append(append(out, body[:brace]...), usageOption...)
		out = append(out, ',')
		out = appendModel(append(out, body[brace:e.model.from]...), model)
		return append(out, body[e.model.to:]...), nil
	case addUsage:
		// Present but not asking: rare enough for the general tool.
		out = appendModel(append(out, body[:e.model.from]...), model)
		out = append(out, body[e.model.to:]...)
		return sjson.SetBytesOptions(out, "stream_options.include_usage", true, &sjson.Options{ReplaceInPlace: true})
	}
	out = appendModel(append(out, body[:e.model.from]...), model)
	return append(out, body[e.model.to:]...), nil
}

var usageOption = []byte(`"stream_options":{"include_usage":true}`)

// appendModel appends model as a JSON string.
func appendModel(out []byte, model string) []byte {
	for i := 0; i < len(model); i++ {
		if c := model[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			b, _ := json.Marshal(model)
			return append(out, b...)
		}
	}
	return append(append(append(out, '"'), model...), '"')
}
