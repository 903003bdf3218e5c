package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// errDelivered means the response (perhaps ending in an in-stream error) has
// reached the client: nothing more may be written.
var errDelivered = errors.New("response delivered")

// attempts walks the plan's chain: each model is tried up to 1+max_retries
// times while its failures are retryable, then the next model takes over if
// the failure is one another model might not share. Every attempt starts
// again from the client's body.
func (g *Gateway) attempts(ctx context.Context, w http.ResponseWriter, x *exchange, plan route.Plan, body []byte) error {
	var last *provider.Error
	for i, m := range plan.Candidates {
		x.fallback = i > 0
		req, err := g.attemptRequest(x, m, body)
		if err != nil {
			return err
		}
		for try := 0; ; try++ {
			err := g.try(ctx, w, x, m, req)
			if err == nil || errors.Is(err, errDelivered) {
				return nil
			}
			pe, ok := provider.AsProviderError(err)
			if !ok {
				return err
			}
			last = pe
			if pe.Kind == provider.KindCanceled {
				return clientGone(pe)
			}
			if !pe.Retryable() || try >= g.prof.MaxRetries || !g.wait(ctx, x, route.Backoff(try, pe.RetryAfter)) {
				break
			}
		}
		if !last.Fallbackable() || ctx.Err() != nil {
			break
		}
	}
	return clientError(last)
}

func (g *Gateway) attemptRequest(x *exchange, m *config.Model, body []byte) (*provider.Request, error) {
	up, err := upstreamBody(body, m.Upstream, x.stream)
	if err != nil {
		return nil, wire.BadRequest("invalid_json", "", "the request body could not be rewritten")
	}
	return &provider.Request{Endpoint: x.endpoint, Body: up, Model: m.Upstream, Stream: x.stream, RequestID: x.id}, nil
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

// try runs one attempt and relays its answer. It returns a *provider.Error
// when nothing has reached the client yet, so the loop may try again.
func (g *Gateway) try(ctx context.Context, w http.ResponseWriter, x *exchange, m *config.Model, req *provider.Request) error {
	x.attempts++
	x.served = m
	began := time.Now()
	resp, err := g.providers[m.Provider].Do(ctx, req)
	x.upstream += time.Since(began)
	if err != nil {
		return err
	}
	if resp.Stream != nil {
		return g.relayStream(ctx, w, x, resp.Stream)
	}
	x.usage = resp.Usage
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.Body)))
	g.writeHeaders(w, x, "application/json")
	w.Write(resp.Body)
	return nil
}

// writeHeaders commits the response: what happened, and the gateway's own
// time so far. No second status can follow.
func (g *Gateway) writeHeaders(w http.ResponseWriter, x *exchange, contentType string) {
	now := time.Since(x.start)
	x.ttfb = now
	x.overhead = max(now-x.upstream-x.waited, 0)
	h := w.Header()
	h.Set("Content-Type", contentType)
	x.routeHeaders(h)
	w.WriteHeader(http.StatusOK)
}

// routeHeaders says which model served (or failed last), and how.
func (x *exchange) routeHeaders(h http.Header) {
	h.Set("X-Tollgate-Model", x.served.Name)
	h.Set("X-Tollgate-Provider", x.served.Provider)
	h.Set("X-Tollgate-Attempts", strconv.Itoa(x.attempts))
	h.Set("X-Tollgate-Fallback", strconv.FormatBool(x.fallback))
	h.Set("X-Tollgate-Overhead-Ms", strconv.FormatFloat(float64(x.overhead.Microseconds())/1000, 'f', 3, 64))
}

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
