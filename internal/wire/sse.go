package wire

import (
	"bufio"
	"bytes"
	"io"
)

// Event is one server-sent event. Data joins multi-line data fields with '\n'.
type Event struct {
	Name string
	Data []byte
}

// SSEReader reads server-sent events. It does not decode data payloads: the
// relay passes them on as bytes.
type SSEReader struct {
	r    *bufio.Reader
	data []byte
	name []byte
}

// maxSSELine bounds one line so a hostile upstream cannot grow memory without end.
const maxSSELine = 8 << 20

// NewSSEReader returns a reader of the events in r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 16<<10)}
}

// Next returns the next event. Its Data is valid until the next call. It
// returns io.EOF when the stream ends cleanly between events and
// io.ErrUnexpectedEOF when it ends inside one.
func (s *SSEReader) Next() (Event, error) {
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
