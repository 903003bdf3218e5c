package telemetry

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceContext is the W3C Trace Context propagator (traceparent and
// tracestate), used explicitly so that propagation does not depend on what
// was made global.
var traceContext propagation.TraceContext

// PropagatingTransport returns a transport that writes the W3C trace context
// of each request's context (traceparent, tracestate) into the request's
// headers before rt sends it, so the upstream's spans join the gateway's
// trace. A request whose context holds no span passes through untouched and
// without a copy; otherwise the request is copied with its own headers, as a
// RoundTripper must not modify its request. A nil rt is
// http.DefaultTransport.
//
// When the context's span is recording — the attempt span of StartAttempt —
// the transport also sets its server.address and server.port from the
// request's URL, which only the transport knows.
func PropagatingTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return propagatingTransport{rt}
}

type propagatingTransport struct{ base http.RoundTripper }

func (t propagatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	span := trace.SpanFromContext(ctx)
	if !span.SpanContext().IsValid() {
		return t.base.RoundTrip(req)
	}
	if span.IsRecording() {
		span.SetAttributes(attrServerAddress.String(req.URL.Hostname()))
		if port := portOf(req.URL.Scheme, req.URL.Port()); port > 0 {
			span.SetAttributes(attrServerPort.Int(port))
		}
	}
	out := req.WithContext(ctx) // a shallow copy
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	traceContext.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return t.base.RoundTrip(out)
}

// portOf is the URL's port, or the scheme's default.
func portOf(scheme, port string) int {
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	switch scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}

// Extract returns ctx carrying the remote span context of the client's W3C
// traceparent and tracestate headers, if valid, so that StartRequest's span
// continues the client's trace. With tracing off it returns ctx unchanged, so
// a client's trace context is never passed upstream by a gateway that does
// not trace.
//
// Calling it is a choice: a client that sends a sampled traceparent makes the
// default parent-based sampler record its request.
func (t *Tracer) Extract(ctx context.Context, h http.Header) context.Context {
	if t == nil || t.tracer == nil {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.HeaderCarrier(h))
}
