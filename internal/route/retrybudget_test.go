package route

import (
	"math"
	"sync"
	"testing"
	"time"
)

// drain takes retries until refused (at most limit) and returns how many
// were allowed.
func drain(r *RetryBudget, limit int) int {
	n := 0
	for n < limit && r.Retry() {
		n++
	}
	return n
}

func TestRetryBudget(t *testing.T) {
	type step struct {
		advance  time.Duration
		requests int
		ratio    float64 // when non-zero, SetRatio first
		want     int     // retries allowed before the first refusal
	}
	cases := []struct {
		name  string
		ratio float64
		steps []step
	}{
		{"ratio of requests plus floor", 0.2, []step{
			{requests: 1000, want: 200 + RetryFloor},
			{want: 0},
		}},
		{"floor with no traffic", 0.2, []step{{want: RetryFloor}}},
		{"zero ratio leaves the floor", 0, []step{{requests: 1000, want: RetryFloor}}},
		{"window slides and budget returns", 0.2, []step{
			{requests: 1000, want: 210},                          // t=0
			{advance: 5 * time.Second, requests: 500, want: 100}, // t=5: 10 + 0.2×1500 − 210
			{advance: 4 * time.Second, want: 0},                  // t=9: t=0 still in
			{advance: time.Second, want: 10},                     // t=10: t=0 gone: 10 + 0.2×500 − 100
			{advance: 5 * time.Second, want: 10 - 10},            // t=15: t=5 gone, but t=10 spent the floor
			{advance: 10 * time.Second, want: RetryFloor},        // t=25: all gone
		}},
		{"SetRatio keeps counts", 0.2, []step{
			{requests: 100, want: 30},
			{ratio: 0.5, want: 30},
			{ratio: -1, want: 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			r := NewRetryBudget(tc.ratio, c.Now)
			for i, s := range tc.steps {
				c.Advance(s.advance)
				if s.ratio != 0 {
					r.SetRatio(s.ratio)
				}
				for range s.requests {
					r.Request()
				}
				if got := drain(r, 10000); got != s.want {
					t.Fatalf("step %d: retries allowed = %d, want %d", i, got, s.want)
				}
			}
		})
	}
}

func TestRetryBudgetNaN(t *testing.T) {
	r := NewRetryBudget(math.NaN(), newFakeClock().Now)
	for range 100 {
		r.Request()
	}
	if got := drain(r, 1000); got != RetryFloor {
		t.Errorf("retries allowed with a NaN ratio = %d, want the floor %d", got, RetryFloor)
	}
}

// TestRetryBudgetConcurrent checks, under the race detector, that racing
// callers never overspend.
func TestRetryBudgetConcurrent(t *testing.T) {
	r := NewRetryBudget(0.1, newFakeClock().Now)
	var mu sync.Mutex // guards allowed
	allowed := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 500 {
				r.Request()
				if r.Retry() {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if limit := RetryFloor + 400; allowed > limit {
		t.Errorf("retries allowed = %d, want at most %d", allowed, limit)
	}
}

func BenchmarkRetryBudget(b *testing.B) {
	r := NewRetryBudget(0.2, nil)
	b.Run("request", func(b *testing.B) {
		for b.Loop() {
			r.Request()
		}
	})
	b.Run("retry", func(b *testing.B) {
		for b.Loop() {
			r.Retry()
		}
	})
}
