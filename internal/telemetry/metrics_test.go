package telemetry

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// servedStream is a streamed chat request of team t1 that was served with
// reported usage. Its key id, request id and requested model must never
// reach a label.
func servedStream() *Request {
	return &Request{
		ID: "req-7f3a9c", Endpoint: "chat.completions", Tier: "fast", TeamID: "t1", KeyID: "key-9b2e41",
		RequestedModel: "what the client typed", Model: "gpt-4o", Provider: "openai", Deployment: "oa-east",
		Stream: true, Attempts: 1, Status: 200,
		PromptTokens: 120, CompletionTokens: 30, CachedTokens: 100, UsageReported: true,
		CostUSD: 0.125, Latency: 450 * time.Millisecond, TTFB: 120 * time.Millisecond, Overhead: 300 * time.Microsecond,
	}
}

func TestObserveRequest(t *testing.T) {
	m := NewMetrics()
	m.ObserveRequest(servedStream())
	m.ObserveRequest(servedStream())
	cut := servedStream() // a stream cut before its usage: charged the reservation
	cut.UsageReported, cut.PromptTokens, cut.CompletionTokens, cut.CachedTokens = false, 0, 0, 0
	cut.CostUSD, cut.CostEstimated = 0.5, true
	m.ObserveRequest(cut)
	m.ObserveRequest(&Request{ // refused before any upstream, by the master key
		Endpoint: "embeddings", Tier: "cheap", Status: 429, ErrorCode: "rate_limited",
		Latency: 2 * time.Millisecond, Overhead: 2 * time.Millisecond,
	})
	m.ObserveRequest(&Request{ // every attempt failed: the last model tried, no usage
		Endpoint: "chat.completions", Tier: "fast", TeamID: "t2", Model: "claude", Provider: "anthropic",
		Status: 502, ErrorCode: "upstream_error", Latency: 3 * time.Second,
	})

	gatherAndCompare(t, m, `
# HELP tollgate_requests_total Settled client requests by team, served model, provider, tier, HTTP status and endpoint.
# TYPE tollgate_requests_total counter
tollgate_requests_total{endpoint="chat.completions",model="gpt-4o",provider="openai",status="200",team="t1",tier="fast"} 3
tollgate_requests_total{endpoint="embeddings",model="",provider="",status="429",team="master",tier="cheap"} 1
tollgate_requests_total{endpoint="chat.completions",model="claude",provider="anthropic",status="502",team="t2",tier="fast"} 1
# HELP gen_ai_client_token_usage_total Tokens reported by upstreams, by type (input, output, cached_input). Requests without reported usage add nothing.
# TYPE gen_ai_client_token_usage_total counter
gen_ai_client_token_usage_total{model="gpt-4o",provider="openai",team="t1",tier="fast",type="input"} 240
gen_ai_client_token_usage_total{model="gpt-4o",provider="openai",team="t1",tier="fast",type="output"} 60
gen_ai_client_token_usage_total{model="gpt-4o",provider="openai",team="t1",tier="fast",type="cached_input"} 200
# HELP tollgate_requests_usage_unreported_total Served requests whose upstream reported no token usage.
# TYPE tollgate_requests_usage_unreported_total counter
tollgate_requests_usage_unreported_total{model="gpt-4o"} 1
# HELP tollgate_cost_usd_total Cost charged for requests, in US dollars.
# TYPE tollgate_cost_usd_total counter
tollgate_cost_usd_total{model="gpt-4o",provider="openai",team="t1",tier="fast"} 0.75
`, "tollgate_requests_total", "gen_ai_client_token_usage_total", "tollgate_requests_usage_unreported_total", "tollgate_cost_usd_total")

	for _, tc := range []struct {
		name        string
		labels      map[string]string
		count       uint64
		sum         float64
		bucketLE    float64 // an upper bound whose cumulative count is checked
		bucketCount uint64
	}{
		{"tollgate_request_duration_seconds", map[string]string{"model": "gpt-4o", "provider": "openai", "tier": "fast", "stream": "true"}, 3, 1.35, 0.5, 3},
		{"tollgate_request_duration_seconds", map[string]string{"model": "claude", "provider": "anthropic", "tier": "fast", "stream": "false"}, 1, 3, 2, 0},
		{"tollgate_request_duration_seconds", map[string]string{"model": "", "provider": "", "tier": "cheap", "stream": "false"}, 1, 0.002, 0.005, 1},
		{"tollgate_time_to_first_byte_seconds", map[string]string{"model": "gpt-4o", "provider": "openai", "tier": "fast", "stream": "true"}, 3, 0.36, 0.1, 0},
		{"tollgate_overhead_seconds", nil, 4, 0.0029, 0.0005, 3},
	} {
		h := histogram(t, m, tc.name, tc.labels)
		if h.GetSampleCount() != tc.count || !near(h.GetSampleSum(), tc.sum) {
			t.Errorf("%s%v: count %d sum %g, want %d and %g", tc.name, tc.labels, h.GetSampleCount(), h.GetSampleSum(), tc.count, tc.sum)
		}
		if got := bucket(h, tc.bucketLE); got != tc.bucketCount {
			t.Errorf("%s%v: bucket le=%g holds %d, want %d", tc.name, tc.labels, tc.bucketLE, got, tc.bucketCount)
		}
	}
	// Requests that never got a first byte have no TTFB sample.
	if n, err := testutil.GatherAndCount(m.Registry(), "tollgate_time_to_first_byte_seconds"); err != nil || n != 1 {
		t.Errorf("tollgate_time_to_first_byte_seconds has %d series (err %v), want 1", n, err)
	}
}

// TestTokenUsageOnlyWhenReported checks that a request without reported
// usage leaves the token counters absent, not at zero.
func TestTokenUsageOnlyWhenReported(t *testing.T) {
	m := NewMetrics()
	r := servedStream()
	r.UsageReported = false
	m.ObserveRequest(r)
	if n, err := testutil.GatherAndCount(m.Registry(), "gen_ai_client_token_usage_total"); err != nil || n != 0 {
		t.Errorf("gen_ai_client_token_usage_total has %d series after an unreported request (err %v), want 0", n, err)
	}
	if got := testutil.ToFloat64(m.usageUnreported.with(modelLabels{"gpt-4o"})); got != 1 {
		t.Errorf("tollgate_requests_usage_unreported_total{model=gpt-4o} = %g, want 1", got)
	}

	// Reported zero tokens are zero, and counted as such.
	r = servedStream()
	r.PromptTokens, r.CompletionTokens, r.CachedTokens = 0, 0, 0
	m.ObserveRequest(r)
	if n, _ := testutil.GatherAndCount(m.Registry(), "gen_ai_client_token_usage_total"); n != 3 {
		t.Errorf("gen_ai_client_token_usage_total has %d series after a reported zero usage, want 3", n)
	}
}

func TestAttemptsAndControlMetrics(t *testing.T) {
	m := NewMetrics()
	m.ObserveAttempt("openai", "gpt-4o", "oa-east", "status_5xx", true)
	m.ObserveAttempt("openai", "gpt-4o", "oa-west", "timeout", false)
	m.ObserveAttempt("anthropic", "claude", "an-1", "success", false)
	m.ObserveFallback("gpt-4o", "claude", "timeout")
	m.SetBreakerState("oa-east", 2)
	m.SetBreakerState("oa-west", 1)
	m.SetBreakerState("oa-west", 0)
	m.RateLimited("key")
	m.RateLimited("key")
	m.RateLimited("model")
	m.BudgetRejected("t1")
	m.BudgetRejected("")
	m.InFlight(1)
	m.InFlight(1)
	m.InFlight(-1)
	m.OpenStreams(1)
	m.SetBudget("t1", 12.5, 87.5)
	m.SetBudget("t1", 13, 87)

	gatherAndCompare(t, m, `
# HELP tollgate_upstream_attempts_total Upstream attempts by outcome (success or the failure reason).
# TYPE tollgate_upstream_attempts_total counter
tollgate_upstream_attempts_total{deployment="oa-east",model="gpt-4o",outcome="status_5xx",provider="openai"} 1
tollgate_upstream_attempts_total{deployment="oa-west",model="gpt-4o",outcome="timeout",provider="openai"} 1
tollgate_upstream_attempts_total{deployment="an-1",model="claude",outcome="success",provider="anthropic"} 1
# HELP tollgate_retries_total Attempts followed by another attempt on the same model, by the failure that caused it.
# TYPE tollgate_retries_total counter
tollgate_retries_total{model="gpt-4o",provider="openai",reason="status_5xx"} 1
# HELP tollgate_fallbacks_total Moves from one model of a chain to the next.
# TYPE tollgate_fallbacks_total counter
tollgate_fallbacks_total{from="gpt-4o",reason="timeout",to="claude"} 1
# HELP tollgate_circuit_breaker_state Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open.
# TYPE tollgate_circuit_breaker_state gauge
tollgate_circuit_breaker_state{deployment="oa-east"} 2
tollgate_circuit_breaker_state{deployment="oa-west"} 0
# HELP tollgate_rate_limited_total Requests refused by a rate limit, by scope kind (key, team, model).
# TYPE tollgate_rate_limited_total counter
tollgate_rate_limited_total{scope="key"} 2
tollgate_rate_limited_total{scope="model"} 1
# HELP tollgate_budget_rejections_total Requests refused because a budget could not cover them.
# TYPE tollgate_budget_rejections_total counter
tollgate_budget_rejections_total{team="t1"} 1
tollgate_budget_rejections_total{team="master"} 1
# HELP tollgate_in_flight_requests Client requests being served.
# TYPE tollgate_in_flight_requests gauge
tollgate_in_flight_requests 1
# HELP tollgate_open_streams Streaming responses being relayed.
# TYPE tollgate_open_streams gauge
tollgate_open_streams 1
# HELP tollgate_budget_spent_usd Spent in the team's current budget period, in US dollars.
# TYPE tollgate_budget_spent_usd gauge
tollgate_budget_spent_usd{team="t1"} 13
# HELP tollgate_budget_remaining_usd Left in the team's current budget period, in US dollars.
# TYPE tollgate_budget_remaining_usd gauge
tollgate_budget_remaining_usd{team="t1"} 87
`, "tollgate_upstream_attempts_total", "tollgate_retries_total", "tollgate_fallbacks_total",
		"tollgate_circuit_breaker_state", "tollgate_rate_limited_total", "tollgate_budget_rejections_total",
		"tollgate_in_flight_requests", "tollgate_open_streams", "tollgate_budget_spent_usd", "tollgate_budget_remaining_usd")
}

// TestNoIdentifierInLabels checks the cardinality rule: key ids, request ids
// and the client's own text never become label values.
func TestNoIdentifierInLabels(t *testing.T) {
	m := NewMetrics()
	r := servedStream()
	m.ObserveRequest(r)
	fail := servedStream()
	fail.Status, fail.ErrorCode, fail.UsageReported = 503, "upstream_error", false
	m.ObserveRequest(fail)
	m.BudgetRejected(r.TeamID)
	m.SetBudget(r.TeamID, 1, 2)

	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	seen := 0
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				seen++
				for _, secret := range []string{r.KeyID, r.ID, r.RequestedModel} {
					if strings.Contains(l.GetValue(), secret) {
						t.Errorf("%s has label %s=%q, which holds %q", f.GetName(), l.GetName(), l.GetValue(), secret)
					}
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no labels gathered; the check checked nothing")
	}
}

// TestMetricsPerInstance checks that two gateways' metrics do not share
// series (and that creating a second one does not panic on registration).
func TestMetricsPerInstance(t *testing.T) {
	a, b := NewMetrics(), NewMetrics()
	a.RateLimited("team")
	if got := testutil.ToFloat64(b.rateLimited.with(scopeLabels{"team"})); got != 0 {
		t.Errorf("second instance counts %g rate-limited requests of the first, want 0", got)
	}
}

func TestHandler(t *testing.T) {
	m := NewMetrics()
	m.ObserveRequest(servedStream())
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %q, want 200 text/plain", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, line := range []string{
		`tollgate_requests_total{endpoint="chat.completions",model="gpt-4o",provider="openai",status="200",team="t1",tier="fast"} 1`,
		`tollgate_request_duration_seconds_bucket{model="gpt-4o",provider="openai",stream="true",tier="fast",le="0.5"} 1`,
		`tollgate_request_duration_seconds_bucket{model="gpt-4o",provider="openai",stream="true",tier="fast",le="0.4"} 0`,
		`tollgate_overhead_seconds_count 1`,
		`tollgate_in_flight_requests 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), line+"\n") && !strings.Contains(string(body), "\n"+line) {
			t.Errorf("GET /metrics lacks the line %q", line)
		}
	}
}

func TestObserveRequestConcurrent(t *testing.T) {
	m := NewMetrics()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				m.ObserveRequest(servedStream())
			}
		})
	}
	wg.Wait()
	got := testutil.ToFloat64(m.requests.with(requestLabels{"t1", "gpt-4o", "openai", "fast", "200", "chat.completions"}))
	if got != 800 {
		t.Errorf("tollgate_requests_total after 800 concurrent observations = %g, want 800", got)
	}
}

func TestLabelNames(t *testing.T) {
	if diff := cmp.Diff(labelNames[requestLabels](), []string{"team", "model", "provider", "tier", "status", "endpoint"}); diff != "" {
		t.Errorf("labelNames[requestLabels] (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(labelValues(fallbackLabels{"a", "b", "timeout"}), []string{"a", "b", "timeout"}); diff != "" {
		t.Errorf("labelValues(fallbackLabels) (-got +want):\n%s", diff)
	}
	defer func() {
		if recover() == nil {
			t.Error("labelNames of a struct with an untagged field did not panic")
		}
	}()
	labelNames[struct{ Team string }]()
}

func TestStatusLabel(t *testing.T) {
	for code, want := range map[int]string{200: "200", 499: "499", 599: "599", 0: "0", 600: "600"} {
		if got := statusLabel(code); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", code, got, want)
		}
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := NewMetrics()
	r := servedStream()
	m.ObserveRequest(r)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest(r)
	}
}

func BenchmarkObserveRequestParallel(b *testing.B) {
	m := NewMetrics()
	r := servedStream()
	m.ObserveRequest(r)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(r)
		}
	})
}

func BenchmarkObserveAttempt(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveAttempt("openai", "gpt-4o", "oa-east", "success", false)
	}
}

func gatherAndCompare(t *testing.T, m *Metrics, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// histogram finds the histogram series name{labels}.
func histogram(t *testing.T, m *Metrics, name string, labels map[string]string) *dto.Histogram {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range metric.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, labels) {
				return metric.GetHistogram()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return nil
}

// bucket is the cumulative count of h's bucket with upper bound le.
func bucket(h *dto.Histogram, le float64) uint64 {
	for _, b := range h.GetBucket() {
		if near(b.GetUpperBound(), le) {
			return b.GetCumulativeCount()
		}
	}
	return 1<<64 - 1
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}
