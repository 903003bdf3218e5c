package mockupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is a failure answered with an error body in the API's own format.
// Empty typ and code are derived from the status for that API.
type apiError struct {
	status       int
	message      string
	typ          string // OpenAI error.type / Anthropic error.type override
	code         string // OpenAI error.code override
	param        string // OpenAI error.param
	retryAfter   string // Retry-After header value
	retryAfterMS string // retry-after-ms header value
}

func (e *apiError) Error() string {
	return fmt.Sprintf("mock upstream: %d: %s", e.status, e.message)
}

// errorf returns an apiError with a formatted message.
func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, message: fmt.Sprintf(format, args...)}
}

// openAIErrorKind returns the error.type and error.code OpenAI sends with status.
func openAIErrorKind(status int) (typ, code string) {
	switch status {
	case http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case http.StatusForbidden:
		return "permission_error", ""
	case http.StatusNotFound:
		return "invalid_request_error", "model_not_found"
	case http.StatusRequestEntityTooLarge:
		return "invalid_request_error", "request_too_large"
	case http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded"
	case http.StatusInternalServerError:
		return "server_error", "server_error"
	case http.StatusBadGateway:
		return "server_error", "bad_gateway"
	case http.StatusServiceUnavailable, 529:
		return "server_error", "server_is_overloaded"
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return "server_error", "timeout"
	}
	if status >= 500 {
		return "server_error", ""
	}
	return "invalid_request_error", ""
}

// anthropicErrorType returns the error.type Anthropic sends with status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// openAIErrorBody is the OpenAI error envelope's inner object.
type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// openAIBody returns the OpenAI envelope's inner object for e.
func (e *apiError) openAIBody() openAIErrorBody {
	typ, code := openAIErrorKind(e.status)
	if e.typ != "" {
		typ = e.typ
	}
	if e.code != "" {
		code = e.code
	}
	return openAIErrorBody{Message: e.message, Type: typ, Param: nullable(e.param), Code: nullable(code)}
}

// anthropicErrorBody is the inner object of an Anthropic error.
type anthropicErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// anthropicBody returns the inner object of the Anthropic error for e.
func (e *apiError) anthropicBody() anthropicErrorBody {
	typ := anthropicErrorType(e.status)
	if e.typ != "" {
		typ = e.typ
	}
	return anthropicErrorBody{Type: typ, Message: e.message}
}

// write sends e as the whole response, in the format of proto.
func (e *apiError) write(w http.ResponseWriter, proto protocol, requestID string) {
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	if e.retryAfterMS != "" {
		w.Header().Set("retry-after-ms", e.retryAfterMS)
	}
	if proto == protoAnthropic {
		writeJSON(w, e.status, struct {
			Type      string             `json:"type"`
			Error     anthropicErrorBody `json:"error"`
			RequestID string             `json:"request_id"`
		}{"error", e.anthropicBody(), requestID})
		return
	}
	writeJSON(w, e.status, struct {
		Error openAIErrorBody `json:"error"`
	}{e.openAIBody()})
}

// writeJSON sends v as a JSON response with the given status. Write errors
// are dropped: they only mean the client went away.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "mock upstream: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
