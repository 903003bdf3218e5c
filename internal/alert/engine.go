// Package alert watches what the gateway does and raises alerts when a
// profile's rules (config.Alerts) are broken: too many fallbacks or errors,
// a slow p95, a month's spend over or on course for its budget, a breaker
// that stays open.
//
// Requests reach it through Observe and breaker changes through
// BreakerChanged, both cheap enough for the request path. Rules are judged
// by Evaluate, which Run calls on a ticker. Each alert fires once, repeats
// after the cooldown while it holds, and resolves when it clears; every such
// event is one log line and, when webhooks are configured, one POST per
// webhook made by a single background sender, so a dead receiver never slows
// requests or evaluation.
package alert

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
)

// historySize is how many events Alerts returns.
const historySize = 100

// DefaultInterval is Run's interval when it is given none.
const DefaultInterval = 10 * time.Second

// Options configure an Engine.
type Options struct {
	// Rules are the profile's alert rules. Zero Window, Cooldown and
	// MinRequests (a hand-built config.Alerts) take the config defaults.
	Rules config.Alerts
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Spend returns the total spent since the start of the month (from the
	// ledger). Evaluate calls it once per pass, with a 5 s timeout; it
	// should be an indexed sum. Nil turns spend alerts off.
	Spend func(ctx context.Context, since time.Time) (meter.Nanos, error)
	// Logger receives one line per event; nil means slog.Default().
	Logger *slog.Logger
	// Client posts webhooks; nil means a client with a 5 s timeout.
	Client *http.Client
}

// Engine evaluates alert rules. It is safe for concurrent use. New starts
// its webhook sender goroutine, so every Engine must be closed with Close.
type Engine struct {
	now   func() time.Time
	spend func(ctx context.Context, since time.Time) (meter.Nanos, error)
	log   *slog.Logger
	rules atomic.Pointer[config.Alerts] // with defaults filled; replaced whole by SetRules
	win   *window
	send  *sender

	breakerMu sync.Mutex // guards breakers
	// breakers maps a deployment to when its breaker left closed; closed
	// breakers have no entry. Bounded by the deployment IDs passed in.
	breakers map[string]time.Time

	evalMu  sync.Mutex // serializes Evaluate; guards scratch
	scratch stats

	stateMu  sync.Mutex // guards active and history
	active   map[string]*Alert
	history  [historySize]Event
	histNext int // index of the next history write
	histN    int
}

// New returns an engine judging opts.Rules and starts its webhook sender.
func New(opts Options) *Engine {
	e := &Engine{
		now:      opts.Now,
		spend:    opts.Spend,
		log:      opts.Logger,
		win:      new(window),
		breakers: make(map[string]time.Time),
		active:   make(map[string]*Alert),
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{Timeout: defaultClientTimeout}
	}
	e.SetRules(opts.Rules)
	e.send = newSender(client, e.log)
	return e
}

// SetRules replaces the rules, as a config reload does. They apply from the
// next evaluation; the window keeps its requests, and deliveries already
// queued go to the webhooks they were queued for.
func (e *Engine) SetRules(r config.Alerts) {
	if r.Window <= 0 {
		r.Window = config.DefaultAlertWindow
	}
	if r.Cooldown <= 0 {
		r.Cooldown = config.DefaultAlertCooldown
	}
	if r.MinRequests <= 0 {
		r.MinRequests = config.DefaultAlertMinRequests
	}
	r.Webhooks = slices.Clone(r.Webhooks)
	e.rules.Store(&r)
}

// Observe feeds one settled request. It is called on the request path: it
// takes one short lock, never waits on I/O and allocates nothing.
func (e *Engine) Observe(r meter.Record) {
	if !counted(&r) {
		return
	}
	e.win.add(newSample(&r, e.now().UnixNano()))
}

// BreakerChanged is told every breaker transition: the deployment ID and
// "open", "half-open" or "closed". A breaker counts as open from when it
// leaves closed until it returns, half-open included: a dead upstream cycles
// open → half-open → open and would otherwise never stay open long. It is
// cheap enough for the request path; other states are ignored.
func (e *Engine) BreakerChanged(deployment, state string) {
	now := e.now()
	e.breakerMu.Lock()
	defer e.breakerMu.Unlock()
	switch state {
	case "closed":
		delete(e.breakers, deployment)
	case "open", "half-open":
		if _, ok := e.breakers[deployment]; !ok {
			e.breakers[deployment] = now
		}
	}
}

// Run evaluates the rules every interval (DefaultInterval if not positive)
// until ctx ends. The owner runs it in a goroutine and waits for it; a
// panicking evaluation is logged and the loop goes on.
func (e *Engine) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.evaluateSafely(ctx)
		}
	}
}

func (e *Engine) evaluateSafely(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			e.log.LogAttrs(ctx, slog.LevelError, "alert: evaluation panicked",
				slog.String("event", "alert_error"), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	e.Evaluate(ctx)
}

// Evaluate judges every rule once at the engine's clock, then logs each
// event and queues its webhooks. It waits only on Options.Spend, never on a
// webhook.
func (e *Engine) Evaluate(ctx context.Context) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	now := e.now()
	r := e.rules.Load()
	events := e.apply(now, r.Cooldown, e.judge(ctx, now, r))
	for i := range events {
		e.emit(ctx, r.Webhooks, &events[i])
	}
}

// judge asks every rule for its verdict. evalMu is held.
func (e *Engine) judge(ctx context.Context, now time.Time, r *config.Alerts) []verdict {
	st := &e.scratch
	e.win.collect(now.Add(-r.Window).UnixNano(), st)
	exceeded, projected := e.spendVerdicts(ctx, now, r)
	return []verdict{
		rateVerdict(FallbackRateHigh, "fallback rate", st.fallbacks, st.requests, r.FallbackRate, r),
		latencyVerdict(st, r),
		rateVerdict(ErrorRateHigh, "error rate (status 500 or more)", st.errors, st.requests, r.ErrorRate, r),
		exceeded,
		projected,
		e.breakerVerdict(now, r),
	}
}

// apply moves each alert through its lifecycle and returns the events:
// a new holding finding fires; an active one that still holds repeats once
// cooldown has passed since it was last sent; one that no longer holds, has
// no finding any more or whose rule is off resolves.
func (e *Engine) apply(now time.Time, cooldown time.Duration, vs []verdict) []Event {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	var events []Event
	for _, v := range vs {
		if !v.known {
			continue
		}
		seen := make(map[string]bool, len(v.findings))
		for i := range v.findings {
			f := &v.findings[i]
			k := key(v.name, f.labels)
			seen[k] = true
			if ev, ok := e.step(k, v.name, f, now, cooldown); ok {
				events = append(events, ev)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(e.active)) {
			a := e.active[k]
			if a.Name != v.name || seen[k] {
				continue
			}
			msg := "the rule was turned off"
			if !v.off && v.gone != nil {
				msg = v.gone(a.Labels)
			}
			events = append(events, e.resolveLocked(k, a, a.Value, msg, now))
		}
	}
	for i := range events {
		e.history[e.histNext] = events[i]
		e.histNext = (e.histNext + 1) % historySize
		e.histN = min(e.histN+1, historySize)
	}
	return events
}

// step applies one finding to the alert it names; stateMu is held.
func (e *Engine) step(k, name string, f *finding, now time.Time, cooldown time.Duration) (Event, bool) {
	a := e.active[k]
	switch {
	case f.holds && a == nil:
		a = &Alert{Name: name, Labels: f.labels, Value: f.value, Threshold: f.threshold, Message: f.message,
			StartedAt: now, LastSent: now}
		e.active[k] = a
		return a.event(StateFiring, false, now), true
	case f.holds:
		a.Value, a.Threshold, a.Message = f.value, f.threshold, f.message
		if now.Sub(a.LastSent) < cooldown {
			return Event{}, false
		}
		a.LastSent = now
		return a.event(StateFiring, true, now), true
	case a != nil:
		a.Threshold = f.threshold
		return e.resolveLocked(k, a, f.value, f.message, now), true
	}
	return Event{}, false
}

// resolveLocked ends the active alert a under key k; stateMu is held.
func (e *Engine) resolveLocked(k string, a *Alert, value float64, msg string, now time.Time) Event {
	delete(e.active, k)
	a.Value, a.Message = value, msg
	return a.event(StateResolved, false, now)
}

func (a *Alert) event(state string, repeat bool, now time.Time) Event {
	return Event{Name: a.Name, State: state, Repeat: repeat, Value: a.Value, Threshold: a.Threshold,
		Labels: a.Labels, StartedAt: a.StartedAt, At: now, Message: a.Message}
}

// emit logs ev and queues one delivery per webhook.
func (e *Engine) emit(ctx context.Context, hooks []config.Webhook, ev *Event) {
	logEvent(ctx, e.log, ev)
	for _, h := range hooks {
		b, err := body(h.Format, ev)
		if err != nil { // only a NaN or Inf value could do it
			e.log.LogAttrs(ctx, slog.LevelError, "alert: encode webhook body",
				slog.String("event", "alert_error"), slog.String("name", ev.Name), slog.Any("error", err))
			continue
		}
		e.send.enqueue(delivery{url: h.URL, target: redact(h.URL), name: ev.Name, body: b})
	}
}

// Alerts returns the active alerts and the last 100 events, newest first.
func (e *Engine) Alerts() Snapshot {
	e.stateMu.Lock()
	s := Snapshot{Active: make([]Alert, 0, len(e.active)), History: make([]Event, 0, e.histN)}
	for _, a := range e.active {
		c := *a
		c.Labels = maps.Clone(a.Labels)
		s.Active = append(s.Active, c)
	}
	for i := 1; i <= e.histN; i++ {
		ev := e.history[(e.histNext-i+historySize)%historySize]
		ev.Labels = maps.Clone(ev.Labels)
		s.History = append(s.History, ev)
	}
	e.stateMu.Unlock()
	slices.SortFunc(s.Active, func(a, b Alert) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(key("", a.Labels), key("", b.Labels)))
	})
	s.Webhooks = WebhookStats{
		Queued:    e.send.queued(),
		Delivered: e.send.delivered.Load(),
		Failed:    e.send.failed.Load(),
		Dropped:   e.send.dropped.Load(),
	}
	return s
}

// Close stops the webhook sender: it delivers what is queued until ctx
// ends, then abandons the rest (counted as dropped) and returns an error
// wrapping ctx.Err() if anything was abandoned. Events after Close are
// still logged; their webhooks are dropped. Stop Run before calling it.
func (e *Engine) Close(ctx context.Context) error {
	return e.send.close(ctx)
}
