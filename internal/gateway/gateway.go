// Package gateway is the HTTP server and the request pipeline: ingress →
// authenticate → plan → attempt loop → relay → settle. It wires the other
// packages together; they know nothing of HTTP.
package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/alert"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/limit"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/mockupstream"
	"github.com/tollgate-gw/tollgate/internal/payload"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/telemetry"
	"github.com/tollgate-gw/tollgate/internal/tenant"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// Options are the run-time settings that do not come from the YAML file.
type Options struct {
	// Profile names the active profile; empty means the file's default.
	Profile string
	// MasterKey is the admin credential, also accepted as a client key.
	MasterKey string
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Client sends upstream requests; nil means provider.NewHTTPClient().
	Client *http.Client
	// HTTP2Client sends them to providers with protocol http2; nil means
	// provider.NewHTTP2Client(), made when such a provider is configured.
	HTTP2Client *http.Client
	// Rand drives weighted balancing; nil means math/rand/v2. Tests seed it.
	Rand func() float64
	// Tenants authenticates virtual keys; nil accepts only the master key.
	Tenants *tenant.Service
	// Ledger receives one record per request; nil keeps none.
	Ledger Ledger
	// Spend loads what a team (keyID "") or a key has spent since a time,
	// the base a budget period starts from; nil starts budgets at zero.
	Spend func(ctx context.Context, teamID, keyID string, since time.Time) (meter.Nanos, error)
	// Admin serves the /admin/ routes other than explain; nil answers 404.
	Admin AdminHandler
	// Now is the clock for limits and budgets; nil means time.Now.
	Now func() time.Time
	// Env looks up teams' allocated provider keys; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Metrics records Prometheus metrics; nil means a private registry
	// nobody scrapes. Serve Metrics.Handler() to expose them.
	Metrics *telemetry.Metrics
	// Tracer makes the request and attempt spans; nil traces nothing.
	Tracer *telemetry.Tracer
	// Alerts is told every settled request and breaker change; nil is none.
	Alerts AlertEngine
	// ServeMetrics mounts GET /metrics on the API port.
	ServeMetrics bool
	// Payloads logs request and response bodies of the teams it is enabled
	// for; nil logs none.
	Payloads *payload.Logger
}

// AlertEngine evaluates alert rules; Observe is called on every request and
// must not block.
type AlertEngine interface {
	Observe(r meter.Record)
	BreakerChanged(deployment, state string)
	Alerts() alert.Snapshot
}

// Ledger is where settled requests go. Append must not block for long: it
// is called once per request, after the response.
type Ledger interface {
	Append(ctx context.Context, r meter.Record) error
}

// AdminHandler serves /admin/ for an authenticated actor. It is a net/http
// handler: admin calls are rare, and the admin API also runs in-process for
// the CLI.
type AdminHandler interface {
	ServeAdmin(w http.ResponseWriter, r *http.Request, a admin.Actor) error
}

// Gateway serves the OpenAI-compatible API. Create it with New, serve it
// with Server, and Close it to stop what it started.
type Gateway struct {
	opts       Options
	masterKey  []byte
	log        *slog.Logger
	client     *http.Client
	client2    *http.Client // for providers with protocol http2; made on first need
	state      atomic.Pointer[snapshot]
	draining   atomic.Bool
	health     *health // set by the first Reload, before any request
	metrics    *telemetry.Metrics
	rates      *limit.RateLimiter
	budgets    *limit.Budgets
	provKeys   *providerKeys
	departures *departures
	settler    *settler
	after      *afterResponse // settles on the connection's goroutine once the response is out
	requests   atomic.Uint64  // API calls so far, for trimWhenIdle
	// metricsHandler serves /metrics on the API port (ServeMetrics).
	metricsHandler fasthttp.RequestHandler
	// softWarned remembers "team@period" once its soft threshold was logged.
	softWarned sync.Map

	closeOnce sync.Once
	mu        sync.Mutex // guards mocks and serializes Reload
	mocks     map[string]mockServer
	bg        sync.WaitGroup // background work New starts; Close waits for it
	// unsettled counts requests received and not yet settled; Close waits
	// for none.
	unsettled atomic.Int64
}

// snapshot is everything a request reads from configuration. A request loads
// it once and uses it to the end, so a reload never serves half a config:
// requests in flight finish on the snapshot they started with.
type snapshot struct {
	cfg        *config.Config
	prof       *config.Profile
	providers  map[string]provider.Provider
	modelsBody []byte
	// modelScopes names each model's rate-limit scope ("model:<name>"),
	// made once per configuration rather than on every request.
	modelScopes map[*config.Model]string
	// tokenizers holds each model's tokenizer, chosen from its provider's
	// kind and upstream name once per configuration rather than on every
	// request (lower-casing and prefix tests: 0.5 µs a request).
	tokenizers map[*config.Model]*meter.Tokenizer
}

// tokenizer returns m's tokenizer (meter.TokenizerFor).
func (st *snapshot) tokenizer(m *config.Model) *meter.Tokenizer {
	if t, ok := st.tokenizers[m]; ok {
		return t
	}
	return meter.TokenizerFor(st.cfg.Providers[m.Provider].Kind, m.Upstream)
}

// mockServer is an in-process mock upstream, kept across reloads so that
// requests in flight on an old snapshot can still reach it.
type mockServer struct {
	url  string
	stop func(context.Context) error
}

// New builds a gateway for cfg. It starts an in-process mock upstream for each
// mock provider without a base URL.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.MasterKey == "" {
		return nil, errors.New("no master key: set TOLLGATE_MASTER_KEY")
	}
	g := &Gateway{opts: opts, masterKey: []byte(opts.MasterKey), log: opts.Logger, client: opts.Client,
		client2: opts.HTTP2Client, mocks: map[string]mockServer{}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.client == nil {
		g.client = provider.NewHTTPClient()
	}
	if g.opts.Now == nil {
		g.opts.Now = time.Now
	}
	if g.opts.Env == nil {
		g.opts.Env = os.LookupEnv
	}
	g.metrics = g.opts.Metrics
	if g.metrics == nil {
		g.metrics = telemetry.NewMetrics()
	}
	g.rates = limit.NewRateLimiter(g.opts.Now, maxRateScopes)
	g.budgets = limit.NewBudgets(g.opts.Now, g.loadSpend)
	g.provKeys = &providerKeys{lookup: g.opts.Env, env: map[string]string{}}
	g.metricsHandler = fasthttpadaptor.NewFastHTTPHandler(g.metrics.Handler())
	g.departures = newDepartures()
	g.bg.Go(g.departures.run)
	g.settler = newSettler(g.departures.stop)
	g.after = newAfterResponse()
	g.bg.Go(func() { g.settler.run(g.settleFunc) })
	if err := g.Reload(cfg); err != nil {
		g.Close(context.Background())
		return nil, err
	}
	// The tokenizer's vocabulary (some 15 MB) is not loaded here: admission
	// works from a bound on the prompt's length and the context-window check
	// from a byte-length shortcut, so most deployments never count a token.
	// The first request that must count loads it (about 80 ms, once).
	g.bg.Go(g.trimWhenIdle)
	return g, nil
}

// maxRateScopes bounds the rate limiter's memory: keys, teams and models.
const maxRateScopes = 100_000

// loadSpend is the budgets' loader: what a "team:ID" or "key:ID" scope spent
// since the start of its period, from the ledger.
func (g *Gateway) loadSpend(ctx context.Context, scope string, since time.Time) (meter.Nanos, error) {
	if g.opts.Spend == nil {
		return 0, nil
	}
	kind, id, _ := strings.Cut(scope, ":")
	if kind == "key" {
		return g.opts.Spend(ctx, "", id, since)
	}
	return g.opts.Spend(ctx, id, "", since)
}

// Reload swaps in a new configuration atomically. On error the old one keeps
// serving. New requests see the new one at once; requests in flight finish
// on the one they started with.
func (g *Gateway) Reload(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	name := g.opts.Profile
	if name == "" {
		name = cfg.DefaultProfile
	}
	prof, ok := cfg.Profile(name)
	if !ok {
		return fmt.Errorf("profile %q does not exist; use dev, staging or production", name)
	}
	st := &snapshot{cfg: cfg, prof: prof, providers: make(map[string]provider.Provider, len(cfg.Providers)),
		modelsBody: modelList(cfg), modelScopes: make(map[*config.Model]string, len(cfg.Models)),
		tokenizers: make(map[*config.Model]*meter.Tokenizer, len(cfg.Models))}
	for _, m := range cfg.Models {
		st.modelScopes[m] = "model:" + m.Name
		if p := cfg.Providers[m.Provider]; p != nil {
			st.tokenizers[m] = meter.TokenizerFor(p.Kind, m.Upstream)
		}
	}
	for _, p := range cfg.Providers {
		ad, err := g.adapterLocked(p)
		if err != nil {
			return err
		}
		st.providers[p.Name] = ad
	}
	if g.health == nil {
		g.health = newHealth(prof, g.log, g.opts.Rand, g.breakerChanged)
	} else {
		g.health.configure(prof)
	}
	g.state.Store(st)
	return nil
}

func (g *Gateway) adapterLocked(p *config.Provider) (provider.Provider, error) {
	acct := provider.Account{Name: p.Name, BaseURL: p.BaseURL, Keys: p.APIKeys, Headers: p.Headers, KeyCooldown: p.KeyCooldown}
	client := g.client
	if p.Protocol == config.ProtocolHTTP2 {
		if g.client2 == nil {
			g.client2 = provider.NewHTTP2Client()
		}
		client = g.client2
	}
	switch p.Kind {
	case config.KindOpenAI:
		return provider.NewOpenAI(acct, client), nil
	case config.KindAnthropic:
		return provider.NewAnthropic(acct, client), nil
	case config.KindMock:
		if acct.BaseURL == "" {
			m, ok := g.mocks[p.Name]
			if !ok {
				url, stop, err := mockupstream.Listen("127.0.0.1:0", mockupstream.Options{})
				if err != nil {
					return nil, fmt.Errorf("start mock provider %q: %w", p.Name, err)
				}
				m = mockServer{url: url, stop: stop}
				g.mocks[p.Name] = m
			}
			acct.BaseURL = m.url + "/v1"
		}
		return provider.NewOpenAI(acct, client), nil
	}
	return nil, fmt.Errorf("provider %q: unknown kind %q", p.Name, p.Kind)
}

// Logger returns the gateway's logger.
func (g *Gateway) Logger() *slog.Logger { return g.log }

// Profile returns the active profile.
func (g *Gateway) Profile() *config.Profile { return g.state.Load().prof }

// Drain makes /readyz fail so load balancers stop sending new requests.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Close stops what New started.
func (g *Gateway) Close(ctx context.Context) error {
	g.settleLeft()
	g.WaitSettled()
	g.closeOnce.Do(func() { close(g.departures.stop) })
	g.bg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for name, m := range g.mocks {
		errs = append(errs, m.stop(ctx))
		delete(g.mocks, name)
	}
	return errors.Join(errs...)
}

// breakerChanged publishes a breaker transition to metrics and alerts.
func (g *Gateway) breakerChanged(id string, to route.State) {
	g.metrics.SetBreakerState(id, breakerGauge(to))
	if g.opts.Alerts != nil {
		g.opts.Alerts.BreakerChanged(id, to.String())
	}
}

func breakerGauge(s route.State) int {
	switch s {
	case route.HalfOpen:
		return 1
	case route.Open:
		return 2
	}
	return 0
}

func (g *Gateway) isMaster(key []byte) bool {
	return subtle.ConstantTimeCompare(key, g.masterKey) == 1
}

func (g *Gateway) models(c *call, _ caller) error {
	writeJSON(c.fc, http.StatusOK, g.state.Load().modelsBody)
	return nil
}

func (g *Gateway) model(c *call, _ caller) error {
	name := strings.TrimPrefix(string(c.fc.Path()), "/v1/models/")
	st := g.state.Load()
	if _, ok := st.cfg.Chain(name, st.prof.DefaultTier); !ok {
		return &wire.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found",
			Param: "model", Message: fmt.Sprintf("model %q does not exist", name)}
	}
	b, _ := json.Marshal(modelEntry{ID: name, Object: "model", OwnedBy: "tollgate"})
	writeJSON(c.fc, http.StatusOK, b)
	return nil
}

type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// modelList renders GET /v1/models once: the configuration is immutable.
func modelList(cfg *config.Config) []byte {
	names := cfg.ClientModels()
	list := struct {
		Object string       `json:"object"`
		Data   []modelEntry `json:"data"`
	}{Object: "list", Data: make([]modelEntry, 0, len(names))}
	for _, n := range names {
		list.Data = append(list.Data, modelEntry{ID: n, Object: "model", OwnedBy: "tollgate"})
	}
	b, _ := json.Marshal(list)
	return b
}
