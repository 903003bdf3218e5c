package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate-gw/tollgate/internal/alert"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/gateway"
	"github.com/tollgate-gw/tollgate/internal/mockupstream"
	"github.com/tollgate-gw/tollgate/internal/payload"
	"github.com/tollgate-gw/tollgate/internal/telemetry"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// observeConfig: the budget tier is first → second; the premium tier is dear.
const observeConfig = `
providers:
  up: {kind: openai, base_url: MOCK/v1, api_key: k}
models:
  first: {provider: up, upstream: first-up, context_window: 8000, max_output_tokens: 100, price: {input: 1, output: 1}}
  second: {provider: up, upstream: second-up, context_window: 8000, max_output_tokens: 100, price: {input: 1, output: 1}}
  dear: {provider: up, upstream: dear-up, context_window: 8000, max_output_tokens: 100, price: {input: 100, output: 100}}
tiers: {budget: [first, second], standard: [first, second], premium: [dear]}
profiles:
  dev: {default_tier: budget, max_retries: 0}
`

// scrape reads /metrics and returns each sample's value by its name and
// labels, e.g. `tollgate_requests_total{status="200"}` summed over the rest.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, s *stack) scrape {
	s.gw.WaitSettled()
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(s.url, "/v1") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := scrape{}
	for k, v := range fams {
		out[k] = v
	}
	return out
}

// sum adds the samples of a counter or gauge family whose labels include want.
func (sc scrape) sum(name string, want map[string]string) float64 {
	var total float64
	for _, m := range sc[name].GetMetric() {
		if labelsMatch(m.GetLabel(), want) {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// histCount adds the sample counts of a histogram family.
func (sc scrape) histCount(name string) uint64 {
	var n uint64
	for _, m := range sc[name].GetMetric() {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

func labelsMatch(have []*dto.LabelPair, want map[string]string) bool {
	found := 0
	for _, l := range have {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			found++
		}
	}
	return found == len(want)
}

// After known traffic — a plain request, a stream, a fallback and a budget
// rejection — /metrics shows exactly that.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	ts := startTenantStackWith(t, observeConfig, func(o *gateway.Options) { o.ServeMetrics = true })
	team := ts.team(t, &tenant.Team{Name: "obs", Budget: &tenant.Budget{Limit: 5_000_000, Period: tenant.PeriodMonthly}})
	key := ts.key(t, &tenant.Key{TeamID: team.ID, Name: "k"})

	ts.chat(t, key, "auto")
	code, _, _ := ts.post(t, "/v1/chat/completions", `{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		"Authorization", "Bearer "+key)
	if code != 200 {
		t.Fatalf("stream: %d", code)
	}
	ts.mock.AddFault(mockupstream.Rule{Model: "first-up", Fault: "status=500", Times: 1})
	if _, h, _ := ts.chat(t, key, "auto"); h.Get("X-Tollgate-Fallback") != "true" {
		t.Fatal("no fallback")
	}
	// dear: 100 $/M × (prompt + 50) tokens ≈ $0.006 > the $0.005 budget.
	if code, _, _ := ts.chat(t, key, "auto", "X-Tollgate-Tier", "premium"); code != 402 {
		t.Fatalf("budget rejection: %d", code)
	}

	sc := scrapeMetrics(t, ts.stack)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tollgate_requests_total", map[string]string{"team": team.ID, "status": "200"}, 3},
		{"tollgate_requests_total", map[string]string{"team": team.ID, "status": "402"}, 1},
		{"tollgate_requests_total", map[string]string{"model": "second", "status": "200"}, 1},
		{"tollgate_fallbacks_total", map[string]string{"from": "first", "to": "second", "reason": "status_5xx"}, 1},
		{"tollgate_upstream_attempts_total", map[string]string{"deployment": "first", "outcome": "status_5xx"}, 1},
		{"tollgate_upstream_attempts_total", map[string]string{"outcome": "success"}, 3},
		{"tollgate_budget_rejections_total", map[string]string{"team": team.ID}, 1},
		{"tollgate_in_flight_requests", nil, 0},
		{"tollgate_open_streams", nil, 0},
	}
	for _, c := range checks {
		if got := sc.sum(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Every request lands in the duration histogram once; the three served
	// ones carry reported usage.
	if n, total := sc.histCount("tollgate_request_duration_seconds"), sc.sum("tollgate_requests_total", nil); float64(n) != total || n != 4 {
		t.Errorf("duration histogram count %d, requests %v: want both 4", n, total)
	}
	if n := sc.histCount("tollgate_time_to_first_byte_seconds"); n != 3 {
		t.Errorf("ttfb histogram count %d, want 3", n)
	}
	if in := sc.sum("gen_ai_client_token_usage_total", map[string]string{"type": "input"}); in <= 0 {
		t.Error("no input tokens counted")
	}
	if sc.sum("tollgate_budget_spent_usd", map[string]string{"team": team.ID}) <= 0 {
		t.Error("no budget spend gauge")
	}
	for name, fam := range sc {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.HasPrefix(l.GetValue(), "key_") || strings.HasPrefix(l.GetValue(), "req_") {
					t.Errorf("%s has a key or request id in label %s=%s", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// A request that fell back once has a server span with two attempt
// children carrying the GenAI attributes.
func TestTraceOfAFallback(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := startStackWith(t, observeConfig, func(o *gateway.Options) { o.Tracer = telemetry.NewTracer(tp) })
	s.mock.AddFault(mockupstream.Rule{Model: "first-up", Fault: "status=503", Times: 1})
	if code, _, body := s.post(t, "/v1/chat/completions", `{"model":"auto","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	s.gw.WaitSettled() // the request's span ends when it settles
	tp.ForceFlush(context.Background())
	spans := exp.GetSpans()
	var root tracetest.SpanStub
	var attempts []tracetest.SpanStub
	for _, sp := range spans {
		switch sp.SpanKind {
		case trace.SpanKindServer:
			root = sp
		case trace.SpanKindClient:
			attempts = append(attempts, sp)
		}
	}
	if root.Name != "chat auto" || len(attempts) != 2 {
		t.Fatalf("root %q with %d attempts; spans: %v", root.Name, len(attempts), names(spans))
	}
	for i, a := range attempts {
		if a.Parent.SpanID() != root.SpanContext.SpanID() || a.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("attempt %d is not a child of the request span", i)
		}
	}
	if attr(attempts[0], "gen_ai.request.model") != "first-up" || attr(attempts[1], "gen_ai.request.model") != "second-up" ||
		attr(attempts[0], "gen_ai.system") != "openai" {
		t.Errorf("attempt attributes: %v / %v", attempts[0].Attributes, attempts[1].Attributes)
	}
	if attr(root, "gen_ai.response.model") != "second" || attr(root, "gen_ai.request.model") != "auto" ||
		attr(root, "gen_ai.usage.output_tokens") == "" || attr(root, "tollgate.fallback") != "true" {
		t.Errorf("request span attributes: %v", root.Attributes)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// A dead webhook never slows requests: with the receiver blocked, traffic
// keeps flowing and the alert is still visible at GET /admin/alerts.
func TestAlertWithDeadWebhook(t *testing.T) {
	block := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer hook.Close()
	defer close(block) // before hook.Close, which waits for the handler
	rules := config.Alerts{FallbackRate: 0.1, Window: time.Minute, MinRequests: 3, Cooldown: time.Hour,
		Webhooks: []config.Webhook{{URL: hook.URL, Format: config.WebhookSlack}}}
	engine := alert.New(alert.Options{Rules: rules, Logger: discardLogger()})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		engine.Close(ctx)
	}()
	s := startStackWith(t, observeConfig, func(o *gateway.Options) { o.Alerts = engine })
	s.mock.AddFault(mockupstream.Rule{Model: "first-up", Fault: "status=500"})
	body := `{"model":"auto","messages":[{"role":"user","content":"hi"}]}`
	for range 5 {
		if code, _, _ := s.post(t, "/v1/chat/completions", body); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	s.gw.WaitSettled()                    // the alert engine observes requests as they settle
	engine.Evaluate(context.Background()) // fires; its webhook hangs
	for range 20 {
		if code, _, _ := s.post(t, "/v1/chat/completions", body); code != 200 {
			t.Fatalf("status %d while the webhook hangs", code)
		}
	}
	code, _, out := s.do(t, "GET", "/admin/alerts", "")
	var snap alert.Snapshot
	if err := json.Unmarshal(out, &snap); err != nil || code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	if len(snap.Active) != 1 || snap.Active[0].Name != "fallback_rate_high" {
		t.Errorf("active alerts %+v, want fallback_rate_high", snap.Active)
	}
}

// Payloads of an enabled team go to their own sink, redacted; other teams'
// do not, and the main log never holds them.
func TestPayloadLogging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payloads.jsonl")
	var logger *payload.Logger
	ts := startTenantStackWith(t, observeConfig, func(o *gateway.Options) {
		var err error
		logger, err = payload.New(config.PayloadLogging{Teams: []string{"watched"}, Path: path, MaxBytes: 1 << 16,
			MaxFileBytes: 1 << 20}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		o.Payloads = logger
	})
	watched := ts.key(t, &tenant.Key{TeamID: ts.team(t, &tenant.Team{Name: "watched"}).ID, Name: "k"})
	other := ts.key(t, &tenant.Key{TeamID: ts.team(t, &tenant.Team{Name: "other"}).ID, Name: "k"})
	for _, k := range []string{watched, other} {
		code, _, _ := ts.post(t, "/v1/chat/completions",
			`{"model":"auto","messages":[{"role":"user","content":"mail alice@example.com please"}]}`, "Authorization", "Bearer "+k)
		if code != 200 {
			t.Fatal(code)
		}
	}
	ts.post(t, "/v1/chat/completions", `{"model":"auto","stream":true,"messages":[{"role":"user","content":"stream it"}]}`,
		"Authorization", "Bearer "+watched)
	ts.gw.WaitSettled() // payloads are recorded as requests settle
	if err := logger.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d payload lines, want 2 (the watched team's):\n%s", len(lines), data)
	}
	// Requests settle in batches, so the lines need not be in request order.
	plain, stream := lines[0], lines[1]
	if strings.Contains(plain, `"stream":true`) {
		plain, stream = stream, plain
	}
	if strings.Contains(string(data), "alice@example.com") || !strings.Contains(plain, "[REDACTED]") ||
		!strings.Contains(plain, "Mock reply") {
		t.Errorf("non-stream line not redacted or lacks the response: %s", plain)
	}
	if !strings.Contains(stream, "chat.completion.chunk") || !strings.Contains(stream, `"stream":true`) {
		t.Errorf("stream line: %s", stream)
	}
}
