package telemetry

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// recordingTracer is a Tracer on an SDK provider that exports each span
// synchronously to memory as it ends.
func recordingTracer(t *testing.T) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return NewTracer(tp), exp
}

// upstreamError is a provider failure as the gateway would see it, with a
// message that must not reach the span.
type upstreamError struct{ typ string }

func (e upstreamError) Error() string     { return "upstream said: the prompt was 'secret plans'" }
func (e upstreamError) ErrorType() string { return e.typ }

func TestRequestSpanWithAttempts(t *testing.T) {
	tr, exp := recordingTracer(t)
	ctx, req := tr.StartRequest(context.Background(), "chat", "smart", "req-1")

	_, first := tr.StartAttempt(ctx, "openai", "gpt-4o-2024-08-06", "oa-east", 1)
	tr.EndAttempt(first, upstreamError{"status_5xx"}, 503)
	_, second := tr.StartAttempt(ctx, "anthropic", "claude-sonnet-4", "an-1", 2)
	tr.EndAttempt(second, nil, 200)

	tr.EndRequest(req, &Request{
		ID: "req-1", Endpoint: "chat.completions", Tier: "fast", TeamID: "t1", KeyID: "key-1",
		RequestedModel: "smart", Model: "claude", Provider: "anthropic", Deployment: "an-1",
		Attempts: 2, Fallback: true, Status: 200, PromptTokens: 12, CompletionTokens: 7, CachedTokens: 0,
		UsageReported: true, CostUSD: 0.5,
	})

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("exported %d spans, want 3", len(spans))
	}
	a1, a2, rs := spans[0], spans[1], spans[2] // in the order they ended

	type shape struct {
		Name   string
		Kind   trace.SpanKind
		Status codes.Code
		Attrs  map[string]any
	}
	got := []shape{
		{rs.Name, rs.SpanKind, rs.Status.Code, attrs(rs.Attributes)},
		{a1.Name, a1.SpanKind, a1.Status.Code, attrs(a1.Attributes)},
		{a2.Name, a2.SpanKind, a2.Status.Code, attrs(a2.Attributes)},
	}
	want := []shape{
		{"chat smart", trace.SpanKindServer, codes.Unset, map[string]any{
			"gen_ai.operation.name": "chat", "gen_ai.request.model": "smart", "tollgate.request_id": "req-1",
			"gen_ai.response.model": "claude", "gen_ai.usage.input_tokens": int64(12), "gen_ai.usage.output_tokens": int64(7),
			"gen_ai.usage.cache_read.input_tokens": int64(0),
			"http.response.status_code":            int64(200), "tollgate.tier": "fast", "tollgate.team_id": "t1",
			"tollgate.provider": "anthropic", "tollgate.deployment": "an-1",
			"tollgate.attempts": int64(2), "tollgate.fallback": true, "tollgate.cost_usd": 0.5, "tollgate.stream": false,
		}},
		{"chat gpt-4o-2024-08-06", trace.SpanKindClient, codes.Error, map[string]any{
			"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.provider.name": "openai",
			"gen_ai.request.model": "gpt-4o-2024-08-06", "tollgate.deployment": "oa-east", "tollgate.attempt": int64(1),
			"http.response.status_code": int64(503), "error.type": "503",
		}},
		{"chat claude-sonnet-4", trace.SpanKindClient, codes.Unset, map[string]any{
			"gen_ai.operation.name": "chat", "gen_ai.system": "anthropic", "gen_ai.provider.name": "anthropic",
			"gen_ai.request.model": "claude-sonnet-4", "tollgate.deployment": "an-1", "tollgate.attempt": int64(2),
			"http.response.status_code": int64(200),
		}},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("spans (-got +want):\n%s", diff)
	}

	for _, a := range []tracetest.SpanStub{a1, a2} {
		if a.Parent.SpanID() != rs.SpanContext.SpanID() || a.SpanContext.TraceID() != rs.SpanContext.TraceID() {
			t.Errorf("attempt %q: parent %s in trace %s, want the request span %s in trace %s",
				a.Name, a.Parent.SpanID(), a.SpanContext.TraceID(), rs.SpanContext.SpanID(), rs.SpanContext.TraceID())
		}
	}
	if rs.Parent.IsValid() {
		t.Errorf("request span has parent %s, want a root", rs.Parent.SpanID())
	}
	for _, s := range spans {
		if len(s.Events) != 0 || s.Status.Description == (upstreamError{}).Error() {
			t.Errorf("span %q records the error's message (events %v, status %q)", s.Name, s.Events, s.Status.Description)
		}
	}
}

func TestEndRequestStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		r          Request
		wantStatus codes.Code
		wantType   any // error.type, nil if absent
	}{
		{"served", Request{Status: 200}, codes.Unset, nil},
		{"refused by budget", Request{Status: 402, ErrorCode: "budget_exceeded"}, codes.Unset, "budget_exceeded"},
		{"upstreams failed", Request{Status: 502, ErrorCode: "upstream_error"}, codes.Error, "upstream_error"},
		{"no code", Request{Status: 500}, codes.Error, "500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, exp := recordingTracer(t)
			_, span := tr.StartRequest(context.Background(), "embeddings", "", "req-2")
			tr.EndRequest(span, &tc.r)
			s := exp.GetSpans()[0]
			if s.Name != "embeddings" {
				t.Errorf("span name %q, want %q", s.Name, "embeddings")
			}
			if s.Status.Code != tc.wantStatus || attrs(s.Attributes)["error.type"] != tc.wantType {
				t.Errorf("status %v error.type %v, want %v and %v", s.Status.Code, attrs(s.Attributes)["error.type"], tc.wantStatus, tc.wantType)
			}
			if _, ok := attrs(s.Attributes)["gen_ai.usage.input_tokens"]; ok {
				t.Error("gen_ai.usage.input_tokens set for a request without reported usage")
			}
		})
	}
}

func TestAttemptNamedForOperation(t *testing.T) {
	tr, exp := recordingTracer(t)
	ctx, req := tr.StartRequest(context.Background(), "embeddings", "small", "req-3")
	_, a := tr.StartAttempt(ctx, "openai", "text-embedding-3-small", "oa", 1)
	tr.EndAttempt(a, nil, 200)
	tr.EndRequest(req, &Request{Status: 200})
	if got := exp.GetSpans()[0].Name; got != "embeddings text-embedding-3-small" {
		t.Errorf("attempt span of an embeddings request named %q, want %q", got, "embeddings text-embedding-3-small")
	}
}

func TestAttemptErrorType(t *testing.T) {
	timeout := &net.OpError{Op: "dial", Err: &timeoutErr{}}
	for _, tc := range []struct {
		err    error
		status int
		want   string
	}{
		{nil, 200, ""},
		{nil, 0, ""},
		{nil, 429, "429"},
		{upstreamError{"status_4xx"}, 400, "400"},
		{fmt.Errorf("attempt: %w", upstreamError{"transport"}), 0, "transport"},
		{fmt.Errorf("attempt: %w", context.Canceled), 0, "canceled"},
		{context.DeadlineExceeded, 0, "timeout"},
		{timeout, 0, "timeout"},
		{errors.New("connection reset"), 0, "error"},
	} {
		if got := attemptErrorType(tc.err, tc.status); got != tc.want {
			t.Errorf("attemptErrorType(%v, %d) = %q, want %q", tc.err, tc.status, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (*timeoutErr) Error() string { return "i/o timeout" }
func (*timeoutErr) Timeout() bool { return true }

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"gpt-4o", 128, "gpt-4o"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes; never cut in half
	} {
		if got := clip(tc.in, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestTracingOff checks that a Tracer on the no-op provider, or a nil one,
// starts nothing, leaves the context alone and allocates nothing.
func TestTracingOff(t *testing.T) {
	for name, tr := range map[string]*Tracer{"noop": NewTracer(noop.NewTracerProvider()), "nil provider": NewTracer(nil), "nil": nil} {
		ctx := context.Background()
		rctx, req := tr.StartRequest(ctx, "chat", "smart", "req-1")
		actx, att := tr.StartAttempt(rctx, "openai", "gpt-4o", "oa", 1)
		if rctx != ctx || actx != ctx || req.IsRecording() || att.IsRecording() {
			t.Errorf("%s: tracing off changed the context or recorded a span", name)
		}
		tr.EndAttempt(att, errors.New("x"), 500)
		tr.EndRequest(req, &Request{Status: 500})
		if got := tr.Extract(ctx, http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}); got != ctx {
			t.Errorf("%s: Extract with tracing off changed the context", name)
		}
	}
	tr := NewTracer(noop.NewTracerProvider())
	r := &Request{Status: 200}
	allocs := testing.AllocsPerRun(100, func() {
		ctx, req := tr.StartRequest(context.Background(), "chat", "smart", "req-1")
		_, att := tr.StartAttempt(ctx, "openai", "gpt-4o", "oa", 1)
		tr.EndAttempt(att, nil, 200)
		tr.EndRequest(req, r)
	})
	if allocs != 0 {
		t.Errorf("a request and an attempt with tracing off allocate %g times, want 0", allocs)
	}
}

func BenchmarkTracingOff(b *testing.B) {
	tr := NewTracer(noop.NewTracerProvider())
	r := &Request{Status: 200}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rctx, req := tr.StartRequest(ctx, "chat", "smart", "req-1")
		_, att := tr.StartAttempt(rctx, "openai", "gpt-4o", "oa", 1)
		tr.EndAttempt(att, nil, 200)
		tr.EndRequest(req, r)
	}
}

func BenchmarkTracingOn(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	tr := NewTracer(tp)
	r := servedStream()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rctx, req := tr.StartRequest(ctx, "chat", "smart", "req-1")
		_, att := tr.StartAttempt(rctx, "openai", "gpt-4o", "oa", 1)
		tr.EndAttempt(att, nil, 200)
		tr.EndRequest(req, r)
	}
}

func attrs(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// otelEnv are the variables SetupTracing and the exporters read; each test
// of SetupTracing starts with none of them set.
var otelEnv = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
	"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

func clearOTELEnv(t *testing.T) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSetupTracingOff(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no environment":         {},
		"exporter none":          {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
		"sdk disabled":           {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
		"protocol without place": {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	} {
		t.Run(name, func(t *testing.T) {
			tp, shutdown, err := SetupTracing(context.Background(), envOf(env))
			if err != nil {
				t.Fatalf("SetupTracing(%v): %v", env, err)
			}
			if _, ok := tp.(noop.TracerProvider); !ok {
				t.Errorf("SetupTracing(%v) = %T, want the no-op provider", env, tp)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

func TestSetupTracingRefusesUnsupported(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"zipkin":    {"OTEL_TRACES_EXPORTER": "zipkin"},
		"http/json": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
	} {
		t.Run(name, func(t *testing.T) {
			tp, shutdown, err := SetupTracing(context.Background(), envOf(env))
			if err == nil {
				t.Errorf("SetupTracing(%v) = nil error, want one", env)
			}
			if _, ok := tp.(noop.TracerProvider); !ok || shutdown == nil {
				t.Errorf("SetupTracing(%v) failing returned %T and shutdown %v, want the no-op provider and a shutdown", env, tp, shutdown != nil)
			}
		})
	}
}

// TestSetupTracingHTTP sends a span through the real OTLP/HTTP exporter to a
// fake collector, and checks that shutdown flushes it.
func TestSetupTracingHTTP(t *testing.T) {
	clearOTELEnv(t)
	got := make(chan *coltracepb.ExportTraceServiceRequest, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s), want POST /v1/traces application/x-protobuf", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("gzip body: %v", err)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			t.Errorf("export body: %v", err)
		}
		got <- req
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)

	tp, shutdown, err := SetupTracing(context.Background(), os.Getenv)
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	if _, ok := tp.(*sdktrace.TracerProvider); !ok {
		t.Fatalf("SetupTracing with an endpoint = %T, want the SDK provider", tp)
	}
	tr := NewTracer(tp)
	_, span := tr.StartRequest(context.Background(), "chat", "smart", "req-1")
	tr.EndRequest(span, &Request{Status: 200})
	select {
	case <-got:
		t.Fatal("the span was exported before shutdown; the processor is not batching")
	default:
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	checkExported(t, got, "tollgate", "chat smart")

	if fields := otel.GetTextMapPropagator().Fields(); !slices.Contains(fields, "traceparent") {
		t.Errorf("global propagator carries %v, want traceparent", fields)
	}
}

// TestSetupTracingGRPC does the same over OTLP/gRPC, with the service name
// from OTEL_SERVICE_NAME.
func TestSetupTracingGRPC(t *testing.T) {
	clearOTELEnv(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{got: make(chan *coltracepb.ExportTraceServiceRequest, 4)}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, col)
	go gs.Serve(lis)
	defer gs.Stop()

	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_SERVICE_NAME", "gw-test")
	tp, shutdown, err := SetupTracing(context.Background(), os.Getenv)
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	tr := NewTracer(tp)
	_, span := tr.StartRequest(context.Background(), "embeddings", "small", "req-1")
	tr.EndRequest(span, &Request{Status: 200})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	checkExported(t, col.got, "gw-test", "embeddings small")
}

type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	got chan *coltracepb.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.got <- req
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// checkExported waits for one export holding one span named span from a
// resource whose service.name is service.
func checkExported(t *testing.T, got <-chan *coltracepb.ExportTraceServiceRequest, service, span string) {
	t.Helper()
	var req *coltracepb.ExportTraceServiceRequest
	select {
	case req = <-got:
	default:
		t.Fatal("the collector received no export by the end of shutdown")
	}
	var services, names []string
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				services = append(services, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				names = append(names, s.GetName())
			}
		}
	}
	if diff := cmp.Diff(services, []string{service}); diff != "" {
		t.Errorf("exported service.name (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(names, []string{span}); diff != "" {
		t.Errorf("exported spans (-got +want):\n%s", diff)
	}
}
