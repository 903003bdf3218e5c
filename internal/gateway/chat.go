package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/telemetry"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// exchange is the state of one client request as it moves through the
// pipeline; it becomes the log record when the request settles.
type exchange struct {
	id          string
	start       time.Time
	st          *snapshot // the configuration this request runs on, start to end
	endpoint    provider.Endpoint
	requested   string
	tier        string
	criticality string
	stream      bool
	wantUsage   bool
	maxOutput   int // per choice, as the client asked; 0 when it did not

	served   *config.Model      // the model of the latest attempt
	dep      *config.Deployment // and its deployment
	attempts int
	fallback bool
	trimmed  int // messages dropped to fit the context window

	upstream time.Duration // time spent waiting on providers
	waited   time.Duration // time spent in backoff
	ttfb     time.Duration
	overhead time.Duration // frozen when the response headers go out

	usage   *wire.Usage
	status  int
	errCode string
}

func (g *Gateway) newExchange(ep provider.Endpoint) *exchange {
	return &exchange{id: newRequestID(), start: time.Now(), endpoint: ep, st: g.state.Load()}
}

// newRequestID returns "req_" and 24 hex digits of randomness.
func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func (g *Gateway) chat(w http.ResponseWriter, r *http.Request) error {
	x := g.newExchange(provider.Chat)
	w.Header().Set("X-Request-Id", x.id)
	defer g.settle(r.Context(), x)
	body, err := readBody(w, r, x.st.cfg.Server.MaxBodyBytes)
	if err != nil {
		return x.fail(err)
	}
	f, err := inspectChat(body)
	if err != nil {
		return x.fail(err)
	}
	x.requested, x.stream = *f.Model, f.Stream
	x.wantUsage = f.StreamOptions != nil && f.StreamOptions.IncludeUsage
	x.maxOutput = f.maxOutput()
	return x.fail(g.serve(w, r, x, body, config.TypeChat))
}

func (g *Gateway) embeddings(w http.ResponseWriter, r *http.Request) error {
	x := g.newExchange(provider.Embeddings)
	w.Header().Set("X-Request-Id", x.id)
	defer g.settle(r.Context(), x)
	body, err := readBody(w, r, x.st.cfg.Server.MaxBodyBytes)
	if err != nil {
		return x.fail(err)
	}
	f, err := inspectEmbeddings(body)
	if err != nil {
		return x.fail(err)
	}
	x.requested = *f.Model
	return x.fail(g.serve(w, r, x, body, config.TypeEmbedding))
}

// fail records a rejection for the log line and passes it on.
func (x *exchange) fail(err error) error {
	if err == nil {
		return nil
	}
	e := wire.AsError(err)
	x.status, x.errCode = e.Status, e.Code
	return e
}

// serve plans the request and runs its attempts.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, x *exchange, body []byte, kind string) error {
	x.criticality = r.Header.Get("X-Tollgate-Criticality")
	plan, err := route.Resolve(x.st.cfg, x.st.prof, route.Request{Model: x.requested,
		Tier: r.Header.Get("X-Tollgate-Tier"), Criticality: x.criticality})
	if err != nil {
		return planError(err)
	}
	x.tier = plan.Tier
	w.Header().Set("X-Tollgate-Tier", plan.Tier)
	for _, m := range plan.Candidates {
		if m.Type != kind {
			return wire.BadRequest("model_not_supported", "model",
				"model "+m.Name+" is a "+m.Type+" model and cannot serve this endpoint")
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), x.st.prof.RequestTimeout)
	defer cancel()
	err = g.attempts(ctx, w, x, plan, body)
	if err != nil && x.served != nil {
		x.overhead = max(time.Since(x.start)-x.upstream-x.waited, 0)
		x.routeHeaders(w.Header())
	}
	return err
}

func planError(err error) error {
	switch e := err.(type) {
	case *route.UnknownModelError:
		return &wire.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found",
			Param: "model", Message: e.Error()}
	case *route.UnknownTierError:
		return wire.BadRequest("invalid_tier", "X-Tollgate-Tier", e.Error())
	case *route.UnknownCriticalityError:
		return wire.BadRequest("invalid_criticality", "X-Tollgate-Criticality", e.Error())
	}
	return err
}

// settle writes the request's log line once the response is complete, so the
// client never waits on it.
func (g *Gateway) settle(ctx context.Context, x *exchange) {
	rec := &telemetry.Request{
		ID: x.id, Endpoint: endpointName(x.endpoint), Tier: x.tier, Criticality: x.criticality,
		RequestedModel: x.requested, Stream: x.stream, Attempts: x.attempts, Fallback: x.fallback,
		Trimmed: x.trimmed, Status: x.status, ErrorCode: x.errCode,
		Latency: time.Since(x.start), TTFB: x.ttfb, Overhead: x.overhead, Time: x.start,
	}
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	if m := x.served; m != nil {
		rec.Model, rec.Provider, rec.Deployment = m.Name, x.dep.Provider, x.dep.ID
		if u := x.usage; u != nil {
			rec.UsageReported = true
			rec.PromptTokens, rec.CompletionTokens, rec.CachedTokens = u.PromptTokens, u.CompletionTokens, u.CachedTokens()
			rec.CostUSD = m.Price.Cost(u).USD()
		}
	}
	telemetry.LogRequest(ctx, g.log, rec)
}

func endpointName(e provider.Endpoint) string {
	if e == provider.Embeddings {
		return "embeddings"
	}
	return "chat.completions"
}
