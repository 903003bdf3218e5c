package provider

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// maxResponseBytes bounds a non-streaming upstream body; a larger one is a
// transport failure rather than a memory problem.
const maxResponseBytes = 64 << 20

// maxRetryAfter caps the wait an upstream may ask for; past it the attempt
// loop moves on rather than holding the client.
const maxRetryAfter = 60 * time.Second

// ErrAttemptTimeout is the cause the gateway cancels an attempt's context
// with when one of its own timers (first byte, idle gap) fires; adapters then
// report KindTimeout, not a client that went away.
var ErrAttemptTimeout = errors.New("attempt timed out")

type connectTimeoutKey struct{}

// WithConnectTimeout bounds the TCP and TLS connect of requests made with ctx.
func WithConnectTimeout(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	return context.WithValue(ctx, connectTimeoutKey{}, d)
}

// DefaultConnectTimeout bounds a connect when the context names no other;
// it equals the configuration's default so the usual case carries nothing.
const DefaultConnectTimeout = 5 * time.Second // keep equal to config.DefaultConnectTimeout

// NewHTTPClient returns the client adapters share: keep-alive pools sized for
// a gateway and no overall timeout (the request context carries the
// deadline, so streams are not cut). The connect timeout comes from the
// context (WithConnectTimeout), so one pool serves models with different
// settings.
//
// Upstream calls go through the synchronous HTTP/1.1 Transport of this
// package, which costs about half the CPU of http.Transport per request.
// When a proxy is configured in the environment (HTTP_PROXY, HTTPS_PROXY,
// ALL_PROXY), which it does not speak, net/http's transport is used
// instead, with HTTP/2 where the upstream offers it.
func NewHTTPClient() *http.Client {
	dial := dialWithConnectTimeout(&net.Dialer{KeepAlive: 30 * time.Second})
	if proxyConfigured(os.Getenv) {
		return &http.Client{Transport: stdTransport(dial)}
	}
	return &http.Client{Transport: NewTransport(TransportOptions{DialContext: dial,
		TLSHandshakeTimeout: DefaultConnectTimeout, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second})}
}

// NewHTTP2Client returns the client for providers whose protocol is http2:
// net/http's transport speaking HTTP/2 only — h2 negotiated over TLS, h2c
// with prior knowledge over plain http — so that many requests, and long
// streams above all, share a few connections instead of holding one each
// (a new connection opens when the server's stream limit is reached). A
// connection that has been silent for 30 s is pinged, and dropped when no
// answer comes within 15 s, so a stream behind a dead connection fails
// instead of hanging. It costs more CPU per request than the HTTP/1.1
// transport of NewHTTPClient.
func NewHTTP2Client() *http.Client {
	t := stdTransport(dialWithConnectTimeout(&net.Dialer{KeepAlive: 30 * time.Second}))
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP2(true)
	t.Protocols.SetUnencryptedHTTP2(true)
	t.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
	return &http.Client{Transport: t}
}

// dialWithConnectTimeout bounds each dial by the context's connect timeout.
func dialWithConnectTimeout(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		timeout, ok := ctx.Value(connectTimeoutKey{}).(time.Duration)
		if !ok {
			timeout = DefaultConnectTimeout
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return d.DialContext(ctx, network, addr)
	}
}

func stdTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = dial
	t.TLSHandshakeTimeout = DefaultConnectTimeout
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 0
	t.DisableCompression = true // relay bytes as they come; compression would cost CPU twice
	return t
}

// proxyConfigured reports whether the environment names an HTTP proxy.
func proxyConfigured(getenv func(string) string) bool {
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		if getenv(k) != "" {
			return true
		}
	}
	return false
}

// Account is what an adapter needs to reach one upstream account.
type Account struct {
	Name    string
	BaseURL string
	Keys    []string
	// Headers are sent on every request.
	Headers map[string]string
	// KeyCooldown is how long a key rests after a 429 that named no
	// Retry-After; 0 means 30 s.
	KeyCooldown time.Duration
}

const defaultKeyCooldown = 30 * time.Second

// keyRing spreads requests over a provider's API keys, round robin, resting
// a key that got a 429 so the next attempt uses another.
type keyRing struct {
	keys     []string
	bearers  [][]string // "Bearer <key>" per key, as a header value
	cooldown time.Duration
	next     atomic.Uint32
	until    []atomic.Int64 // per key: unix nanos before which it rests
}

func newKeyRing(keys []string, cooldown time.Duration) *keyRing {
	if cooldown <= 0 {
		cooldown = defaultKeyCooldown
	}
	k := &keyRing{keys: keys, cooldown: cooldown, until: make([]atomic.Int64, len(keys))}
	for _, key := range keys {
		k.bearers = append(k.bearers, []string{"Bearer " + key})
	}
	return k
}

// bearer returns the Authorization header value for key: built once for the
// ring's own keys, per request for a team's.
func (k *keyRing) bearer(key string) []string {
	for i, own := range k.keys {
		if own == key {
			return k.bearers[i]
		}
	}
	return []string{"Bearer " + key}
}

// pick returns the next key that is not resting; when all rest, the one
// whose rest ends first. It returns -1 and "" when there are no keys.
func (k *keyRing) pick(now time.Time) (int, string) {
	n := len(k.keys)
	if n == 0 {
		return -1, ""
	}
	start := int(k.next.Add(1)-1) % n
	best, t := start, now.UnixNano()
	for i := range n {
		j := (start + i) % n
		u := k.until[j].Load()
		if u <= t {
			return j, k.keys[j]
		}
		if u < k.until[best].Load() {
			best = j
		}
	}
	return best, k.keys[best]
}

// rest makes key i rest for d, or the ring's cooldown when d is 0.
func (k *keyRing) rest(i int, d time.Duration, now time.Time) {
	if i < 0 {
		return
	}
	if d <= 0 {
		d = k.cooldown
	}
	k.until[i].Store(now.Add(d).UnixNano())
}

// ready reports whether some key is not resting.
func (k *keyRing) ready(now time.Time) bool {
	t := now.UnixNano()
	for i := range k.until {
		if k.until[i].Load() <= t {
			return true
		}
	}
	return false
}

// send sends the request that build makes for a key. A 429 rests that key
// and, while another key is ready, the request goes again at once with it:
// a rate limit on one key does not fail the request. earlier is the time
// spent on such refused rounds before the last, upstream time all of it.
func (k *keyRing) send(client *http.Client, override string, build func(key string) (*http.Request, error)) (resp *http.Response, earlier time.Duration, err error) {
	if override != "" {
		req, err := build(override)
		if err != nil {
			return nil, 0, err
		}
		resp, err := roundTrip(client, req)
		return resp, 0, err
	}
	for tries := 0; ; tries++ {
		now := time.Now()
		i, key := k.pick(now)
		req, err := build(key)
		if err != nil {
			return nil, earlier, err
		}
		resp, err := roundTrip(client, req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			return resp, earlier, err
		}
		k.rest(i, RetryAfter(resp.Header, now), now)
		if tries+1 >= len(k.keys) || !k.ready(now) {
			return resp, earlier, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		earlier += time.Since(now)
	}
}

// waited is the upstream's share of a call whose last answer is resp, read
// as far as the caller needs it: the rounds before it (earlier) and the
// wait since its request went to the socket. 0 when the transport does not
// tell (upstreamWait): then the caller counts the whole call.
func waited(resp *http.Response, earlier time.Duration) time.Duration {
	d, ok := upstreamWait(resp)
	if !ok {
		return 0
	}
	return earlier + d
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

// roundTrip sends req on the client's transport directly. Upstream APIs do
// not redirect and the gateway keeps no cookies, so http.Client's redirect
// and jar machinery — a header copy and a URL clone per request — is skipped.
func roundTrip(client *http.Client, req *http.Request) (*http.Response, error) {
	rt := client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return rt.RoundTrip(req)
}

// transportError classifies a failure to get an answer: the client's own
// cancellation, a deadline, or a network/protocol failure.
func transportError(ctx context.Context, provider string, err error) *Error {
	e := &Error{Provider: provider, Err: err, Kind: KindTransport,
		Type: "server_error", Code: "upstream_unavailable", Message: "upstream connection failed"}
	// The cause tells a timer's cancellation from the client's: a context
	// ended by a deadline enforced outside it (the gateway's request
	// timeout) reports Canceled from Err, and its cause.
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrAttemptTimeout) || errors.Is(cause, context.DeadlineExceeded):
		e.Kind, e.Code, e.Message = KindTimeout, "upstream_timeout", "upstream timed out"
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

// postTo returns the request every POST to the URL s starts from; s is a
// configured base URL with a path, parsed once per adapter, and a failure
// leaves a URL that fails every request.
func postTo(s string) *http.Request {
	u, err := url.Parse(s)
	if err != nil {
		u = &url.URL{Scheme: "invalid", Opaque: s}
	}
	return &http.Request{Method: http.MethodPost, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: u.Host}
}

// newPost builds an upstream POST of body from to, a postTo request, which
// is never modified: the request is to's copy with ctx (WithContext copies),
// one allocation where building it and then setting its context took two,
// and less than http.NewRequest, which parses the URL every time.
func newPost(ctx context.Context, to *http.Request, body []byte, headers int) *http.Request {
	r := to.WithContext(ctx)
	r.Header, r.Body, r.ContentLength = make(http.Header, headers), newByteBody(body), int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return newByteBody(body), nil }
	return r
}

// byteBody is a request body over bytes: bytes.Reader and io.NopCloser in
// one allocation.
type byteBody struct{ bytes.Reader }

func newByteBody(b []byte) *byteBody {
	r := &byteBody{}
	r.Reset(b)
	return r
}

func (*byteBody) Close() error { return nil }

// readResponseBody reads a non-streaming body into a recycled buffer: into
// one buffer of the announced length when there is one, bounded by
// maxResponseBytes either way. The caller releases the buffer once the body
// is no longer used (Response.Release).
func readResponseBody(resp *http.Response) (*wire.Buffer, error) {
	bb := wire.GetBuffer()
	var err error
	if n := resp.ContentLength; n > 0 && n <= maxResponseBytes {
		if int64(cap(bb.B)) < n {
			bb.B = make([]byte, n)
		}
		bb.B = bb.B[:n]
		_, err = io.ReadFull(resp.Body, bb.B)
	} else {
		bb.B, err = readBodyInto(resp.Body, bb.B[:0])
	}
	if err != nil {
		bb.Release()
		return nil, err
	}
	return bb, nil
}

// readBody reads a bounded non-streaming body of unknown length (chunked).
func readBody(r io.Reader) ([]byte, error) { return readBodyInto(r, nil) }

// readBodyInto appends a bounded body to b. Without room in b it starts
// with room for a typical chat completion, so most bodies take one
// allocation; io.ReadAll starts at 512 bytes and regrows (allocates, clears
// and copies) two or three times on the way to 1.5 KB.
func readBodyInto(r io.Reader, b []byte) ([]byte, error) {
	if cap(b) == 0 {
		b = make([]byte, 0, 4<<10)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		switch {
		case len(b) > maxResponseBytes:
			return nil, errors.New("upstream body over 64 MiB")
		case err == io.EOF:
			return b, nil
		case err != nil:
			return nil, err
		}
	}
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
