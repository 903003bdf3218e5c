package gateway

import (
	"io"
)

// streamBody is what is left of a stream once it has committed. fasthttp
// writes a response only after its handler returns, so a stream request's
// pipeline runs on the handler's goroutine until the stream commits (its
// first content event) or the request ends with a complete error response.
// At the commit the pipeline leaves the rest here — relaying the events
// still to come, and what the attempt and the request do once the stream is
// over — and returns. fasthttp then writes the headers and calls WriteTo on
// the same goroutine, which relays the stream to its end, each write flushed
// and returning once it is on the wire (a client that left is known at
// once), and then ends the attempt and the request.
//
// One goroutine serves a stream from its request's first byte to its last:
// no hand-off between goroutines per event, as channels cost (two scheduler
// wake-ups an event), and no second goroutine and stack per stream, as a
// coroutine (iter.Pull) cost — started, with its stack grown to 8 KiB, before
// every stream's upstream call, and held by every open stream.
type streamBody struct {
	relay func(w io.Writer) error // the rest of the stream; nil until the commit
	ends  [3]func()               // run once the stream is over, last added first: the request's, the model's, the attempt's
	n     int
	ran   bool
}

// atEnd has f run once the stream is over — or at once by end, when the
// request ended before its stream committed — after the functions added
// after it, as deferred calls run.
func (s *streamBody) atEnd(f func()) {
	s.ends[s.n] = f
	s.n++
}

// run relays the rest of the stream to w, if it committed, and then runs
// the end functions. It runs once; later calls do nothing.
func (s *streamBody) run(w io.Writer) (err error) {
	if s.ran {
		return nil
	}
	s.ran = true
	defer func() {
		for i := s.n - 1; i >= 0; i-- {
			s.ends[i]()
		}
	}()
	if s.relay != nil {
		err = s.relay(w)
	}
	return err
}

// end finishes a stream that never reaches WriteTo: one that ended before
// its commit, or whose headers could not be written. A committed stream
// ends as one whose client left: its upstream is closed.
func (s *streamBody) end() { s.run(refused{}) }

// WriteTo relays the stream on the connection's goroutine; fasthttp frames
// and flushes each Write as one chunk. Its error, a failed write, has
// fasthttp close the connection.
func (s *streamBody) WriteTo(w io.Writer) (int64, error) { return 0, s.run(w) }

// SupportsBodyWriteTo tells fasthttp to use WriteTo rather than Read.
func (s *streamBody) SupportsBodyWriteTo() bool { return true }

// Read exists for io.Reader; fasthttp uses WriteTo.
func (s *streamBody) Read([]byte) (int, error) { return 0, io.ErrNoProgress }

// Close ends the stream if WriteTo did not: fasthttp calls it after the
// body, and also when the headers could not be written.
func (s *streamBody) Close() error {
	s.end()
	return nil
}

// refused is the writer of a stream whose client is gone before its first
// write.
type refused struct{}

func (refused) Write([]byte) (int, error) { return 0, errClientGone }
