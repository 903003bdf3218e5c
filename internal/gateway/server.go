package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// The API port is served by fasthttp rather than net/http. On this workload —
// small JSON requests over keep-alive connections, one upstream call each —
// net/http's server spends about as much CPU per request as everything the
// gateway does (a goroutine and a read deadline per request to watch for the
// client leaving, a header map, a context): a bare net/http proxy measured
// 74 µs of CPU per request at c=32 where a fasthttp one measured 35 µs and
// nginx 27 µs (bench/README.md). fasthttp reuses its request and response
// objects, so nothing read from them may be kept past the request; the
// pipeline copies what it keeps (model names, tiers) and the body is copied
// only for payload logging.
//
// What fasthttp does not do, the gateway does itself: it notices a client
// that leaves while its request waits upstream (departures), and it streams
// SSE from the body's WriteTo, which relays the rest of a committed stream
// on the connection's goroutine (streamBody).

// Server settings. The whole request must arrive within readTimeout; an idle
// keep-alive connection is closed after idleTimeout. Headers larger than
// readBufferSize are refused with 431.
const (
	readTimeout    = 60 * time.Second
	idleTimeout    = 120 * time.Second
	readBufferSize = 16 << 10
)

// Server returns the HTTP server for the API port. Its largest accepted body
// is server.max_body_bytes as configured now: a reload can lower the limit
// (checked per request) but raising it takes a restart.
func (g *Gateway) Server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               g.handle,
		ErrorHandler:          serverError,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadBufferSize:        readBufferSize,
		MaxRequestBodySize:    int(g.state.Load().cfg.Server.MaxBodyBytes),
		ReadTimeout:           readTimeout,
		IdleTimeout:           idleTimeout,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{g},
		ConnState:             g.connState,
	}
}

// fasthttpLogger sends fasthttp's own complaints to the gateway's log.
type fasthttpLogger struct{ g *Gateway }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.g.log.Warn(fmt.Sprintf(format, args...), "event", "http_server")
}

// serverError answers what fasthttp refuses before a handler runs, as every
// other rejection: an OpenAI error envelope with a stable code.
func serverError(fc *fasthttp.RequestCtx, err error) {
	e := &wire.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "malformed_request",
		Message: "the HTTP request could not be read", Cause: err}
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = tooLarge(int64(fc.Request.Header.ContentLength()))
		e.Message = "request body is larger than the server accepts"
	case isSmallBuffer(err):
		e.Status, e.Code, e.Message = http.StatusRequestHeaderFieldsTooLarge, "headers_too_large",
			fmt.Sprintf("request headers are larger than %d bytes", readBufferSize)
	case errors.As(err, &te) && te.Timeout():
		e.Status, e.Code, e.Message = http.StatusRequestTimeout, "request_timeout", "the request did not arrive in time"
	}
	writeError(fc, e)
}

// isSmallBuffer reports fasthttp's "headers larger than the read buffer",
// which it returns in more than one shape (not all of them unwrap).
func isSmallBuffer(err error) bool {
	var sb *fasthttp.ErrSmallBuffer
	return errors.As(err, &sb) || errors.Is(err, fasthttp.ErrSmallReadBuffer) ||
		strings.Contains(err.Error(), fasthttp.ErrSmallReadBuffer.Error())
}

// handle routes by path. A plain switch rather than a pattern mux: every
// wrong method and unknown path must leave as an OpenAI error envelope.
func (g *Gateway) handle(fc *fasthttp.RequestCtx) {
	defer func() {
		if r := recover(); r != nil {
			g.logPanic(r, "")
			writeError(fc, errInternal)
		}
	}()
	switch string(fc.Path()) {
	case "/v1/chat/completions", "/chat/completions":
		g.api(fc, http.MethodPost, g.chat)
	case "/v1/embeddings", "/embeddings":
		g.api(fc, http.MethodPost, g.embeddings)
	case "/v1/models", "/models":
		g.api(fc, http.MethodGet, g.models)
	case "/admin/explain":
		g.api(fc, http.MethodPost, g.explain)
	case "/admin/alerts":
		g.api(fc, http.MethodGet, g.alerts)
	case "/metrics":
		if g.opts.ServeMetrics {
			g.metricsHandler(fc)
			return
		}
		notFound(fc)
	case "/healthz":
		writeJSON(fc, http.StatusOK, []byte(`{"status":"ok"}`))
	case "/readyz":
		if g.draining.Load() {
			writeJSON(fc, http.StatusServiceUnavailable, []byte(`{"status":"draining"}`))
			return
		}
		writeJSON(fc, http.StatusOK, []byte(`{"status":"ready"}`))
	default:
		path := fc.Path()
		switch {
		case bytes.HasPrefix(path, []byte("/v1/models/")):
			g.api(fc, http.MethodGet, g.model)
		case bytes.HasPrefix(path, []byte("/admin/")) && g.opts.Admin != nil:
			g.api(fc, string(fc.Method()), g.admin)
		default:
			notFound(fc)
		}
	}
}

func notFound(fc *fasthttp.RequestCtx) {
	writeError(fc, &wire.Error{Status: http.StatusNotFound, Type: "invalid_request_error",
		Code: "unknown_endpoint", Message: fmt.Sprintf("unknown endpoint: %s %s", fc.Method(), fc.Path())})
}

// call is one API request as the pipeline sees it: the connection's request
// and response, and a context that ends when the client leaves or the
// request's time is up.
type call struct {
	fc     *fasthttp.RequestCtx
	bounds callContext // its context (context()); bounds.end ends it
	// stream is set for a stream request: once it commits, it holds the
	// rest of the stream, which the response body runs.
	stream    *streamBody
	committed bool      // the status and headers are final (a stream has started)
	since     time.Time // when departures started watching
	conn      net.Conn  // the client's connection, for departures
	// lastEvent is when the stream's last event came from the upstream
	// (Unix nanoseconds; 0 before the first). A stream whose events flow
	// is written to often enough to notice a departed client by itself,
	// so departures spends no peek on it.
	lastEvent atomic.Int64
}

// context returns the call's context.
func (c *call) context() context.Context { return &c.bounds }

// errClientGone is what a stream's writes return once the client has left.
var errClientGone = errors.New("client closed the connection")

// header returns a request header, copied: fasthttp reuses its buffers.
func (c *call) header(name string) string {
	if v := c.fc.Request.Header.Peek(name); len(v) > 0 {
		return string(v)
	}
	return ""
}

// setHeader sets a response header; name must be canonical ("X-Request-Id"),
// which spares fasthttp normalizing it. Headers are final once the
// response commits (writeHeaders).
func (c *call) setHeader(name, value string) {
	setCanonical(&c.fc.Response.Header, stringBytes(name), value)
}

// setCanonical sets a header whose name is already canonical; fasthttp
// copies the value, so it is passed without a copy of its own.
func setCanonical(h *fasthttp.ResponseHeader, name []byte, value string) {
	h.SetCanonical(name, stringBytes(value))
}

// stringBytes is s's bytes, not copied: only for callees that copy them
// and never write to them.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// handler serves one authenticated API call.
type handler func(c *call, who caller) error

func (g *Gateway) api(fc *fasthttp.RequestCtx, method string, h handler) {
	if string(fc.Method()) != method {
		fc.Response.Header.Set("Allow", method)
		writeError(fc, &wire.Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Code: "method_not_allowed", Message: fmt.Sprintf("%s %s is not supported; use %s", fc.Method(), fc.Path(), method)})
		return
	}
	g.requests.Add(1)
	c := &call{fc: fc}
	// One context per call bounds it by the profile's request timeout and
	// ends it when the client leaves: every attempt's derives from it.
	g.departures.add(c, g.state.Load().prof.RequestTimeout)
	who, err := g.authenticate(c)
	if err != nil {
		g.departures.remove(c)
		c.bounds.end(nil)
		writeError(fc, err)
		return
	}
	g.metrics.InFlight(1)
	defer func() {
		if c.stream == nil { // else the stream's pipeline finishes it
			g.finish(c) // deferred: a panic (answered by handle) must not leak the call
		}
	}()
	if err := h(c, who); err != nil {
		writeError(fc, err)
	}
}

// finish ends a call once nothing more will be written for it.
func (g *Gateway) finish(c *call) {
	g.departures.remove(c)
	c.bounds.end(nil)
	g.metrics.InFlight(-1)
}

// writeError writes err as an OpenAI error envelope with its status.
func writeError(fc *fasthttp.RequestCtx, err error) *wire.Error {
	e := wire.AsError(err)
	if e.RetryAfter > 0 {
		fc.Response.Header.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(fc, e.Status, e.Body())
	return e
}

// writeJSON sets a complete JSON response; body must not change afterwards.
func writeJSON(fc *fasthttp.RequestCtx, status int, body []byte) {
	fc.Response.Header.SetContentType("application/json")
	fc.SetStatusCode(status)
	fc.Response.SetBodyRaw(body)
}

// admin passes /admin/ calls to the admin API, a net/http handler (these
// calls are rare; the adaptor's conversion does not matter), with who is
// calling.
func (g *Gateway) admin(c *call, who caller) error {
	a := admin.Actor{Master: who.master, TeamID: who.teamID(), KeyID: who.keyID()}
	fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.opts.Admin.ServeAdmin(w, r.WithContext(c.context()), a); err != nil {
			wire.WriteError(w, err)
		}
	}))(c.fc)
	return nil
}

// recoverPanic, deferred in a stream's pipeline and in the relay of its
// rest, turns a panic into a logged 500 (or, once the stream has started, a
// cut stream) rather than a crashed gateway or a request never settled:
// net/http recovered handler panics, fasthttp does not, and a panic in the
// body's WriteTo would close the connection and skip the stream's end.
func (g *Gateway) recoverPanic(c *call, x *exchange) {
	if r := recover(); r != nil {
		g.logPanic(r, x.id)
		if !c.committed {
			writeError(c.fc, errInternal)
		}
	}
}

var errInternal = &wire.Error{Status: http.StatusInternalServerError, Type: "server_error", Code: "internal_error",
	Message: "internal error"}

func (g *Gateway) logPanic(r any, requestID string) {
	g.log.Error("panic serving a request", "event", "panic", "request_id", requestID, "panic", fmt.Sprint(r),
		"stack", string(debug.Stack()))
}
