package telemetry

import (
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one gateway's Prometheus metrics, registered on a registry of
// its own so that two gateways in one process (tests, a reload that builds a
// new server) never share or collide on series.
//
// Every label set is a struct type below, so no call site can put a key id,
// a request id or anything a client typed into a label: the values come from
// the configuration (team, model, provider, tier, deployment) or from code
// (status, outcome, reason). Series are never deleted; a deployment or team
// removed by a reload keeps its last values until the process restarts.
//
// Create it with NewMetrics; the zero value is not usable. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	// tollgate_requests_total counts settled client requests.
	requests *family[requestLabels, prometheus.Counter]
	// gen_ai_client_token_usage_total counts tokens the upstreams reported,
	// by type: input (all prompt tokens), output, and cached_input (the part
	// of input served from the provider's prompt cache). Requests without
	// reported usage add nothing here, so "not reported" is never zero.
	tokens *family[tokenLabels, prometheus.Counter]
	// tollgate_requests_usage_unreported_total counts served requests whose
	// upstream reported no usage (a stream cut short): their cost was the
	// reservation and their tokens are unknown.
	usageUnreported *family[modelLabels, prometheus.Counter]
	// tollgate_cost_usd_total sums what requests were charged, in USD.
	cost *family[costLabels, prometheus.Counter]
	// tollgate_request_duration_seconds is the wall time of a request, from
	// arrival to its last byte.
	duration *family[latencyLabels, prometheus.Observer]
	// tollgate_time_to_first_byte_seconds is the time from arrival to the
	// first byte of the response body (the first content chunk of a stream).
	ttfb *family[latencyLabels, prometheus.Observer]
	// tollgate_overhead_seconds is the gateway's own time: the wall time to
	// the response headers less the time waiting on providers and in backoff.
	overhead prometheus.Histogram
	served   index[servedLabels, *servedSeries] // the series above of each team, model, provider, tier and stream

	// tollgate_upstream_attempts_total counts upstream attempts by outcome.
	attempts *family[attemptLabels, prometheus.Counter]
	// tollgate_retries_total counts attempts that were followed by another
	// attempt on the same model, by the failure that caused it.
	retries *family[retryLabels, prometheus.Counter]
	// tollgate_fallbacks_total counts moves from one model of a chain to the
	// next.
	fallbacks *family[fallbackLabels, prometheus.Counter]
	// tollgate_circuit_breaker_state is each deployment's breaker: 0 closed,
	// 1 half-open, 2 open.
	breaker *family[deploymentLabels, prometheus.Gauge]
	// tollgate_rate_limited_total counts requests refused by a rate limit, by
	// the kind of scope that refused (key, team, model) — never the key.
	rateLimited *family[scopeLabels, prometheus.Counter]
	// tollgate_budget_rejections_total counts requests refused with 402
	// because a budget could not cover their reservation.
	budgetRejected *family[teamLabels, prometheus.Counter]
	// tollgate_in_flight_requests is the number of client requests being
	// served.
	inFlight prometheus.Gauge
	// tollgate_open_streams is the number of streaming responses being
	// relayed.
	openStreams prometheus.Gauge
	// tollgate_budget_spent_usd and tollgate_budget_remaining_usd are each
	// team's budget in its current period, as of its last settled request.
	budgetSpent     *family[teamLabels, prometheus.Gauge]
	budgetRemaining *family[teamLabels, prometheus.Gauge]
}

// Label sets. Each struct fixes one family's labels: the `label` tag is the
// label's name and every field is a string. The structs are also the keys of
// the cache of resolved series, which keeps ObserveRequest free of
// allocations once a series exists.
type (
	requestLabels struct {
		Team     string `label:"team"`
		Model    string `label:"model"`
		Provider string `label:"provider"`
		Tier     string `label:"tier"`
		Status   string `label:"status"`
		Endpoint string `label:"endpoint"`
	}
	tokenLabels struct {
		Team     string `label:"team"`
		Model    string `label:"model"`
		Provider string `label:"provider"`
		Tier     string `label:"tier"`
		Type     string `label:"type"`
	}
	costLabels struct {
		Team     string `label:"team"`
		Model    string `label:"model"`
		Provider string `label:"provider"`
		Tier     string `label:"tier"`
	}
	latencyLabels struct {
		Model    string `label:"model"`
		Provider string `label:"provider"`
		Tier     string `label:"tier"`
		Stream   string `label:"stream"`
	}
	modelLabels struct {
		Model string `label:"model"`
	}
	attemptLabels struct {
		Provider   string `label:"provider"`
		Model      string `label:"model"`
		Deployment string `label:"deployment"`
		Outcome    string `label:"outcome"`
	}
	retryLabels struct {
		Provider string `label:"provider"`
		Model    string `label:"model"`
		Reason   string `label:"reason"`
	}
	fallbackLabels struct {
		From   string `label:"from"`
		To     string `label:"to"`
		Reason string `label:"reason"`
	}
	deploymentLabels struct {
		Deployment string `label:"deployment"`
	}
	scopeLabels struct {
		Scope string `label:"scope"`
	}
	teamLabels struct {
		Team string `label:"team"`
	}
)

// Token types of gen_ai_client_token_usage_total, as in the OpenTelemetry
// GenAI conventions' gen_ai.token.type plus the cached share of the input.
const (
	tokenInput       = "input"
	tokenOutput      = "output"
	tokenCachedInput = "cached_input"
)

// latencyBuckets resolve the 500 ms target finely around it and still place
// long generations (minutes) in a bucket.
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .2, .3, .4, .5, .6, .8, 1, 1.5, 2, 3, 5, 10, 30, 60, 120}

// overheadBuckets span the gateway's own time, from 50 µs to 50 ms.
var overheadBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05}

// NewMetrics creates the metrics on a new registry, with the Go runtime and
// process collectors beside them.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Metrics{
		reg: reg,
		requests: counters[requestLabels](reg, "tollgate_requests_total",
			"Settled client requests by team, served model, provider, tier, HTTP status and endpoint."),
		tokens: counters[tokenLabels](reg, "gen_ai_client_token_usage_total",
			"Tokens reported by upstreams, by type (input, output, cached_input). Requests without reported usage add nothing."),
		usageUnreported: counters[modelLabels](reg, "tollgate_requests_usage_unreported_total",
			"Served requests whose upstream reported no token usage."),
		cost: counters[costLabels](reg, "tollgate_cost_usd_total",
			"Cost charged for requests, in US dollars."),
		duration: histograms[latencyLabels](reg, "tollgate_request_duration_seconds",
			"Wall time of a client request, from arrival to its last byte.", latencyBuckets),
		ttfb: histograms[latencyLabels](reg, "tollgate_time_to_first_byte_seconds",
			"Time from a request's arrival to the first byte of its response body.", latencyBuckets),
		overhead: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tollgate_overhead_seconds",
			Help:    "Gateway's own time per request: wall time to the response headers less time waiting on providers and in backoff.",
			Buckets: overheadBuckets,
		})),
		attempts: counters[attemptLabels](reg, "tollgate_upstream_attempts_total",
			"Upstream attempts by outcome (success or the failure reason)."),
		retries: counters[retryLabels](reg, "tollgate_retries_total",
			"Attempts followed by another attempt on the same model, by the failure that caused it."),
		fallbacks: counters[fallbackLabels](reg, "tollgate_fallbacks_total",
			"Moves from one model of a chain to the next."),
		breaker: gauges[deploymentLabels](reg, "tollgate_circuit_breaker_state",
			"Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open."),
		rateLimited: counters[scopeLabels](reg, "tollgate_rate_limited_total",
			"Requests refused by a rate limit, by scope kind (key, team, model)."),
		budgetRejected: counters[teamLabels](reg, "tollgate_budget_rejections_total",
			"Requests refused because a budget could not cover them."),
		inFlight: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_in_flight_requests", Help: "Client requests being served.",
		})),
		openStreams: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_open_streams", Help: "Streaming responses being relayed.",
		})),
		budgetSpent: gauges[teamLabels](reg, "tollgate_budget_spent_usd",
			"Spent in the team's current budget period, in US dollars."),
		budgetRemaining: gauges[teamLabels](reg, "tollgate_budget_remaining_usd",
			"Left in the team's current budget period, in US dollars."),
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry returns the registry the metrics are on, for adding collectors or
// gathering in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one settled request. It is called once per request
// and allocates nothing once the request's series exist.
func (m *Metrics) ObserveRequest(r *Request) {
	team := teamLabel(r.TeamID)
	m.requests.with(requestLabels{team, r.Model, r.Provider, r.Tier, statusLabel(r.Status), r.Endpoint}).Inc()
	s := m.served.get(servedLabels{team, r.Model, r.Provider, r.Tier, r.Stream}, newServedSeries)
	switch {
	case r.UsageReported:
		tl := tokenLabels{team, r.Model, r.Provider, r.Tier, tokenInput}
		seriesOf(&s.tokens[0], m.tokens, tl).Add(float64(r.PromptTokens))
		tl.Type = tokenOutput
		seriesOf(&s.tokens[1], m.tokens, tl).Add(float64(r.CompletionTokens))
		tl.Type = tokenCachedInput
		seriesOf(&s.tokens[2], m.tokens, tl).Add(float64(r.CachedTokens))
	case r.Model != "" && r.Status < 400:
		m.usageUnreported.with(modelLabels{r.Model}).Inc()
	}
	if r.CostUSD > 0 {
		seriesOf(&s.cost, m.cost, costLabels{team, r.Model, r.Provider, r.Tier}).Add(r.CostUSD)
	}
	lat := latencyLabels{r.Model, r.Provider, r.Tier, strconv.FormatBool(r.Stream)}
	seriesOf(&s.duration, m.duration, lat).Observe(r.Latency.Seconds())
	if r.TTFB > 0 {
		seriesOf(&s.ttfb, m.ttfb, lat).Observe(r.TTFB.Seconds())
	}
	if r.Overhead > 0 {
		m.overhead.Observe(r.Overhead.Seconds())
	}
}

// servedLabels are what a settled request's series have in common but its
// status and endpoint.
type servedLabels struct {
	team, model, provider, tier string
	stream                      bool
}

// servedSeries holds the series of one servedLabels, so a request finds
// them with one lookup instead of one per family (six, each hashing four
// or five strings under a read lock). Each is resolved through its family
// on first use, so a series appears on /metrics when it first has a
// value, as before.
type servedSeries struct {
	tokens         [3]atomic.Pointer[prometheus.Counter] // input, output, cached input
	cost           atomic.Pointer[prometheus.Counter]
	duration, ttfb atomic.Pointer[prometheus.Observer]
}

// seriesOf returns the series *p holds, resolving it in f with l the first
// time. Two first uses at once both resolve it, to the same series.
func seriesOf[L comparable, M any](p *atomic.Pointer[M], f *family[L, M], l L) M {
	if s := p.Load(); s != nil {
		return *s
	}
	s := f.with(l)
	p.Store(&s)
	return s
}

func newServedSeries(servedLabels) *servedSeries { return &servedSeries{} }

// ObserveAttempt records one upstream attempt. outcome is "success" or the
// failure's reason ("timeout", "status_5xx", "status_429", "status_4xx",
// "transport", "canceled", "circuit_open"). retry reports that the gateway
// tried the same model again after this attempt; outcome is then also
// counted as the reason in tollgate_retries_total.
func (m *Metrics) ObserveAttempt(provider, model, deployment, outcome string, retry bool) {
	m.attempts.with(attemptLabels{provider, model, deployment, outcome}).Inc()
	if retry {
		m.retries.with(retryLabels{provider, model, outcome}).Inc()
	}
}

// ObserveFallback records a move from fromModel to toModel in a chain, for
// reason (the failure of fromModel's last attempt, or "context_window").
func (m *Metrics) ObserveFallback(fromModel, toModel, reason string) {
	m.fallbacks.with(fallbackLabels{fromModel, toModel, reason}).Inc()
}

// SetBreakerState records deployment's breaker state: 0 closed, 1 half-open,
// 2 open.
func (m *Metrics) SetBreakerState(deployment string, state int) {
	m.breaker.with(deploymentLabels{deployment}).Set(float64(state))
}

// RateLimited counts a request refused by the rate limit of a scope of kind
// scopeKind: "key", "team" or "model". It is the kind, never the key.
func (m *Metrics) RateLimited(scopeKind string) {
	m.rateLimited.with(scopeLabels{scopeKind}).Inc()
}

// BudgetRejected counts a request of team refused for its budget; "" is the
// master key.
func (m *Metrics) BudgetRejected(team string) {
	m.budgetRejected.with(teamLabels{teamLabel(team)}).Inc()
}

// InFlight adds delta (+1 on arrival, -1 when the response is done) to the
// requests in flight.
func (m *Metrics) InFlight(delta int) { m.inFlight.Add(float64(delta)) }

// OpenStreams adds delta (+1 when a stream is committed, -1 when it ends) to
// the streams being relayed.
func (m *Metrics) OpenStreams(delta int) { m.openStreams.Add(float64(delta)) }

// SetBudget records team's budget for its current period, in USD. It is
// called after every settle for the team.
func (m *Metrics) SetBudget(team string, spentUSD, remainingUSD float64) {
	l := teamLabels{teamLabel(team)}
	m.budgetSpent.with(l).Set(spentUSD)
	m.budgetRemaining.with(l).Set(remainingUSD)
}

// teamLabel names the team of a request: its id, or "master" for the master
// key, which has none.
func teamLabel(team string) string {
	if team == "" {
		return "master"
	}
	return team
}

// statusLabels holds the label of every status code from 100 to 599, so the
// hot path does not format one. They are made on first use rather than at
// package init, which every process importing telemetry (the gateway's
// start included) would pay for.
var statusLabels = sync.OnceValue(func() []string {
	s := make([]string, 500)
	for i := range s {
		s[i] = strconv.Itoa(100 + i)
	}
	return s
})

func statusLabel(code int) string {
	if code >= 100 && code < 600 {
		return statusLabels()[code-100]
	}
	return strconv.Itoa(code)
}

// family is a metric vector whose label set is the struct type L, with a
// cache from label values to resolved series.
type family[L comparable, M any] struct {
	vec    interface{ WithLabelValues(...string) M }
	series index[L, M]
}

func (f *family[L, M]) with(l L) M { return f.series.get(l, f.resolve) }

func (f *family[L, M]) resolve(l L) M { return f.vec.WithLabelValues(labelValues(l)...) }

// index is a map filled on first use, safe for concurrent use: a hit is one
// lookup under a read lock and no allocation.
type index[K comparable, V any] struct {
	mu sync.RWMutex // guards m
	m  map[K]V
}

// get returns the value of k, made by newV(k) the first time.
func (x *index[K, V]) get(k K, newV func(K) V) V {
	x.mu.RLock()
	v, ok := x.m[k]
	x.mu.RUnlock()
	if ok {
		return v
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if v, ok := x.m[k]; ok {
		return v
	}
	if x.m == nil {
		x.m = map[K]V{}
	}
	v = newV(k)
	x.m[k] = v
	return v
}

func counters[L comparable](reg prometheus.Registerer, name, help string) *family[L, prometheus.Counter] {
	v := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labelNames[L]()))
	return &family[L, prometheus.Counter]{vec: v}
}

func gauges[L comparable](reg prometheus.Registerer, name, help string) *family[L, prometheus.Gauge] {
	v := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labelNames[L]()))
	return &family[L, prometheus.Gauge]{vec: v}
}

func histograms[L comparable](reg prometheus.Registerer, name, help string, buckets []float64) *family[L, prometheus.Observer] {
	v := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labelNames[L]()))
	return &family[L, prometheus.Observer]{vec: v}
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	reg.MustRegister(c)
	return c
}

// labelNames reads the label names of the label struct L from its `label`
// tags. A field that is not a tagged string is a programming error, caught
// by NewMetrics in every test.
func labelNames[L any]() []string {
	t := reflect.TypeFor[L]()
	names := make([]string, t.NumField())
	for i := range names {
		f := t.Field(i)
		name := f.Tag.Get("label")
		if name == "" || f.Type.Kind() != reflect.String {
			panic(fmt.Sprintf("telemetry: %s.%s is not a tagged string label", t.Name(), f.Name))
		}
		names[i] = name
	}
	return names
}

// labelValues lists the fields of a label struct in order. It runs only when
// a series is first resolved.
func labelValues(l any) []string {
	v := reflect.ValueOf(l)
	values := make([]string, v.NumField())
	for i := range values {
		values[i] = v.Field(i).String()
	}
	return values
}
