// Package provider holds the upstream adapters: one file per wire format.
// Every adapter takes an OpenAI-shaped request and gives back an OpenAI-shaped
// response or stream, whatever its upstream speaks. Adapters know nothing of
// tenants, tiers or retries: one call is one attempt.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// Endpoint names the OpenAI operation a request is for.
type Endpoint int

const (
	// Chat is POST /v1/chat/completions.
	Chat Endpoint = iota
	// Embeddings is POST /v1/embeddings.
	Embeddings
)

// Request is one upstream attempt. It is built fresh for every attempt and
// adapters must not modify Body.
type Request struct {
	Endpoint Endpoint
	// Body is the client's OpenAI-format JSON body with "model" already set to
	// the upstream model name (and, for streams to OpenAI-compatible upstreams,
	// stream_options.include_usage set).
	Body []byte
	// Model is the upstream model name, as in Body.
	Model string
	// Stream reports whether the client asked for SSE.
	Stream bool
	// RequestID is the gateway's request id, sent upstream for correlation.
	RequestID string
	// requestIDs holds RequestID as a header value, built once per request.
	requestIDs [1]string
	// APIKey, when set, is used instead of the provider's own keys: a team's
	// allocated upstream key, so its traffic bills to its own account.
	APIKey string
}

// requestIDHeader returns RequestID as a header value without allocating:
// the value lives in the request.
func (r *Request) requestIDHeader() []string {
	r.requestIDs[0] = r.RequestID
	return r.requestIDs[:]
}

// Response is a successful upstream answer in OpenAI format. Exactly one of
// Body and Stream is set.
type Response struct {
	// Body is a complete non-streaming OpenAI JSON response.
	Body []byte
	// Usage is parsed from Body; nil when the upstream reported none.
	Usage *wire.Usage
	// Stream yields chat.completion.chunk payloads.
	Stream Stream
	// Wait is the part of the call spent on the network and the upstream:
	// from the request handed to the socket (and a new connection's dial)
	// to the answer read (a stream: its head), over every round the call
	// took. The rest of the call — translating and
	// writing the request, checking and translating the answer — is the
	// gateway's own work. Zero when the transport cannot tell (net/http's,
	// used for HTTP/2 and proxies): the caller then counts the whole call
	// as upstream time.
	Wait time.Duration

	buf *wire.Buffer // Body's recycled buffer, when it has one
}

// Release hands Body's buffer back for reuse by a later response; Body must
// not be used after it. Releasing is optional (an unreleased buffer is
// collected) and safe to repeat.
func (r *Response) Release() {
	if r.buf != nil {
		r.buf.Release()
		r.buf, r.Body = nil, nil
	}
}

// Stream yields the data payloads of an OpenAI chat.completion.chunk stream.
// Implementations always end with a chunk that has "choices":[] and "usage"
// when the upstream reported usage; the gateway strips it if the client did
// not ask for it.
type Stream interface {
	// Next returns the next chunk's JSON, valid until the next call. It returns
	// io.EOF after the upstream's clean end ([DONE] or message_stop); any other
	// error means the stream broke (a *Error when the upstream said why).
	Next() ([]byte, error)
	// Close releases the upstream connection. It is safe to call more than once.
	Close() error
}

// maxDrain bounds what drainEnd reads: the end of a chunked body is five
// bytes, of an HTTP/2 one none.
const maxDrain = 4 << 10

// drainEnd reads the rest of a stream's body after its clean end ([DONE],
// message_stop), so that Close finds it finished and the connection goes
// back to the pool. An HTTP/1.1 server writes the terminating chunk after
// the last event, often in a packet of its own: a body closed before it
// arrives closes its connection, and the next stream paid a new one (on the
// benchmark's upstream four streams in ten did; to a real provider that is
// a TLS handshake) before its first byte. More than maxDrain bytes after the
// end is not an end, and Close cuts the connection as before. The wait is
// the attempt's: its idle timeout, or the client leaving, aborts the read.
func drainEnd(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
}

// Buffered is implemented by a Stream that can tell whether its next chunk
// has arrived already, read from the network with this one. The gateway
// then writes the two together and flushes once, as a proxy writes what
// one read brought; a Stream that cannot tell has every chunk flushed alone.
type Buffered interface {
	Buffered() bool
}

// Provider sends one attempt upstream.
type Provider interface {
	// Do sends req. A non-2xx upstream answer or a transport failure is
	// returned as *Error; ctx cancels the call at once.
	Do(ctx context.Context, req *Request) (*Response, error)
}

// ErrorKind says what went wrong with an attempt, which decides whether the
// gateway may try again.
type ErrorKind int

const (
	// KindStatus means the upstream answered with a non-2xx status.
	KindStatus ErrorKind = iota
	// KindTransport means no usable answer arrived: refused, reset, DNS, TLS,
	// or a malformed body.
	KindTransport
	// KindTimeout means the attempt ran out of time.
	KindTimeout
	// KindCanceled means the client went away; it is never the provider's fault.
	KindCanceled
)

// Error is a failed attempt. Type, Code and Message are already in OpenAI's
// vocabulary (adapters for other formats translate them).
type Error struct {
	Kind       ErrorKind
	Status     int           // upstream HTTP status for KindStatus
	RetryAfter time.Duration // from Retry-After / retry-after-ms; 0 if absent
	Type       string
	Code       string
	Message    string
	Provider   string
	Err        error
}

func (e *Error) Error() string {
	switch e.Kind {
	case KindStatus:
		return fmt.Sprintf("%s: upstream status %d: %s %s", e.Provider, e.Status, e.Code, e.Message)
	default:
		return fmt.Sprintf("%s: %v", e.Provider, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether another attempt of the same request may succeed:
// 408, 409, 429 (but not insufficient_quota), 5xx, 529, transport failures
// and timeouts. A canceled client is never retried.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindTransport, KindTimeout:
		return true
	case KindCanceled:
		return false
	}
	switch {
	case e.Status == http.StatusTooManyRequests:
		return e.Code != "insufficient_quota" && e.Type != "insufficient_quota"
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusConflict:
		return true
	case e.Status >= 500:
		return true
	}
	return false
}

// Fallbackable reports whether the next model in the chain may serve the
// request after this failure: everything retryable, plus quota exhaustion and
// upstream credential problems (the next deployment has other credentials).
// A client error (400, 404, 413, 422) would fail the same way anywhere.
func (e *Error) Fallbackable() bool {
	if e.Retryable() {
		return true
	}
	if e.Kind != KindStatus {
		return false
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden:
		return true
	}
	return false
}

// AsProviderError returns err's *Error, if any.
func AsProviderError(err error) (*Error, bool) {
	return errors.AsType[*Error](err)
}

// ErrorType names the failure for metrics and traces: timeout, canceled,
// transport, circuit_open, status_429, status_4xx or status_5xx.
func (e *Error) ErrorType() string {
	switch {
	case e.Kind == KindTimeout:
		return "timeout"
	case e.Kind == KindCanceled:
		return "canceled"
	case e.Code == "circuit_open":
		return "circuit_open"
	case e.Kind == KindTransport:
		return "transport"
	case e.Status == http.StatusTooManyRequests:
		return "status_429"
	case e.Status >= 500:
		return "status_5xx"
	}
	return "status_4xx"
}
