package gateway

import (
	"io"
	"sync"
)

// streamBody carries a streamed answer from the pipeline's goroutine to the
// connection's. fasthttp writes a response only after its handler returns,
// so a stream request runs its pipeline on a goroutine of its own while the
// handler waits: if the pipeline fails before committing, it leaves a
// complete error response and the handler returns it; once it commits, the
// handler returns with this as the body, and fasthttp calls WriteTo, which
// writes each event as one chunk and flushes it. Every write is acknowledged
// with its error, so the pipeline learns at once that the client left, and
// may reuse its buffer.
type streamBody struct {
	ready  chan bool // true: committed; false: ended with a complete response
	chunks chan []byte
	acks   chan error
	closed sync.Once
}

func newStreamBody() *streamBody {
	return &streamBody{ready: make(chan bool, 1), chunks: make(chan []byte), acks: make(chan error)}
}

// write sends one event and waits until it is on the wire (or failed).
func (s *streamBody) write(b []byte) error {
	s.chunks <- b
	return <-s.acks
}

// end is the pipeline's last act: nothing more will be written.
func (s *streamBody) end() { close(s.chunks) }

// WriteTo runs on the connection's goroutine; fasthttp frames and flushes
// each Write as one chunk.
func (s *streamBody) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for b := range s.chunks {
		m, err := w.Write(b)
		n += int64(m)
		s.acks <- err
		if err != nil {
			s.Close()
			return n, err
		}
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
	s.closed.Do(func() {
		for range s.chunks {
			s.acks <- errClientGone
		}
	})
	return nil
}
