package gateway

import (
	"sync"
	"time"
)

// departures notices clients that leave while their request is still being
// served — usually while it waits on a slow upstream — so the upstream call
// is cancelled at once instead of running (and billing) to its end. The
// server does not read a connection while its handler runs, so a ticker
// peeks at the sockets of calls older than departureAge instead: a peek is
// one non-blocking syscall, and a request that is answered quickly is never
// peeked at all. A stream whose client left is also noticed by its next
// write; this catches the ones waiting for their first token.
type departures struct {
	mu   sync.Mutex
	live map[*call]struct{}
	stop chan struct{}
}

const (
	departureTick = 100 * time.Millisecond
	departureAge  = 50 * time.Millisecond
	// departurePeeks bounds the syscalls per tick: with more calls in
	// flight each one is looked at less often (every second at 10,000).
	departurePeeks = 1000
)

func newDepartures() *departures {
	return &departures{live: map[*call]struct{}{}, stop: make(chan struct{})}
}

func (d *departures) add(c *call) {
	c.since, c.conn = time.Now(), c.fc.Conn()
	d.mu.Lock()
	d.live[c] = struct{}{}
	d.mu.Unlock()
}

func (d *departures) remove(c *call) {
	d.mu.Lock()
	delete(d.live, c)
	d.mu.Unlock()
}

// run checks until close(d.stop).
func (d *departures) run() {
	t := time.NewTicker(departureTick)
	defer t.Stop()
	var due []*call
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		due = d.due(due[:0], time.Now().Add(-departureAge))
		for i, c := range due {
			if clientLeft(c.conn) {
				c.cancel()
			}
			due[i] = nil
		}
	}
}

// due lists up to departurePeeks calls older than cutoff; map order makes
// the choice a fair sample when there are more.
func (d *departures) due(out []*call, cutoff time.Time) []*call {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.live {
		if len(out) == departurePeeks {
			break
		}
		if c.since.Before(cutoff) {
			out = append(out, c)
		}
	}
	return out
}
