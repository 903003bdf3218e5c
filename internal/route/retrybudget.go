package route

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Retry budget window: budgetBuckets buckets of budgetBucket each, so the
// window slides a second at a time over the last 10 s.
const (
	budgetBuckets = 10
	budgetBucket  = time.Second
)

// RetryFloor is how many retries a RetryBudget allows in any window on top of
// its ratio, so that low traffic (where 20% of a few requests rounds to
// nothing) can still retry.
const RetryFloor = 10

// RetryBudget keeps retries and fallback attempts under a share of client
// requests over a sliding 10 s window, so that a failing provider is not
// stormed by every client retrying at once. In any window, retries may
// number at most RetryFloor + ratio × requests.
//
// Ratio is measured against first attempts (client requests), not against
// all attempts: with ratio 0.2, 1000 requests allow 200 retries (plus the
// floor).
//
// It is safe for concurrent use and its memory is fixed. The zero value is
// not usable; call NewRetryBudget.
type RetryBudget struct {
	now   func() time.Time
	base  time.Time
	ratio atomic.Uint64 // math.Float64bits of the ratio

	// mu guards buckets.
	mu      sync.Mutex
	buckets [budgetBuckets]budgetCount
}

// budgetCount is one second of traffic.
type budgetCount struct {
	n                 int64 // seconds since base
	requests, retries int64
}

// NewRetryBudget returns a budget allowing ratio retries per request (for
// example config.Profile.RetryBudget, 0.2). A nil now means time.Now.
func NewRetryBudget(ratio float64, now func() time.Time) *RetryBudget {
	if now == nil {
		now = time.Now
	}
	r := &RetryBudget{now: now, base: now()}
	r.SetRatio(ratio)
	return r
}

// SetRatio changes the ratio, for a config reload; counts are kept. A
// negative or NaN ratio counts as 0: only the floor remains.
func (r *RetryBudget) SetRatio(ratio float64) {
	if !(ratio > 0) {
		ratio = 0
	}
	r.ratio.Store(math.Float64bits(ratio))
}

// Request counts one client request (its first attempt).
func (r *RetryBudget) Request() {
	r.mu.Lock()
	r.bucketLocked(r.sec()).requests++
	r.mu.Unlock()
}

// Retry reports whether one more retry or fallback attempt may go out now,
// and counts it when so. A false means skip it: the caller moves on or
// fails, and does not wait for budget.
func (r *RetryBudget) Retry() bool {
	ratio := math.Float64frombits(r.ratio.Load())
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.sec()
	var requests, retries int64
	for _, c := range r.buckets {
		if c.n > n-budgetBuckets && c.n <= n {
			requests += c.requests
			retries += c.retries
		}
	}
	if float64(retries) >= RetryFloor+ratio*float64(requests) {
		return false
	}
	r.bucketLocked(n).retries++
	return true
}

func (r *RetryBudget) sec() int64 {
	return int64(max(r.now().Sub(r.base), 0) / budgetBucket)
}

// bucketLocked returns second n's bucket, emptying it if it held an older
// second.
func (r *RetryBudget) bucketLocked(n int64) *budgetCount {
	c := &r.buckets[n%budgetBuckets]
	if c.n != n {
		*c = budgetCount{n: n}
	}
	return c
}
