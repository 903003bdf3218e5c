package mockupstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// errStreamCut ends a stream handler after an injected in-stream error.
var errStreamCut = errors.New("mock upstream: stream cut by an injected error")

// sleep waits for d, or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	return wait(ctx, time.NewTimer(d))
}

// wait waits for t to fire, or until ctx is done; it stops t then.
func wait(ctx context.Context, t *time.Timer) error {
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		t.Stop()
		return fmt.Errorf("sleep interrupted: %w", ctx.Err())
	}
}

// stream writes one server-sent-event response, paces its content events
// and fires the mid-stream faults of its call.
type stream struct {
	c       *call
	rc      *http.ResponseController
	sent    int       // content events sent
	first   time.Time // when the first content event was sent
	onError func(*stream) error
	// pacer and buf are reused from one event to the next: a soak holds
	// thousands of streams at ten events a second each.
	pacer *time.Timer
	buf   []byte
}

// startStream sends the 200 and the SSE headers. onError sends the API's
// in-stream error event for stream_error_after.
func startStream(c *call, onError func(*stream) error) *stream {
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	c.w.WriteHeader(http.StatusOK)
	st := &stream{c: c, rc: http.NewResponseController(c.w), onError: onError}
	_ = st.rc.Flush() // headers out now, so clients see the TTFT as such
	return st
}

// send writes one event (no "event:" line when name is empty) and flushes.
func (st *stream) send(name string, data []byte) error {
	buf := st.buf[:0]
	if name != "" {
		buf = append(buf, "event: "...)
		buf = append(buf, name...)
		buf = append(buf, '\n')
	}
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	st.buf = buf // Write copies it into the connection's buffer
	if _, err := st.c.w.Write(buf); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	if err := st.rc.Flush(); err != nil {
		return fmt.Errorf("flush event: %w", err)
	}
	return nil
}

// sendJSON writes one event whose data is v as JSON.
func (st *stream) sendJSON(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", name, err)
	}
	return st.send(name, data)
}

// content writes one content event: it waits for its turn (TTFT, then the
// token rate), and fires reset_after, stream_error_after and malformed when
// their time has come.
func (st *stream) content(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", name, err)
	}
	return st.contentData(name, data)
}

// contentData is content for an event already encoded.
func (st *stream) contentData(name string, data []byte) error {
	if err := st.pace(); err != nil {
		return err
	}
	if err := st.faultBefore(name, st.sent); err != nil {
		return err
	}
	if err := st.send(name, data); err != nil {
		return err
	}
	st.sent++
	return nil
}

// tokenEvent is the JSON of a content event with its token left out: the
// events of a text stream are the same bytes but for the token, so a stream
// encodes the event once and each token into it (reflection for every token
// was a seventh of the mock's CPU in a soak of 3,000 streams).
type tokenEvent struct{ prefix, suffix []byte }

// tokenSlot marks where the token goes when the template is encoded.
const tokenSlot = "\x00mock-token\x00"

// newTokenEvent encodes v, in which one string field holds tokenSlot.
func newTokenEvent(v any) (tokenEvent, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return tokenEvent{}, fmt.Errorf("encode content event: %w", err)
	}
	slot, _ := json.Marshal(tokenSlot)
	prefix, suffix, ok := bytes.Cut(data, slot)
	if !ok {
		return tokenEvent{}, errors.New("encode content event: no token slot")
	}
	return tokenEvent{prefix: prefix, suffix: suffix}, nil
}

// with returns the event for tok, appended to dst[:0]: tok is escaped as
// encoding/json escapes a string, so the bytes are those json.Marshal gives.
func (t tokenEvent) with(dst []byte, tok string) ([]byte, error) {
	enc, err := json.Marshal(tok)
	if err != nil {
		return dst, fmt.Errorf("encode token: %w", err)
	}
	dst = append(dst[:0], t.prefix...)
	dst = append(dst, enc...)
	return append(dst, t.suffix...), nil
}

// end is called before the finishing events; a reset or an error that was
// due after more content events than the stream had fires here.
func (st *stream) end() error {
	f := st.c.fault
	if f.resetAfter >= 0 || f.streamErrorAfter >= 0 {
		return st.faultBefore("", -1)
	}
	return nil
}

// faultBefore fires the mid-stream fault due before content event n; n < 0
// means "before the finishing events", where any pending one fires.
func (st *stream) faultBefore(name string, n int) error {
	f := st.c.fault
	due := func(after int) bool { return after >= 0 && (n < 0 || n >= after) }
	switch {
	case due(f.resetAfter):
		panic(http.ErrAbortHandler) // flushed events stay sent; the client sees no clean end
	case due(f.streamErrorAfter):
		if err := st.onError(st); err != nil {
			return err
		}
		return errStreamCut
	case f.malformed && n == 0:
		return st.send(name, []byte(`{"malformed": tru`))
	}
	return nil
}

// pace sleeps until the next content event is due.
func (st *stream) pace() error {
	ctx := st.c.r.Context()
	if st.sent == 0 {
		err := sleep(ctx, st.c.timing.TTFT)
		st.first = time.Now()
		return err
	}
	tps := st.c.timing.TokensPerSecond
	if tps <= 0 {
		return nil
	}
	due := st.first.Add(time.Duration(float64(st.sent) * float64(time.Second) / tps))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	if st.pacer == nil {
		st.pacer = time.NewTimer(d)
	} else {
		st.pacer.Reset(d) // fired or stopped: safe to reset since Go 1.23
	}
	return wait(ctx, st.pacer)
}
