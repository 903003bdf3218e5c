package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func newTestCallContext() *callContext {
	b := &callContext{}
	b.Context, b.cancel = context.WithCancelCause(context.Background())
	return b
}

// A watch stopped before the call ends never aborts; one the end finds
// runs once, after the context has ended, and its stop then reports false.
func TestCallContextWatchAbort(t *testing.T) {
	b := newTestCallContext()
	stop := b.WatchAbort(func() { t.Error("a stopped watch aborted") })
	if !stop() {
		t.Error("stop of a live watch = false")
	}
	if stop() {
		t.Error("second stop = true")
	}

	var aborted atomic.Int32
	var errAtAbort error
	stop = b.WatchAbort(func() { errAtAbort = context.Cause(b); aborted.Add(1) })
	b.end(context.DeadlineExceeded)
	if aborted.Load() != 1 || !errors.Is(errAtAbort, context.DeadlineExceeded) {
		t.Errorf("aborts %d, cause seen by the abort %v; want 1 and the deadline", aborted.Load(), errAtAbort)
	}
	if stop() {
		t.Error("stop after the abort ran = true")
	}
	b.end(nil) // ending twice (a timeout, then finish) aborts nothing more
	if aborted.Load() != 1 {
		t.Errorf("aborts after a second end: %d", aborted.Load())
	}

	// A watch on a call that has ended aborts at once.
	stop = b.WatchAbort(func() { aborted.Add(1) })
	if aborted.Load() != 2 || stop() {
		t.Errorf("watch on an ended call: aborts %d, stop true", aborted.Load())
	}
}

// A stale stop (called again after a newer watch began) leaves the newer
// watch in place; an overlapping watch falls back to context.AfterFunc and
// still aborts when the call ends.
func TestCallContextWatchStaleAndOverlap(t *testing.T) {
	b := newTestCallContext()
	first := b.WatchAbort(func() { t.Error("the first, stopped watch aborted") })
	first()
	var second, third atomic.Int32
	b.WatchAbort(func() { second.Add(1) })
	if first() {
		t.Error("stale stop = true")
	}
	done := make(chan struct{})
	b.WatchAbort(func() { third.Add(1); close(done) }) // overlaps the second
	b.end(nil)
	<-done // AfterFunc runs it in its own goroutine
	if second.Load() != 1 || third.Load() != 1 {
		t.Errorf("aborts: second %d, overlapping %d; want 1 and 1", second.Load(), third.Load())
	}
}

// Whatever the interleaving of an exchange's stop and the call's end, the
// abort runs exactly when stop reports that it did not keep it from running
// (the transport pools a conn only on true). Run with -race.
func TestCallContextWatchRace(t *testing.T) {
	for range 2000 {
		b := newTestCallContext()
		var aborted atomic.Int32
		stop := b.WatchAbort(func() { aborted.Add(1) })
		var wg sync.WaitGroup
		var stopped bool
		wg.Add(2)
		go func() { defer wg.Done(); stopped = stop() }()
		go func() { defer wg.Done(); b.end(nil) }()
		wg.Wait()
		if want := int32(0); stopped && aborted.Load() != want || !stopped && aborted.Load() != 1 {
			t.Fatalf("stop = %v, aborts = %d", stopped, aborted.Load())
		}
	}
}
