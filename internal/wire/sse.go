package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
)

// Event is one server-sent event. Data joins multi-line data fields with '\n'.
type Event struct {
	Name string
	Data []byte
}

// SSEReader reads server-sent events. It does not decode data payloads: the
// relay passes them on as bytes.
type SSEReader struct {
	r       *bufio.Reader
	data    []byte
	name    []byte
	dataBuf *Buffer // data's recycled buffer, released with r
}

// maxSSELine bounds one line so a hostile upstream cannot grow memory without end.
const maxSSELine = 8 << 20

// sseReadBuffer is a stream's read buffer, held for the stream's whole life:
// events are a few hundred bytes and several fit; a longer line is gathered
// past it (readLine). Its size counts against the heap the collector sees
// live, and so against the soft memory limit (serve's GC defaults), whether
// or not its pages are touched: 16 KiB was 160 MB of it at 10,000 streams.
const sseReadBuffer = 4 << 10

// readers recycles the read buffers of finished streams (Release), and
// the events' data is gathered in a recycled Buffer: a stream's buffer taken
// fresh from the heap is often memory the runtime has given back to the
// OS, and touching it again costs page faults on the way to the stream's
// first byte: on the bench VM, 4–5 per stream at 100 streams/s, some 50 µs,
// three times what a non-stream request faults.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, sseReadBuffer) }}

// NewSSEReader returns a reader of the events in r. Release gives its
// buffers back when the stream is done.
func NewSSEReader(r io.Reader) *SSEReader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	d := GetBuffer()
	return &SSEReader{r: br, data: d.B, dataBuf: d}
}

// errReleased is what a released reader returns.
var errReleased = errors.New("sse: reader released")

// Release returns the reader's buffers for another stream to use. Neither
// the reader nor any Data it returned may be used afterwards (Next then
// returns an error; Data's bytes may be another stream's); calling it again
// does nothing. It must not run while Next does.
func (s *SSEReader) Release() {
	if s.r == nil {
		return
	}
	s.r.Reset(nil)
	readers.Put(s.r)
	s.dataBuf.B = s.data
	s.dataBuf.Release()
	s.r, s.data, s.name, s.dataBuf = nil, nil, nil, nil
}

// Next returns the next event. Its Data is valid until the next call. It
// returns io.EOF when the stream ends cleanly between events and
// io.ErrUnexpectedEOF when it ends inside one.
func (s *SSEReader) Next() (Event, error) {
	if s.r == nil {
		return Event{}, errReleased
	}
	s.data, s.name = s.data[:0], s.name[:0]
	seen, dataLines := false, 0
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && seen {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if seen {
				return Event{Name: string(s.name), Data: s.data}, nil
			}
			continue
		}
		if line[0] == ':' { // comment, such as a keep-alive
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "data":
			if dataLines > 0 {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			dataLines++
			seen = true
		case "event":
			s.name = append(s.name, value...)
			seen = true
		}
	}
}

// Ready reports whether an event with data is already buffered whole, so
// that reading it needs nothing more from the network. It may say false
// when such an event is there (a line longer than the buffer), never true
// when none is.
func (s *SSEReader) Ready() bool {
	if s.r == nil {
		return false
	}
	b, _ := s.r.Peek(s.r.Buffered())
	seen := false
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		line := b[:i]
		b = b[i+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		switch {
		case len(line) == 0:
			if seen {
				return true
			}
		case bytes.HasPrefix(line, dataField) && len(bytes.TrimPrefix(line[len(dataField):], []byte{' '})) > 0:
			seen = true
		}
	}
}

var dataField = []byte("data:")

func (s *SSEReader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		buf := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(buf) > maxSSELine {
				return nil, io.ErrUnexpectedEOF
			}
			line, err = s.r.ReadSlice('\n')
			buf = append(buf, line...)
		}
		line = buf
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
