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
type LogWriter struct {
	mu  sync.Mutex // guards buf
	buf *bufio.Writer

	stop chan struct{}
	done chan struct{}
}

// NewLogWriter starts a LogWriter over w; Close flushes and stops it.
func NewLogWriter(w io.Writer, interval time.Duration) *LogWriter {
	l := &LogWriter{buf: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop(interval)
	return l
}

// Write buffers p. slog handlers call it once per record, whole.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
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
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Flush()
		}
	}
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
