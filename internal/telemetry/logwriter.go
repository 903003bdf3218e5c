package telemetry

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"
)

// LogWriter buffers log lines and writes them out at most every interval,
// or when the buffer fills: one write(2) for many request lines instead of
// one each. A crash loses at most one interval of log lines; the usage
// ledger, which must not lose anything, has its own journal.
//
// After a second with nothing to write the flusher stops its ticker and
// sleeps until the next Write, so an idle gateway does not wake a thread
// every interval.
type LogWriter struct {
	mu     sync.Mutex // guards buf and asleep
	buf    *bufio.Writer
	asleep bool          // the flusher waits on wake; the next Write signals it
	wake   chan struct{} // cap 1

	stop chan struct{}
	done chan struct{}
}

// logNap is how long the buffer must stay empty before the flusher sleeps.
const logNap = time.Second

// NewLogWriter starts a LogWriter over w; Close flushes and stops it.
func NewLogWriter(w io.Writer, interval time.Duration) *LogWriter {
	l := &LogWriter{buf: bufio.NewWriterSize(w, 64<<10), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop(interval)
	return l
}

// Write buffers p. slog handlers call it once per record, whole.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.buf.Write(p)
	wake := l.asleep
	l.asleep = false
	l.mu.Unlock()
	if wake {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return n, err
}

// Flush writes out what is buffered.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Flush()
}

func (l *LogWriter) loop(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	naps := max(1, int(logNap/interval))
	quiet := 0 // ticks in a row that found nothing to write
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if !l.flushOrRest(&quiet, naps) {
			continue
		}
		t.Stop()
		select {
		case <-l.stop:
			return
		case <-l.wake:
		}
		t.Reset(interval)
	}
}

// flushOrRest writes out what is buffered, or counts a quiet tick; after
// naps of them it marks the flusher asleep, under the lock Write takes, and
// reports true.
func (l *LogWriter) flushOrRest(quiet *int, naps int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Buffered() > 0 {
		*quiet = 0
		l.buf.Flush()
		return false
	}
	if *quiet++; *quiet < naps {
		return false
	}
	*quiet = 0
	l.asleep = true
	return true
}

// Close stops the flusher and writes out the rest.
func (l *LogWriter) Close(ctx context.Context) error {
	close(l.stop)
	select {
	case <-l.done:
	case <-ctx.Done():
	}
	return l.Flush()
}
