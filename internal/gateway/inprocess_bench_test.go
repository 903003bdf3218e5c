package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tollgate-gw/tollgate/internal/gateway"
	"github.com/tollgate-gw/tollgate/internal/meter"
)

// cannedUpstream answers every request with the same chat completion, in
// memory: what remains is the gateway's own work.
type cannedUpstream struct {
	body        []byte
	contentType string
}

func (c cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {c.contentType}},
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body)), Request: r}, nil
}

const cannedCompletion = `{"id":"chatcmpl-1","object":"chat.completion","created":1767225600,"model":"m1","choices":[{"index":0,"message":{"role":"assistant","content":"` +
	`It is 4 degrees and cloudy in Oslo today, with light wind from the west and a chance of rain later in the evening. Tomorrow looks brighter."` +
	`},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":0}}}`

// BenchmarkGatewayInProcess is one proxied non-stream request through the
// whole pipeline — ingress, auth, plan, fit, attempt, relay, settle with a
// log line and metrics — without sockets on either side: the server's
// request object is filled in memory and the upstream answers from memory.
// Its allocations are the gateway's own (the canned upstream's few
// included). It asks for m2, a model without a timeout of its own, as most
// are: a model total costs the attempt a context and a timer (8 allocations).
func BenchmarkGatewayInProcess(b *testing.B) {
	body := []byte(`{"model":"m2","messages":[{"role":"user","content":"What is the weather in Oslo?"}]}`)
	benchInProcess(b, cannedUpstream{body: []byte(cannedCompletion), contentType: "application/json"}, body, nil)
}

// BenchmarkGatewayInProcessStream is BenchmarkGatewayInProcess for a
// stream of 20 content chunks, a finish chunk and a usage chunk, written
// out by the response's body writer as fasthttp would: the pipeline runs as
// a coroutine on a new goroutine per stream, so this also counts what that
// goroutine's stack costs.
func BenchmarkGatewayInProcessStream(b *testing.B) {
	body := []byte(`{"model":"m2","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"What is the weather in Oslo?"}]}`)
	var out bytes.Buffer
	benchInProcess(b, cannedUpstream{body: cannedStream(20), contentType: "text/event-stream"}, body, func(fc *fasthttp.RequestCtx) {
		out.Reset()
		if err := fc.Response.BodyWriteTo(&out); err != nil {
			b.Fatal(err)
		}
		if !bytes.HasSuffix(out.Bytes(), []byte("data: [DONE]\n\n")) {
			b.Fatalf("stream did not end with [DONE]: %q", out.Bytes())
		}
	})
}

// cannedStream is an OpenAI chat stream with n content chunks.
func cannedStream(n int) []byte {
	const head = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"m1","choices":[`
	var b bytes.Buffer
	b.WriteString(head + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}` + "\n\n")
	for range n {
		b.WriteString(head + `{"index":0,"delta":{"content":" word"},"finish_reason":null}],"usage":null}` + "\n\n")
	}
	b.WriteString(head + `{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}` + "\n\n")
	b.WriteString(head + `],"usage":{"prompt_tokens":12,"completion_tokens":` + strconv.Itoa(n) + `,"total_tokens":` + strconv.Itoa(12+n) + `}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// benchInProcess sends body through the gateway's handler b.N times, with
// up as the upstream; after, when set, reads each response.
func benchInProcess(b *testing.B, up cannedUpstream, body []byte, after func(*fasthttp.RequestCtx)) {
	cfg := parseConfig(b, testConfig, "http://upstream.invalid")
	g, err := gateway.New(cfg, gateway.Options{MasterKey: masterKey, Logger: discardLogger(),
		Client: &http.Client{Transport: up}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close(context.Background())
	// Wait for the tokenizer vocabulary New loads in the background, so its
	// one-time allocations are not counted per request.
	meter.TokenizerFor("openai", "gpt-4o").CountChat([]byte(`{"messages":[]}`))
	auth := "Bearer " + masterKey
	handle := g.Server().Handler
	var fc fasthttp.RequestCtx
	var req fasthttp.Request
	fc.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	b.ReportAllocs()
	for b.Loop() {
		fc.Request.Reset()
		fc.Response.Reset()
		fc.Request.Header.SetMethod(http.MethodPost)
		fc.Request.SetRequestURI("/v1/chat/completions")
		fc.Request.Header.Set("Authorization", auth)
		fc.Request.Header.SetContentType("application/json")
		fc.Request.SetBodyRaw(body)
		handle(&fc)
		if fc.Response.StatusCode() != http.StatusOK {
			b.Fatalf("status %d: %s", fc.Response.StatusCode(), fc.Response.Body())
		}
		if after != nil {
			after(&fc)
		}
	}
}
