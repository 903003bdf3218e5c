package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// settler settles, in batches on one goroutine, the requests no connection
// of the server carries (afterResponse settles the others): requests
// handled in process, as the benchmarks do. Spawning a goroutine (or
// signalling one) per request would wake an idle CPU on the request's path
// — on a small VM the most expensive thing a fast request does — so
// requests only append to a queue, and the settler polls it while there is
// traffic and sleeps on a channel after a quiet second: the first request
// after that wakes it, once.
type settler struct {
	mu    sync.Mutex
	queue []*exchange
	doze  doze // asleep: the settler waits for the next push, not on its timer
	stop  chan struct{}
	// settled counts the requests it settled: most go to their
	// connection's goroutine instead (afterResponse).
	settled atomic.Int64
}

// The settler's poll period while there is traffic is between settleMin
// and settleEvery, aimed at settleBatch requests a tick. Each tick wakes a
// thread, and on a VM a context switch is dear: at 500 req/s a fixed 5 ms
// period cost 4.2 context switches a request against nginx's 2.4 (20 ms:
// 3.25) and about a tenth more CPU per request. But a tick's batch runs as
// one burst on one core, some 8 µs a request, and a burst delays the
// requests whose next hop (the client, the upstream, the gateway's own
// threads) needs that core: at 2,800 req/s on one connection a 20 ms
// period made bursts of 50 requests, and seven in ten of the requests slower
// than 1 ms overlapped one. So the period shrinks as the rate grows,
// keeping bursts short, and stays at 20 ms below 400 req/s, where ticks
// would cost more than bursts. settleEvery also bounds how far a
// reservation, a log line and the metrics trail the response.
const (
	settleEvery = 20 * time.Millisecond
	settleMin   = 2 * time.Millisecond
	settleBatch = 8
	settleNap   = time.Second // no requests for this long: sleep until the next
)

// settlePeriod is the period after a tick that settled n requests queued
// over elapsed: the one at which the same rate queues settleBatch.
func settlePeriod(n int, elapsed time.Duration) time.Duration {
	if n <= settleBatch || elapsed <= 0 {
		return settleEvery
	}
	return min(max(elapsed*settleBatch/time.Duration(n), settleMin), settleEvery)
}

func newSettler(stop chan struct{}) *settler {
	return &settler{doze: newDoze(), stop: stop}
}

func (s *settler) push(x *exchange) {
	s.mu.Lock()
	s.queue = append(s.queue, x)
	wake := s.doze.rouse()
	s.mu.Unlock()
	if wake {
		s.doze.signal()
	}
}

// take swaps out what is queued; the settler is marked asleep when there is
// nothing and it is about to sleep.
func (s *settler) take(spare []*exchange, sleep bool) []*exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.queue
	s.queue = spare[:0]
	if len(out) == 0 && sleep {
		s.doze.asleep = true
	}
	return out
}

// run settles until stop is closed, then what is left.
func (s *settler) run(settle func(*exchange)) {
	t := time.NewTicker(settleEvery)
	defer t.Stop()
	var batch []*exchange
	var idle time.Duration
	period, last := settleEvery, time.Now()
	for {
		select {
		case <-s.stop:
			s.drain(settle)
			return
		case <-t.C:
		}
		now := time.Now()
		elapsed := now.Sub(last)
		last = now
		sleep := idle >= settleNap
		batch = s.take(batch, sleep)
		// A new period only when it moves by a fifth or more: the rate
		// wobbles from tick to tick.
		if p := settlePeriod(len(batch), elapsed); p < period*4/5 || p > period*5/4 {
			period = p
			t.Reset(period)
		}
		if len(batch) > 0 {
			s.settled.Add(int64(len(batch)))
			for i, x := range batch {
				settle(x)
				batch[i] = nil
			}
			idle = 0
			continue
		}
		if !sleep {
			idle += period
			continue
		}
		// take marked the settler asleep with the queue empty: the next
		// push wakes it.
		if !s.doze.sleep(t, settleEvery, s.stop) {
			s.drain(settle)
			return
		}
		idle = 0
		period, last = settleEvery, time.Now()
	}
}

func (s *settler) drain(settle func(*exchange)) {
	left := s.take(nil, false)
	s.settled.Add(int64(len(left)))
	for _, x := range left {
		settle(x)
	}
}

// settleFunc is the settler's callback.
func (g *Gateway) settleFunc(x *exchange) { g.settle(context.Background(), x) }
