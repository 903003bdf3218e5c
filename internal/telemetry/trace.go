package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names the tracer, as the OpenTelemetry conventions ask:
// the package that makes the spans.
const instrumentationName = "github.com/tollgate-gw/tollgate/internal/telemetry"

// defaultServiceName is service.name when OTEL_SERVICE_NAME is unset.
const defaultServiceName = "tollgate"

// SetupTracing builds a tracer provider from the standard OTEL_* environment
// variables, read through getenv (nil means os.Getenv). Tracing is off by
// default, unlike the OpenTelemetry default of exporting to localhost: it is
// on only when OTEL_TRACES_EXPORTER is "otlp", or when it is unset and
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
// OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true turn it off; any other
// exporter name is an error. Off, the provider is a no-op and shutdown does
// nothing.
//
// On, spans go through a batch span processor (tuned by OTEL_BSP_*) to an
// OTLP exporter speaking OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" (the default) or "grpc". The
// exporter reads its own settings — endpoint, headers, timeout, insecure,
// certificates, compression — from the process environment, not from getenv.
// The sampler follows OTEL_TRACES_SAMPLER (parent-based always-on by
// default). service.name is OTEL_SERVICE_NAME, else "tollgate" (a
// service.name in OTEL_RESOURCE_ATTRIBUTES is overridden); the other resource
// attributes come from OTEL_RESOURCE_ATTRIBUTES. The W3C
// TraceContext propagator becomes the global one.
//
// shutdown flushes the spans still queued and stops the exporter; call it
// once, with a deadline, when the server stops.
func SetupTracing(ctx context.Context, getenv func(string) string) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	on, err := tracingOn(getenv)
	if err != nil || !on {
		return noop.NewTracerProvider(), noShutdown, err
	}
	exp, err := newExporter(ctx, getenv)
	if err != nil {
		return noop.NewTracerProvider(), noShutdown, err
	}
	// A malformed OTEL_RESOURCE_ATTRIBUTES is a partial-resource error that
	// still returns the rest; only a missing resource is fatal.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
		resource.WithAttributes(attribute.String("service.name", firstSet(getenv("OTEL_SERVICE_NAME"), defaultServiceName))),
	)
	if res == nil {
		_ = exp.Shutdown(ctx)
		return noop.NewTracerProvider(), noShutdown, fmt.Errorf("tracing resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return sdk, sdk.Shutdown, nil
}

func noShutdown(context.Context) error { return nil }

// tracingOn decides from the environment whether to export traces.
func tracingOn(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	exporters := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	if exporters == "" {
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
	}
	on := false
	for name := range strings.SplitSeq(exporters, ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "none":
			return false, nil
		case "otlp":
			on = true
		default:
			return false, fmt.Errorf("OTEL_TRACES_EXPORTER %q: only otlp and none are supported", name)
		}
	}
	return on, nil
}

// newExporter makes the OTLP exporter for the configured protocol.
func newExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	protocol := firstSet(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "http/protobuf")
	switch strings.TrimSpace(protocol) {
	case "http/protobuf":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp http trace exporter: %w", err)
		}
		return exp, nil
	case "grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp grpc trace exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("OTLP trace protocol %q: only http/protobuf and grpc are supported", protocol)
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// Tracer makes the gateway's spans: one server span per client request and a
// client span per upstream attempt under it, named and attributed after the
// OpenTelemetry GenAI conventions. No span carries a prompt, a completion, a
// key or an upstream error message (which may echo the prompt).
//
// Built on the no-op provider (tracing off), a Tracer starts nothing: its
// Start methods return the context unchanged and a no-op span, without
// allocating. A nil *Tracer behaves the same. It is safe for concurrent use.
type Tracer struct {
	tracer trace.Tracer // nil when tracing is off
}

// NewTracer wraps tp; a nil tp or a no-op provider gives a Tracer that traces
// nothing at no cost.
func NewTracer(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return &Tracer{}
	}
	if _, off := tp.(noop.TracerProvider); off {
		return &Tracer{}
	}
	return &Tracer{tracer: tp.Tracer(instrumentationName)}
}

// operationKey carries the request's GenAI operation from its span to its
// attempts' spans.
type operationKey struct{}

// Attribute keys beyond the GenAI and HTTP conventions are under tollgate.
const (
	attrOperation     = attribute.Key("gen_ai.operation.name")
	attrRequestModel  = attribute.Key("gen_ai.request.model")
	attrResponseModel = attribute.Key("gen_ai.response.model")
	attrSystem        = attribute.Key("gen_ai.system")        // as asked; older conventions
	attrProviderName  = attribute.Key("gen_ai.provider.name") // its successor (semconv 1.37)
	attrInputTokens   = attribute.Key("gen_ai.usage.input_tokens")
	attrOutputTokens  = attribute.Key("gen_ai.usage.output_tokens")
	attrCachedTokens  = attribute.Key("gen_ai.usage.cache_read.input_tokens")
	attrStatusCode    = attribute.Key("http.response.status_code")
	attrErrorType     = attribute.Key("error.type")
	attrServerAddress = attribute.Key("server.address")
	attrServerPort    = attribute.Key("server.port")
	attrRequestID     = attribute.Key("tollgate.request_id")
	attrTier          = attribute.Key("tollgate.tier")
	attrTeam          = attribute.Key("tollgate.team_id")
	attrProvider      = attribute.Key("tollgate.provider")
	attrDeployment    = attribute.Key("tollgate.deployment")
	attrAttempt       = attribute.Key("tollgate.attempt")
	attrAttempts      = attribute.Key("tollgate.attempts")
	attrFallback      = attribute.Key("tollgate.fallback")
	attrCost          = attribute.Key("tollgate.cost_usd")
	attrCostEstimated = attribute.Key("tollgate.cost_estimated")
	attrStream        = attribute.Key("tollgate.stream")
	attrDowngraded    = attribute.Key("tollgate.downgraded")
)

// StartRequest starts the server span of one client request, named
// "{operation} {requestedModel}" ("chat gpt-4o", "embeddings small"), with
// gen_ai.operation.name, gen_ai.request.model and tollgate.request_id. The
// tier is not known yet; EndRequest adds it. requestedModel is the client's
// text, so it is cut to 128 bytes.
func (t *Tracer) StartRequest(ctx context.Context, operation, requestedModel, requestID string) (context.Context, trace.Span) {
	if t == nil || t.tracer == nil {
		return ctx, noop.Span{}
	}
	requestedModel = clip(requestedModel, 128)
	ctx, span := t.tracer.Start(ctx, spanName(operation, requestedModel),
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attrOperation.String(operation),
			attrRequestModel.String(requestedModel),
			attrRequestID.String(requestID),
		))
	return context.WithValue(ctx, operationKey{}, operation), span
}

// EndRequest adds the settled outcome to the request's span and ends it:
// gen_ai.response.model (the served model), gen_ai.usage.* when the upstream
// reported usage, http.response.status_code, error.type (the error code) and
// the tollgate.* details. A status of 500 or more marks the span an error;
// below that the client was refused, which is not the server's fault.
func (t *Tracer) EndRequest(span trace.Span, r *Request) {
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 18)
	attrs = append(attrs,
		attrStatusCode.Int(r.Status),
		attrTier.String(r.Tier),
		attrAttempts.Int(r.Attempts),
		attrFallback.Bool(r.Fallback),
		attrCost.Float64(r.CostUSD),
		attrStream.Bool(r.Stream),
	)
	if r.TeamID != "" {
		attrs = append(attrs, attrTeam.String(r.TeamID))
	}
	if r.Model != "" {
		attrs = append(attrs, attrResponseModel.String(r.Model), attrProvider.String(r.Provider), attrDeployment.String(r.Deployment))
	}
	if r.UsageReported {
		attrs = append(attrs, attrInputTokens.Int(r.PromptTokens), attrOutputTokens.Int(r.CompletionTokens), attrCachedTokens.Int(r.CachedTokens))
	}
	if r.CostEstimated {
		attrs = append(attrs, attrCostEstimated.Bool(true))
	}
	if r.Downgraded {
		attrs = append(attrs, attrDowngraded.Bool(true))
	}
	errType := r.ErrorCode
	if errType == "" && r.Status >= 400 {
		errType = statusLabel(r.Status)
	}
	if errType != "" {
		attrs = append(attrs, attrErrorType.String(errType))
	}
	span.SetAttributes(attrs...)
	if r.Status >= 500 {
		span.SetStatus(codes.Error, errType)
	}
	span.End()
}

// StartAttempt starts the client span of one upstream attempt, under the
// request's span in ctx, named "{operation} {upstreamModel}", with
// gen_ai.system and gen_ai.provider.name (the provider kind: "openai",
// "anthropic"), gen_ai.request.model (the upstream's name for the model),
// tollgate.deployment and tollgate.attempt (1 for the first). server.address
// is added by PropagatingTransport when the attempt's request leaves.
// Give the returned context to the attempt's HTTP request.
func (t *Tracer) StartAttempt(ctx context.Context, system, upstreamModel, deployment string, attempt int) (context.Context, trace.Span) {
	if t == nil || t.tracer == nil {
		return ctx, noop.Span{}
	}
	operation, _ := ctx.Value(operationKey{}).(string)
	if operation == "" {
		operation = "chat"
	}
	return t.tracer.Start(ctx, spanName(operation, upstreamModel),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attrOperation.String(operation),
			attrSystem.String(system),
			attrProviderName.String(system),
			attrRequestModel.String(upstreamModel),
			attrDeployment.String(deployment),
			attrAttempt.Int(attempt),
		))
}

// EndAttempt ends an attempt's span. status is the upstream's HTTP status (0
// if none arrived) and err the attempt's failure (nil on success). A status
// of 400 or more, or an error, marks the span an error with error.type: the
// status code, else the error's ErrorType() string when it has that method,
// else "canceled", "timeout" or "error". The error's message is never
// recorded: an upstream's message may quote the prompt.
func (t *Tracer) EndAttempt(span trace.Span, err error, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if status > 0 {
		span.SetAttributes(attrStatusCode.Int(status))
	}
	if typ := attemptErrorType(err, status); typ != "" {
		span.SetAttributes(attrErrorType.String(typ))
		span.SetStatus(codes.Error, typ)
	}
	span.End()
}

// attemptErrorType classifies a failed attempt for error.type, in a bounded
// vocabulary.
func attemptErrorType(err error, status int) string {
	if status >= 400 {
		return statusLabel(status)
	}
	if err == nil {
		return ""
	}
	if typed, ok := errors.AsType[interface {
		error
		ErrorType() string
	}](err); ok {
		if typ := typed.ErrorType(); typ != "" {
			return typ
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	if timeout, ok := errors.AsType[interface {
		error
		Timeout() bool
	}](err); ok && timeout.Timeout() {
		return "timeout"
	}
	return "error"
}

// spanName is "{operation} {model}", or the operation alone without a model.
func spanName(operation, model string) string {
	if model == "" {
		return operation
	}
	return operation + " " + model
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
