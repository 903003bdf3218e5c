package gateway

import (
	"context"
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
// write, so a stream whose events flow (one within departureFlow) is not
// peeked at either: the peeks go to the calls waiting on the upstream — for
// an answer, a first token, or an event after a long pause. (A soak of
// thousands of streams otherwise spent a peek for every third event, 6% of
// the gateway's CPU, and left the waiting calls peeked at less often.) The
// same ticker ends calls whose request timeout has passed (see
// callContext).
type departures struct {
	mu   sync.Mutex
	live map[*call]struct{}
	// soonest is no later than the earliest deadline in live (zero: none
	// known): until it passes, due has no deadline to look for and stops
	// at departurePeeks calls rather than reading them all.
	soonest time.Time
	// doze is asleep while run waits for the next add, not on its ticker,
	// because no call was live for departureNap.
	doze doze
	stop chan struct{}
}

const (
	departureTick = 100 * time.Millisecond
	departureAge  = 50 * time.Millisecond
	// departurePeeks bounds the syscalls per tick: with more calls in
	// flight each one is looked at less often (every second at 10,000).
	departurePeeks = 1000
	// departureNap is how long no call must be live before run sleeps.
	departureNap = time.Second
	// departureFlow is how recent a stream's last event must be for its
	// own writes to stand in for peeks: a departed client is then noticed
	// within about this long, as a peek would at 10,000 calls in flight.
	departureFlow = time.Second
)

func newDepartures() *departures {
	return &departures{live: map[*call]struct{}{}, doze: newDoze(), stop: make(chan struct{})}
}

// add starts watching c, and gives it its context: ended by cancel, or by
// run once timeout (if positive) has passed.
func (d *departures) add(c *call, timeout time.Duration) {
	c.since, c.conn = time.Now(), c.fc.Conn()
	c.bounds.Context, c.bounds.cancel = context.WithCancelCause(context.Background())
	if timeout > 0 {
		c.bounds.deadline = c.since.Add(timeout)
	}
	d.mu.Lock()
	d.live[c] = struct{}{}
	d.noteDeadline(c.bounds.deadline)
	wake := d.doze.rouse()
	d.mu.Unlock()
	if wake {
		d.doze.signal()
	}
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
	var expired, due []*call
	quiet := 0 // ticks in a row that found no call live
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		expired, due = d.due(expired[:0], due[:0], time.Now())
		for i, c := range expired {
			c.bounds.end(context.DeadlineExceeded)
			expired[i] = nil
		}
		for i, c := range due {
			if clientLeft(c.conn) {
				c.bounds.end(nil)
			}
			due[i] = nil
		}
		if d.rest(&quiet) && !d.doze.sleep(t, departureTick, d.stop) {
			return
		}
	}
}

// rest counts the ticks that found no call live and reports, after
// departureNap of them, that run may sleep: it marks d asleep under the
// lock add takes, so the next add wakes run.
func (d *departures) rest(quiet *int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.live) > 0 {
		*quiet = 0
		return false
	}
	if *quiet++; *quiet < int(departureNap/departureTick) {
		return false
	}
	*quiet = 0
	d.doze.asleep = true
	return true
}

// due lists the calls whose deadline has passed, all of them, and up to
// departurePeeks of the others older than departureAge, streams whose
// events flow left out; map order makes the choice a fair sample when
// there are more. Before soonest it has no deadline to look for and stops
// at the calls it peeks at.
func (d *departures) due(expired, peek []*call, now time.Time) ([]*call, []*call) {
	cutoff := now.Add(-departureAge)
	flowing := now.Add(-departureFlow).UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	all := !d.soonest.IsZero() && !now.Before(d.soonest)
	if all {
		// A call already ended keeps soonest in the past until it is
		// removed: it is ended again each tick, which is harmless.
		d.soonest = time.Time{}
	}
	for c := range d.live {
		if !all && len(peek) == departurePeeks {
			break
		}
		dl := c.bounds.deadline
		switch {
		case all && !dl.IsZero() && !now.Before(dl):
			expired = append(expired, c)
		case len(peek) < departurePeeks && c.since.Before(cutoff) && c.lastEvent.Load() < flowing:
			peek = append(peek, c)
		}
		if all {
			d.noteDeadline(dl)
		}
	}
	return expired, peek
}

// noteDeadline keeps soonest no later than dl (zero: none); d.mu is held.
func (d *departures) noteDeadline(dl time.Time) {
	if !dl.IsZero() && (d.soonest.IsZero() || dl.Before(d.soonest)) {
		d.soonest = dl
	}
}
