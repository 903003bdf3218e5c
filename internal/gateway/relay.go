package gateway

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// streamAttempt is what relayStream needs of its attempt: the watchdog of
// its first-byte and idle bounds, the hold-back policy, and the balancer's
// measurement of the attempt.
type streamAttempt struct {
	watch    *watchdog
	holdBack config.HoldBack
	began    time.Time
	done     func(latency time.Duration, ok bool)
}

// relayStream commits nothing until the stream has shown it works: its first
// chunk, or with hold-back the first N chunks or D of time. A failure before
// then returns a *provider.Error so the attempt loop can retry or fall back
// invisibly. At the commit it leaves the rest of the stream to c.stream and
// returns errCommitted: every chunk is then written and flushed as it
// arrives, and a failure ends the stream with an error event, never with
// [DONE], which would look like success.
func (g *Gateway) relayStream(c *call, x *exchange, s provider.Stream, tm streamAttempt) error {
	// next reads an event and tells the watchdog and departures when it
	// came. Until the commit it also adds the wait to the upstream's share,
	// which the overhead header, taken at the commit, leaves out; after it,
	// one clock read an event is enough.
	committed := false
	next := func() ([]byte, error) {
		var began time.Time
		if !committed {
			began = time.Now()
		}
		chunk, err := s.Next()
		now := time.Now()
		if !committed {
			x.upstream += now.Sub(began)
		}
		tm.watch.event(now)
		c.lastEvent.Store(now.UnixNano())
		return chunk, err
	}
	held, err := g.holdBack(x, next, tm.holdBack)
	if err != nil {
		s.Close()
		tm.done(0, false)
		return err
	}
	committed = true
	tm.watch.committed()
	tm.done(time.Since(tm.began), true)
	c.setHeader("Cache-Control", "no-cache")
	c.setHeader("X-Accel-Buffering", "no")
	g.writeHeaders(c, x, "text/event-stream")
	g.metrics.OpenStreams(1)
	c.stream.relay = func(w io.Writer) error {
		defer s.Close()
		defer g.metrics.OpenStreams(-1)
		out := &sseWriter{w: w, buf: getSSEBuf()}
		defer func() { putSSEBuf(out.buf) }() // every write has returned: the bytes are on the wire
		defer g.recoverPanic(c, x)
		g.relayRest(x, out, s, next, held)
		return out.err
	}
	return errCommitted
}

// relayRest writes the events the stream committed with, then every event
// still to come, to the end of the stream or of the client. How it ended is
// left in x (aborted).
func (g *Gateway) relayRest(x *exchange, out *sseWriter, s provider.Stream, next func() ([]byte, error), held held) {
	buffered := func() bool { return false }
	if b, ok := s.(provider.Buffered); ok {
		buffered = b.Buffered
	}
	// The events the stream committed with leave in one write at once, even
	// when more have arrived: the first byte is what a streaming client
	// waits for, and batching starts with the events after them.
	for i, c := range held.chunks {
		if out.relay(x, c, i < len(held.chunks)-1 || held.eof) != nil {
			x.aborted(499, "client_closed_request")
			return
		}
	}
	if held.eof {
		out.done()
		return
	}
	for {
		chunk, err := next()
		if err == io.EOF {
			out.done()
			return
		}
		if err != nil {
			g.streamFailed(out, x, err)
			return
		}
		if out.relay(x, chunk, buffered()) != nil {
			x.aborted(499, "client_closed_request")
			return
		}
	}
}

// held is the start of a stream kept back before the response is committed.
type held struct {
	chunks  [][]byte
	content int  // chunks that carry content, tool calls or an end
	eof     bool // the whole stream fit in the hold
}

// maxPreamble bounds how many content-free chunks (the role announcement
// providers send before any token) are held before the first content chunk.
const maxPreamble = 3

// holdBack reads up to the first chunk with content — the role-only chunk
// providers send at once does not count, so a failure before the first token
// is still retried — and with hold-back on, more until the window closes.
// The window is checked as chunks arrive; a stall inside it is bounded by the
// idle timeout. Chunks are copied: a Stream's chunk is only valid until its
// next call.
func (g *Gateway) holdBack(x *exchange, next func() ([]byte, error), hb config.HoldBack) (held, error) {
	var h held
	start := time.Now()
	for {
		chunk, err := next()
		if err == io.EOF {
			if len(h.chunks) == 0 {
				return h, &provider.Error{Kind: provider.KindTransport, Type: "server_error", Code: "upstream_empty_stream",
					Message: "upstream stream ended before any event", Err: io.ErrUnexpectedEOF}
			}
			h.eof = true
			return h, nil
		}
		if err != nil {
			return h, err
		}
		h.chunks = append(h.chunks, bytes.Clone(chunk))
		if len(h.chunks)-h.content <= maxPreamble && preamble(chunk) {
			continue
		}
		h.content++
		if !hb.Set || (hb.Tokens > 0 && h.content >= hb.Tokens) || (hb.Duration > 0 && time.Since(start) >= hb.Duration) {
			return h, nil
		}
	}
}

var (
	contentKey = []byte(`"content":"`)
	refusalKey = []byte(`"refusal":"`)
	toolsKey   = []byte(`"tool_calls"`)
	finishKey  = []byte(`"finish_reason":"`)
)

// preamble reports whether a chunk carries nothing a client would show: no
// text, refusal, tool call or finish. It reads bytes, not JSON, and errs
// towards "not a preamble" (compact JSON is what providers send; a chunk
// written otherwise just commits the stream one chunk earlier).
func preamble(chunk []byte) bool {
	if len(chunk) > 1024 || bytes.Contains(chunk, toolsKey) || bytes.Contains(chunk, finishKey) {
		return false
	}
	return emptyString(chunk, contentKey) && emptyString(chunk, refusalKey)
}

// emptyString reports whether every "key":"…" in chunk has an empty value.
func emptyString(chunk, key []byte) bool {
	for {
		i := bytes.Index(chunk, key)
		if i < 0 {
			return true
		}
		chunk = chunk[i+len(key):]
		if len(chunk) == 0 || chunk[0] != '"' {
			return false
		}
	}
}

// sseWriter writes events. An event goes out, flushed, as soon as it is
// written, together with those written before it with more set: events
// that arrived from upstream in one read leave in one write, as nginx
// relays them, rather than one write and one flush each.
type sseWriter struct {
	w   io.Writer
	buf []byte
	err error // the first write that failed: the client is gone
}

// maxSSEBatch bounds the events held back by more.
const maxSSEBatch = 16 << 10

// sseBufs recycles the writers' buffers of finished streams: a fresh one is
// often memory the runtime gave back to the OS, whose first touch page-faults
// on the way to the stream's first byte (see wire.NewSSEReader).
var sseBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getSSEBuf() []byte { return (*sseBufs.Get().(*[]byte))[:0] }

func putSSEBuf(b []byte) {
	if cap(b) <= 4*maxSSEBatch { // an outsized event's buffer goes to the GC
		b = b[:0]
		sseBufs.Put(&b)
	}
}

func (s *sseWriter) write(x *exchange, chunk []byte, more bool) error {
	x.keepResponse(chunk)
	x.keepResponse(newline)
	s.buf = append(append(append(s.buf, "data: "...), chunk...), "\n\n"...)
	if more && len(s.buf) < maxSSEBatch {
		return nil
	}
	return s.flush()
}

// relay writes chunk if the client gets it (see keep); a chunk dropped
// still sends the events held before it unless more follow.
func (s *sseWriter) relay(x *exchange, chunk []byte, more bool) error {
	if x.keep(chunk) {
		return s.write(x, chunk, more)
	}
	if more {
		return nil
	}
	return s.flush()
}

// flush writes the events held; the buffer is the writer's again after.
func (s *sseWriter) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	_, s.err = s.w.Write(s.buf)
	s.buf = s.buf[:0]
	return s.err
}

var doneEvent = []byte("data: [DONE]\n\n")

func (s *sseWriter) done() {
	s.buf = append(s.buf, doneEvent...)
	s.flush()
}

// streamFailed ends a stream that broke after its first byte.
func (g *Gateway) streamFailed(out *sseWriter, x *exchange, err error) error {
	e := &wire.Error{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_stream_broken",
		Message: "the upstream stream failed mid-response", Cause: err}
	if pe, ok := provider.AsProviderError(err); ok {
		switch {
		case pe.Kind == provider.KindCanceled:
			return x.aborted(499, "client_closed_request")
		case pe.Kind == provider.KindTimeout:
			e.Status, e.Code, e.Message = http.StatusGatewayTimeout, "upstream_timeout", "the upstream stream timed out"
		case pe.Kind == provider.KindStatus && pe.Code != "":
			e.Code, e.Message = pe.Code, "upstream error mid-stream: "+pe.Message
		}
	}
	out.buf = append(append(append(out.buf, "data: "...), e.Body()...), "\n\n"...)
	out.flush()
	return x.aborted(e.Status, e.Code)
}

func (x *exchange) aborted(status int, code string) error {
	x.status, x.errCode = status, code
	return errDelivered
}

var (
	newline  = []byte("\n")
	usageKey = []byte(`"usage"`)
)

// keep reads usage from a chunk that carries it and reports whether the
// chunk goes to the client: the usage-only chunk the gateway asked for on the
// client's behalf is dropped when the client did not ask for it. It decodes
// only the usage object (encoding/json's reflection was 3% of the gateway's
// CPU on a stream at a time, for one chunk a stream). A chunk that is not
// valid JSON, or whose usage is not an object, is relayed as it came.
func (x *exchange) keep(chunk []byte) bool {
	if usageIsNull(chunk) {
		return true
	}
	valid, raw := wire.ValidMember(chunk, "usage")
	if !valid || raw == nil {
		return true
	}
	u, ok := wire.ParseUsage(raw)
	if !ok {
		return true
	}
	x.usage = u // the last usage seen wins: some providers repeat it
	return x.wantUsage || !emptyChoices(chunk)
}

// emptyChoices reports whether chunk, valid JSON, has no choices to show: no
// top-level "choices", or null, or []. A chunk it cannot read that far (a
// key with an escape) counts as having some, so it is relayed.
func emptyChoices(chunk []byte) bool {
	empty := true
	read := wire.Members(chunk, func(key, value []byte, _ int) bool {
		if string(key) == "choices" { // the last wins, as in encoding/json
			empty = string(value) == "null" || (value[0] == '[' && bytes.TrimLeft(value[1:], " \t\r\n")[0] == ']')
		}
		return true
	})
	return read && empty
}

// usageIsNull reports, without decoding, that chunk carries no usage: it
// has no "usage" at all, or its last "usage" is a key whose value is null —
// what every content chunk of an OpenAI stream with include_usage ends
// with. It looks from the end, where OpenAI puts usage, so a content chunk
// costs a few bytes of scan instead of two passes over it. Anything else
// (a usage object, or "usage" as a string value after the key) is left to
// the decoder.
func usageIsNull(chunk []byte) bool {
	i := bytes.LastIndex(chunk, usageKey)
	if i < 0 {
		return true
	}
	rest := bytes.TrimLeft(chunk[i+len(usageKey):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte("null"))
}
