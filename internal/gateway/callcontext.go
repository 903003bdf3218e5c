package gateway

import (
	"context"
	"sync"
	"time"
)

// callContext is a call's context: cancelable, with the call's deadline.
// The deadline is enforced by the departures ticker, which ends the call
// with context.DeadlineExceeded as the cause once it has passed (up to one
// tick, 100 ms, late), instead of a timer per call: context.WithTimeout
// armed and stopped a runtime timer for every request, about 1.3% of the
// gateway's CPU under load. Deadline reports the bound, so dials, backoff
// waits and attempt timeouts are sized by it as before; what ends a call is
// told by context.Cause, as with a timer: DeadlineExceeded for the timeout,
// Canceled for a client that left or a call that finished.
//
// It also aborts the upstream exchange under way when the call ends
// (WatchAbort), which the transport would otherwise arrange with
// context.AfterFunc: a context of its own, a closure, a children map and a
// Done channel for the call's context — 8 allocations, 640 bytes and about
// 400 ns a request, to watch for an end that nearly never comes first.
type callContext struct {
	context.Context // a cancel context: contexts derived from the call's register with it
	cancel          context.CancelCauseFunc
	deadline        time.Time // zero: no request timeout

	mu      sync.Mutex
	abort   func() // the watched exchange's, until it stops watching
	watches uint64 // counts WatchAbort, so a stale stop cannot clear a newer watch
}

func (b *callContext) Deadline() (time.Time, bool) { return b.deadline, !b.deadline.IsZero() }

// WatchAbort arranges for abort to run once the call ends, as
// context.AfterFunc(b, abort) would: stop reports whether it kept abort from
// running. abort runs on the goroutine that ends the call, so it must not
// block (the transport's closes a socket); on an ended call it runs at once.
// The attempts of a call take turns, so one watch is kept here; an
// overlapping one falls back to context.AfterFunc.
func (b *callContext) WatchAbort(abort func()) (stop func() bool) {
	b.mu.Lock()
	if b.Err() != nil { // ended: end cancels before it takes the watch
		b.mu.Unlock()
		abort()
		return func() bool { return false }
	}
	if b.abort != nil {
		b.mu.Unlock()
		return context.AfterFunc(b.Context, abort)
	}
	b.abort = abort
	b.watches++
	w := b.watches
	b.mu.Unlock()
	return func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.watches != w || b.abort == nil {
			return false // stopped before, or ended: the abort ran or is running
		}
		b.abort = nil
		return true
	}
}

// end ends the call with cause (nil: context.Canceled) and aborts the
// exchange being watched. The context is canceled first, so the exchange
// that fails on the aborted socket finds out why from it.
func (b *callContext) end(cause error) {
	b.cancel(cause)
	b.mu.Lock()
	abort := b.abort
	b.abort = nil
	b.mu.Unlock()
	if abort != nil {
		abort()
	}
}
