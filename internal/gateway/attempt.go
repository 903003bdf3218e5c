package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// errDelivered means the response (perhaps ending in an in-stream error) has
// reached the client: nothing more may be written.
var errDelivered = errors.New("response delivered")

// errCommitted means a stream has committed and goes on once the handler
// returns (streamBody): the attempt, its model's attempts and the request
// end with it, in the functions they leave to c.stream.atEnd.
var errCommitted = errors.New("stream committed")

// errAllOpen is the failure of a model whose every deployment has an open
// breaker: skipped at once, nothing sent.
var errAllOpen = &provider.Error{Kind: provider.KindTransport, Status: http.StatusServiceUnavailable,
	Type: "server_error", Code: "circuit_open", Message: "every deployment's circuit breaker is open",
	Err: errors.New("circuit open")}

// attempts walks the plan's chain. Each model gets up to 1+max_retries
// attempts over its deployments while failures are retryable and the retry
// budget allows; then the next model takes over if another model might
// succeed. Every attempt starts again from the client's bytes.
func (g *Gateway) attempts(ctx context.Context, c *call, x *exchange, plan route.Plan, body []byte) error {
	g.health.budget.Request()
	var last *provider.Error
	var unfit error // why models were skipped for their context window
	for i, m := range plan.Candidates {
		eff := x.st.prof.For(m)
		mbody, err := g.fit(x, m, eff, body)
		if err != nil {
			if eff.ContextPolicy == config.ContextFallback {
				unfit = err
				g.observeFallback(plan, i, "context_window")
				continue
			}
			return err
		}
		x.fallback = i > 0
		delivered, err := g.tryModel(ctx, c, x, m, eff, mbody)
		if delivered {
			return nil
		}
		if pe, ok := provider.AsProviderError(err); ok {
			last = pe
		} else {
			return err
		}
		if last.Kind == provider.KindCanceled {
			return clientGone(last)
		}
		if isContextLength(last) && eff.ContextPolicy == config.ContextFallback {
			g.observeFallback(plan, i, "context_window")
			continue
		}
		if !last.Fallbackable() || ctx.Err() != nil {
			break
		}
		g.observeFallback(plan, i, last.ErrorType())
	}
	if last == nil && unfit != nil {
		return unfit
	}
	return clientError(last)
}

// observeFallback counts a move from candidate i to the next, if any.
func (g *Gateway) observeFallback(plan route.Plan, i int, reason string) {
	if i+1 < len(plan.Candidates) {
		g.metrics.ObserveFallback(plan.Candidates[i].Name, plan.Candidates[i+1].Name, reason)
	}
}

func isContextLength(pe *provider.Error) bool {
	return pe.Kind == provider.KindStatus && pe.Code == "context_length_exceeded"
}

// tryModel runs m's attempts: the balancer orders its deployments, each
// attempt takes the next one whose breaker admits it, and retries wait their
// backoff and need the retry budget. It reports whether the response was
// delivered, else the last attempt's error.
func (g *Gateway) tryModel(ctx context.Context, c *call, x *exchange, m *config.Model, eff config.Effective, body []byte) (bool, error) {
	order := g.health.Order(m)
	var last *provider.Error
	var req *provider.Request // reused while deployments share an upstream name, as they usually do
	for try := 0; ; try++ {
		d := g.health.admit(order, try)
		if d == nil {
			if last == nil {
				return false, errAllOpen
			}
			break
		}
		var err error
		req, err = attemptRequest(x, d, body, req, g.provKeys.forTeam(x.caller, d.Provider, x.tier))
		if err != nil {
			g.health.Breakers.Report(d.ID, route.Ignored)
			return false, err
		}
		err = g.try(ctx, c, x, m, d, eff, req)
		if err == errCommitted {
			c.stream.atEnd(func() { g.metrics.ObserveAttempt(d.Provider, m.Name, d.ID, deliveredOutcome(x), false) })
			return true, nil
		}
		if err == nil || errors.Is(err, errDelivered) {
			g.metrics.ObserveAttempt(d.Provider, m.Name, d.ID, deliveredOutcome(x), false)
			return true, nil
		}
		pe, ok := provider.AsProviderError(err)
		if !ok {
			return false, err
		}
		last = pe
		retry := try < x.st.prof.MaxRetries && pe.Retryable() && g.health.budget.Retry() &&
			g.wait(ctx, x, route.Backoff(try, pe.RetryAfter))
		g.metrics.ObserveAttempt(d.Provider, m.Name, d.ID, pe.ErrorType(), retry)
		if !retry {
			break
		}
	}
	return false, last
}

// deliveredOutcome is "success", or why a stream that had started broke.
func deliveredOutcome(x *exchange) string {
	switch {
	case x.status == 499:
		return "canceled"
	case x.status >= 500:
		return "stream_broken"
	}
	return "success"
}

// attemptRequest builds the request for deployment d, or reuses prev when
// it was built for the same upstream model.
func attemptRequest(x *exchange, d *config.Deployment, body []byte, prev *provider.Request, key string) (*provider.Request, error) {
	if prev != nil && prev.Model == d.Upstream && prev.APIKey == key {
		return prev, nil
	}
	up, err := upstreamBody(body, x.editsFor(body), d.Upstream, x.stream)
	if err != nil {
		return nil, wire.BadRequest("invalid_json", "", "the request body could not be rewritten")
	}
	return &provider.Request{Endpoint: x.endpoint, Body: up, Model: d.Upstream, Stream: x.stream, RequestID: x.id, APIKey: key}, nil
}

// editsFor returns where to edit body: the client's own, or a trimmed copy
// of it, which is scanned again.
func (x *exchange) editsFor(body []byte) bodyEdits {
	if len(body) == len(x.body) && (len(body) == 0 || &body[0] == &x.body[0]) {
		return x.edits
	}
	if f, err := inspectChat(body); err == nil {
		return f.edits
	}
	return bodyEdits{}
}

// wait sleeps d unless the request's time runs out first; it reports whether
// another attempt still has time to run.
func (g *Gateway) wait(ctx context.Context, x *exchange, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	start := time.Now()
	select {
	case <-t.C:
		x.waited += time.Since(start)
		return true
	case <-ctx.Done():
		x.waited += time.Since(start)
		return false
	}
}

// try runs one attempt on deployment d and relays its answer. It returns a
// *provider.Error when nothing has reached the client yet, so the caller may
// try again, and errCommitted for a stream that has started, which the
// attempt ends with. Its outcome feeds d's breaker and the balancer.
func (g *Gateway) try(ctx context.Context, c *call, x *exchange, m *config.Model, d *config.Deployment, eff config.Effective, req *provider.Request) (err error) {
	x.attempts++
	x.served, x.dep = m, d
	ctx, span := g.opts.Tracer.StartAttempt(ctx, x.st.cfg.Providers[d.Provider].Kind, d.Upstream, d.ID, x.attempts)
	actx, cancel := attemptContext(ctx, eff.Timeouts, x.stream)
	done := g.health.Balancer.Start(d)
	began := time.Now()
	var watch *watchdog
	if x.stream {
		watch = newWatchdog(began, eff.Timeouts.FirstByte, eff.Timeouts.Idle, cancel)
	}
	defer func() {
		if err == errCommitted {
			c.stream.atEnd(func() { g.endAttempt(d, x, span, watch, cancel, errDelivered) })
		} else {
			g.endAttempt(d, x, span, watch, cancel, err)
		}
	}()
	resp, err := x.st.providers[d.Provider].Do(actx, req)
	x.upstream += upstreamTime(resp, err, began)
	if err == nil && resp.Stream != nil {
		err = g.relayStream(c, x, resp.Stream, streamAttempt{watch: watch, holdBack: eff.HoldBack, began: began, done: done})
	} else if err == nil {
		done(time.Since(began), true)
		x.usage = resp.Usage
		x.keepResponse(resp.Body)
		g.writeHeaders(c, x, "application/json")
		// Copied into the server's own recycled body buffer, so that the
		// upstream read's buffer is recycled too (provider.Response.Release).
		c.fc.Response.SetBody(resp.Body)
		resp.Release()
	} else {
		done(0, false)
	}
	return err
}

// endAttempt ends an attempt that ended with err: its outcome goes to d's
// breaker and its span, and its timers and context are released.
func (g *Gateway) endAttempt(d *config.Deployment, x *exchange, span trace.Span, watch *watchdog, cancel context.CancelCauseFunc, err error) {
	g.health.report(d, x, err)
	g.opts.Tracer.EndAttempt(span, err, attemptStatus(x, err))
	if watch != nil {
		watch.stop()
	}
	cancel(nil)
}

// attemptStatus is the HTTP status an attempt ended with: the upstream's
// for a refusal, the client's for a delivered answer, 0 when none came.
func attemptStatus(x *exchange, err error) int {
	if pe, ok := provider.AsProviderError(err); ok {
		return pe.Status
	}
	if x.status != 0 {
		return x.status
	}
	return http.StatusOK
}

// upstreamTime is the upstream's share of a provider call that began at
// began: what the provider measured (Response.Wait), or the whole call when
// it could not tell or the call failed. The overhead header subtracts it,
// so the gateway's own work inside the call — translating and formatting
// the request, checking and translating the answer — counts as the
// gateway's.
func upstreamTime(resp *provider.Response, err error, began time.Time) time.Duration {
	if err == nil && resp.Wait > 0 {
		return resp.Wait
	}
	return time.Since(began)
}

// attemptContext bounds one attempt: the connect timeout travels in the
// context, a model's own total shortens the request's, and cancel takes the
// cause that tells the gateway's own timers from a client that left.
//
// A model's total is a timer on the same cancel rather than a second
// context: one context per attempt, and the connect timeout is carried only
// when it differs from the dialer's default. An attempt that no timer of its
// own can cut — a non-stream answer without a model total — needs no
// context of its own at all: the request's bounds it.
func attemptContext(ctx context.Context, t config.Timeouts, stream bool) (context.Context, context.CancelCauseFunc) {
	if t.Connect != provider.DefaultConnectTimeout {
		ctx = provider.WithConnectTimeout(ctx, t.Connect)
	}
	dl, ok := ctx.Deadline()
	total := t.Total > 0 && (!ok || time.Until(dl) > t.Total)
	if !stream && !total {
		return ctx, noCancel
	}
	actx, cancel := context.WithCancelCause(ctx)
	if total {
		timer := time.AfterFunc(t.Total, func() { cancel(provider.ErrAttemptTimeout) })
		return actx, func(cause error) { timer.Stop(); cancel(cause) }
	}
	return actx, cancel
}

func noCancel(error) {}

// writeHeaders commits the response: what happened, and the gateway's own
// time so far. No second status can follow.
func (g *Gateway) writeHeaders(c *call, x *exchange, contentType string) {
	now := time.Since(x.start)
	x.ttfb = now
	x.overhead = max(now-x.upstream-x.waited, 0)
	c.fc.Response.Header.SetContentType(contentType)
	x.routeHeaders(c)
	c.fc.SetStatusCode(http.StatusOK)
	c.committed = true
}

// routeHeaders says which model served (or failed last), and how.
func (x *exchange) routeHeaders(c *call) {
	h := &c.fc.Response.Header
	var num [24]byte
	setCanonical(h, hdrModel, x.served.Name)
	setCanonical(h, hdrProvider, x.dep.Provider)
	setCanonical(h, hdrDeployment, x.dep.ID)
	h.SetCanonical(hdrAttempts, strconv.AppendInt(num[:0], int64(x.attempts), 10))
	h.SetCanonical(hdrFallback, strconv.AppendBool(num[:0], x.fallback))
	h.SetCanonical(hdrOverhead, strconv.AppendFloat(num[:0], float64(x.overhead.Microseconds())/1000, 'f', 3, 64))
	if x.trimmed > 0 {
		h.SetCanonical(hdrTrimmed, strconv.AppendInt(num[:0], int64(x.trimmed), 10))
	}
}

// The response headers every proxied answer carries, in canonical form so
// fasthttp need not normalize them on each request.
var (
	hdrModel      = []byte("X-Tollgate-Model")
	hdrProvider   = []byte("X-Tollgate-Provider")
	hdrDeployment = []byte("X-Tollgate-Deployment")
	hdrAttempts   = []byte("X-Tollgate-Attempts")
	hdrFallback   = []byte("X-Tollgate-Fallback")
	hdrOverhead   = []byte("X-Tollgate-Overhead-Ms")
	hdrTrimmed    = []byte("X-Tollgate-Context-Trimmed")
)

// clientGone is the 499 of a client that left: logged, never the provider's fault.
func clientGone(pe *provider.Error) error {
	return &wire.Error{Status: 499, Type: "invalid_request_error", Code: "client_closed_request",
		Message: "client closed the request", Cause: pe}
}

// clientError turns the last attempt's failure into what the client sees.
// Client errors the upstream found (400, 404, 413, 422) pass through with the
// upstream's code; anything that exhausted the chain becomes a gateway error,
// never the upstream's 401, which would blame the client's key.
func clientError(pe *provider.Error) error {
	if pe == nil {
		return &wire.Error{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_unavailable",
			Message: "no upstream could serve the request"}
	}
	switch {
	case pe.Kind == provider.KindTimeout:
		return &wire.Error{Status: http.StatusGatewayTimeout, Type: "server_error", Code: "upstream_timeout",
			Message: "the upstream did not answer in time", Cause: pe}
	case pe == errAllOpen:
		return &wire.Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "circuit_open",
			Message: "every deployment that could serve this request is failing; try again shortly", Cause: pe}
	case pe.Kind == provider.KindStatus && pe.Status >= 400 && pe.Status < 500 && !pe.Fallbackable():
		code := pe.Code
		if code == "" {
			code = "upstream_rejected"
		}
		return &wire.Error{Status: pe.Status, Type: orDefault(pe.Type, "invalid_request_error"), Code: code,
			Message: pe.Message, Cause: pe}
	case pe.Status == http.StatusUnauthorized || pe.Status == http.StatusForbidden:
		return &wire.Error{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_auth_failed",
			Message: "the upstream rejected the gateway's credentials", Cause: pe}
	}
	return &wire.Error{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_unavailable",
		Message: "no upstream could serve the request: " + pe.Message, Cause: pe}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
