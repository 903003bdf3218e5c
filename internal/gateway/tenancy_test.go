package gateway_test

import (
	"context"
	"errors"
	"github.com/valyala/fasthttp"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-gw/tollgate/internal/gateway"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/mockupstream"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/telemetry"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// tenantConfig prices "cheap" at $1 per million input and output tokens,
// and "pricey" at $10; the premium tier is pricey, budget and standard cheap.
const tenantConfig = `
providers:
  up: {kind: openai, base_url: MOCK/v1, api_key: shared-key}
models:
  cheap: {provider: up, upstream: cheap-up, context_window: 8000, max_output_tokens: 100, price: {input: 1, output: 1}}
  pricey: {provider: up, upstream: pricey-up, context_window: 8000, max_output_tokens: 100, price: {input: 10, output: 10}}
tiers: {budget: [cheap], standard: [cheap], premium: [pricey]}
profiles:
  dev: {default_tier: standard, max_retries: 0}
`

// tenantStack is a gateway with a real SQLite store, the tenant service and
// the ledger writer, on a clock the test moves.
type tenantStack struct {
	*stack
	st      *store.SQLite
	svc     *tenant.Service
	ledger  *meter.Writer
	clock   *fakeClock
	handler http.Handler
	hits    atomic.Int64 // requests that reached the gateway
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startTenantStack(t testing.TB, opts ...func(*gateway.Options)) *tenantStack {
	return startTenantStackWith(t, tenantConfig, opts...)
}

// startTenantStackWith is startTenantStack on another configuration.
func startTenantStackWith(t testing.TB, yaml string, opts ...func(*gateway.Options)) *tenantStack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "tollgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now().UTC()}
	ts := &tenantStack{st: st, clock: clock, svc: tenant.NewService(st, clock.Now)}
	ts.ledger, err = meter.NewWriter(st, meter.WriterOptions{Journal: filepath.Join(dir, "ledger.journal")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.ledger.Close(ctx); st.Close() })
	mock := mockupstream.New(mockupstream.Options{})
	up := httptest.NewServer(mock)
	t.Cleanup(up.Close)
	o := gateway.Options{MasterKey: masterKey, Tenants: ts.svc,
		Ledger: ts.ledger, Spend: st.Spend, Now: clock.Now, Logger: discardLogger(),
		Env: func(k string) (string, bool) { return "env-" + k, true }}
	for _, f := range opts {
		f(&o)
	}
	g, err := gateway.New(parseConfig(t, yaml, up.URL), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(ctx) })
	srv := g.Server()
	inner := srv.Handler
	srv.Handler = func(fc *fasthttp.RequestCtx) {
		ts.hits.Add(1)
		inner(fc)
	}
	ts.stack = &stack{url: serve(t, srv) + "/v1", mock: mock, mockURL: up.URL, gw: g, logs: &syncBuffer{}}
	return ts
}

func (ts *tenantStack) team(t testing.TB, tm *tenant.Team) *tenant.Team {
	t.Helper()
	out, err := ts.svc.CreateTeam(context.Background(), tm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (ts *tenantStack) key(t testing.TB, k *tenant.Key) string {
	t.Helper()
	secret, _, err := ts.svc.CreateKey(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func (ts *tenantStack) chat(t *testing.T, key, model string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	return ts.post(t, "/v1/chat/completions", `{"model":"`+model+`","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`,
		append([]string{"Authorization", "Bearer " + key}, hdr...)...)
}

// 200 concurrent requests against a budget worth about 20: the settled spend
// never passes the cap by more than one request's maximum cost, the rest are
// refused with budget_exceeded, and the upstream saw only the admitted ones.
func TestBudgetHoldsUnderConcurrency(t *testing.T) {
	ts := startTenantStack(t)
	// A request reserves at most (prompt ≤ 20 tokens + 50 output) × $10/M ≈ $0.0007 on pricey.
	team := ts.team(t, &tenant.Team{Name: "acme", Budget: &tenant.Budget{Limit: 14_000_000, Period: tenant.PeriodMonthly}})
	key := ts.key(t, &tenant.Key{TeamID: team.ID, Name: "ci"})
	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			code, _, body := ts.chat(t, key, "auto", "X-Tollgate-Tier", "premium")
			switch {
			case code == 200:
				ok.Add(1)
			case code == 402 && strings.Contains(string(body), `"budget_exceeded"`):
				refused.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	wg.Wait()
	if other.Load() != 0 || ok.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("ok %d, refused %d, other %d", ok.Load(), refused.Load(), other.Load())
	}
	if calls := ts.calls("pricey-up"); int64(calls) != ok.Load() {
		t.Errorf("upstream saw %d calls for %d admitted requests", calls, ok.Load())
	}
	if err := ts.closeLedger(context.Background()); err != nil {
		t.Fatal(err)
	}
	spent, err := ts.st.Spend(context.Background(), team.ID, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	const maxOne = 700_000 // nanos: one request's maximum cost
	if spent > 14_000_000+maxOne {
		t.Errorf("spent %v against a 0.014 USD cap", spent)
	}
	t.Logf("admitted %d, refused %d, spent %v", ok.Load(), refused.Load(), spent)
}

// openai-go does not retry the budget rejection: one call reaches the gateway.
func TestBudgetRejectionNotRetriedBySDK(t *testing.T) {
	ts := startTenantStack(t)
	team := ts.team(t, &tenant.Team{Name: "broke", Budget: &tenant.Budget{Limit: 1, Period: tenant.PeriodNone}})
	key := ts.key(t, &tenant.Key{TeamID: team.ID, Name: "k"})
	c := openai.NewClient(option.WithBaseURL(ts.url), option.WithAPIKey(key), option.WithMaxRetries(3))
	_, err := c.Chat.Completions.New(context.Background(), chatParams("auto", "hi"))
	apiErr, ok := errors.AsType[*openai.Error](err)
	if !ok || apiErr.StatusCode != 402 || apiErr.Code != "budget_exceeded" {
		t.Fatalf("err = %v, want a 402 budget_exceeded", err)
	}
	if n := ts.hits.Load(); n != 1 {
		t.Errorf("the SDK sent %d requests, want 1 (no automatic retry)", n)
	}
	if ts.mock.Stats().Total != 0 {
		t.Error("a refused request reached the upstream")
	}
}

// 60 requests per minute: of 70 quick requests exactly 10 are refused, each
// with Retry-After.
func TestRateLimitRPM(t *testing.T) {
	ts := startTenantStack(t)
	team := ts.team(t, &tenant.Team{Name: "rl"})
	key := ts.key(t, &tenant.Key{TeamID: team.ID, Name: "k", Limits: tenant.Limits{RPM: 60}})
	refused := 0
	for range 70 {
		code, hdr, body := ts.chat(t, key, "auto")
		if code == 429 {
			refused++
			if _, c := errorBody(t, body); c != "rate_limit_exceeded" || hdr.Get("Retry-After") == "" {
				t.Errorf("429 with code %q Retry-After %q", c, hdr.Get("Retry-After"))
			}
		}
	}
	if refused != 10 {
		t.Errorf("refused %d of 70, want exactly 10", refused)
	}
	ts.clock.Advance(61 * time.Second)
	if code, _, _ := ts.chat(t, key, "auto"); code != 200 {
		t.Errorf("after a minute: %d", code)
	}
}

// Rotation: the old key works during the grace period and stops after it;
// revocation takes effect on the next request.
func TestKeyRotationAndRevocation(t *testing.T) {
	ts := startTenantStack(t)
	team := ts.team(t, &tenant.Team{Name: "rot"})
	old, k, err := ts.svc.CreateKey(context.Background(), &tenant.Key{TeamID: team.ID, Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := ts.chat(t, old, "auto"); code != 200 {
		t.Fatalf("before rotation: %d", code)
	}
	fresh, _, err := ts.svc.Rotate(context.Background(), k.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{old, fresh} {
		if code, _, _ := ts.chat(t, s, "auto"); code != 200 {
			t.Errorf("during grace: %d", code)
		}
	}
	ts.clock.Advance(61 * time.Minute)
	code, _, body := ts.chat(t, old, "auto")
	if _, c := errorBody(t, body); code != 401 || c != "api_key_rotated" {
		t.Errorf("old key after grace: %d %s", code, c)
	}
	if code, _, _ := ts.chat(t, fresh, "auto"); code != 200 {
		t.Errorf("new key after grace: %d", code)
	}
	if _, err := ts.svc.Revoke(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	code, _, body = ts.chat(t, fresh, "auto")
	if _, c := errorBody(t, body); code != 401 || c != "api_key_revoked" {
		t.Errorf("after revoke: %d %s", code, c)
	}
	code, _, body = ts.chat(t, "tg-"+strings.Repeat("x", 43), "auto")
	if _, c := errorBody(t, body); code != 401 || c != "invalid_api_key" {
		t.Errorf("unknown key: %d %s", code, c)
	}
}

// Past its downgrade point a team's premium requests are served one tier
// cheaper, visible in the header and the ledger.
func TestBudgetDowngrade(t *testing.T) {
	ts := startTenantStack(t)
	budget := func() *tenant.Budget {
		return &tenant.Budget{Limit: 1_000_000_000, Period: tenant.PeriodMonthly, DowngradePercent: 80}
	}
	fresh := ts.team(t, &tenant.Team{Name: "fresh", Budget: budget()})
	frugal := ts.team(t, &tenant.Team{Name: "frugal", Budget: budget()})
	// frugal has spent 85% this month already, as the ledger shows at start.
	ts.st.AppendUsage(context.Background(), []meter.Record{{Time: ts.clock.Now(), RequestID: "req_past", TeamID: frugal.ID,
		Cost: 850_000_000, Status: 200}})
	if _, h, _ := ts.chat(t, ts.key(t, &tenant.Key{TeamID: fresh.ID, Name: "k"}), "auto", "X-Tollgate-Tier", "premium"); h.Get("X-Tollgate-Model") != "pricey" || h.Get("X-Tollgate-Downgraded") != "" {
		t.Errorf("under the point: model %q downgraded %q", h.Get("X-Tollgate-Model"), h.Get("X-Tollgate-Downgraded"))
	}
	code, h, _ := ts.chat(t, ts.key(t, &tenant.Key{TeamID: frugal.ID, Name: "k"}), "auto", "X-Tollgate-Tier", "premium")
	if code != 200 || h.Get("X-Tollgate-Model") != "cheap" || h.Get("X-Tollgate-Downgraded") != "true" || h.Get("X-Tollgate-Tier") != "standard" {
		t.Errorf("past the point: %d model %q tier %q downgraded %q", code, h.Get("X-Tollgate-Model"), h.Get("X-Tollgate-Tier"), h.Get("X-Tollgate-Downgraded"))
	}
	ts.closeLedger(context.Background())
	rows, err := ts.st.Usage(context.Background(), store.UsageQuery{TeamID: frugal.ID, By: []string{store.ByTier}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if r.Group[store.ByTier] == "standard" && r.Requests == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("ledger rows %+v lack the downgraded standard request", rows)
	}
}

// A team's allocated provider key is what its traffic uses upstream.
func TestTeamProviderKey(t *testing.T) {
	ts := startTenantStack(t)
	team := ts.team(t, &tenant.Team{Name: "own", ProviderKeys: []tenant.ProviderKey{{Provider: "up", Tier: "premium", Env: "OWN_KEY"}}})
	key := ts.key(t, &tenant.Key{TeamID: team.ID, Name: "k"})
	ts.chat(t, key, "auto", "X-Tollgate-Tier", "premium")
	ts.chat(t, key, "auto", "X-Tollgate-Tier", "budget")
	reqs := ts.mock.Stats().Requests
	if got := reqs[0].Authorization; got != "Bearer env-OWN_KEY" {
		t.Errorf("premium upstream key = %q, want the team's", got)
	}
	if got := reqs[1].Authorization; got != "Bearer shared-key" {
		t.Errorf("budget upstream key = %q, want the provider's own", got)
	}
}

// After N requests and a clean stop the store holds exactly N records whose
// costs sum to the usage report.
func TestLedgerComplete(t *testing.T) {
	ts := startTenantStack(t)
	team := ts.team(t, &tenant.Team{Name: "led"})
	key := ts.key(t, &tenant.Key{TeamID: team.ID, Name: "k"})
	const n = 25
	for i := range n {
		model := "auto"
		if i%5 == 0 {
			model = "nope" // rejected requests are recorded too
		}
		ts.chat(t, key, model)
	}
	if err := ts.closeLedger(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := ts.st.Usage(context.Background(), store.UsageQuery{TeamID: team.ID})
	if err != nil || len(rows) != 1 {
		t.Fatalf("usage %v %v", rows, err)
	}
	spent, _ := ts.st.Spend(context.Background(), team.ID, "", time.Time{})
	if rows[0].Requests != n || rows[0].Errors != n/5 || rows[0].Cost != spent || spent == 0 {
		t.Errorf("usage %+v, spend %v: want %d requests, %d errors, cost = spend", rows[0], spent, n, n/5)
	}
}

// Crossing a budget's soft threshold is logged once per period.
func TestBudgetSoftThresholdLogged(t *testing.T) {
	logs := &syncBuffer{}
	ts := startTenantStack(t, func(o *gateway.Options) { o.Logger = slog.New(telemetry.NewJSONHandler(logs, nil)) })
	team := ts.team(t, &tenant.Team{Name: "soft", Budget: &tenant.Budget{Limit: 1_000_000_000, Period: tenant.PeriodMonthly, SoftPercent: 50}})
	ts.st.AppendUsage(context.Background(), []meter.Record{{Time: ts.clock.Now(), RequestID: "req_soft", TeamID: team.ID,
		Cost: 600_000_000, Status: 200}})
	key := ts.key(t, &tenant.Key{TeamID: team.ID, Name: "k"})
	for range 3 {
		ts.chat(t, key, "auto")
	}
	ts.gw.WaitSettled()
	if n := strings.Count(string(logs.Bytes()), `"event":"budget_soft_threshold"`); n != 1 {
		t.Errorf("soft threshold logged %d times, want once", n)
	}
}

// closeLedger closes the ledger once every request so far has settled, so
// the store holds them all.
func (ts *tenantStack) closeLedger(ctx context.Context) error {
	ts.gw.WaitSettled()
	return ts.ledger.Close(ctx)
}
