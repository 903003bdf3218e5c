package provider

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Transport is a synchronous HTTP/1.1 client transport. RoundTrip writes the
// request and reads the response head on the calling goroutine, and the body
// is read on the goroutine that reads it. http.Transport instead hands each
// request to a per-connection read loop and write loop; for a gateway that
// proxies many small requests those hand-offs, and the allocations around
// them, are most of the CPU a request costs.
//
// It speaks http and https (TLS offering only http/1.1), keeps connections
// alive in a LIFO idle pool per scheme and host, sends request bodies with a
// Content-Length or chunked, and reads Content-Length, chunked and
// until-close response bodies. A request's context aborts it at any stage,
// including a body read long after RoundTrip returned: the connection is
// closed at once.
//
// Not supported: proxies (callers use http.Transport when a proxy
// environment variable is set), HTTP/2, Expect: 100-continue (the body is
// sent right after the head), protocol upgrades (a 101 answer gets an empty
// body and its connection is closed), trailers (read and dropped),
// response.TLS (left nil), and compression (none is requested; a response's
// Content-Encoding is passed through untouched).
//
// Because the request is written in full before the response is read, a
// server that answers early without reading a large body may make the write
// fail instead of the answer being seen.
//
// Make one with NewTransport; it is safe for concurrent use.
type Transport struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConfig   *tls.Config
	tlsTimeout  time.Duration
	maxIdle     int
	idleTimeout time.Duration

	mu         sync.Mutex // guards the fields below
	idle       map[connKey]*idlePool
	sweeper    *time.Timer // closes conns idle past idleTimeout
	sweepArmed bool
}

// TransportOptions configures NewTransport; the zero value is usable.
type TransportOptions struct {
	// DialContext dials TCP; nil means a net.Dialer with KeepAlive 30s.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig is cloned per connection; nil means the defaults.
	// ServerName is set to the URL's host when empty; NextProtos is always
	// ["http/1.1"].
	TLSClientConfig *tls.Config
	// TLSHandshakeTimeout bounds a TLS handshake; 0 means 5s.
	TLSHandshakeTimeout time.Duration
	// MaxIdleConnsPerHost bounds the idle pool of each host; 0 means 256.
	MaxIdleConnsPerHost int
	// IdleConnTimeout is how long a connection may idle before it is closed;
	// 0 means 90s.
	IdleConnTimeout time.Duration
}

// NewTransport returns a Transport with o's settings.
func NewTransport(o TransportOptions) *Transport {
	t := &Transport{dial: o.DialContext, tlsConfig: o.TLSClientConfig, tlsTimeout: o.TLSHandshakeTimeout,
		maxIdle: o.MaxIdleConnsPerHost, idleTimeout: o.IdleConnTimeout, idle: make(map[connKey]*idlePool)}
	if t.dial == nil {
		t.dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	if t.tlsTimeout <= 0 {
		t.tlsTimeout = 5 * time.Second
	}
	if t.maxIdle <= 0 {
		t.maxIdle = 256
	}
	if t.idleTimeout <= 0 {
		t.idleTimeout = 90 * time.Second
	}
	return t
}

// connKey names an idle pool. host is URL.Host as written, so "h" and
// "h:443" get separate pools; that only costs a connection, while
// normalizing would cost an allocation per request.
type connKey struct {
	tls  bool
	host string
}

// idlePool holds a host's idle conns, oldest first; it is a pointer in the
// map so taking and returning a conn does not write the map.
type idlePool struct {
	conns []*conn
}

// RoundTrip sends req and returns the response once its head has been read.
// It closes req.Body, also on error.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := validateRequest(req); err != nil {
		closeBody(req.Body)
		return nil, err
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req.Body)
		return nil, err
	}
	key := connKey{tls: req.URL.Scheme == "https", host: req.URL.Host}
	body, fresh := req.Body, false
	for {
		c, err := t.getConn(ctx, req.URL, key, fresh)
		if err != nil {
			closeBody(body)
			return nil, err
		}
		resp, stale, err := c.roundTrip(req, body)
		if !stale {
			return resp, err
		}
		// The server had closed the idle conn, so it never saw the request:
		// send it again, once, on a new conn.
		var ok bool
		if body, ok = rewind(req); !ok {
			return nil, err
		}
		fresh = true
	}
}

// CloseIdleConnections closes the conns in the idle pools; conns in use are
// left alone.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	pools := t.idle
	t.idle = make(map[connKey]*idlePool)
	t.mu.Unlock()
	for _, p := range pools {
		for _, c := range p.conns {
			c.discard()
		}
	}
}

// rewind returns the body to send req with a second time, and false when
// it cannot be had.
func rewind(req *http.Request) (io.ReadCloser, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	b, err := req.GetBody()
	return b, err == nil
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		b.Close()
	}
}

// validateRequest rejects what would make a malformed or smuggled request
// before a conn is spent on it.
func validateRequest(req *http.Request) error {
	u := req.URL
	switch {
	case u == nil:
		return errors.New("transport: nil Request.URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("transport: unsupported protocol scheme %q", u.Scheme)
	case u.Host == "":
		return errors.New("transport: no Host in request URL")
	case req.Method != "" && !isToken(req.Method):
		return fmt.Errorf("transport: invalid method %q", req.Method)
	case !validValue(requestHost(req)) || strings.IndexByte(requestHost(req), ' ') >= 0:
		return fmt.Errorf("transport: invalid Host %q", requestHost(req))
	}
	for k, vs := range req.Header {
		if !isToken(k) {
			return fmt.Errorf("transport: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !validValue(v) {
				return fmt.Errorf("transport: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

func requestHost(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool { return tokenBytes[c] }

// tokenBytes marks the bytes of an RFC 9110 token; a table, since every
// header key of every request and response is checked.
var tokenBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

// validValue reports whether v may be sent as a header value: no control
// bytes but tab, so a value cannot end the line it is on.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// ---- connections and the idle pool ----

// conn is one HTTP/1.1 connection. It is used by one request at a time; only
// abortIO may be called from another goroutine.
type conn struct {
	t       *Transport
	key     connKey
	raw     net.Conn // the TCP conn; closing it breaks any I/O on nc at once
	nc      net.Conn // what requests go over: raw or a TLS client on it
	br      *bufio.Reader
	bw      *bufio.Writer
	abort   func()     // abortIO as a func value, made once so AfterFunc costs no closure
	scratch []byte     // the response head being read
	lw      bodyWriter // writes a fixed-length request body
	idleAt  time.Time
	reused  bool
	setup   time.Duration // dialling and TLS of a new conn, until its first request counts it
}

var readerPool, writerPool sync.Pool

const ioBufSize = 4 << 10

func (t *Transport) getConn(ctx context.Context, u *url.URL, key connKey, fresh bool) (*conn, error) {
	if !fresh {
		if c := t.getIdle(key); c != nil {
			return c, nil
		}
	}
	return t.dialConn(ctx, u, key)
}

func (t *Transport) dialConn(ctx context.Context, u *url.URL, key connKey) (*conn, error) {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if key.tls {
			port = "443"
		}
	}
	began := time.Now()
	raw, err := t.dial(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, ctxOr(ctx, err)
	}
	nc := raw
	if key.tls {
		if nc, err = t.handshake(ctx, raw, host); err != nil {
			raw.Close()
			return nil, err
		}
	}
	c := &conn{t: t, key: key, raw: raw, nc: nc, setup: time.Since(began)}
	c.abort = c.abortIO
	if br, ok := readerPool.Get().(*bufio.Reader); ok {
		br.Reset(nc)
		c.br = br
	} else {
		c.br = bufio.NewReaderSize(nc, ioBufSize)
	}
	if bw, ok := writerPool.Get().(*bufio.Writer); ok {
		bw.Reset(nc)
		c.bw = bw
	} else {
		c.bw = bufio.NewWriterSize(nc, ioBufSize)
	}
	return c, nil
}

func (t *Transport) handshake(ctx context.Context, raw net.Conn, host string) (net.Conn, error) {
	cfg := &tls.Config{}
	if t.tlsConfig != nil {
		cfg = t.tlsConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, t.tlsTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if hctx.Err() != nil {
			return nil, tlsHandshakeTimeoutError{}
		}
		return nil, err
	}
	return tc, nil
}

// tlsHandshakeTimeoutError is a net.Error whose Timeout is true, as
// http.Transport's is, so callers classify it as a timeout.
type tlsHandshakeTimeoutError struct{}

func (tlsHandshakeTimeoutError) Timeout() bool   { return true }
func (tlsHandshakeTimeoutError) Temporary() bool { return true }
func (tlsHandshakeTimeoutError) Error() string   { return "transport: TLS handshake timeout" }

// abortIO closes the TCP conn under any read or write in progress. It is what
// a context cancellation or an early Body.Close runs, from any goroutine; it
// leaves the buffers alone since their owner may still be using them.
func (c *conn) abortIO() { c.raw.Close() }

// discard closes the conn for good and recycles its buffers; only the conn's
// owner may call it. The TCP conn is closed directly: a TLS close_notify is
// a write that could block and that no HTTP/1.1 peer needs.
func (c *conn) discard() {
	c.raw.Close()
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.br, c.bw = nil, nil
	}
}

// getIdle takes the most recently used idle conn for key, the one least
// likely to have been closed by the server.
func (t *Transport) getIdle(key connKey) *conn {
	now := time.Now()
	t.mu.Lock()
	p := t.idle[key]
	if p == nil || len(p.conns) == 0 {
		t.mu.Unlock()
		return nil
	}
	last := len(p.conns) - 1
	c := p.conns[last]
	if now.Sub(c.idleAt) >= t.idleTimeout {
		// The newest has idled too long, so all older ones have too.
		expired := p.conns
		p.conns = nil
		t.mu.Unlock()
		for _, c := range expired {
			c.discard()
		}
		return nil
	}
	p.conns[last] = nil
	p.conns = p.conns[:last]
	t.mu.Unlock()
	return c
}

// put returns a conn whose exchange finished cleanly to its idle pool.
func (t *Transport) put(c *conn) {
	c.reused = true
	c.idleAt = time.Now()
	if cap(c.scratch) > 64<<10 {
		c.scratch = nil // do not keep an outsized head's buffer alive
	}
	t.mu.Lock()
	p := t.idle[c.key]
	if p == nil {
		p = &idlePool{}
		t.idle[c.key] = p
	}
	if len(p.conns) >= t.maxIdle {
		t.mu.Unlock()
		c.discard()
		return
	}
	p.conns = append(p.conns, c)
	if !t.sweepArmed {
		t.sweepArmed = true
		if t.sweeper == nil {
			t.sweeper = time.AfterFunc(t.idleTimeout, t.sweep)
		} else {
			t.sweeper.Reset(t.idleTimeout)
		}
	}
	t.mu.Unlock()
}

// sweep closes conns idle past idleTimeout. getIdle alone would leave the
// pool of a host no longer used holding its sockets forever; one timer per
// Transport, armed only while conns idle, costs nothing per request.
func (t *Transport) sweep() {
	now := time.Now()
	var expired []*conn
	var next time.Duration
	t.mu.Lock()
	for k, p := range t.idle {
		i := 0
		for i < len(p.conns) && now.Sub(p.conns[i].idleAt) >= t.idleTimeout {
			i++
		}
		expired = append(expired, p.conns[:i]...)
		n := copy(p.conns, p.conns[i:])
		clear(p.conns[n:])
		p.conns = p.conns[:n]
		if n == 0 {
			delete(t.idle, k)
			continue
		}
		if d := t.idleTimeout - now.Sub(p.conns[0].idleAt); next == 0 || d < next {
			next = d
		}
	}
	t.sweepArmed = next > 0
	if next > 0 {
		t.sweeper.Reset(next)
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.discard()
	}
}

// ---- one exchange ----

// abortWatcher is a context that runs a function when it ends more cheaply
// than context.AfterFunc, with AfterFunc's contract for stop, except that
// abort runs on the goroutine that ends the context and must not block (the
// gateway's call context).
type abortWatcher interface {
	WatchAbort(abort func()) (stop func() bool)
}

// roundTrip sends req on c and reads the response head. stale reports that
// c was a reused conn the server had closed before any answer came, so the
// request may be sent again. On error c has been discarded.
func (c *conn) roundTrip(req *http.Request, body io.ReadCloser) (resp *http.Response, stale bool, err error) {
	ctx := req.Context()
	var stop func() bool
	// Closing the conn is the only way to break a blocked read or write
	// without a goroutine per request; it also tells the server at once.
	if w, ok := ctx.(abortWatcher); ok {
		stop = w.WatchAbort(c.abort)
	} else if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.abort)
	}
	resp, stale, err = c.exchange(ctx, req, body, stop)
	if err == nil {
		return resp, false, nil
	}
	if stop != nil {
		stop()
	}
	c.discard()
	if ctx.Err() != nil {
		return nil, false, ctx.Err()
	}
	return nil, stale, err
}

// exchange writes req and reads the head of the answer. A failure before
// any byte of the answer arrived on a reused conn is stale.
func (c *conn) exchange(ctx context.Context, req *http.Request, body io.ReadCloser, stop func() bool) (*http.Response, bool, error) {
	flushing, err := c.writeRequest(req, body)
	// The upstream's time starts with the flush; a new conn's setup is
	// network time too.
	waitFrom := flushing.Add(-c.setup)
	c.setup = 0
	if err == nil {
		_, err = c.br.Peek(1)
	}
	if err != nil {
		return nil, c.reused && isStale(err), err
	}
	rb, err := c.readResponse(req)
	if err == nil {
		err = c.attachBody(ctx, rb, stop, waitFrom)
	}
	if err != nil {
		return nil, false, err
	}
	return &rb.resp, false, nil
}

// isStale reports whether err is how a conn the server closed while it idled
// fails: the write hits a reset or broken pipe, or the read an EOF.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ctxOr returns the context's error when it has ended: a failure it caused
// must read as a cancellation or deadline, not as the closed conn it shows up as.
func ctxOr(ctx context.Context, err error) error {
	if e := ctx.Err(); e != nil {
		return e
	}
	return err
}

// writeRequest writes req's head and body into c.bw and flushes once (a
// chunked body is flushed per chunk so a streaming body is not held back).
// It closes body. flushing is when the last flush began: from there on the
// request is in the network's hands (see upstreamWait).
func (c *conn) writeRequest(req *http.Request, body io.ReadCloser) (flushing time.Time, err error) {
	n := int64(0)
	if body != nil && body != http.NoBody {
		n = req.ContentLength
		if n <= 0 {
			n = -1 // unknown: net/http also reads 0 with a body as unknown
		}
	}
	c.writeHead(req, n)
	switch {
	case n > 0:
		err = c.writeFixed(body, n)
	case n < 0:
		err = c.writeChunked(body)
	}
	closeBody(body)
	if err != nil {
		return time.Time{}, err
	}
	flushing = time.Now()
	return flushing, c.bw.Flush()
}

// writeHead writes the request line and header. bufio.Writer errors are
// sticky, so they are checked once, at the flush.
func (c *conn) writeHead(req *http.Request, n int64) {
	w := c.bw
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(requestHost(req))
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written from the request's fields, as net/http does
		}
		for _, v := range vs {
			if v == "" && k == "User-Agent" {
				continue // net/http's way of sending none
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		w.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	if req.Close && !hasToken(req.Header["Connection"], "close") {
		w.WriteString("Connection: close\r\n")
	}
	switch {
	case n > 0:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), n, 10))
		w.WriteString("\r\n")
	case n < 0:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n") // servers may insist on a length
	}
	w.WriteString("\r\n")
}

var errBodyTooLong = errors.New("transport: request body longer than its ContentLength")

// writeFixed copies exactly n bytes of body. A body with WriteTo (what
// http.NewRequest makes of a bytes.Reader) writes its bytes in one call, so a
// large body goes to the socket without being copied piecewise.
func (c *conn) writeFixed(body io.Reader, n int64) error {
	c.lw = bodyWriter{w: c.bw, n: n}
	var err error
	if wt, ok := body.(io.WriterTo); ok {
		_, err = wt.WriteTo(&c.lw)
	} else {
		err = c.lw.readFrom(body)
	}
	if err == nil && c.lw.n > 0 {
		err = fmt.Errorf("transport: ContentLength=%d with Body length %d", n, n-c.lw.n)
	}
	return err
}

// bodyWriter passes at most n bytes to w. It lives in the conn so that
// passing it as an io.Writer does not allocate.
type bodyWriter struct {
	w *bufio.Writer
	n int64 // bytes still expected
}

func (b *bodyWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > b.n {
		n, _ := b.w.Write(p[:b.n])
		b.n = 0
		return n, errBodyTooLong
	}
	n, err := b.w.Write(p)
	b.n -= int64(n)
	return n, err
}

// readFrom reads the body straight into the bufio.Writer's free space, so no
// copy buffer is needed.
func (b *bodyWriter) readFrom(r io.Reader) error {
	for b.n > 0 {
		if b.w.Available() == 0 {
			if err := b.w.Flush(); err != nil {
				return err
			}
		}
		buf := b.w.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), b.n)]
		n, err := r.Read(buf)
		b.w.Write(buf[:n])
		b.n -= int64(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var chunkBufPool = sync.Pool{New: func() any { b := make([]byte, ioBufSize); return &b }}

// writeChunked sends a body of unknown length as chunks, flushing each so a
// body that is produced slowly reaches the server as it comes.
func (c *conn) writeChunked(body io.Reader) error {
	w := c.bw
	bp := chunkBufPool.Get().(*[]byte)
	defer chunkBufPool.Put(bp)
	for {
		n, err := body.Read(*bp)
		if n > 0 {
			w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(n), 16))
			w.WriteString("\r\n")
			w.Write((*bp)[:n])
			w.WriteString("\r\n")
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			w.WriteString("0\r\n\r\n")
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ---- response head ----

// maxHeadBytes bounds a response head, as http.Transport's
// MaxResponseHeaderBytes does (there 10 MB; API heads are a few KB).
const maxHeadBytes = 1 << 20

var (
	errHeadTooLarge   = errors.New("transport: response head over 1 MiB")
	errMalformedChunk = errors.New("transport: malformed chunked encoding")
)

// respBody allocates a response together with its body: one allocation
// fewer per request.
type respBody struct {
	resp http.Response
	body body
}

// readResponse reads the head of the final response. All its text is copied
// into one string that Status, Proto, and header keys and values slice.
func (c *conn) readResponse(req *http.Request) (*respBody, error) {
	code, lines, err := c.readHead()
	if err != nil {
		return nil, err
	}
	s := string(c.scratch)
	line, rest, _ := strings.Cut(s, "\n")
	rb := &respBody{}
	resp := &rb.resp
	resp.StatusCode, resp.Request, resp.Header = code, req, make(http.Header, lines)
	proto, status, _ := strings.Cut(line, " ")
	resp.Proto, resp.Status = proto, strings.TrimLeft(status, " ")
	var ok bool
	if resp.ProtoMajor, resp.ProtoMinor, ok = http.ParseHTTPVersion(proto); !ok || resp.ProtoMajor != 1 {
		return nil, fmt.Errorf("transport: malformed HTTP version %q", proto)
	}
	parseHeader(resp.Header, rest, lines)
	return rb, nil
}

// readHead reads the status line and header lines of the next final response
// into c.scratch, separated by '\n', with folded lines joined. Interim 1xx
// responses other than 101 are read and dropped.
func (c *conn) readHead() (code, lines int, err error) {
	for {
		c.scratch = c.scratch[:0]
		if err = c.readLine(); err != nil {
			return 0, 0, err
		}
		if code, err = statusCode(c.scratch); err != nil {
			return 0, 0, err
		}
		if lines, err = c.readHeaderLines(); err != nil {
			return 0, 0, err
		}
		if code >= 200 || code == http.StatusSwitchingProtocols {
			return code, lines, nil
		}
	}
}

func (c *conn) readHeaderLines() (int, error) {
	lines := 0
	for {
		start := len(c.scratch)
		c.scratch = append(c.scratch, '\n')
		if err := c.readLine(); err != nil {
			return 0, err
		}
		line := c.scratch[start+1:]
		switch {
		case len(line) == 0:
			c.scratch = c.scratch[:start]
			return lines, nil
		case line[0] == ' ' || line[0] == '\t':
			// Obsolete line folding: RFC 9112 has a client replace it by a space.
			if lines == 0 {
				return 0, errors.New("transport: malformed response header: leading whitespace")
			}
			c.scratch[start] = ' '
		default:
			if err := canonicalizeKey(line); err != nil {
				return 0, err
			}
			lines++
		}
	}
}

// readLine appends the next line to c.scratch without its line ending. A
// line longer than the read buffer is gathered from several slices.
func (c *conn) readLine() error {
	for {
		frag, err := c.br.ReadSlice('\n')
		c.scratch = append(c.scratch, frag...)
		if len(c.scratch) > maxHeadBytes {
			return errHeadTooLarge
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the response had begun
			}
			return err
		}
	}
	c.scratch = bytes.TrimSuffix(c.scratch[:len(c.scratch)-1], []byte{'\r'})
	return nil
}

// statusCode parses the code out of a status line such as "HTTP/1.1 200 OK".
func statusCode(line []byte) (int, error) {
	_, st, ok := bytes.Cut(line, []byte{' '})
	st = bytes.TrimLeft(st, " ")
	if !ok || len(st) < 3 || len(st) > 3 && st[3] != ' ' {
		return 0, fmt.Errorf("transport: malformed status line %q", line)
	}
	code := 0
	for _, d := range st[:3] {
		if d < '0' || d > '9' {
			return 0, fmt.Errorf("transport: malformed status line %q", line)
		}
		code = code*10 + int(d-'0')
	}
	if code < 100 {
		return 0, fmt.Errorf("transport: malformed status line %q", line)
	}
	return code, nil
}

// parseHeader fills h from n '\n'-separated "Key: value" lines. Values of
// distinct keys share one backing array: one allocation instead of n.
func parseHeader(h http.Header, text string, n int) {
	vals := make([]string, n)
	for text != "" {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		k, v, _ := strings.Cut(line, ":") // readHeaderLines checked the key
		v = strings.Trim(v, " \t")
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals[0] = v
		h[k] = vals[:1:1]
		vals = vals[1:]
	}
}

// canonicalizeKey checks that the key of a header line is a token and puts
// it in canonical form in place, as textproto.CanonicalMIMEHeaderKey would:
// done before the head becomes a string, a lowercase key (common behind
// HTTP/2 fronts) costs no allocation.
func canonicalizeKey(line []byte) error {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return fmt.Errorf("transport: malformed response header line %q", line)
	}
	upper := true
	for j, c := range line[:i] {
		if !isTokenByte(c) {
			return fmt.Errorf("transport: malformed response header key %q", line[:i])
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			line[j] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			line[j] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return nil
}

// hasToken reports whether a comma-separated header value lists tok,
// ignoring case.
func hasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for v != "" {
			var f string
			f, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.Trim(f, " \t"), tok) {
				return true
			}
		}
	}
	return false
}

// ---- response body ----

type bodyMode uint8

const (
	modeNone bodyMode = iota
	modeLength
	modeChunked
	modeClose // lasts until the server closes the conn
)

// framing works out how resp's body is delimited (RFC 9112 section 6.3) and
// fills ContentLength, TransferEncoding and Close the way net/http does.
func framing(resp *http.Response, method string) (bodyMode, error) {
	h := resp.Header
	if resp.ProtoMinor == 0 {
		resp.Close = !hasToken(h["Connection"], "keep-alive")
	} else if resp.Close = hasToken(h["Connection"], "close"); resp.Close {
		delete(h, "Connection")
	}
	chunked := false
	if te := h["Transfer-Encoding"]; len(te) > 0 {
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return 0, fmt.Errorf("transport: unsupported transfer encoding %q", te)
		}
		chunked = true
		delete(h, "Transfer-Encoding")
		delete(h, "Content-Length") // chunked overrides it
		resp.TransferEncoding = []string{"chunked"}
	}
	n := int64(-1)
	if cl := h["Content-Length"]; len(cl) > 0 && !chunked {
		var ok bool
		if n, ok = parseLength(cl); !ok {
			return 0, fmt.Errorf("transport: bad Content-Length %q", cl)
		}
	}
	code := resp.StatusCode
	switch {
	case method == http.MethodHead:
		resp.ContentLength = n
		return modeNone, nil
	case code < 200 || code == http.StatusNoContent || code == http.StatusNotModified:
		resp.ContentLength = 0
		return modeNone, nil
	case chunked:
		resp.ContentLength = -1
		return modeChunked, nil
	case n >= 0:
		resp.ContentLength = n
		return modeLength, nil
	}
	resp.ContentLength = -1
	resp.Close = true
	return modeClose, nil
}

// parseLength parses Content-Length values, which must all agree.
func parseLength(vs []string) (int64, bool) {
	v := strings.Trim(vs[0], " \t")
	for _, o := range vs[1:] {
		if strings.Trim(o, " \t") != v {
			return 0, false
		}
	}
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// attachBody sets resp.Body. A response without a body gives c back (to the
// pool or closed) at once; otherwise the body owns c and stop from here on,
// and remembers when the upstream's time began (see upstreamWait).
func (c *conn) attachBody(ctx context.Context, rb *respBody, stop func() bool, waitFrom time.Time) error {
	resp, req := &rb.resp, rb.resp.Request
	mode, err := framing(resp, req.Method)
	if err != nil {
		return err
	}
	keep := !resp.Close && !req.Close && !hasToken(req.Header["Connection"], "close") &&
		resp.StatusCode != http.StatusSwitchingProtocols
	if mode == modeNone || mode == modeLength && resp.ContentLength == 0 {
		resp.Body = http.NoBody
		c.release(stop, keep)
		return nil
	}
	rb.body = body{c: c, ctx: ctx, stop: stop, mode: mode, keep: keep, n: max(resp.ContentLength, 0), waitFrom: waitFrom}
	resp.Body = &rb.body
	return nil
}

// release ends c's exchange: back to the pool when it may be reused and the
// context did not abort it meanwhile, else closed.
func (c *conn) release(stop func() bool, keep bool) {
	if stop != nil && !stop() {
		keep = false // the abort ran or is running: c is being closed
	}
	if keep {
		c.t.put(c)
	} else {
		c.discard()
	}
}

// body states. Read moves active to done or failed; Close (maybe from
// another goroutine) moves active to closed. Whichever moves it owns what
// happens to the conn, so a conn is never both pooled and closed.
const (
	bodyActive int32 = iota
	bodyDone
	bodyFailed
	bodyClosed
)

var errReadOnClosedBody = errors.New("http: read on closed response body")

// body is a response body read straight off the conn's bufio.Reader.
type body struct {
	c     *conn
	ctx   context.Context
	stop  func() bool // releases the context's AfterFunc
	mode  bodyMode
	keep  bool  // the conn may be reused once the body is done
	n     int64 // modeLength: bytes left; modeChunked: bytes left in the chunk
	crlf  bool  // modeChunked: the CRLF after a chunk is still unread
	err   error // the error after bodyFailed; read only by the reader
	state atomic.Int32

	waitFrom time.Time // when the upstream's time began (upstreamWait)
}

// upstreamWait is how long the upstream has kept resp's caller waiting so
// far: the time since the request, formatted in the conn's buffer, began
// its last flush to the socket, and the conn's dialling and TLS handshake
// when the request was its first. That is the part of a call spent on the
// network and the other side of it. The send is the network's too: on
// loopback the kernel runs the receiver's side of it within the sender's
// write, and often the receiver itself before the write returns, so
// counting it as the gateway's would bill the gateway for the upstream's
// work. Building the request, and the caller's work on the answer after,
// are the gateway's own. ok is false when the response did not come from a
// Transport with a body (net/http's transport, which the HTTP/2 and proxy
// clients use, does not say when it wrote), and the caller has only the
// whole call to go by.
func upstreamWait(resp *http.Response) (d time.Duration, ok bool) {
	if b, ok := resp.Body.(*body); ok {
		return time.Since(b.waitFrom), true
	}
	return 0, false
}

// Read reads the body. When the last byte is read, the conn is released in
// that same call, so a reader that stops at the known end without reading
// io.EOF (a JSON decoder, say) still lets the conn be reused.
func (b *body) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyDone:
		return 0, io.EOF
	case bodyFailed:
		return 0, b.err
	case bodyClosed:
		return 0, errReadOnClosedBody
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var done bool
	var err error
	switch b.mode {
	case modeLength:
		n, done, err = b.readLength(p)
	case modeChunked:
		n, done, err = b.readChunked(p)
	default:
		n, err = b.c.br.Read(p)
		if err == io.EOF {
			done, err = true, nil
		}
	}
	if err != nil {
		return n, b.fail(err)
	}
	if done {
		b.finish()
		if n == 0 {
			return 0, io.EOF
		}
	}
	return n, nil
}

// Close closes the body. Before the end it closes the conn rather than
// draining it: a stream may have minutes left, and a client that has gone
// should stop the upstream at once. It may be called while a Read blocks.
func (b *body) Close() error {
	if b.state.CompareAndSwap(bodyActive, bodyClosed) {
		if b.stop != nil {
			b.stop()
		}
		b.c.abortIO()
	}
	return nil
}

func (b *body) finish() {
	if b.state.CompareAndSwap(bodyActive, bodyDone) {
		b.c.release(b.stop, b.keep && b.mode != modeClose)
	}
}

// fail ends the body on a read error, reporting the context's error when the
// context caused it (by closing the conn).
func (b *body) fail(err error) error {
	if !b.state.CompareAndSwap(bodyActive, bodyFailed) {
		return errReadOnClosedBody // Close ran meanwhile; it closed the conn
	}
	if b.stop != nil {
		b.stop()
	}
	b.c.discard()
	b.err = ctxOr(b.ctx, err)
	return b.err
}

func (b *body) readLength(p []byte) (int, bool, error) {
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.c.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		return n, true, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, false, err
}

// readChunked returns data from the current chunk and from those after it
// that are already buffered: a streamed chunk reaches the reader without
// waiting for the next one, and chunks that arrived together are read
// together (an SSE reader above then sees every event one network read
// brought, and the gateway relays them in one write).
func (b *body) readChunked(p []byte) (int, bool, error) {
	total := 0
	for {
		n, done, err := b.readChunk(p[total:])
		total += n
		if err != nil || done || total == len(p) || !b.chunkBuffered() {
			return total, done, err
		}
	}
}

// chunkBuffered reports whether readChunk can go on without waiting on the
// network: data of the current chunk is buffered, or the next chunk's size
// line and some of its data — or, for the last chunk, the whole end with no
// trailer.
func (b *body) chunkBuffered() bool {
	br := b.c.br
	if b.n > 0 {
		return br.Buffered() > 0
	}
	p, _ := br.Peek(br.Buffered())
	if b.crlf {
		if len(p) < 2 {
			return false
		}
		p = p[2:] // nextChunk checks that it is a CRLF
	}
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return false
	}
	size, err := parseChunkSize(bytes.TrimSuffix(p[:i], []byte{'\r'}))
	rest := p[i+1:]
	switch {
	case err != nil:
		return true // nextChunk fails at once
	case size == 0:
		return len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n'
	default:
		return len(rest) > 0
	}
}

// readChunk returns data from the current chunk only, starting the next
// when the current one is done.
func (b *body) readChunk(p []byte) (int, bool, error) {
	if b.n == 0 {
		last, err := b.nextChunk()
		if err != nil || last {
			return 0, last, err
		}
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.c.br.Read(p)
	b.n -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, false, err
	}
	if b.n > 0 {
		return n, false, nil
	}
	b.crlf = true
	done, err := b.endEarly()
	return n, done, err
}

// endEarly consumes, if already buffered, the CRLF closing a chunk and a
// final empty chunk, so a body's last data read also ends it.
func (b *body) endEarly() (bool, error) {
	br := b.c.br
	if br.Buffered() < 2 {
		return false, nil
	}
	if err := expectCRLF(br); err != nil {
		return false, err
	}
	b.crlf = false
	if p, _ := br.Peek(min(br.Buffered(), 5)); string(p) == "0\r\n\r\n" {
		br.Discard(5)
		return true, nil
	}
	return false, nil
}

// nextChunk reads the next chunk-size line; at the last chunk it skips the
// trailer and reports last.
func (b *body) nextChunk() (last bool, err error) {
	br := b.c.br
	if b.crlf {
		if err := expectCRLF(br); err != nil {
			return false, err
		}
		b.crlf = false
	}
	line, err := readChunkLine(br)
	if err != nil {
		return false, err
	}
	size, err := parseChunkSize(line)
	if err != nil {
		return false, err
	}
	if size == 0 {
		return true, skipTrailer(br)
	}
	b.n = size
	return false, nil
}

func expectCRLF(br *bufio.Reader) error {
	p, err := br.Peek(2)
	if err != nil {
		return unexpectedEOF(err)
	}
	if p[0] != '\r' || p[1] != '\n' {
		return errMalformedChunk
	}
	br.Discard(2)
	return nil
}

// readChunkLine returns one line, without its line ending, that must fit in
// the read buffer: chunk-size lines and trailer fields are short.
func readChunkLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errMalformedChunk
	}
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'}), nil
}

// parseChunkSize parses a chunk-size line, ignoring chunk extensions.
func parseChunkSize(line []byte) (int64, error) {
	line, _, _ = bytes.Cut(line, []byte{';'})
	line = bytes.Trim(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, errMalformedChunk
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, errMalformedChunk
		}
		n = n<<4 | int64(c)
	}
	return n, nil
}

// skipTrailer reads and drops trailer fields up to the empty line that ends
// a chunked body.
func skipTrailer(br *bufio.Reader) error {
	for range 1024 {
		line, err := readChunkLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
	return errMalformedChunk
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
