package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"time"
)

// anthropicVersion is the API version the translation in this package is
// written against; it is the value the official SDKs still send.
const anthropicVersion = "2023-06-01"

// Anthropic is a Provider for the Anthropic Messages API. It translates the
// OpenAI chat request into a Messages request (openai_anthropic.go) and the
// answer, stream or error back into OpenAI's shapes (anthropic_openai.go).
// Anthropic has no embeddings endpoint.
//
// An Anthropic is safe for concurrent use and must not be copied after first
// use (the key ring counts atomically).
type Anthropic struct {
	name    string
	post    *http.Request // POST to the full …/v1/messages URL (postTo)
	keys    *keyRing
	headers map[string]string
	client  *http.Client
	now     func() time.Time // the "created" clock; tests fix it
}

var _ Provider = (*Anthropic)(nil)

// NewAnthropic returns an adapter for the API at a.BaseURL, such as
// https://api.anthropic.com (a trailing /v1 is accepted too), spreading
// requests over a.Keys round robin. a.Headers are sent on every request (for
// example anthropic-beta); they cannot replace x-api-key, anthropic-version
// or content-type. A nil client means NewHTTPClient().
func NewAnthropic(a Account, client *http.Client) *Anthropic {
	base := strings.TrimSuffix(strings.TrimRight(a.BaseURL, "/"), "/v1")
	if client == nil {
		client = NewHTTPClient()
	}
	return &Anthropic{name: a.Name, post: postTo(base + "/v1/messages"), keys: newKeyRing(a.Keys, a.KeyCooldown),
		headers: maps.Clone(a.Headers), client: client, now: time.Now}
}

// Do sends one attempt: req's OpenAI chat body, translated, to /v1/messages.
// A request that cannot be translated, or one for embeddings, fails with a
// 400 *Error before any upstream call.
func (a *Anthropic) Do(ctx context.Context, req *Request) (*Response, error) {
	if req.Endpoint != Chat {
		return nil, a.withName(anthBadRequest("unsupported_endpoint",
			"Anthropic models have no embeddings endpoint; route embeddings to another provider"))
	}
	body, err := a.requestBody(req)
	if err != nil {
		return nil, err
	}
	resp, earlier, err := a.keys.send(a.client, req.APIKey, func(key string) (*http.Request, error) {
		hreq := newPost(ctx, a.post, body, 6+len(a.headers))
		a.setHeaders(hreq.Header, req, key)
		return hreq, nil
	})
	if err != nil {
		return nil, transportError(ctx, a.name, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := readBody(resp.Body) // an unreadable body still leaves the status
		return nil, anthropicStatusError(a.name, resp, b)
	}
	if req.Stream {
		return &Response{Stream: newAnthropicStream(ctx, a.name, resp.Body, a.now()), Wait: waited(resp, earlier)}, nil
	}
	return a.readResponse(ctx, resp, earlier)
}

// requestBody translates req's body; Request.Model and Request.Stream win
// over the body's own fields.
func (a *Anthropic) requestBody(req *Request) ([]byte, error) {
	ar, err := translateAnthropicRequest(req.Body)
	if err != nil {
		e, ok := AsProviderError(err)
		if !ok {
			e = anthBadRequest("invalid_value", "%v", err)
		}
		return nil, a.withName(e)
	}
	if req.Model != "" {
		ar.Model = req.Model
	}
	ar.Stream = req.Stream
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // prompts are full of <tags>; \u003c would only bloat them
	if err := enc.Encode(ar); err != nil {
		return nil, a.withName(anthBadRequest("invalid_value", "encode anthropic request: %v", err))
	}
	return buf.Bytes(), nil
}

// setHeaders sets the configured headers, then the ones the API requires.
// Nothing from the client's own request is forwarded.
func (a *Anthropic) setHeaders(h http.Header, req *Request, key string) {
	for k, v := range a.headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Anthropic-Version", anthropicVersion)
	if req.Stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	if key != "" {
		h.Set("X-Api-Key", key)
	}
	if req.RequestID != "" {
		h.Set("X-Request-Id", req.RequestID)
	}
}

// readResponse reads and translates a non-streaming answer; earlier is the
// upstream time of the call's refused rounds (keyRing.send).
func (a *Anthropic) readResponse(ctx context.Context, resp *http.Response, earlier time.Duration) (*Response, error) {
	defer resp.Body.Close()
	bb, err := readResponseBody(resp)
	if err != nil {
		return nil, transportError(ctx, a.name, err)
	}
	wait := waited(resp, earlier)
	out, usage, err := anthropicToChat(bb.B, a.now()) // decodes: keeps nothing of bb
	bb.Release()
	if err != nil {
		return nil, malformed(a.name, err)
	}
	return &Response{Body: out, Usage: usage, Wait: wait}, nil
}

// withName stamps the provider name on an error made before the call.
func (a *Anthropic) withName(e *Error) *Error {
	e.Provider = a.name
	return e
}
