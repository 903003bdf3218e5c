package route

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tollgate-gw/tollgate/internal/config"
)

// fakeClock is a manual clock safe for concurrent reads.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// breakerOp is one step of a breaker script.
type breakerOp func(t *testing.T, b *Breakers, c *fakeClock)

const bid = "m#1"

// attempt runs n admitted attempts with outcome o; each must be admitted.
func attempt(o Outcome, n int) breakerOp {
	return func(t *testing.T, b *Breakers, _ *fakeClock) {
		t.Helper()
		for i := range n {
			if !b.Allow(bid) {
				t.Fatalf("Allow before outcome %d of %d = false, want true (state %v)", i+1, n, b.State(bid))
			}
			b.Report(bid, o)
		}
	}
}

func allow(want bool) breakerOp {
	return func(t *testing.T, b *Breakers, _ *fakeClock) {
		t.Helper()
		if got := b.Allow(bid); got != want {
			t.Fatalf("Allow = %v, want %v (state %v)", got, want, b.State(bid))
		}
	}
}

func report(o Outcome) breakerOp {
	return func(_ *testing.T, b *Breakers, _ *fakeClock) { b.Report(bid, o) }
}

func advance(d time.Duration) breakerOp {
	return func(_ *testing.T, _ *Breakers, c *fakeClock) { c.Advance(d) }
}

func wantState(want State) breakerOp {
	return func(t *testing.T, b *Breakers, _ *fakeClock) {
		t.Helper()
		if got := b.State(bid); got != want {
			t.Fatalf("State = %v, want %v", got, want)
		}
	}
}

func TestBreakers(t *testing.T) {
	// base opens after 3 failures in a row; its error-rate rule is out of reach.
	base := config.Breaker{Failures: 3, ErrorRate: 0.5, MinRequests: 1000, Window: 10 * time.Second, Cooldown: 5 * time.Second}
	// rate opens only on the error rate: >50% of at least 10 in 10 s.
	rate := config.Breaker{Failures: 1000, ErrorRate: 0.5, MinRequests: 10, Window: 10 * time.Second, Cooldown: 5 * time.Second}
	const (
		toOpen     = "closed>open"
		toHalf     = "open>half-open"
		halfClosed = "half-open>closed"
		halfOpen   = "half-open>open"
	)
	opened := []breakerOp{attempt(Failure, 3), wantState(Open)}
	cases := []struct {
		name string
		cfg  config.Breaker
		ops  []breakerOp
		want []string // transitions seen by OnChange
	}{
		{"opens after N consecutive failures", base,
			[]breakerOp{attempt(Failure, 2), wantState(Closed), attempt(Failure, 1), wantState(Open)},
			[]string{toOpen}},
		{"success resets the consecutive count", base,
			[]breakerOp{attempt(Failure, 2), attempt(Success, 1), attempt(Failure, 2), wantState(Closed)},
			nil},
		{"open refuses without waiting until cool-down", base,
			append(opened, allow(false), advance(5*time.Second-1), allow(false), wantState(Open)),
			[]string{toOpen}},
		{"after cool-down exactly one probe", base,
			append(opened, advance(5*time.Second), allow(true), wantState(HalfOpen), allow(false), allow(false)),
			[]string{toOpen, toHalf}},
		{"probe success closes", base,
			append(opened, advance(5*time.Second), allow(true), allow(false), report(Success), wantState(Closed),
				allow(true), allow(true)),
			[]string{toOpen, toHalf, halfClosed}},
		{"closing starts fresh counts", base,
			append(opened, advance(5*time.Second), attempt(Success, 1), attempt(Failure, 2), wantState(Closed)),
			[]string{toOpen, toHalf, halfClosed}},
		{"probe failure re-opens and restarts the cool-down", base,
			append(opened, advance(10*time.Second), allow(true), report(Failure), wantState(Open),
				advance(5*time.Second-1), allow(false), advance(1), allow(true), wantState(HalfOpen)),
			[]string{toOpen, toHalf, halfOpen, toHalf}},
		{"ignored never opens", config.Breaker{Failures: 1, ErrorRate: 0.01, MinRequests: 1, Window: time.Second, Cooldown: time.Second},
			[]breakerOp{attempt(Ignored, 100), wantState(Closed)},
			nil},
		{"ignored does not reset the consecutive count", base,
			[]breakerOp{attempt(Failure, 2), attempt(Ignored, 5), attempt(Failure, 1), wantState(Open)},
			[]string{toOpen}},
		{"ignored probe frees the slot without changing state", base,
			append(opened, advance(5*time.Second), allow(true), allow(false), report(Ignored), wantState(HalfOpen),
				allow(true), allow(false), report(Success), wantState(Closed)),
			[]string{toOpen, toHalf, halfClosed}},
		{"lost probe is replaced after a cool-down", base,
			append(opened, advance(5*time.Second), allow(true), advance(5*time.Second-1), allow(false),
				advance(1), allow(true), allow(false)),
			[]string{toOpen, toHalf}},
		{"late report while open is dropped", config.Breaker{Failures: 1, Cooldown: time.Second},
			[]breakerOp{allow(true), allow(true), report(Failure), wantState(Open), report(Success), wantState(Open)},
			[]string{toOpen}},
		{"error rate under MinRequests does not open", rate,
			[]breakerOp{attempt(Success, 4), attempt(Failure, 5), wantState(Closed)},
			nil},
		{"error rate over threshold with MinRequests opens", rate,
			[]breakerOp{attempt(Success, 4), attempt(Failure, 5), attempt(Failure, 1), wantState(Open)},
			[]string{toOpen}},
		{"error rate equal to threshold does not open", rate,
			[]breakerOp{attempt(Success, 5), attempt(Failure, 5), attempt(Success, 1), attempt(Failure, 1), wantState(Closed)},
			nil},
		{"window buckets expire old failures", rate,
			[]breakerOp{attempt(Failure, 6), attempt(Success, 3), advance(10 * time.Second), attempt(Failure, 1), wantState(Closed)},
			nil},
		{"window slides one bucket at a time", rate,
			// t=0: 6 failures; t=5s: 3 successes; t=10s drops the failures,
			// so 4 more failures make 4/7 over fewer than 10: closed. At
			// t=9.999s they were still in: 7/10 opens.
			[]breakerOp{attempt(Failure, 6), advance(5 * time.Second), attempt(Success, 3), advance(5 * time.Second),
				attempt(Failure, 4), wantState(Closed)},
			nil},
		{"failures still in the window count", rate,
			[]breakerOp{attempt(Failure, 6), advance(5 * time.Second), attempt(Success, 3), advance(5*time.Second - 1),
				attempt(Failure, 1), wantState(Open)},
			[]string{toOpen}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			b := NewBreakers(tc.cfg, c.Now)
			var got []string
			b.OnChange(func(id string, from, to State) {
				if id != bid {
					t.Errorf("OnChange id = %q, want %q", id, bid)
				}
				_ = b.State(id) // callbacks run outside locks: calling back must not deadlock
				got = append(got, from.String()+">"+to.String())
			})
			for _, op := range tc.ops {
				op(t, b, c)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("OnChange transitions (-got +want):\n%s", diff)
			}
		})
	}
}

func TestBreakersUnknownIDIsClosed(t *testing.T) {
	b := NewBreakers(config.Breaker{}, newFakeClock().Now)
	if got := b.State("nope"); got != Closed {
		t.Errorf("State(unknown) = %v, want closed", got)
	}
	if !b.Allow("nope") || !b.Available("nope") {
		t.Errorf("Allow/Available(unknown) = false, want true")
	}
	b.Report("nope", Ignored)
	if len(*b.m.Load()) != 0 {
		t.Errorf("Ignored on an unknown id created an entry; want none")
	}
}

func TestBreakersDefaults(t *testing.T) {
	c := newFakeClock()
	b := NewBreakers(config.Breaker{}, c.Now)
	for range defaultFailures - 1 {
		b.Report(bid, Failure)
	}
	if got := b.State(bid); got != Closed {
		t.Fatalf("State after %d failures = %v, want closed", defaultFailures-1, got)
	}
	b.Report(bid, Failure)
	if got := b.State(bid); got != Open {
		t.Fatalf("State after %d failures = %v, want open", defaultFailures, got)
	}
	c.Advance(defaultCooldown - 1)
	if b.Allow(bid) {
		t.Fatalf("Allow before the default cool-down = true, want false")
	}
}

func TestBreakersSetConfigKeepsState(t *testing.T) {
	c := newFakeClock()
	b := NewBreakers(config.Breaker{Failures: 1, Cooldown: time.Minute}, c.Now)
	b.Report(bid, Failure)
	b.SetConfig(config.Breaker{Failures: 1, Cooldown: time.Second, Window: time.Second})
	if got := b.State(bid); got != Open {
		t.Fatalf("State after SetConfig = %v, want open", got)
	}
	c.Advance(time.Second)
	if !b.Allow(bid) {
		t.Errorf("Allow after the new, shorter cool-down = false, want true")
	}
}

func TestBreakersAvailable(t *testing.T) {
	c := newFakeClock()
	b := NewBreakers(config.Breaker{Failures: 1, Cooldown: time.Second}, c.Now)
	b.Report(bid, Failure)
	steps := []struct {
		name string
		do   func()
		want bool
	}{
		{"open", func() {}, false},
		{"cool-down over", func() { c.Advance(time.Second) }, true},
		{"probe out", func() { b.Allow(bid) }, false},
		{"probe ignored", func() { b.Report(bid, Ignored) }, true},
		{"closed", func() { b.Allow(bid); b.Report(bid, Success) }, true},
	}
	for _, s := range steps {
		s.do()
		if got := b.Available(bid); got != s.want {
			t.Errorf("%s: Available = %v, want %v", s.name, got, s.want)
		}
	}
	if got := b.State(bid); got != Closed {
		t.Errorf("State = %v, want closed", got)
	}
}

// TestBreakersOneProbeConcurrently checks that racing callers after the
// cool-down get exactly one probe between them.
func TestBreakersOneProbeConcurrently(t *testing.T) {
	c := newFakeClock()
	b := NewBreakers(config.Breaker{Failures: 1, Cooldown: time.Second}, c.Now)
	var changes atomic.Int64
	b.OnChange(func(string, State, State) { changes.Add(1) })
	b.Report(bid, Failure)
	c.Advance(time.Second)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if b.Allow(bid) {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 1 {
		t.Errorf("probes admitted = %d, want 1", got)
	}
	if got := changes.Load(); got != 2 {
		t.Errorf("transitions = %d, want 2 (closed>open, open>half-open)", got)
	}
}

// TestBreakersConcurrent is for the race detector: many deployments, mixed
// outcomes, a moving clock, a reload.
func TestBreakersConcurrent(t *testing.T) {
	c := newFakeClock()
	b := NewBreakers(config.Breaker{Failures: 3, ErrorRate: 0.3, MinRequests: 5, Window: time.Second, Cooldown: 10 * time.Millisecond}, c.Now)
	var changes atomic.Int64
	b.OnChange(func(string, State, State) { changes.Add(1) })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				id := fmt.Sprintf("d%d", (g+i)%4)
				if !b.Allow(id) {
					continue
				}
				b.Report(id, Outcome(i%3))
				if i%100 == 0 {
					c.Advance(5 * time.Millisecond)
				}
				if i == 1000 && g == 0 {
					b.SetConfig(config.Breaker{Failures: 2, Cooldown: time.Millisecond})
				}
				_ = b.State(id)
			}
		})
	}
	wg.Wait()
	if changes.Load() == 0 {
		t.Errorf("no transitions in a mixed run; want some")
	}
}

func BenchmarkBreakersAllowReport(b *testing.B) {
	br := NewBreakers(config.Breaker{}, time.Now)
	br.Report(bid, Success)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if br.Allow(bid) {
				br.Report(bid, Success)
			}
		}
	})
	b.Run("parallel-one-id", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if br.Allow(bid) {
					br.Report(bid, Success)
				}
			}
		})
	})
}
