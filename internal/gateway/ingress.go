package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"

	"github.com/tidwall/sjson"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// readBody reads the request body once, bounded by limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge(limit)
		}
		return nil, &wire.Error{Status: http.StatusBadRequest, Type: "invalid_request_error",
			Code: "body_read_failed", Message: "could not read the request body", Cause: err}
	}
	return body, nil
}

func tooLarge(limit int64) *wire.Error {
	return &wire.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
		Code: "request_too_large", Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

// chatFields are the only fields of a chat request the gateway reads. Message
// contents are skipped, not decoded: the raw body goes upstream as it came.
type chatFields struct {
	Model    string `json:"model"`
	Messages []struct {
		Role role `json:"role"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int `json:"max_tokens"`
	MaxCompletionTokens *int `json:"max_completion_tokens"`
}

// maxOutput is the output one choice may produce, as the client asked;
// 0 when it did not say. The context window applies to each choice alone.
func (f *chatFields) maxOutput() int {
	switch {
	case f.MaxCompletionTokens != nil && *f.MaxCompletionTokens > 0:
		return *f.MaxCompletionTokens
	case f.MaxTokens != nil && *f.MaxTokens > 0:
		return *f.MaxTokens
	}
	return 0
}

// role is a message role, checked as it is decoded without keeping the
// string: one allocation fewer per message on every request.
type role bool

func (r *role) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"system"`, `"developer"`, `"user"`, `"assistant"`, `"tool"`, `"function"`:
		*r = true
		return nil
	}
	if len(b) > 0 && b[0] == '"' && bytes.IndexByte(b, '\\') >= 0 { // escaped: decode it properly
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return r.UnmarshalJSON(strconv.AppendQuote(nil, s))
	}
	if len(b) > 0 && b[0] != '"' && string(b) != "null" {
		return &json.UnmarshalTypeError{Value: "non-string", Type: reflect.TypeFor[string](), Field: "messages.role"}
	}
	*r = false
	return nil
}

// inspectChat checks the fields routing needs and reports malformed input
// with a precise code.
func inspectChat(body []byte) (chatFields, error) {
	var f chatFields
	if err := decode(body, &f); err != nil {
		return f, err
	}
	if f.Model == "" {
		return f, wire.BadRequest("missing_required_parameter", "model", "you must provide a model parameter")
	}
	if len(f.Messages) == 0 {
		return f, wire.BadRequest("missing_required_parameter", "messages", "messages must be a non-empty array")
	}
	for i, m := range f.Messages {
		if !m.Role {
			return f, wire.BadRequest("invalid_value", fmt.Sprintf("messages[%d].role", i),
				fmt.Sprintf("messages[%d].role must be one of system, developer, user, assistant, tool", i))
		}
	}
	return f, nil
}

type embeddingFields struct {
	Model *string         `json:"model"`
	Input json.RawMessage `json:"input"`
}

func inspectEmbeddings(body []byte) (embeddingFields, error) {
	var f embeddingFields
	if err := decode(body, &f); err != nil {
		return f, err
	}
	if f.Model == nil || *f.Model == "" {
		return f, wire.BadRequest("missing_required_parameter", "model", "you must provide a model parameter")
	}
	if len(f.Input) == 0 || string(f.Input) == "null" {
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
// else passes byte for byte.
func upstreamBody(body []byte, model string, stream bool) ([]byte, error) {
	out, err := sjson.SetBytes(body, "model", model)
	if err != nil {
		return nil, err
	}
	if stream {
		out, err = sjson.SetBytesOptions(out, "stream_options.include_usage", true, &sjson.Options{ReplaceInPlace: true})
	}
	return out, err
}
