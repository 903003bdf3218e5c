package provider

import (
	"bytes"
	"context"
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
	chat    *http.Request // POST to base + /chat/completions (postTo)
	embed   *http.Request // POST to base + /embeddings
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
	base := strings.TrimRight(a.BaseURL, "/")
	return &OpenAI{name: a.Name, base: base, chat: postTo(base + "/chat/completions"), embed: postTo(base + "/embeddings"),
		keys: newKeyRing(a.Keys, a.KeyCooldown), headers: a.Headers, client: client}
}

// Do sends one attempt.
func (o *OpenAI) Do(ctx context.Context, req *Request) (*Response, error) {
	to := o.chat
	if req.Endpoint == Embeddings {
		to = o.embed
	}
	resp, earlier, err := o.keys.send(o.client, req.APIKey, func(key string) (*http.Request, error) {
		hreq := newPost(ctx, to, req.Body, 4+len(o.headers))
		o.setHeaders(hreq.Header, req, key)
		return hreq, nil
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
		return &Response{Stream: &openAIStream{ctx: ctx, name: o.name, body: resp.Body, sse: wire.NewSSEReader(resp.Body)},
			Wait: waited(resp, earlier)}, nil
	}
	defer resp.Body.Close()
	bb, err := readResponseBody(resp)
	if err != nil {
		return nil, transportError(ctx, o.name, err)
	}
	wait := waited(resp, earlier)
	usage, err := readUsage(bb.B)
	if err != nil {
		bb.Release()
		return nil, malformed(o.name, err)
	}
	return &Response{Body: bb.B, Usage: usage, Wait: wait, buf: bb}, nil
}

// readUsage checks that a non-streaming body is JSON and decodes only its
// usage object, a member of the top-level object, found in the same pass as
// the check. The body itself is not decoded: it passes to the client as it
// came.
func readUsage(body []byte) (*wire.Usage, error) {
	valid, usage := wire.ValidMember(body, "usage")
	if !valid {
		return nil, errString("response body is not valid JSON")
	}
	if len(usage) == 0 || usage[0] != '{' {
		return nil, nil // absent, null or not an object: no usage reported
	}
	u, _ := wire.ParseUsage(usage)
	return u, nil
}

// Fixed header values, shared: an http.Header value slice is only read.
var (
	jsonType   = []string{"application/json"}
	acceptSSE  = []string{"text/event-stream"}
	acceptJSON = jsonType
)

// setHeaders fills an attempt's headers: canonical names assigned directly,
// the per-request values in one backing array.
func (o *OpenAI) setHeaders(h http.Header, req *Request, key string) {
	h["Content-Type"] = jsonType
	if req.Stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
	}
	if key != "" {
		h["Authorization"] = o.keys.bearer(key)
	}
	if req.RequestID != "" {
		h["X-Request-Id"] = req.requestIDHeader()
	}
	for k, v := range o.headers {
		h.Set(k, v)
	}
}

// openAIStream yields the data payloads of an OpenAI SSE stream.
type openAIStream struct {
	ctx   context.Context
	name  string
	body  io.ReadCloser
	sse   *wire.SSEReader
	ended bool // [DONE] came: Close lets the connection be reused
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
			s.ended = true
			return nil, io.EOF
		}
		if !wire.Valid(data) {
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

// Close releases the connection and the read buffer (the relay calls it
// on the goroutine that calls Next, once the last chunk is handled).
func (s *openAIStream) Close() error {
	s.sse.Release()
	if s.ended {
		s.ended = false
		drainEnd(s.body)
	}
	return s.body.Close()
}

// Buffered reports whether the next event has arrived already.
func (s *openAIStream) Buffered() bool { return s.sse.Ready() }

type errString string

func (e errString) Error() string { return string(e) }
