package alert

import (
	"slices"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// ringSize is how many requests the window remembers. With more than
// ringSize requests in one config.Alerts.Window, the rates and the p95 are
// over the newest ringSize requests, a shorter span than the window: memory
// stays fixed (16 bytes a request, 256 KiB in all) whatever the traffic.
const ringSize = 1 << 14

// sample is one settled request as the window keeps it.
type sample struct {
	at      int64 // when Observe saw it, Unix nanoseconds
	latency int32 // milliseconds, clamped; enough for a p95 compared in ms
	flags   uint8
}

// Sample flags.
const (
	flagFallback uint8 = 1 << iota // the request fell back
	flagError                      // status 500 or more
	flagOK                         // status 200–399: its latency counts toward the p95
)

// counted reports whether r belongs in the window: a request that reached an
// upstream, or that the gateway itself failed with a 5xx. Requests rejected
// before any upstream call (auth, rate limits, budgets, bad input) say
// nothing about provider health and would only dilute the rates.
func counted(r *meter.Record) bool {
	return r.Attempts > 0 || r.Status >= 500
}

// newSample converts r, seen at Unix nanosecond at.
func newSample(r *meter.Record, at int64) sample {
	s := sample{at: at, latency: clampMillis(r.Latency)}
	if r.Fallback {
		s.flags |= flagFallback
	}
	switch {
	case r.Status >= 500:
		s.flags |= flagError
	case r.Status >= 200 && r.Status < 400:
		s.flags |= flagOK
	}
	return s
}

func clampMillis(d time.Duration) int32 {
	ms := d.Milliseconds()
	switch {
	case ms < 0:
		return 0
	case ms > 1<<31-1:
		return 1<<31 - 1
	}
	return int32(ms)
}

// window is a fixed ring of the newest samples. The zero value is empty and
// ready; it is large, so allocate it with new. It must not be copied.
type window struct {
	mu   sync.Mutex // guards every field below
	buf  [ringSize]sample
	next int // index of the next write
	n    int // samples held, at most ringSize
}

// add stores s over the oldest sample once the ring is full.
func (w *window) add(s sample) {
	w.mu.Lock()
	w.buf[w.next] = s
	w.next = (w.next + 1) & (ringSize - 1)
	if w.n < ringSize {
		w.n++
	}
	w.mu.Unlock()
}

// stats sums up the samples of one window.
type stats struct {
	requests  int // counted requests
	fallbacks int
	errors    int
	// latencies holds the successful requests' latencies in ms, sorted.
	latencies []int32
}

// p95 returns the 95th percentile latency by nearest rank, and false when
// there are no successful requests.
func (st *stats) p95() (time.Duration, bool) {
	n := len(st.latencies)
	if n == 0 {
		return 0, false
	}
	rank := (95*n + 99) / 100 // ceil(0.95 n), 1-based
	return time.Duration(st.latencies[rank-1]) * time.Millisecond, true
}

// collect fills st with the samples seen at or after since, reusing
// st.latencies' storage. It scans the whole ring (microseconds) rather than
// trusting samples to be in time order.
func (w *window) collect(since int64, st *stats) {
	*st = stats{latencies: st.latencies[:0]}
	w.mu.Lock()
	for i := range w.n {
		s := &w.buf[i]
		if s.at < since {
			continue
		}
		st.requests++
		if s.flags&flagFallback != 0 {
			st.fallbacks++
		}
		if s.flags&flagError != 0 {
			st.errors++
		}
		if s.flags&flagOK != 0 {
			st.latencies = append(st.latencies, s.latency)
		}
	}
	w.mu.Unlock()
	slices.Sort(st.latencies)
}
