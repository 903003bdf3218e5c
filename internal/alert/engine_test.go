package alert

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
)

var t0 = time.Date(2026, 4, 15, 12, 0, 0, 0, time.UTC)

// TestFallbackRateLifecycle walks one alert through fire, quiet, repeat and
// resolve, with its webhook.
func TestFallbackRateLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	rcv := newReceiver(t)
	e := newEngine(t, clk, Options{Rules: rules(config.Webhook{URL: rcv.srv.URL, Format: config.WebhookJSON})})
	log := &eventLog{e: e}

	fell := ok
	fell.Fallback, fell.Attempts = true, 2
	feed(e, 16, ok)
	feed(e, 4, fell) // 20% > 15%
	e.Evaluate(ctx)
	wantEvents(t, "first evaluation", log.since(t), firing(FallbackRateHigh))

	var got Event
	rcv.next(t, &got)
	want := Event{Name: FallbackRateHigh, State: StateFiring, Value: 0.2, Threshold: 0.15, Labels: map[string]string{},
		StartedAt: t0, At: t0,
		Message: "fallback rate 20.0% over the last 5m (4 of 20 requests) is above 15.0%"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("webhook body (-got +want):\n%s", diff)
	}
	if a := e.Alerts().Active; len(a) != 1 || a[0].Name != FallbackRateHigh || !a[0].StartedAt.Equal(t0) {
		t.Errorf("Active = %+v, want one fallback_rate_high since %v", a, t0)
	}

	clk.advance(time.Minute) // within the 2m cooldown
	e.Evaluate(ctx)
	wantEvents(t, "within cooldown", log.since(t))
	rcv.none(t)

	clk.advance(time.Minute) // cooldown over, still 20%
	e.Evaluate(ctx)
	wantEvents(t, "after cooldown", log.since(t), repeat(FallbackRateHigh))
	rcv.next(t, &got)
	if !got.Repeat || !got.StartedAt.Equal(t0) || !got.At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("repeat webhook = %+v, want repeat=true, started_at %v, at %v", got, t0, t0.Add(2*time.Minute))
	}

	feed(e, 10, ok) // 4 of 30: 13.3%
	clk.advance(10 * time.Second)
	e.Evaluate(ctx)
	wantEvents(t, "good traffic", log.since(t), resolved(FallbackRateHigh))
	rcv.next(t, &got)
	if got.State != StateResolved || !strings.Contains(got.Message, "back at or under 15.0%") {
		t.Errorf("resolved webhook = %+v", got)
	}
	if a := e.Alerts().Active; len(a) != 0 {
		t.Errorf("Active after resolve = %+v, want none", a)
	}

	clk.advance(time.Minute)
	e.Evaluate(ctx)
	wantEvents(t, "still clear", log.since(t))
}

func TestLatencyP95(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	e := newEngine(t, clk, Options{Rules: rules()})
	log := &eventLog{e: e}

	slow := ok
	slow.Latency = 2 * time.Second
	feed(e, 19, slow)
	failed := slow
	failed.Status = 502
	feed(e, 50, failed) // not successful: no latency sample (but fires error_rate_high)
	e.Evaluate(ctx)
	wantEvents(t, "19 successful requests", log.since(t), firing(ErrorRateHigh))

	feed(e, 1, slow)
	e.Evaluate(ctx)
	got := log.since(t)
	wantEvents(t, "20 successful requests", got, firing(LatencyP95High))
	if got[0].Value != 2000 || got[0].Threshold != 800 {
		t.Errorf("value, threshold = %v, %v; want 2000, 800 (ms)", got[0].Value, got[0].Threshold)
	}

	clk.advance(6 * time.Minute) // the slow ones leave the window
	feed(e, 95, ok)
	feed(e, 5, slow) // 5% slow: the p95 is the 95th, a fast one
	e.Evaluate(ctx)
	got = log.since(t)
	wantEvents(t, "fast traffic", got, resolved(LatencyP95High), resolved(ErrorRateHigh))
	if got[0].Value != 100 {
		t.Errorf("resolved p95 = %vms, want 100ms", got[0].Value)
	}

	feed(e, 1, slow) // 6 of 101 slow: p95 is rank 96, slow
	e.Evaluate(ctx)
	wantEvents(t, "6% slow", log.since(t), firing(LatencyP95High))
}

func TestErrorRate(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	r := rules()
	r.FallbackRate, r.LatencyP95 = 0, 0
	e := newEngine(t, clk, Options{Rules: r})
	log := &eventLog{e: e}

	rejected := meter.Record{Status: 429} // never reached an upstream: not counted
	feed(e, 1000, rejected)
	bad := ok
	bad.Status = 503
	feed(e, 1, bad)
	feed(e, 18, ok)
	e.Evaluate(ctx)
	wantEvents(t, "19 requests", log.since(t)) // min_requests suppresses

	noUpstream := meter.Record{Status: 503} // all breakers open: the gateway's own 5xx counts
	feed(e, 1, noUpstream)
	e.Evaluate(ctx)
	got := log.since(t)
	wantEvents(t, "20 requests, 2 errors", got, firing(ErrorRateHigh))
	if got[0].Value != 0.1 {
		t.Errorf("error rate = %v, want 0.1", got[0].Value)
	}

	clientGone := ok
	clientGone.Status = 499 // not a server error
	feed(e, 30, clientGone)
	e.Evaluate(ctx)
	wantEvents(t, "2 of 50", log.since(t), resolved(ErrorRateHigh))
}

// TestTooFewRequestsKeepsState checks that an active alert neither repeats
// nor resolves while the window holds fewer than min_requests.
func TestTooFewRequestsKeepsState(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	e := newEngine(t, clk, Options{Rules: rules()})
	log := &eventLog{e: e}
	bad := ok
	bad.Status = 500
	feed(e, 20, bad)
	e.Evaluate(ctx)
	wantEvents(t, "all failing", log.since(t), firing(ErrorRateHigh))

	clk.advance(10 * time.Minute) // window empty, cooldown long past
	e.Evaluate(ctx)
	wantEvents(t, "no traffic", log.since(t))
	if a := e.Alerts().Active; len(a) != 1 {
		t.Errorf("Active = %+v, want error_rate_high still active", a)
	}
	feed(e, 20, ok)
	e.Evaluate(ctx)
	wantEvents(t, "traffic back", log.since(t), resolved(ErrorRateHigh))
}

// TestRuleTurnedOff checks that a reload turning a rule off resolves it.
func TestRuleTurnedOff(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	e := newEngine(t, clk, Options{Rules: rules()})
	log := &eventLog{e: e}
	bad := ok
	bad.Status = 500
	feed(e, 20, bad)
	e.Evaluate(ctx)
	wantEvents(t, "failing", log.since(t), firing(ErrorRateHigh))

	r := rules()
	r.ErrorRate = 0
	e.SetRules(r)
	e.Evaluate(ctx)
	got := log.since(t)
	wantEvents(t, "turned off", got, resolved(ErrorRateHigh))
	if got[0].Message != "the rule was turned off" {
		t.Errorf("message = %q", got[0].Message)
	}
}

// spendFunc is a Spend returning whatever amount was last set.
type spendFunc struct {
	mu    sync.Mutex // guards every field
	spent meter.Nanos
	err   error
	since time.Time
}

func (s *spendFunc) set(usd int64, err error) {
	s.mu.Lock()
	s.spent, s.err = meter.Nanos(usd*1e9), err
	s.mu.Unlock()
}

func (s *spendFunc) spend(_ context.Context, since time.Time) (meter.Nanos, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.since = since
	return s.spent, s.err
}

func TestMonthlySpend(t *testing.T) {
	ctx := context.Background()
	april := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC) // 30 days
	clk := newClock(april.Add(12 * time.Hour))
	sp := &spendFunc{}
	e := newEngine(t, clk, Options{Rules: rules(), Spend: sp.spend})
	log := &eventLog{e: e}

	sp.set(300, nil) // would project to $18000, but it is the first day
	e.Evaluate(ctx)
	wantEvents(t, "day 1", log.since(t))
	if !sp.since.Equal(april) {
		t.Errorf("Spend since = %v, want %v", sp.since, april)
	}

	clk.set(april.AddDate(0, 0, 10)) // 10 of 30 days gone
	sp.set(2000, nil)                // on course for $6000
	e.Evaluate(ctx)
	got := log.since(t)
	wantEvents(t, "day 10, $2000", got, firing(MonthlySpendForecast))
	if got[0].Value != 6000 || got[0].Threshold != 5000 || got[0].Labels["month"] != "2026-04" {
		t.Errorf("forecast event = %+v, want value 6000, threshold 5000, month 2026-04", got[0])
	}

	sp.set(0, errors.New("ledger down")) // state kept, nothing resolves
	clk.advance(time.Hour)
	e.Evaluate(ctx)
	wantEvents(t, "ledger down", log.since(t))

	clk.advance(24 * time.Hour)
	sp.set(5000, nil)
	e.Evaluate(ctx)
	wantEvents(t, "$5000 spent", log.since(t), firing(MonthlySpendExceeded), repeat(MonthlySpendForecast))

	clk.set(time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC))
	sp.set(10, nil)
	e.Evaluate(ctx)
	got = log.since(t)
	wantEvents(t, "next month", got, resolved(MonthlySpendExceeded), resolved(MonthlySpendForecast))
	if got[0].Message != "month 2026-04 ended" {
		t.Errorf("message = %q, want month 2026-04 ended", got[0].Message)
	}
}

func TestForecast(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name           string
		spent          meter.Nanos
		elapsed, total time.Duration
		want           meter.Nanos
	}{
		{"a third", 2000e9, 10 * day, 30 * day, 6000e9},
		{"not exact", 1, 3 * day, 31 * day, 10},
		{"nothing spent", 0, day, 30 * day, 0},
		{"month over", 7, 30 * day, 30 * day, 7},
		{"huge", math.MaxInt64 / 2, day, 30 * day, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := forecast(tt.spent, tt.elapsed, tt.total); got != tt.want {
				t.Errorf("forecast(%d, %v, %v) = %d, want %d", tt.spent, tt.elapsed, tt.total, got, tt.want)
			}
		})
	}
}

func TestBreakerOpen(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	e := newEngine(t, clk, Options{Rules: rules()})
	log := &eventLog{e: e}

	e.BreakerChanged("gpt#1", "open")
	e.BreakerChanged("gpt#2", "open")
	clk.advance(20 * time.Second)
	e.BreakerChanged("gpt#2", "closed") // a short blip: never alerts
	clk.advance(20 * time.Second)
	e.BreakerChanged("gpt#1", "half-open") // still not closed
	clk.advance(10 * time.Second)
	e.BreakerChanged("gpt#1", "open")
	e.Evaluate(ctx)
	wantEvents(t, "open 50s", log.since(t))

	clk.advance(10 * time.Second)
	e.Evaluate(ctx)
	got := log.since(t)
	wantEvents(t, "open 60s", got, firing(BreakerOpen))
	if got[0].Labels["deployment"] != "gpt#1" || got[0].Value != 60 || got[0].Threshold != 60 {
		t.Errorf("event = %+v, want deployment gpt#1, value 60, threshold 60", got[0])
	}

	e.BreakerChanged("gpt#1", "closed")
	e.Evaluate(ctx)
	got = log.since(t)
	wantEvents(t, "closed", got, resolved(BreakerOpen))
	if got[0].Message != "breaker of deployment gpt#1 closed" {
		t.Errorf("message = %q", got[0].Message)
	}
}

// TestRun checks that Run evaluates on its ticker and returns when its
// context ends.
func TestRun(t *testing.T) {
	clk := newClock(t0)
	e := newEngine(t, clk, Options{Rules: rules()})
	feed(e, 20, meter.Record{Attempts: 1, Status: 500})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.Run(ctx, time.Millisecond) })
	deadline := time.Now().Add(5 * time.Second)
	for len(e.Alerts().Active) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if a := e.Alerts().Active; len(a) != 1 || a[0].Name != ErrorRateHigh {
		t.Errorf("Active = %+v, want error_rate_high", a)
	}
}

func TestHistoryBounded(t *testing.T) {
	ctx := context.Background()
	clk := newClock(t0)
	e := newEngine(t, clk, Options{Rules: rules()})
	for i := range 120 { // 60 fire/resolve pairs of one breaker
		if i%2 == 0 {
			e.BreakerChanged("d", "open")
			clk.advance(time.Minute)
		} else {
			e.BreakerChanged("d", "closed")
		}
		e.Evaluate(ctx)
	}
	h := e.Alerts().History
	if len(h) != historySize {
		t.Fatalf("len(History) = %d, want %d", len(h), historySize)
	}
	if h[0].State != StateResolved || h[1].State != StateFiring || h[0].At.Before(h[len(h)-1].At) {
		t.Errorf("History starts %v, want newest first: a resolve, then its firing", brief(h[:2]))
	}
}
