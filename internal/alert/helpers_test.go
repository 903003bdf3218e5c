package alert

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
)

// clock is an injected clock that moves only when told.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// receiver is a webhook endpoint that records every body it is sent.
type receiver struct {
	srv    *httptest.Server
	bodies chan []byte
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{bodies: make(chan []byte, 64)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if ct := req.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("webhook Content-Type = %q, want application/json", ct)
		}
		b, _ := io.ReadAll(req.Body)
		r.bodies <- b
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits briefly for the next body and decodes it into v.
func (r *receiver) next(t *testing.T, v any) {
	t.Helper()
	select {
	case b := <-r.bodies:
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("webhook body %s: %v", b, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook received within 5s")
	}
}

// none checks that no body arrives within a short wait.
func (r *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case b := <-r.bodies:
		t.Fatalf("unexpected webhook: %s", b)
	case <-time.After(50 * time.Millisecond):
	}
}

// rules are test rules: every rate and p95 rule on, a 5 minute window, 20
// requests minimum, a 2 minute cooldown.
func rules(hooks ...config.Webhook) config.Alerts {
	return config.Alerts{
		FallbackRate: 0.15, LatencyP95: 800 * time.Millisecond, ErrorRate: 0.05,
		BreakerOpen: time.Minute, Window: 5 * time.Minute, MinRequests: 20, Cooldown: 2 * time.Minute,
		MonthlyBudget: 5000_000_000_000, MonthlyBudgetUSD: 5000,
		Webhooks: hooks,
	}
}

// newEngine returns an engine on clk, closed when the test ends (and
// checked to have stopped its goroutine).
func newEngine(t *testing.T, clk *clock, opts Options) *Engine {
	t.Helper()
	opts.Now = clk.now
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = e.Close(ctx)
		select {
		case <-e.send.done:
		default:
			t.Error("webhook sender still running after Close")
		}
	})
	return e
}

// ok is a successful, fast, direct request.
var ok = meter.Record{Attempts: 1, Status: 200, Latency: 100 * time.Millisecond}

// feed observes n copies of r.
func feed(e *Engine, n int, r meter.Record) {
	for range n {
		e.Observe(r)
	}
}

// eventLog tracks the history between calls.
type eventLog struct {
	e    *Engine
	seen int // events seen so far; the history holds 100 at most
}

// since returns the events added since the last call, oldest first.
func (l *eventLog) since(t *testing.T) []Event {
	t.Helper()
	h := l.e.Alerts().History // newest first
	if len(h) >= historySize {
		t.Fatal("test produced 100 events; eventLog cannot tell new from old")
	}
	n := len(h) - l.seen
	l.seen = len(h)
	out := make([]Event, 0, n)
	for i := n - 1; i >= 0; i-- {
		out = append(out, h[i])
	}
	return out
}

// wantEvents checks got against (name, state, repeat) triples.
func wantEvents(t *testing.T, step string, got []Event, want ...Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events %v, want %d %v", step, len(got), brief(got), len(want), brief(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].State != want[i].State || got[i].Repeat != want[i].Repeat {
			t.Fatalf("%s: event %d = %v, want %v", step, i, brief(got[i:i+1]), brief(want[i:i+1]))
		}
	}
}

func brief(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Name + "/" + ev.State
		if ev.Repeat {
			out[i] += "/repeat"
		}
	}
	return out
}

func firing(name string) Event { return Event{Name: name, State: StateFiring} }

func repeat(name string) Event { return Event{Name: name, State: StateFiring, Repeat: true} }

func resolved(name string) Event { return Event{Name: name, State: StateResolved} }
