package telemetry

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) snapshot() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestLogWriterBatchesAndFlushes(t *testing.T) {
	out := &lockedBuffer{}
	w := NewLogWriter(out, time.Hour) // only Close flushes
	for range 100 {
		w.Write([]byte(`{"event":"llm_request_completed"}` + "\n"))
	}
	if s, _ := out.snapshot(); s != "" {
		t.Fatalf("written before any flush: %d bytes", len(s))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, writes := out.snapshot()
	if strings.Count(s, "\n") != 100 || writes != 1 {
		t.Errorf("%d lines in %d writes, want 100 in 1", strings.Count(s, "\n"), writes)
	}
}

func TestLogWriterFlushesOnInterval(t *testing.T) {
	out := &lockedBuffer{}
	w := NewLogWriter(out, 5*time.Millisecond)
	defer w.Close(context.Background())
	w.Write([]byte("line\n"))
	for range 200 {
		if s, _ := out.snapshot(); s == "line\n" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the line was never flushed")
}

// After logNap with nothing to write the flusher sleeps; a line written
// then wakes it and is flushed within an interval, not at Close.
func TestLogWriterSleepsWhenIdle(t *testing.T) {
	out := &lockedBuffer{}
	w := NewLogWriter(out, 20*time.Millisecond)
	defer w.Close(context.Background())
	asleep := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.asleep
	}
	deadline := time.Now().Add(logNap + time.Second)
	for !asleep() {
		if time.Now().After(deadline) {
			t.Fatalf("flusher not asleep %v after start with nothing written", logNap+time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.Write([]byte("late\n"))
	for range 100 {
		if s, _ := out.snapshot(); s == "late\n" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("a line written while the flusher slept was not flushed within 500 ms")
}
