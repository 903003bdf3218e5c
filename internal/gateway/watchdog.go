package gateway

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/provider"
)

// watchdog bounds one stream attempt with a single runtime timer: the
// stream must commit within the first-byte timeout of the attempt's start,
// and once an event has come, the next must follow within the idle timeout.
// An event only stores its time; the timer, when it fires, cancels the
// attempt if a bound has passed and otherwise re-arms itself for the next
// one due. A stream of 24 events resets the timer not at all; one that
// lasts minutes, once per idle timeout.
//
// Resetting a timer on every event, as this replaced, cost more than the
// reset: Go's runtime treats a modified timer as possibly earlier than the
// netpoller's sleep and wakes it, or starts an idle thread to look. At 500
// streams a second about one stream in six paid a futex wake-up for it,
// most often at the first reset, between the upstream's first event and
// the client's first byte.
type watchdog struct {
	timer  *time.Timer
	base   time.Time // the attempt's start; times below are nanoseconds since
	cancel context.CancelCauseFunc
	idle   int64 // the idle bound; 0: none

	first atomic.Int64 // the first-byte deadline; 0 once the stream committed
	last  atomic.Int64 // when the last event came; 0 before the first

	mu      sync.Mutex
	stopped bool // stop ran, or the watchdog fired: the timer stays off
}

// newWatchdog starts the first-byte clock of an attempt that began at base.
func newWatchdog(base time.Time, firstByte, idle time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{base: base, cancel: cancel, idle: int64(max(idle, 0))}
	w.first.Store(int64(max(firstByte, 1)))
	w.timer = time.AfterFunc(firstByte-time.Since(base), w.fire)
	return w
}

// event records that an event came at now. The first one re-arms the timer
// only when the idle bound falls due before the first-byte deadline (an
// idle timeout shorter than the first-byte one); later ones never do, as
// their bound only moves later.
func (w *watchdog) event(now time.Time) {
	t := max(int64(now.Sub(w.base)), 1)
	if w.last.Swap(t) == 0 && w.idle > 0 && t+w.idle < w.first.Load() {
		w.mu.Lock()
		if !w.stopped {
			w.timer.Reset(time.Duration(t + w.idle - int64(time.Since(w.base))))
		}
		w.mu.Unlock()
	}
}

// committed lifts the first-byte bound: the stream has started.
func (w *watchdog) committed() { w.first.Store(0) }

// due is when the next bound passes.
func (w *watchdog) due() int64 {
	d := int64(math.MaxInt64)
	if f := w.first.Load(); f > 0 {
		d = f
	}
	if l := w.last.Load(); l > 0 && w.idle > 0 {
		d = min(d, l+w.idle)
	}
	return d
}

// fire runs when the timer does: it ends the attempt with
// provider.ErrAttemptTimeout if a bound has passed, or waits for the next.
func (w *watchdog) fire() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	now, due := int64(time.Since(w.base)), w.due()
	if now < due {
		if due != math.MaxInt64 {
			w.timer.Reset(time.Duration(due - now))
		}
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	w.cancel(provider.ErrAttemptTimeout)
}

// stop ends the watch; the attempt is over.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
}
