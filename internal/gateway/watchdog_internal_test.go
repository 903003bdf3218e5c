package gateway

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/provider"
)

// watched starts a watchdog whose cancel reports on the returned channel.
func watched(firstByte, idle time.Duration) (*watchdog, <-chan time.Time) {
	fired := make(chan time.Time, 2)
	w := newWatchdog(time.Now(), firstByte, idle, func(cause error) {
		if errors.Is(cause, provider.ErrAttemptTimeout) {
			fired <- time.Now()
		}
	})
	return w, fired
}

// firesWithin waits for the watchdog to cancel, between lo and hi after start.
func firesWithin(t *testing.T, fired <-chan time.Time, start time.Time, lo, hi time.Duration) {
	t.Helper()
	select {
	case at := <-fired:
		if d := at.Sub(start); d < lo {
			t.Errorf("cancelled after %v, before its bound of %v", d, lo)
		}
	case <-time.After(hi):
		t.Fatalf("not cancelled within %v", hi)
	}
}

func quiet(t *testing.T, fired <-chan time.Time, d time.Duration) {
	t.Helper()
	select {
	case at := <-fired:
		t.Fatalf("cancelled at %v, with no bound passed", at)
	case <-time.After(d):
	}
}

func TestWatchdogFirstByte(t *testing.T) {
	start := time.Now()
	w, fired := watched(60*time.Millisecond, time.Hour)
	defer w.stop()
	firesWithin(t, fired, start, 60*time.Millisecond, 2*time.Second)
	quiet(t, fired, 50*time.Millisecond) // once only
}

// Events before the commit do not lift the first-byte bound (hold-back
// reads several); the commit does.
func TestWatchdogFirstByteUntilCommit(t *testing.T) {
	start := time.Now()
	w, fired := watched(80*time.Millisecond, time.Hour)
	defer w.stop()
	w.event(time.Now())
	firesWithin(t, fired, start, 80*time.Millisecond, 2*time.Second)

	w, fired = watched(80*time.Millisecond, time.Hour)
	defer w.stop()
	w.event(time.Now())
	w.committed()
	quiet(t, fired, 200*time.Millisecond)
}

// Events closer together than the idle bound keep a stream alive across
// many idle periods and first-byte deadlines; a gap ends it one idle bound
// after the last event.
func TestWatchdogIdle(t *testing.T) {
	w, fired := watched(30*time.Millisecond, 50*time.Millisecond)
	defer w.stop()
	w.event(time.Now())
	w.committed()
	for range 15 {
		time.Sleep(10 * time.Millisecond)
		w.event(time.Now())
	}
	select {
	case <-fired:
		t.Fatal("cancelled while events kept coming")
	default:
	}
	last := time.Now()
	w.event(last)
	firesWithin(t, fired, last, 50*time.Millisecond, 2*time.Second)
}

// An idle bound shorter than the first-byte one applies from the first
// event on, even before the commit.
func TestWatchdogIdleShorterThanFirstByte(t *testing.T) {
	w, fired := watched(10*time.Second, 60*time.Millisecond)
	defer w.stop()
	first := time.Now()
	w.event(first)
	firesWithin(t, fired, first, 60*time.Millisecond, 2*time.Second)
}

func TestWatchdogStop(t *testing.T) {
	w, fired := watched(40*time.Millisecond, 40*time.Millisecond)
	w.event(time.Now())
	w.stop()
	quiet(t, fired, 150*time.Millisecond)
}
