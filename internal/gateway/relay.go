package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// relayStream waits for the first chunk before committing the response, so a
// stream that fails before its first byte can still be retried. After that,
// every chunk is written and flushed as it arrives; a failure ends the stream
// with an error event and never with [DONE], which would look like success.
func (g *Gateway) relayStream(ctx context.Context, w http.ResponseWriter, x *exchange, s provider.Stream) error {
	defer s.Close()
	began := time.Now()
	chunk, err := s.Next()
	x.upstream += time.Since(began)
	if err != nil {
		if err == io.EOF {
			err = &provider.Error{Kind: provider.KindTransport, Type: "server_error", Code: "upstream_empty_stream",
				Message: "upstream stream ended before any event", Err: io.ErrUnexpectedEOF}
		}
		return err
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	g.writeHeaders(w, x, "text/event-stream")
	rc := http.NewResponseController(w)
	buf := make([]byte, 0, 4096)
	for {
		if x.keep(chunk) {
			buf = append(append(append(buf[:0], "data: "...), chunk...), "\n\n"...)
			if _, err := w.Write(buf); err != nil {
				return x.aborted(499, "client_closed_request")
			}
			if err := rc.Flush(); err != nil {
				return x.aborted(499, "client_closed_request")
			}
		}
		began := time.Now()
		chunk, err = s.Next()
		x.upstream += time.Since(began)
		if err == io.EOF {
			w.Write([]byte("data: [DONE]\n\n"))
			rc.Flush()
			return errDelivered
		}
		if err != nil {
			return g.streamFailed(w, rc, x, err)
		}
	}
}

// streamFailed ends a stream that broke after its first byte.
func (g *Gateway) streamFailed(w http.ResponseWriter, rc *http.ResponseController, x *exchange, err error) error {
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
	w.Write(append(append([]byte("data: "), e.Body()...), "\n\n"...))
	rc.Flush()
	return x.aborted(e.Status, e.Code)
}

func (x *exchange) aborted(status int, code string) error {
	x.status, x.errCode = status, code
	return errDelivered
}

var (
	usageKey  = []byte(`"usage"`)
	usageNull = []byte(`"usage":null`)
)

// keep reads usage from a chunk that carries it and reports whether the
// chunk goes to the client: the usage-only chunk the gateway asked for on the
// client's behalf is dropped when the client did not ask for it.
func (x *exchange) keep(chunk []byte) bool {
	if !bytes.Contains(chunk, usageKey) || bytes.Contains(chunk, usageNull) {
		return true
	}
	var c struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   *wire.Usage       `json:"usage"`
	}
	if json.Unmarshal(chunk, &c) != nil || c.Usage == nil {
		return true
	}
	x.usage = c.Usage // the last usage seen wins: some providers repeat it
	return x.wantUsage || len(c.Choices) > 0
}
