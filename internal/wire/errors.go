// Package wire holds the OpenAI-shaped types every other package speaks: the
// error envelope, usage, the chat message shapes that token counting and
// protocol translation decode, and the SSE codec.
package wire

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Error is a failure that leaves the gateway as an OpenAI error envelope.
// Message is what the client reads; Cause is what the log reads, and it never
// reaches the client. The zero Status means 500.
type Error struct {
	Status  int
	Type    string // invalid_request_error, authentication_error, rate_limit_error, server_error…
	Code    string // stable, machine-readable: invalid_json, model_not_found…
	Message string
	Param   string
	Cause   error

	// RetryAfter, when positive, is sent as the Retry-After header in seconds.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Message + ": " + e.Cause.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf-style constructors for the rejections the gateway itself makes.

// BadRequest is a 400 invalid_request_error.
func BadRequest(code, param, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: code, Param: param, Message: msg}
}

// envelope is the OpenAI error body: all four keys present, param and code may be null.
type envelope struct {
	Error envelopeError `json:"error"`
}

type envelopeError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Body returns the JSON error envelope for e.
func (e *Error) Body() []byte {
	b, _ := json.Marshal(envelope{Error: envelopeError{
		Message: e.Message, Type: e.Type, Param: nullable(e.Param), Code: nullable(e.Code),
	}})
	return b
}

// AsError returns err as an *Error, mapping anything unknown to a 500 that
// hides the cause from the client.
func AsError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		if e.Status == 0 {
			e.Status = http.StatusInternalServerError
		}
		if e.Type == "" {
			e.Type = "server_error"
		}
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Type: "server_error", Code: "internal_error",
		Message: "internal error", Cause: err}
}

// WriteError writes err as an OpenAI error envelope with its status.
func WriteError(w http.ResponseWriter, err error) *Error {
	e := AsError(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	w.Write(e.Body())
	return e
}

// ParseEnvelope reads an OpenAI-style error body. It reports false when body
// is not one.
func ParseEnvelope(body []byte) (typ, code, msg string, ok bool) {
	var env struct {
		Error *struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil {
		return "", "", "", false
	}
	var c string
	if json.Unmarshal(env.Error.Code, &c) != nil {
		c = string(env.Error.Code) // some servers send numeric codes
		if c == "null" {
			c = ""
		}
	}
	return env.Error.Type, c, env.Error.Message, true
}
