package gateway

import (
	"testing"
	"time"
)

// The settler's period aims at settleBatch requests a tick, within
// [settleMin, settleEvery].
func TestSettlePeriod(t *testing.T) {
	for _, tc := range []struct {
		n       int
		elapsed time.Duration
		want    time.Duration
	}{
		{0, 20 * time.Millisecond, settleEvery},                // idle
		{settleBatch, 20 * time.Millisecond, settleEvery},      // 400 req/s: ticks cost more than bursts
		{10, 20 * time.Millisecond, 16 * time.Millisecond},     // 500 req/s
		{56, 20 * time.Millisecond, 2857142 * time.Nanosecond}, // 2,800 req/s
		{400, 20 * time.Millisecond, settleMin},                // 20,000 req/s
		{40, 0, settleEvery},                                   // no time measured
	} {
		if got := settlePeriod(tc.n, tc.elapsed); got != tc.want {
			t.Errorf("settlePeriod(%d, %v) = %v, want %v", tc.n, tc.elapsed, got, tc.want)
		}
	}
}

// Requests pushed at a steady rate are all settled, and none waits longer
// than settleEvery and a little scheduling slack once its period adapted.
func TestSettlerSettlesEveryRequest(t *testing.T) {
	stop := make(chan struct{})
	s := newSettler(stop)
	settled := make(chan time.Time, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(func(*exchange) { settled <- time.Now() })
	}()
	const n = 600
	pushed := make([]time.Time, n)
	for i := range n {
		pushed[i] = time.Now()
		s.push(&exchange{})
		time.Sleep(500 * time.Microsecond)
	}
	deadline := time.After(5 * time.Second)
	var worst time.Duration
	for i := range n {
		select {
		case at := <-settled:
			// Settled in push order: one goroutine takes the queue whole.
			worst = max(worst, at.Sub(pushed[i]))
		case <-deadline:
			t.Fatalf("%d of %d requests settled in 5 s", i, n)
		}
	}
	close(stop)
	<-done
	if worst > settleEvery+30*time.Millisecond {
		t.Errorf("a request waited %v to be settled, want at most about %v", worst, settleEvery)
	}
}
