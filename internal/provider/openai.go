package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// OpenAI is a Provider for any OpenAI-compatible API: OpenAI itself, DeepSeek,
// Groq, Together, Mistral, vLLM, Ollama… The request body passes through
// unchanged; only the response's usage is read.
type OpenAI struct {
	name    string
	base    string
	keys    *keyRing
	headers map[string]string
	client  *http.Client
}

var _ Provider = (*OpenAI)(nil)

// NewOpenAI returns an adapter for the API at a.BaseURL (for example
// https://api.openai.com/v1), spreading requests over a.Keys. A nil client
// means NewHTTPClient().
func NewOpenAI(a Account, client *http.Client) *OpenAI {
	if client == nil {
		client = NewHTTPClient()
	}
	return &OpenAI{name: a.Name, base: strings.TrimRight(a.BaseURL, "/"), keys: newKeyRing(a.Keys, a.KeyCooldown),
		headers: a.Headers, client: client}
}

// Do sends one attempt.
func (o *OpenAI) Do(ctx context.Context, req *Request) (*Response, error) {
	path := "/chat/completions"
	if req.Endpoint == Embeddings {
		path = "/embeddings"
	}
	resp, err := o.keys.send(o.client, req.APIKey, func(key string) (*http.Request, error) {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base+path, bytes.NewReader(req.Body))
		if err == nil {
			o.setHeaders(hreq.Header, req, key)
		}
		return hreq, err
	})
	if err != nil {
		return nil, transportError(ctx, o.name, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		typ, code, msg, _ := wire.ParseEnvelope(body)
		return nil, statusError(o.name, resp, typ, code, msg)
	}
	if req.Stream {
		return &Response{Stream: &openAIStream{ctx: ctx, name: o.name, body: resp.Body, sse: wire.NewSSEReader(resp.Body)}}, nil
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body)
	if err != nil {
		return nil, transportError(ctx, o.name, err)
	}
	var parsed struct {
		Usage *wire.Usage `json:"usage"`
	}
	if err := json.Unmarshal(body, &parsed); err != nil {
		return nil, malformed(o.name, err)
	}
	return &Response{Body: body, Usage: parsed.Usage}, nil
}

func (o *OpenAI) setHeaders(h http.Header, req *Request, key string) {
	h.Set("Content-Type", "application/json")
	if req.Stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	if req.RequestID != "" {
		h.Set("X-Request-Id", req.RequestID)
	}
	for k, v := range o.headers {
		h.Set(k, v)
	}
}

// openAIStream yields the data payloads of an OpenAI SSE stream.
type openAIStream struct {
	ctx  context.Context
	name string
	body io.ReadCloser
	sse  *wire.SSEReader
}

var doneMarker = []byte("[DONE]")

func (s *openAIStream) Next() ([]byte, error) {
	for {
		ev, err := s.sse.Next()
		if err != nil {
			if err == io.EOF {
				// A stream must end with [DONE]; a bare EOF is a cut-off.
				err = io.ErrUnexpectedEOF
			}
			return nil, transportError(s.ctx, s.name, err)
		}
		data := ev.Data
		if len(data) == 0 {
			continue
		}
		if bytes.Equal(data, doneMarker) {
			return nil, io.EOF
		}
		if !json.Valid(data) {
			return nil, malformed(s.name, errString("stream event is not valid JSON"))
		}
		if bytes.HasPrefix(data, []byte(`{"error"`)) {
			typ, code, msg, _ := wire.ParseEnvelope(data)
			return nil, &Error{Kind: KindStatus, Status: http.StatusBadGateway, Provider: s.name,
				Type: typ, Code: code, Message: msg}
		}
		return data, nil
	}
}

func (s *openAIStream) Close() error { return s.body.Close() }

type errString string

func (e errString) Error() string { return string(e) }
