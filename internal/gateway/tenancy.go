package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/limit"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/tenant"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// caller is who sent a request: the master key, or a team's virtual key.
type caller struct {
	master bool
	*tenant.Principal
}

func (c caller) teamID() string {
	if c.Principal == nil {
		return ""
	}
	return c.Team.ID
}

func (c caller) keyID() string {
	if c.Principal == nil {
		return ""
	}
	return c.Key.ID
}

// authenticate accepts the master key or a virtual key, as a Bearer token or
// x-api-key. The master key is compared in constant time; virtual keys are
// found by their hash (tenant.Service).
func (g *Gateway) authenticate(c *call) (caller, error) {
	h := &c.fc.Request.Header
	key, ok := bytes.CutPrefix(h.Peek("Authorization"), bearer)
	if !ok {
		key = h.Peek("x-api-key")
	}
	switch {
	case len(key) == 0:
		return caller{}, &wire.Error{Status: http.StatusUnauthorized, Type: "authentication_error", Code: "missing_api_key",
			Message: "no API key: send Authorization: Bearer <key>"}
	case g.isMaster(key):
		return caller{master: true}, nil
	case g.opts.Tenants != nil:
		p, err := g.opts.Tenants.Authenticate(c.context(), string(key))
		if ae, ok := errors.AsType[*tenant.AuthError](err); ok {
			return caller{}, &wire.Error{Status: http.StatusUnauthorized, Type: "authentication_error", Code: ae.Code, Message: ae.Message}
		}
		if err != nil {
			return caller{}, err
		}
		return caller{Principal: p}, nil
	}
	return caller{}, &wire.Error{Status: http.StatusUnauthorized, Type: "authentication_error", Code: "invalid_api_key",
		Message: "invalid API key"}
}

// admission is what admit reserved for a request, released or settled when
// it ends.
type admission struct {
	rules    []limit.Rule
	ruleBuf  [3]limit.Rule // rules' storage: key, team and model limits at most
	tokens   int           // the estimate counted against tokens-per-minute
	reserve  *limit.Reservation
	reserved meter.Nanos // its amount
}

// downgrade says how many tiers cheaper a team past its budget's downgrade
// point is served.
func (g *Gateway) downgrade(ctx context.Context, c caller) int {
	if c.Principal == nil || c.Team.Budget == nil || c.Team.Budget.DowngradePercent <= 0 {
		return 0
	}
	_, _, used, err := g.budgets.Usage(ctx, limit.Scope{ID: c.TeamScope, Budget: *c.Team.Budget})
	if err != nil || used*100 < float64(c.Team.Budget.DowngradePercent) {
		return 0
	}
	return 1
}

// admit applies the rate limits of the key, the team and the primary model,
// then reserves the request's maximum cost against the key's and the team's
// budgets, all before any upstream call.
func (g *Gateway) admit(c *call, x *exchange, plan route.Plan, body []byte) error {
	x.adm.rules = x.st.rateRules(x.adm.ruleBuf[:0], x.caller, plan.Candidates[0])
	var scopeBuf [2]limit.Scope
	scopes := budgetScopes(scopeBuf[:0], x.caller)
	if len(x.adm.rules) == 0 && len(scopes) == 0 {
		return nil
	}
	// Admission starts from a bound on the prompt that needs no tokenizer;
	// only a refusal is worth an exact count, and then the same question is
	// asked again. A refused Admit or Reserve changes nothing, so nothing is
	// counted twice; an admitted estimate is corrected when the request
	// settles, as an exact one is.
	m := plan.Candidates[0]
	prompt, exact := x.promptBound(body, m)
	if len(x.adm.rules) > 0 {
		x.adm.tokens = prompt + x.maxOutput
		d, err := g.rates.Admit(x.adm.rules, x.adm.tokens)
		if err == nil && !d.OK && !exact {
			prompt, exact = x.promptEstimate(body, m), true
			x.adm.tokens = prompt + x.maxOutput
			d, err = g.rates.Admit(x.adm.rules, x.adm.tokens)
		}
		if err != nil {
			return err
		}
		setRateHeaders(&c.fc.Response.Header, d.Headers)
		if !d.OK && d.Reason == limit.ReasonTooLarge {
			x.adm.rules = nil
			return wire.BadRequest("tokens_exceed_rate_limit", "messages", fmt.Sprintf(
				"this request needs about %d tokens, more than %s allows in a minute", x.adm.tokens, d.Refused.Scope))
		}
		if !d.OK {
			g.metrics.RateLimited(scopeKind(d.Refused.Scope))
			x.adm.rules = nil
			secs := int(math.Ceil(d.RetryAfter.Seconds()))
			return &wire.Error{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "rate_limit_exceeded",
				RetryAfter: max(secs, 1), Message: fmt.Sprintf("rate limit reached for %s (%s per minute); retry after %ds",
					d.Refused.Scope, d.Reason, max(secs, 1))}
		}
	}
	if len(scopes) == 0 {
		return nil
	}
	amount := maxCost(plan, prompt, x.maxOutput)
	res, err := g.budgets.Reserve(c.context(), scopes, amount)
	if _, refused := errors.AsType[*limit.ExceededError](err); refused && !exact {
		amount = maxCost(plan, x.promptEstimate(body, m), x.maxOutput)
		res, err = g.budgets.Reserve(c.context(), scopes, amount)
	}
	if ee, ok := errors.AsType[*limit.ExceededError](err); ok {
		g.metrics.BudgetRejected(x.caller.teamID())
		c.setHeader("X-Should-Retry", "false")
		return &wire.Error{Status: http.StatusPaymentRequired, Type: "insufficient_quota", Code: "budget_exceeded",
			Message: fmt.Sprintf("the budget of %s is exhausted: %s spent and %s reserved of %s", ee.Scope,
				usd(ee.Spent), usd(ee.Reserved), usd(ee.Limit))}
	}
	if err != nil {
		return err
	}
	x.adm.reserve, x.adm.reserved = res, amount
	return nil
}

func usd(n meter.Nanos) string { return fmt.Sprintf("$%.6f", n.USD()) }

func scopeKind(scope string) string {
	kind, _, _ := strings.Cut(scope, ":")
	return kind
}

// setBudgetGauge publishes a team's spend and what is left of its budget.
func (g *Gateway) setBudgetGauge(ctx context.Context, c caller) {
	if c.Principal == nil || c.Team.Budget == nil {
		return
	}
	b := c.Team.Budget
	spent, reserved, _, err := g.budgets.Usage(ctx, limit.Scope{ID: c.TeamScope, Budget: *b})
	if err != nil {
		return
	}
	g.metrics.SetBudget(c.Team.ID, spent.USD(), (b.Limit - spent - reserved).USD())
	if b.SoftPercent > 0 && int64(spent)*100 >= int64(b.Limit)*int64(b.SoftPercent) {
		period := limit.PeriodStart(b.Period, g.opts.Now())
		if _, seen := g.softWarned.LoadOrStore(c.Team.ID+"@"+period.Format(time.RFC3339), true); !seen {
			g.log.Warn("team budget past its soft threshold", slog.String("event", "budget_soft_threshold"),
				slog.String("team_id", c.Team.ID), slog.Int("soft_percent", b.SoftPercent),
				slog.Float64("spent_usd", spent.USD()), slog.Float64("limit_usd", b.Limit.USD()),
				slog.Time("period_start", period))
		}
	}
}

// rateRules appends the rate limits that apply to rules.
func (st *snapshot) rateRules(rules []limit.Rule, c caller, primary *config.Model) []limit.Rule {
	if c.Principal != nil {
		if l := c.Key.Limits; l.RPM > 0 || l.TPM > 0 {
			rules = append(rules, limit.Rule{Scope: c.KeyScope, RPM: l.RPM, TPM: l.TPM})
		}
		if l := c.Team.Limits; l.RPM > 0 || l.TPM > 0 {
			rules = append(rules, limit.Rule{Scope: c.TeamScope, RPM: l.RPM, TPM: l.TPM})
		}
	}
	if l := primary.Limits; l.RPM > 0 || l.TPM > 0 {
		scope, ok := st.modelScopes[primary]
		if !ok {
			scope = "model:" + primary.Name
		}
		rules = append(rules, limit.Rule{Scope: scope, RPM: l.RPM, TPM: l.TPM})
	}
	return rules
}

// budgetScopes appends the budgets that apply to s.
func budgetScopes(s []limit.Scope, c caller) []limit.Scope {
	if c.Principal == nil {
		return s
	}
	if b := c.Key.Budget; b != nil {
		s = append(s, limit.Scope{ID: c.KeyScope, Budget: *b})
	}
	if b := c.Team.Budget; b != nil {
		s = append(s, limit.Scope{ID: c.TeamScope, Budget: *b})
	}
	return s
}

// unknownMaxOutput bounds a reservation when neither the request nor the
// model says how long the answer may be.
const unknownMaxOutput = 32768

// maxCost is the most the request can cost on any model of its chain: the
// prompt at the input price plus the longest answer at the output price.
func maxCost(plan route.Plan, prompt, maxOutput int) meter.Nanos {
	var most meter.Nanos
	for _, m := range plan.Candidates {
		out := maxOutput
		if out == 0 {
			out = m.MaxOutputTokens
		}
		if out == 0 {
			out = unknownMaxOutput
		}
		most = max(most, m.Price.Input.Of(prompt)+m.Price.Output.Of(out))
	}
	return most
}

// promptBound is an upper bound of promptEstimate from the body's length
// (meter.Tokenizer.PromptBound), or the count itself when no bound can be
// promised; exact reports which.
func (x *exchange) promptBound(body []byte, m *config.Model) (n int, exact bool) {
	if x.endpoint != provider.Chat {
		return len(body), true
	}
	if n, ok := x.st.tokenizer(m).PromptBound(body); ok {
		return n, false
	}
	return x.promptEstimate(body, m), true
}

// promptEstimate counts the prompt's tokens with m's tokenizer (exact for
// OpenAI-family models, an over-estimate for others); a body it cannot read
// counts one token per byte, which no tokenizer exceeds.
func (x *exchange) promptEstimate(body []byte, m *config.Model) int {
	if x.endpoint != provider.Chat {
		return len(body)
	}
	n, err := x.countPrompt(x.st.tokenizer(m), body)
	if err != nil {
		return len(body)
	}
	return n
}

// countPrompt counts body's prompt tokens with tok, once per request and
// tokenizer: admission and the context-window check share the count.
func (x *exchange) countPrompt(tok *meter.Tokenizer, body []byte) (int, error) {
	if x.countedBy == tok && x.promptTokens > 0 {
		return x.promptTokens, nil
	}
	n, err := tok.CountChat(body)
	if err == nil {
		x.countedBy, x.promptTokens = tok, n
	}
	return n, err
}

// settleAdmission replaces the reservation with the actual cost, or
// releases it when nothing was served, and corrects the token count.
func (g *Gateway) settleAdmission(x *exchange, cost meter.Nanos, served bool) {
	if r := x.adm.reserve; r != nil {
		if served {
			r.Settle(cost)
		} else {
			r.Release()
		}
	}
	if len(x.adm.rules) > 0 {
		actual := 0
		if x.usage != nil {
			actual = x.usage.PromptTokens + x.usage.CompletionTokens
		} else if served {
			actual = x.adm.tokens
		}
		// A correction lands in the current minute; past a minute the
		// admission has left the window and a refund would free others' tokens.
		if d := actual - x.adm.tokens; d > 0 || (d < 0 && time.Since(x.start) < time.Minute) {
			g.rates.Correct(x.adm.rules, d)
		}
	}
}

// setRateHeaders writes OpenAI's x-ratelimit-* family from the tightest rule.
func setRateHeaders(h *fasthttp.ResponseHeader, s limit.State) {
	var num [24]byte
	if s.LimitRequests > 0 {
		h.SetCanonical(hdrLimitRequests, strconv.AppendInt(num[:0], int64(s.LimitRequests), 10))
		h.SetCanonical(hdrRemainingRequests, strconv.AppendInt(num[:0], int64(max(s.RemainingRequests, 0)), 10))
		setCanonical(h, hdrResetRequests, s.ResetRequests.Round(time.Millisecond).String())
	}
	if s.LimitTokens > 0 {
		h.SetCanonical(hdrLimitTokens, strconv.AppendInt(num[:0], int64(s.LimitTokens), 10))
		h.SetCanonical(hdrRemainingTokens, strconv.AppendInt(num[:0], int64(max(s.RemainingTokens, 0)), 10))
		setCanonical(h, hdrResetTokens, s.ResetTokens.Round(time.Millisecond).String())
	}
}

// OpenAI's rate-limit headers, in canonical form.
var (
	hdrLimitRequests     = []byte("X-Ratelimit-Limit-Requests")
	hdrRemainingRequests = []byte("X-Ratelimit-Remaining-Requests")
	hdrResetRequests     = []byte("X-Ratelimit-Reset-Requests")
	hdrLimitTokens       = []byte("X-Ratelimit-Limit-Tokens")
	hdrRemainingTokens   = []byte("X-Ratelimit-Remaining-Tokens")
	hdrResetTokens       = []byte("X-Ratelimit-Reset-Tokens")
)

var bearer = []byte("Bearer ")

// providerKeys resolves a team's allocated upstream keys from the
// environment, once per variable.
type providerKeys struct {
	lookup func(string) (string, bool)
	mu     sync.Mutex // guards env
	env    map[string]string
}

// forTeam returns the team's key for a provider and tier: an entry for that
// tier first, then one for every tier; "" when none is allocated.
func (p *providerKeys) forTeam(c caller, provider, tier string) string {
	if c.Principal == nil || len(c.Team.ProviderKeys) == 0 {
		return ""
	}
	var name string
	for _, pk := range c.Team.ProviderKeys {
		if pk.Provider == provider && (pk.Tier == tier || (pk.Tier == "" && name == "")) {
			name = pk.Env
		}
	}
	if name == "" {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.env[name]
	if !ok {
		v, _ = p.lookup(name)
		p.env[name] = v
	}
	return v
}
