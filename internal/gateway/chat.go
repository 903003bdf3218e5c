package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/payload"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/telemetry"
	"github.com/tollgate-gw/tollgate/internal/wire"
	"go.opentelemetry.io/otel/trace"
)

// exchange is the state of one client request as it moves through the
// pipeline; it becomes the log record when the request settles.
type exchange struct {
	id          string
	start       time.Time
	st          *snapshot // the configuration this request runs on, start to end
	caller      caller
	endpoint    provider.Endpoint
	requested   string
	tier        string
	criticality string
	stream      bool
	wantUsage   bool
	maxOutput   int       // per choice, as the client asked; 0 when it did not
	body        []byte    // the client's body: the server's buffer, valid until the response is out
	edits       bodyEdits // where an attempt's body differs from body

	served   *config.Model      // the model of the latest attempt
	dep      *config.Deployment // and its deployment
	attempts int
	fallback bool
	trimmed  int // messages dropped to fit the context window

	downgraded   bool             // a cheaper tier than asked, by the team's budget
	promptTokens int              // prompt tokens counted by countedBy; 0 until needed
	countedBy    *meter.Tokenizer // the tokenizer promptTokens came from
	adm          admission        // rate-limit counts and budget reservation to settle
	span         trace.Span       // the request's trace span; nil before planning

	// capture is set for a team whose payloads are logged: the bodies are
	// kept (the request's as read, the response's up to the logging cap).
	capture  bool
	reqBody  []byte
	respBody []byte

	upstream time.Duration // time spent waiting on providers
	waited   time.Duration // time spent in backoff
	ttfb     time.Duration
	overhead time.Duration // frozen when the response headers go out
	// latency is frozen when the response is complete (settleLater): the
	// settle runs once the response is flushed, or up to settleEvery later
	// (the settler), and what it reports must not count that wait.
	latency time.Duration

	usage   *wire.Usage
	status  int
	errCode string

	rec telemetry.Request // what settle reports, kept here to spare an allocation
}

func (g *Gateway) newExchange(ep provider.Endpoint, c caller) *exchange {
	g.unsettled.Add(1) // settle takes it back
	now := time.Now()
	x := exchanges.Get().(*exchange)
	*x = exchange{id: newRequestID(now), start: now, endpoint: ep, st: g.state.Load(), caller: c}
	x.capture = c.Principal != nil && g.opts.Payloads.Enabled(c.Team.ID, c.Team.Name)
	return x
}

// exchanges recycles exchanges once settled (settle's last step): at some
// 900 bytes, an exchange was the largest allocation of a request, and
// fresh heap memory is, most often, pages the runtime's scavenger returned
// to the operating system since the last collection, faulted in again on
// the request's path (see provider's bodyBuffer).
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// recycle clears x, which must be referenced by nothing else (settle has
// run: its ledger record, metrics, log line and payload entry hold copies),
// and keeps it for a later request.
func recycle(x *exchange) {
	*x = exchange{}
	exchanges.Put(x)
}

// newRequestID returns "req_", the time in nanoseconds and 48 random bits,
// in hex: unique, and sorted by time, so ledger inserts append to the
// request-id index instead of scattering over it. An id is no secret, so
// the bits come from math/rand/v2's per-thread ChaCha8, not crypto/rand's
// DRBG behind a lock (0.4 µs a request under load).
func newRequestID(now time.Time) string {
	var b [16]byte // the last two bytes are not used
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], rand.Uint64())
	var id [4 + 2*14]byte
	copy(id[:], "req_")
	hex.Encode(id[4:], b[:14])
	return string(id[:])
}

func (g *Gateway) chat(c *call, who caller) error {
	x, body, err := g.receive(c, provider.Chat, who, (*exchange).inspectChat)
	if err == nil && x.stream {
		g.serveStream(c, x, body)
		return nil
	}
	defer g.settleLater(c, x)
	if err != nil {
		return x.fail(err)
	}
	return x.fail(g.serve(c, x, body, config.TypeChat))
}

// receive starts an API call's exchange: its id goes out at once, and the
// body is read, kept for payload logging, and inspected.
func (g *Gateway) receive(c *call, ep provider.Endpoint, who caller, inspect func(*exchange, []byte) error) (*exchange, []byte, error) {
	x := g.newExchange(ep, who)
	c.setHeader("X-Request-Id", x.id)
	body, err := readBody(c, x.st.cfg.Server.MaxBodyBytes)
	if err != nil {
		return x, nil, err
	}
	x.keepRequest(body)
	return x, body, inspect(x, body)
}

// inspectChat reads what the pipeline needs of a chat request.
func (x *exchange) inspectChat(body []byte) error {
	f, err := inspectChat(body)
	if err != nil {
		return err
	}
	x.body, x.requested, x.stream, x.edits = body, strings.Clone(f.Model), f.Stream, f.edits
	x.wantUsage = f.IncludeUsage
	x.maxOutput = f.maxOutput()
	return nil
}

// serveStream runs a stream request's pipeline until its stream commits or
// the request ends, and returns when the response is ready to go out: a
// committed stream, whose rest fasthttp runs through the body's WriteTo
// (see streamBody), or a complete (error) response. At the end — of the
// stream, or of the request that never streamed — the call is finished and
// the request left to be settled once the end of the body went out
// (settleLater).
func (g *Gateway) serveStream(c *call, x *exchange, body []byte) {
	s := &streamBody{}
	c.stream = s
	s.atEnd(func() {
		g.finish(c)
		g.settleLater(c, x)
	})
	handed := false
	defer func() {
		if !handed {
			s.end() // before the commit; or after it, a panic before fasthttp had the body
		}
	}()
	defer g.recoverPanic(c, x)
	err := x.fail(g.serve(c, x, body, config.TypeChat))
	if s.relay != nil {
		c.fc.Response.SetBodyStream(s, -1)
		handed = true
		return
	}
	if err != nil {
		writeError(c.fc, err)
	}
}

// settleLater has x settled once its response has gone out: the server
// writes the response only after the handler returns (or, for a stream,
// ends it after the pipeline), and the client should not wait for the
// ledger, the metrics and the log line. The connection's own goroutine
// settles it when the response is flushed (afterResponse); what no
// connection of the server carries goes to the settler. Close waits for it.
func (g *Gateway) settleLater(c *call, x *exchange) {
	x.latency = time.Since(x.start)
	if g.after.put(c.fc.Conn(), x) {
		return
	}
	g.settler.push(x)
}

// WaitSettled waits until every request received so far has been answered
// and settled: its ledger record handed to the ledger, its metrics, log line
// and alert observation done. Close does it too; tests use it to read what
// requests left behind. It polls: it is never on a request's path.
func (g *Gateway) WaitSettled() {
	for g.unsettled.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
}

func (g *Gateway) embeddings(c *call, who caller) error {
	x, body, err := g.receive(c, provider.Embeddings, who, (*exchange).inspectEmbeddings)
	defer g.settleLater(c, x)
	if err != nil {
		return x.fail(err)
	}
	return x.fail(g.serve(c, x, body, config.TypeEmbedding))
}

// inspectEmbeddings reads what the pipeline needs of an embeddings request.
func (x *exchange) inspectEmbeddings(body []byte) error {
	f, err := inspectEmbeddings(body)
	if err != nil {
		return err
	}
	x.body, x.requested, x.edits = body, strings.Clone(f.Model), f.edits
	return nil
}

// keepRequest keeps a copy of the request body for payload logging: the
// server reuses its buffer once the response is out, and the payload writer
// runs later.
func (x *exchange) keepRequest(body []byte) {
	if x.capture {
		x.reqBody = bytes.Clone(body)
	}
}

// keepResponse keeps response bytes for payload logging, up to the cap the
// payload logger would cut at anyway.
func (x *exchange) keepResponse(b []byte) {
	if !x.capture {
		return
	}
	if room := x.st.cfg.PayloadLogging.MaxBytes - int64(len(x.respBody)); room > 0 {
		x.respBody = append(x.respBody, b[:min(int64(len(b)), room)]...)
	}
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

// serve plans the request, admits it and runs its attempts.
func (g *Gateway) serve(c *call, x *exchange, body []byte, kind string) error {
	plan, err := g.plan(c, x)
	if err != nil {
		return err
	}
	c.setHeader("X-Tollgate-Tier", plan.Tier)
	if x.downgraded {
		c.setHeader("X-Tollgate-Downgraded", "true")
	}
	for _, m := range plan.Candidates {
		if m.Type != kind {
			return wire.BadRequest("model_not_supported", "model",
				"model "+m.Name+" is a "+m.Type+" model and cannot serve this endpoint")
		}
	}
	if err := g.admit(c, x, plan, body); err != nil {
		return err
	}
	ctx, span := g.opts.Tracer.StartRequest(c.context(), operationName(x.endpoint), x.requested, x.id)
	x.span = span
	err = g.attempts(ctx, c, x, plan, body)
	if err != nil && x.served != nil && !c.committed {
		x.overhead = max(time.Since(x.start)-x.upstream-x.waited, 0)
		x.routeHeaders(c)
	}
	return err
}

// plan resolves the tier and chain: the request's tier header, else its
// criticality (or the key's default), moved cheaper when the team is past its
// budget's downgrade point; then checks the key may use them.
func (g *Gateway) plan(hc *call, x *exchange) (route.Plan, error) {
	c := x.caller
	x.criticality = hc.header("X-Tollgate-Criticality")
	if x.criticality == "" && c.Principal != nil {
		x.criticality = c.Key.DefaultCriticality
	}
	req := route.Request{Model: x.requested, Tier: hc.header("X-Tollgate-Tier"), Criticality: x.criticality,
		Downgrade: g.downgrade(hc.context(), c)}
	plan, err := route.Resolve(x.st.cfg, x.st.prof, req)
	if err != nil {
		return plan, planError(err)
	}
	x.tier, x.downgraded = plan.Tier, plan.Downgraded
	if c.Principal != nil && !c.Allows(x.requested, plan.Tier) {
		return plan, &wire.Error{Status: http.StatusForbidden, Type: "permission_error", Code: "model_not_allowed",
			Param: "model", Message: "this key may not use model " + x.requested + " in tier " + plan.Tier}
	}
	return plan, nil
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

// settle runs once the response is complete (settleLater, serveStream), so
// the client never waits on it: the reservation becomes the actual cost, the ledger gets its record,
// and the log its line.
func (g *Gateway) settle(ctx context.Context, x *exchange) {
	defer g.unsettled.Add(-1)
	defer recycle(x)
	cost, estimated := x.cost()
	g.settleAdmission(x, cost, x.served != nil && x.status < 400)
	led := x.record(cost)
	if g.opts.Ledger != nil {
		if err := g.opts.Ledger.Append(context.WithoutCancel(ctx), led); err != nil {
			g.log.Error("usage record not written", "request_id", x.id, "error", err)
		}
	}
	if g.opts.Alerts != nil {
		g.opts.Alerts.Observe(led)
	}
	if x.capture {
		g.opts.Payloads.Record(payload.Entry{Time: x.start, RequestID: x.id, TeamID: x.caller.teamID(),
			KeyID: x.caller.keyID(), Model: led.ServedModel, Status: led.Status, Stream: x.stream,
			Request: x.reqBody, Response: x.respBody})
	}
	rec := x.telemetryRecord(cost, estimated)
	g.metrics.ObserveRequest(rec)
	g.setBudgetGauge(ctx, x.caller)
	if x.span != nil {
		g.opts.Tracer.EndRequest(x.span, rec)
	}
	telemetry.LogRequest(ctx, g.log, rec)
}

// cost prices what was served. Without reported usage (a stream cut short),
// the reservation stands as the cost: a budget is never under-charged.
func (x *exchange) cost() (meter.Nanos, bool) {
	switch {
	case x.served == nil:
		return 0, false
	case x.usage != nil:
		return x.served.Price.Cost(x.usage), false
	case x.adm.reserve != nil && x.status < 400:
		return x.adm.reserved, true
	}
	return 0, false
}

// record is the request's ledger entry.
func (x *exchange) record(cost meter.Nanos) meter.Record {
	rec := meter.Record{Time: x.start.UTC(), RequestID: x.id, TeamID: x.caller.teamID(), KeyID: x.caller.keyID(),
		Endpoint: endpointName(x.endpoint), Tier: x.tier, Criticality: x.criticality, Downgraded: x.downgraded,
		RequestedModel: x.requested, Attempts: x.attempts, Fallback: x.fallback, Cost: cost,
		Latency: x.latency, TTFB: x.ttfb, Status: x.status, ErrorCode: x.errCode}
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	if x.served != nil {
		rec.ServedModel, rec.Provider, rec.Deployment = x.served.Name, x.dep.Provider, x.dep.ID
	}
	if u := x.usage; u != nil {
		rec.PromptTokens, rec.Completion, rec.CachedTokens = u.PromptTokens, u.CompletionTokens, u.CachedTokens()
	}
	return rec
}

// telemetryRecord is what the log line, the metrics and the trace say of
// the request.
func (x *exchange) telemetryRecord(cost meter.Nanos, estimated bool) *telemetry.Request {
	rec := &x.rec
	*rec = telemetry.Request{
		ID: x.id, Endpoint: endpointName(x.endpoint), Tier: x.tier, Criticality: x.criticality,
		RequestedModel: x.requested, Stream: x.stream, Attempts: x.attempts, Fallback: x.fallback,
		Trimmed: x.trimmed, Status: x.status, ErrorCode: x.errCode, TeamID: x.caller.teamID(), KeyID: x.caller.keyID(),
		Downgraded: x.downgraded, CostUSD: cost.USD(), CostEstimated: estimated,
		Latency: x.latency, TTFB: x.ttfb, Overhead: x.overhead, Time: x.start,
	}
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	if m := x.served; m != nil {
		rec.Model, rec.Provider, rec.Deployment = m.Name, x.dep.Provider, x.dep.ID
		if u := x.usage; u != nil {
			rec.UsageReported = true
			rec.PromptTokens, rec.CompletionTokens, rec.CachedTokens = u.PromptTokens, u.CompletionTokens, u.CachedTokens()
		}
	}
	return rec
}

func operationName(e provider.Endpoint) string {
	if e == provider.Embeddings {
		return "embeddings"
	}
	return "chat"
}

func endpointName(e provider.Endpoint) string {
	if e == provider.Embeddings {
		return "embeddings"
	}
	return "chat.completions"
}
