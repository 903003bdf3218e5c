package gateway

import (
	"io"
	"iter"
)

// streamBody carries a streamed answer from the pipeline to the connection.
// fasthttp writes a response only after its handler returns, so a stream
// request's pipeline runs as a coroutine (iter.Pull) that the connection's
// goroutine resumes: the handler runs it until it commits (its first event)
// or ends with a complete error response, and returns; fasthttp then writes
// the headers and calls WriteTo, which writes and flushes each event and
// resumes the pipeline for the next. One goroutine is running at any time,
// and switching between the two costs no scheduler wake-up, as a channel
// hand-off between goroutines did (two per event, plus one to commit).
//
// A write returns once its event is on the wire, or failed: the pipeline
// learns at once that the client left, and may reuse its buffer.
type streamBody struct {
	next  func() ([]byte, bool)
	stop  func()
	yield func([]byte) bool
	first []byte // the event the pipeline committed with, still to write
	err   error  // why the connection refused a write
}

// runStream starts pipeline as a coroutine and runs it until its first
// write or its end. It reports whether the pipeline is suspended in its
// first write (that event then waits in first).
func (s *streamBody) runStream(pipeline func()) bool {
	s.next, s.stop = iter.Pull(func(yield func([]byte) bool) {
		s.yield = yield
		reserveStack()
		pipeline()
	})
	var ok bool
	s.first, ok = s.next()
	return ok
}

// reserveStack grows the calling goroutine's stack to 8 KiB in one step.
// iter.Pull starts every stream's pipeline on a new goroutine with the
// runtime's smallest stack (2 KiB), and the pipeline (admission, the
// provider, the transport, the SSE reader) needs up to 8 KiB: grown by
// doubling, the stack was copied twice per stream, each copy walking every
// frame (6% of the gateway's CPU with one stream at a time). One 4 KiB frame
// here, while the stack is still shallow, makes the runtime allocate 8 KiB
// at once; zeroing it costs less than one copy. A larger frame would cost
// memory on every open stream (16 KiB stacks: 80 MB more at 10,000 streams)
// and save nothing.
//
//go:noinline
func reserveStack() {
	var frame [4 << 10]byte
	if frame[stackProbe] != 0 { // never: the read keeps the frame from being optimised away
		panic("unreachable")
	}
}

// stackProbe is an index into reserveStack's frame the compiler cannot
// know; it is only read, so concurrent streams share it without a race.
var stackProbe = 1

// write hands one event to the connection and returns when it is written.
func (s *streamBody) write(b []byte) error {
	if s.yield(b) {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	return errClientGone
}

// WriteTo runs on the connection's goroutine; fasthttp frames and flushes
// each Write as one chunk.
func (s *streamBody) WriteTo(w io.Writer) (int64, error) {
	var n int64
	b, ok := s.first, s.first != nil
	s.first = nil
	if !ok {
		b, ok = s.next()
	}
	for ok {
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			s.err = err
			s.stop()
			return n, err
		}
		b, ok = s.next()
	}
	return n, nil
}

// SupportsBodyWriteTo tells fasthttp to use WriteTo rather than Read.
func (s *streamBody) SupportsBodyWriteTo() bool { return true }

// Read exists for io.Reader; fasthttp uses WriteTo.
func (s *streamBody) Read([]byte) (int, error) { return 0, io.ErrNoProgress }

// Close refuses every write still coming and returns when the pipeline has
// ended, so the connection is not reused while it runs. fasthttp calls it
// after the body, and also when the headers could not be written.
func (s *streamBody) Close() error {
	s.stop()
	return nil
}
