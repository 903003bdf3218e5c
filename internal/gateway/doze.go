package gateway

import "time"

// doze lets a goroutine that polls on a ticker sleep through a quiet spell
// instead, so an idle gateway wakes no thread for nothing. The poller sets
// asleep under its owner's lock when it finds nothing to do; the next
// producer, under the same lock, clears it with rouse and then signals.
// asleep is guarded by the owner's lock, wake by itself.
type doze struct {
	asleep bool
	wake   chan struct{} // cap 1
}

func newDoze() doze { return doze{wake: make(chan struct{}, 1)} }

// rouse clears the mark, with the owner's lock held, and reports whether
// the poller was asleep: the caller then calls signal, once unlocked.
func (z *doze) rouse() bool {
	was := z.asleep
	z.asleep = false
	return was
}

func (z *doze) signal() {
	select {
	case z.wake <- struct{}{}:
	default:
	}
}

// sleep stops t, waits for a signal, and restarts t at every; it reports
// false, t stopped, when stop closes first. The poller set asleep before.
func (z *doze) sleep(t *time.Ticker, every time.Duration, stop <-chan struct{}) bool {
	t.Stop()
	select {
	case <-stop:
		return false
	case <-z.wake:
	}
	t.Reset(every)
	return true
}
