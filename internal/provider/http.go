package provider

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// maxResponseBytes bounds a non-streaming upstream body; a larger one is a
// transport failure rather than a memory problem.
const maxResponseBytes = 64 << 20

// maxRetryAfter caps the wait an upstream may ask for; past it the attempt
// loop moves on rather than holding the client.
const maxRetryAfter = 60 * time.Second

// NewHTTPClient returns the client adapters share: keep-alive pools sized for a
// gateway, HTTP/2 where the upstream offers it, and no overall timeout (the
// request context carries the deadline, so streams are not cut).
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 0
	t.DisableCompression = true // relay bytes as they come; compression would cost CPU twice
	return &http.Client{Transport: t}
}

// keyRing spreads requests over a provider's API keys, round robin.
type keyRing struct {
	keys []string
	next atomic.Uint32
}

func (k *keyRing) pick() string {
	if len(k.keys) == 0 {
		return ""
	}
	n := k.next.Add(1)
	return k.keys[int(n-1)%len(k.keys)]
}

// RetryAfter reads retry-after-ms (preferred) or Retry-After (seconds, maybe
// fractional, or an HTTP date), capped at maxRetryAfter. It returns 0 when
// absent or unreadable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			d = time.Duration(ms * float64(time.Millisecond))
		}
	} else if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
			d = time.Duration(s * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

// transportError classifies a failure to get an answer: the client's own
// cancellation, a deadline, or a network/protocol failure.
func transportError(ctx context.Context, provider string, err error) *Error {
	e := &Error{Provider: provider, Err: err, Kind: KindTransport,
		Type: "server_error", Code: "upstream_unavailable", Message: "upstream connection failed"}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Kind, e.Code, e.Message = KindCanceled, "client_closed_request", "client closed the request"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Kind, e.Code, e.Message = KindTimeout, "upstream_timeout", "upstream timed out"
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readBody reads a bounded non-streaming body.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, errors.New("upstream body over 64 MiB")
	}
	return b, nil
}

// statusError builds the *Error for a non-2xx answer, with the upstream's own
// type/code/message when it sent them (filled in by the caller's parser).
func statusError(provider string, resp *http.Response, typ, code, msg string) *Error {
	if typ == "" {
		typ = defaultType(resp.StatusCode)
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{Kind: KindStatus, Status: resp.StatusCode, Provider: provider,
		RetryAfter: RetryAfter(resp.Header, time.Now()), Type: typ, Code: code, Message: msg}
}

func defaultType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// malformed is the error for a 2xx answer the gateway cannot read. It counts as
// a transport failure: another attempt may well succeed.
func malformed(provider string, err error) *Error {
	return &Error{Kind: KindTransport, Provider: provider, Err: err, Type: "server_error",
		Code: "upstream_malformed_response", Message: "upstream sent a malformed response"}
}
