package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
)

func TestPropagatingTransport(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer srv.Close()
	client := &http.Client{Transport: PropagatingTransport(nil)}

	tr, exp := recordingTracer(t)
	ctx, reqSpan := tr.StartRequest(context.Background(), "chat", "smart", "req-1")
	actx, att := tr.StartAttempt(ctx, "openai", "gpt-4o", "oa", 1)
	req, _ := http.NewRequestWithContext(actx, http.MethodPost, srv.URL+"/v1/chat/completions", nil)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST through PropagatingTransport: %v", err)
	}
	resp.Body.Close()
	tr.EndAttempt(att, nil, resp.StatusCode)
	tr.EndRequest(reqSpan, &Request{Status: 200})

	h := <-got
	sc := att.SpanContext()
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if tp := h.Get("Traceparent"); tp != want {
		t.Errorf("upstream got traceparent %q, want %q (the attempt span in the request's trace %s)", tp, want, reqSpan.SpanContext().TraceID())
	}
	if h.Get("Content-Type") != "application/json" {
		t.Errorf("upstream got Content-Type %q; the transport lost the request's own headers", h.Get("Content-Type"))
	}
	if req.Header.Get("Traceparent") != "" {
		t.Error("PropagatingTransport modified the caller's request headers")
	}

	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	a := attrs(exp.GetSpans()[0].Attributes)
	if a["server.address"] != "127.0.0.1" || a["server.port"] != int64(port) {
		t.Errorf("attempt span server.address %v server.port %v, want 127.0.0.1 and %d", a["server.address"], a["server.port"], port)
	}
}

// TestPropagatingTransportWithoutSpan checks that a request with no span in
// its context reaches the base transport as it is: no header, no copy.
func TestPropagatingTransportWithoutSpan(t *testing.T) {
	var seen *http.Request
	rt := PropagatingTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	}))
	req := httptest.NewRequest(http.MethodGet, "http://upstream.test/", nil)
	if _, err := rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if seen != req || seen.Header.Get("Traceparent") != "" {
		t.Errorf("request without a span: passed %p (want %p) with traceparent %q", seen, req, seen.Header.Get("Traceparent"))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestExtractContinuesClientTrace(t *testing.T) {
	tr, exp := recordingTracer(t)
	h := http.Header{}
	h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	_, span := tr.StartRequest(tr.Extract(context.Background(), h), "chat", "smart", "req-1")
	tr.EndRequest(span, &Request{Status: 200})
	s := exp.GetSpans()[0]
	if s.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || s.Parent.SpanID().String() != "b7ad6b7169203331" || !s.Parent.IsRemote() {
		t.Errorf("request span in trace %s under %s (remote %v), want the client's trace and span",
			s.SpanContext.TraceID(), s.Parent.SpanID(), s.Parent.IsRemote())
	}
}
