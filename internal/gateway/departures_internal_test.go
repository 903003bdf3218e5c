package gateway

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func newTestCall() *call {
	var fc fasthttp.RequestCtx
	fc.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return &call{fc: &fc}
}

// The request timeout is the departures ticker's: a call past its deadline
// is ended with DeadlineExceeded as the cause, reports the deadline it was
// given, and nothing else is ended or peeked at before its time.
func TestDeparturesRequestTimeout(t *testing.T) {
	d := newDepartures()
	late, fresh, unbounded := newTestCall(), newTestCall(), newTestCall()
	d.add(late, 30*time.Millisecond)
	d.add(fresh, time.Hour)
	d.add(unbounded, 0)

	if dl, ok := late.context().Deadline(); !ok || dl != late.since.Add(30*time.Millisecond) {
		t.Errorf("Deadline() = %v, %v; want since+30ms", dl, ok)
	}
	if _, ok := unbounded.context().Deadline(); ok {
		t.Error("a call without a request timeout reports a deadline")
	}

	expired, peek := d.due(nil, nil, time.Now())
	if len(expired) != 0 || len(peek) != 0 {
		t.Fatalf("at once: %d expired, %d to peek; want none", len(expired), len(peek))
	}
	expired, _ = d.due(nil, nil, late.since.Add(30*time.Millisecond))
	if len(expired) != 1 || expired[0] != late {
		t.Fatalf("at the deadline: expired %v, want only the late call", expired)
	}
	expired, peek = d.due(nil, nil, unbounded.since.Add(departureAge+time.Millisecond))
	if len(expired) != 1 || len(peek) != 2 {
		t.Errorf("past departureAge: %d expired, %d to peek; want 1 and the 2 others", len(expired), len(peek))
	}

	go d.run()
	defer close(d.stop)
	select {
	case <-late.context().Done():
	case <-time.After(5 * departureTick):
		t.Fatal("the late call was not ended within five ticks of its deadline")
	}
	if cause := context.Cause(late.context()); !errors.Is(cause, context.DeadlineExceeded) {
		t.Errorf("cause = %v, want context.DeadlineExceeded", cause)
	}
	// A context derived from the call's, as an attempt's is, sees the same cause.
	child, cancel := context.WithCancel(late.context())
	defer cancel()
	if cause := context.Cause(child); !errors.Is(cause, context.DeadlineExceeded) {
		t.Errorf("derived context's cause = %v, want context.DeadlineExceeded", cause)
	}
	if fresh.context().Err() != nil || unbounded.context().Err() != nil {
		t.Errorf("calls within their time were ended: %v, %v", fresh.context().Err(), unbounded.context().Err())
	}
	fresh.bounds.end(nil)
	if cause := context.Cause(fresh.context()); !errors.Is(cause, context.Canceled) {
		t.Errorf("a finished call's cause = %v, want context.Canceled", cause)
	}
}

// Until the earliest deadline, a tick reads no more calls than it peeks at;
// once it has passed, every call past its deadline is found, however many
// others there are.
func TestDeparturesSoonest(t *testing.T) {
	d := newDepartures()
	var calls []*call
	for range departurePeeks + 100 {
		c := newTestCall()
		d.add(c, time.Hour)
		calls = append(calls, c)
	}
	late := newTestCall()
	d.add(late, 2*time.Hour)
	if d.soonest != calls[0].bounds.deadline {
		t.Errorf("soonest = %v, want the first call's deadline %v", d.soonest, calls[0].bounds.deadline)
	}
	expired, peek := d.due(nil, nil, late.since.Add(time.Minute))
	if len(expired) != 0 || len(peek) != departurePeeks {
		t.Errorf("before any deadline: %d expired, %d to peek; want 0 and %d", len(expired), len(peek), departurePeeks)
	}
	expired, peek = d.due(nil, nil, late.since.Add(90*time.Minute))
	if len(expired) != len(calls) || len(peek) != 1 || peek[0] != late {
		t.Errorf("past the hour: %d expired, %d to peek; want %d and the late call", len(expired), len(peek), len(calls))
	}
	for _, c := range calls {
		d.remove(c)
	}
	if expired, _ = d.due(nil, nil, late.since.Add(90*time.Minute)); len(expired) != 0 {
		t.Errorf("after the expired calls left: %d expired, want 0", len(expired))
	}
	if d.soonest != late.bounds.deadline {
		t.Errorf("soonest = %v, want the late call's deadline", d.soonest)
	}
}

// With no call live for departureNap, run stops its ticker and sleeps; a
// call added then wakes it, and is still ended at its deadline.
func TestDeparturesSleepsWhenIdle(t *testing.T) {
	d := newDepartures()
	go d.run()
	defer close(d.stop)
	asleep := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.doze.asleep
	}
	deadline := time.Now().Add(departureNap + 20*departureTick)
	for !asleep() {
		if time.Now().After(deadline) {
			t.Fatalf("not asleep %v after start with no call live", departureNap+20*departureTick)
		}
		time.Sleep(departureTick / 4)
	}
	c := newTestCall()
	d.add(c, 30*time.Millisecond)
	if asleep() {
		t.Fatal("still marked asleep after add")
	}
	select {
	case <-c.context().Done():
	case <-time.After(5 * departureTick):
		t.Fatal("a call added while run slept was not ended within five ticks of its deadline")
	}
	d.remove(c)
	// Asleep again once the call is gone.
	deadline = time.Now().Add(departureNap + 20*departureTick)
	for !asleep() {
		if time.Now().After(deadline) {
			t.Fatal("not asleep again after the last call was removed")
		}
		time.Sleep(departureTick / 4)
	}
}

// A stream whose events flow notices a departed client by its own writes:
// it is not peeked at, and the peeks go to the calls still waiting. It is
// peeked at again once its events pause for departureFlow, and its request
// timeout holds throughout.
func TestDeparturesSkipFlowingStreams(t *testing.T) {
	d := newDepartures()
	waiting, flowing, paused := newTestCall(), newTestCall(), newTestCall()
	for _, c := range []*call{waiting, flowing, paused} {
		d.add(c, time.Hour)
	}
	now := waiting.since.Add(time.Minute)
	flowing.lastEvent.Store(now.Add(-departureFlow / 2).UnixNano())
	paused.lastEvent.Store(now.Add(-2 * departureFlow).UnixNano())
	_, peek := d.due(nil, nil, now)
	if len(peek) != 2 || peek[0] == flowing || peek[1] == flowing {
		t.Errorf("peek %d calls (flowing among them: %v), want the waiting and the paused ones", len(peek), slices.Contains(peek, flowing))
	}
	expired, _ := d.due(nil, nil, flowing.since.Add(2*time.Hour))
	if !slices.Contains(expired, flowing) || len(expired) != 3 {
		t.Errorf("past the request timeout: expired %d calls, flowing among them %v; want all three", len(expired), slices.Contains(expired, flowing))
	}
}
