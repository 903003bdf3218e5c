package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// Client calls the admin API: over HTTP on a running gateway (NewClient), or
// in process on a Handler (NewLocalClient), so the CLI has one code path for
// both and the store file sees exactly what the API would do.
type Client struct {
	base string // "http://host:port", no trailing slash
	key  string // sent as a Bearer token; "" in process
	hc   *http.Client
}

// NewClient returns a client of the gateway at baseURL, authenticating with
// key (the master key, or a team's virtual key for read-only calls). hc nil
// means http.DefaultClient.
func NewClient(baseURL, key string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), key: key, hc: hc}
}

// NewLocalClient returns a client that serves every call with h in process,
// as the master.
func NewLocalClient(h *Handler) *Client {
	return &Client{base: "http://in-process", hc: &http.Client{Transport: localTransport{h}}}
}

// Do sends in (nil: no body) to method path?query and decodes a 2xx answer
// into out (nil: discard). An error answer comes back as a *wire.Error with
// the status and the envelope's type, code and message.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		if typ, code, msg, ok := wire.ParseEnvelope(b); ok {
			return &wire.Error{Status: resp.StatusCode, Type: typ, Code: code, Message: msg}
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// localTransport serves requests with a Handler, as the master.
type localTransport struct{ h *Handler }

func (t localTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := &recorder{header: http.Header{}}
	if err := t.h.ServeAdmin(rec, r, Actor{Master: true}); err != nil {
		wire.WriteError(rec, err)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

// recorder is the ResponseWriter of an in-process call. (httptest's
// recorder would register a test flag in the binary.)
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
