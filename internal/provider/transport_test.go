package provider

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tpServer is an httptest server that counts the connections it accepts and
// closes, which is how the tests see reuse and closing from the server's side.
type tpServer struct {
	*httptest.Server
	opened, closed atomic.Int32
}

func newTPServer(t *testing.T, h http.HandlerFunc) *tpServer {
	return startTPServer(t, h, false)
}

func startTPServer(t *testing.T, h http.HandlerFunc, useTLS bool) *tpServer {
	t.Helper()
	s := &tpServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// waitClosed waits until the server has seen n connections closed.
func (s *tpServer) waitClosed(t *testing.T, n int32) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for s.closed.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("server saw %d conns closed, want %d", s.closed.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestTransport(t testing.TB, o TransportOptions) *Transport {
	tr := NewTransport(o)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, tr http.RoundTripper, method, url string, body io.Reader, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, string(b)
}

func (tr *Transport) idleCount() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, p := range tr.idle {
		n += len(p.conns)
	}
	return n
}

// echo answers with what it received: method, URI, a header, the framing of
// the request body in headers and the body itself. ?chunked=1 makes the
// answer chunked by flushing before the body; otherwise it has a length.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("X-Method", r.Method)
	h.Set("X-URI", r.RequestURI)
	h.Set("X-Got", r.Header.Get("X-Test"))
	h.Set("X-Req-TE", strings.Join(r.TransferEncoding, ","))
	h.Set("X-Req-CL", strconv.FormatInt(r.ContentLength, 10))
	h.Add("X-Multi", "a")
	h.Add("X-Multi", "b")
	h["x-lower"] = []string{"v"} // sent as is: the client must canonicalize it
	out := append([]byte("echo:"), b...)
	if r.URL.Query().Get("chunked") == "1" {
		w.WriteHeader(http.StatusCreated)
		w.(http.Flusher).Flush()
	} else {
		h.Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(http.StatusCreated)
	}
	if r.Method != http.MethodHead {
		w.Write(out)
	}
}

func TestTransportRoundTrip(t *testing.T) {
	srv := newTPServer(t, echo)
	tr := newTestTransport(t, TransportOptions{})
	big := strings.Repeat("0123456789abcdef", 16<<10) // 256 KiB: many buffers each way
	tests := []struct {
		name, method, query string
		body                io.Reader
		wantTE, wantCL      string // request framing the server saw
		chunkedResp         bool
	}{
		{"get", "GET", "", nil, "", "0", false},
		{"get chunked answer", "GET", "chunked=1", nil, "", "0", true},
		{"post", "POST", "", strings.NewReader(`{"a":1}`), "", "7", false},
		{"post chunked answer", "POST", "chunked=1", strings.NewReader(`{"a":1}`), "", "7", true},
		{"post unknown length", "POST", "", io.MultiReader(strings.NewReader(`{"a"`), strings.NewReader(`:1}`)), "chunked", "-1", false},
		{"post big", "POST", "", strings.NewReader(big), "", strconv.Itoa(len(big)), false},
		{"post big unknown length", "POST", "chunked=1", io.MultiReader(strings.NewReader(big)), "chunked", "-1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sent string
			if tc.body != nil {
				b, _ := io.ReadAll(tc.body)
				sent = string(b)
				tc.body = bytes.NewReader(b)
				if tc.wantTE == "chunked" {
					tc.body = io.MultiReader(tc.body) // hide the length
				}
			}
			resp, body := do(t, tr, tc.method, srv.URL+"/p/a%20th?"+tc.query, tc.body, http.Header{"X-Test": {"hello"}})
			if resp.StatusCode != http.StatusCreated || resp.Status != "201 Created" || resp.Proto != "HTTP/1.1" {
				t.Errorf("status %d %q %q", resp.StatusCode, resp.Status, resp.Proto)
			}
			h := resp.Header
			got := []string{h.Get("X-Method"), h.Get("X-URI"), h.Get("X-Got"), h.Get("X-Req-TE"), h.Get("X-Req-CL")}
			want := []string{tc.method, "/p/a%20th?" + tc.query, "hello", tc.wantTE, tc.wantCL}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("server saw %q, want %q", got, want)
			}
			if m := h["X-Multi"]; len(m) != 2 || m[0] != "a" || m[1] != "b" {
				t.Errorf("X-Multi = %q", m)
			}
			if h.Get("X-Lower") != "v" {
				t.Errorf("lowercase key not canonicalized: %v", h)
			}
			if body != "echo:"+sent {
				t.Errorf("body %d bytes %.40q…, want %d bytes", len(body), body, len("echo:"+sent))
			}
			checkFraming(t, resp, tc.chunkedResp, len(body))
			if resp.Request == nil || resp.Request.Method != tc.method {
				t.Errorf("resp.Request not set")
			}
		})
	}
	if n := srv.opened.Load(); n != 1 {
		t.Errorf("server saw %d connections for sequential requests, want 1", n)
	}
}

func checkFraming(t *testing.T, resp *http.Response, chunked bool, n int) {
	t.Helper()
	if chunked {
		if resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 || resp.Header.Get("Transfer-Encoding") != "" {
			t.Errorf("chunked answer: ContentLength %d, TransferEncoding %q, header %v", resp.ContentLength, resp.TransferEncoding, resp.Header)
		}
		return
	}
	if resp.ContentLength != int64(n) || resp.TransferEncoding != nil {
		t.Errorf("ContentLength %d (body %d), TransferEncoding %q", resp.ContentLength, n, resp.TransferEncoding)
	}
}

func TestTransportNoBodyAnswers(t *testing.T) {
	srv := newTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/103":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints) // an interim answer to skip
			w.Header().Del("Link")
			w.Write([]byte("final"))
		default:
			echo(w, r)
		}
	})
	tr := newTestTransport(t, TransportOptions{})
	for _, path := range []string{"/204", "/304"} {
		resp, body := do(t, tr, "GET", srv.URL+path, nil, nil)
		if path[1:] != strconv.Itoa(resp.StatusCode) || body != "" || resp.Body != http.NoBody {
			t.Errorf("%s: status %d body %q", path, resp.StatusCode, body)
		}
	}
	resp, body := do(t, tr, "HEAD", srv.URL+"/", nil, nil)
	if resp.StatusCode != http.StatusCreated || body != "" || resp.ContentLength != 5 {
		t.Errorf("HEAD: status %d body %q ContentLength %d", resp.StatusCode, body, resp.ContentLength)
	}
	resp, body = do(t, tr, "GET", srv.URL+"/103", nil, nil)
	if resp.StatusCode != http.StatusOK || body != "final" || resp.Header.Get("Link") != "" {
		t.Errorf("after 103: status %d body %q header %v", resp.StatusCode, body, resp.Header)
	}
	if n := srv.opened.Load(); n != 1 {
		t.Errorf("answers without a body used %d connections, want 1", n)
	}
}

func TestTransportReuse(t *testing.T) {
	srv := newTPServer(t, echo)
	tr := newTestTransport(t, TransportOptions{})
	for i := range 10 {
		resp, body := do(t, tr, "POST", srv.URL+"/", strings.NewReader(strconv.Itoa(i)), nil)
		if body != "echo:"+strconv.Itoa(i) || resp.Close {
			t.Fatalf("request %d: body %q, Close %v", i, body, resp.Close)
		}
	}
	// A reader that stops at the known length without seeing io.EOF, as a
	// JSON decoder does, must still give the conn back.
	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "echo:" {
			t.Fatalf("ReadFull: %q, %v", buf, err)
		}
		resp.Body.Close()
	}
	if n := srv.opened.Load(); n != 1 {
		t.Errorf("13 sequential requests used %d connections, want 1", n)
	}
	if n := tr.idleCount(); n != 1 {
		t.Errorf("%d idle conns, want 1", n)
	}
}

func TestTransportStaleRetry(t *testing.T) {
	srv := newTPServer(t, echo)
	tr := newTestTransport(t, TransportOptions{})
	do(t, tr, "GET", srv.URL+"/", nil, nil)
	// The server drops the idle conn; the request must go again on a new one,
	// with its body, which http.NewRequest made re-readable through GetBody.
	srv.CloseClientConnections()
	_, body := do(t, tr, "POST", srv.URL+"/", strings.NewReader("again"), nil)
	if body != "echo:again" {
		t.Errorf("body after retry %q", body)
	}
	if n := srv.opened.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}

	// Without GetBody the body cannot be sent twice: the error must surface.
	srv.CloseClientConnections()
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader("once"))
	req.GetBody = nil
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("request with an unreplayable body on a dead conn succeeded")
	}
	_, body = do(t, tr, "GET", srv.URL+"/", nil, nil)
	if body != "echo:" {
		t.Errorf("next request: body %q", body)
	}
}

func TestTransportServerConnectionClose(t *testing.T) {
	srv := newTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	tr := newTestTransport(t, TransportOptions{})
	for i := range 2 {
		resp, body := do(t, tr, "GET", srv.URL+"/", nil, nil)
		if body != "bye" || !resp.Close {
			t.Errorf("request %d: body %q, Close %v", i, body, resp.Close)
		}
	}
	if n := srv.opened.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle conns after Connection: close, want 0", n)
	}
}

func TestTransportRequestClose(t *testing.T) {
	var sawClose atomic.Bool
	srv := newTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		sawClose.Store(r.Close)
	})
	tr := newTestTransport(t, TransportOptions{})
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Close = true
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !sawClose.Load() || tr.idleCount() != 0 {
		t.Errorf("server saw close %v, %d idle conns", sawClose.Load(), tr.idleCount())
	}
}

func TestTransportEarlyBodyClose(t *testing.T) {
	for _, chunked := range []string{"0", "1"} {
		t.Run("chunked="+chunked, func(t *testing.T) {
			srv := newTPServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/big" {
					w.Write(bytes.Repeat([]byte("x"), 1<<20))
					return
				}
				echo(w, r)
			})
			tr := newTestTransport(t, TransportOptions{})
			req, _ := http.NewRequest("GET", srv.URL+"/big?chunked="+chunked, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
				t.Error("Read after Close succeeded")
			}
			srv.waitClosed(t, 1) // closed, not left open or pooled
			if n := tr.idleCount(); n != 0 {
				t.Errorf("%d idle conns after early close, want 0", n)
			}
			if _, body := do(t, tr, "GET", srv.URL+"/", nil, nil); body != "echo:" {
				t.Errorf("next request: body %q", body)
			}
			if n := srv.opened.Load(); n != 2 {
				t.Errorf("server saw %d connections, want 2", n)
			}
		})
	}
}

// blocker is a handler that sends head (and a first body chunk when stream
// is set) and then waits for the client to go; gone is closed when the
// server sees it leave.
type blocker struct {
	stream bool
	gone   chan struct{}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body) // net/http notices a client leave only once the body is read
	if b.stream {
		w.Write([]byte("data: 1\n\n"))
		w.(http.Flusher).Flush()
	}
	select {
	case <-r.Context().Done():
		close(b.gone)
	case <-time.After(10 * time.Second):
	}
}

func (b *blocker) waitGone(t *testing.T) {
	t.Helper()
	select {
	case <-b.gone:
	case <-time.After(2 * time.Second):
		t.Error("server did not see the connection close")
	}
}

func TestTransportCancelWaitingForHead(t *testing.T) {
	h := &blocker{gone: make(chan struct{})}
	srv := newTPServer(t, h.ServeHTTP)
	tr := newTestTransport(t, TransportOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/", strings.NewReader("{}"))
	var canceledAt atomic.Int64
	time.AfterFunc(50*time.Millisecond, func() { canceledAt.Store(time.Now().UnixNano()); cancel() })
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("RoundTrip succeeded after cancel")
	}
	if d := time.Since(time.Unix(0, canceledAt.Load())); d > 200*time.Millisecond {
		t.Errorf("RoundTrip returned %v after cancel", d)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v is not context.Canceled", err)
	}
	h.waitGone(t)
}

func TestTransportCancelDuringBody(t *testing.T) {
	h := &blocker{stream: true, gone: make(chan struct{})}
	srv := newTPServer(t, h.ServeHTTP)
	tr := newTestTransport(t, TransportOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("data: 1\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first event: %v", err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	n, err := resp.Body.Read(make([]byte, 100))
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("Read returned %v after it started, cancel came at 50ms", d)
	}
	if n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Read = %d, %v; want 0, context.Canceled", n, err)
	}
	h.waitGone(t)
}

// A body Close from another goroutine (the gateway's relay when the client
// leaves) must break a Read that is blocked on the upstream.
func TestTransportCloseDuringRead(t *testing.T) {
	h := &blocker{stream: true, gone: make(chan struct{})}
	srv := newTPServer(t, h.ServeHTTP)
	tr := newTestTransport(t, TransportOptions{})
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, len("data: 1\n\n")))
	time.AfterFunc(50*time.Millisecond, func() { resp.Body.Close() })
	start := time.Now()
	if _, err := resp.Body.Read(make([]byte, 100)); err == nil {
		t.Error("Read succeeded after Close")
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("Read returned %v after it started, Close came at 50ms", d)
	}
	h.waitGone(t)
}

func TestTransportDeadline(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			h := &blocker{stream: stream, gone: make(chan struct{})}
			srv := newTPServer(t, h.ServeHTTP)
			tr := newTestTransport(t, TransportOptions{})
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/", nil)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			var ne net.Error
			if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("error %v: want DeadlineExceeded and a net.Error timeout", err)
			}
			h.waitGone(t)
		})
	}
}

func TestTransportCanceledBeforeStart(t *testing.T) {
	srv := newTPServer(t, echo)
	tr := newTestTransport(t, TransportOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if n := srv.opened.Load(); n != 0 {
		t.Errorf("a canceled request opened %d connections", n)
	}
}

func TestTransportTLS(t *testing.T) {
	var names, protos sync.Map
	srv := startTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		names.Store(r.TLS.ServerName, true)
		protos.Store(r.TLS.NegotiatedProtocol, true)
		echo(w, r)
	}, true)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	// Dial the test server whatever the name, so the URL can carry a name the
	// certificate holds and ServerName can be checked.
	dialer := &net.Dialer{}
	tr := newTestTransport(t, TransportOptions{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, srv.Listener.Addr().String())
		},
	})
	for i := range 3 {
		_, body := do(t, tr, "POST", "https://example.com/", strings.NewReader(strconv.Itoa(i)), nil)
		if body != "echo:"+strconv.Itoa(i) {
			t.Errorf("body %q", body)
		}
	}
	if _, ok := names.Load("example.com"); !ok {
		t.Errorf("server did not see ServerName example.com")
	}
	if _, ok := protos.Load("http/1.1"); !ok {
		t.Errorf("ALPN did not settle on http/1.1")
	}
	if n := srv.opened.Load(); n != 1 {
		t.Errorf("server saw %d TLS connections, want 1", n)
	}
}

func TestTransportTLSHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	tr := newTestTransport(t, TransportOptions{TLSHandshakeTimeout: 100 * time.Millisecond})
	req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/", nil)
	start := time.Now()
	_, err = tr.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v, want a net.Error timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("handshake gave up after %v", d)
	}
}

func TestTransportConcurrent(t *testing.T) {
	srv := newTPServer(t, echo)
	tr := newTestTransport(t, TransportOptions{})
	const workers, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				want := fmt.Sprintf("%d-%d", w, i)
				q := ""
				if i%2 == 1 {
					q = "?chunked=1"
				}
				req, _ := http.NewRequest("POST", srv.URL+"/"+q, strings.NewReader(want))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != "echo:"+want {
					errs <- fmt.Errorf("body %q, %v; want echo:%s", b, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.opened.Load(); n > workers {
		t.Errorf("%d connections for %d workers", n, workers)
	}
}

func TestTransportIdleTimeout(t *testing.T) {
	srv := newTPServer(t, echo)
	tr := newTestTransport(t, TransportOptions{IdleConnTimeout: 50 * time.Millisecond})
	do(t, tr, "GET", srv.URL+"/", nil, nil)
	srv.waitClosed(t, 1) // the sweeper, not a later request, closes it
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle conns after the idle timeout", n)
	}
	do(t, tr, "GET", srv.URL+"/", nil, nil)
	if n := srv.opened.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
}

func TestTransportMaxIdlePerHost(t *testing.T) {
	const n = 3
	var arrived sync.WaitGroup
	arrived.Add(n)
	srv := newTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		arrived.Wait() // all n in flight at once, so n conns
	})
	tr := newTestTransport(t, TransportOptions{MaxIdleConnsPerHost: 1})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { do(t, tr, "GET", srv.URL+"/", nil, nil) })
	}
	wg.Wait()
	if got := tr.idleCount(); got != 1 {
		t.Errorf("%d idle conns, want 1", got)
	}
	srv.waitClosed(t, n-1)
}

// rawServer serves each connection with serve, for answers net/http would
// not send.
func rawServer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readHeadLines reads a request head; the test requests have no body.
func readHeadLines(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

func TestTransportRawAnswers(t *testing.T) {
	tests := []struct {
		name, answer, body string
		wantCL             int64
		wantClose          bool
		wantHeader         http.Header
	}{
		{"until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", "all of it", -1, true,
			http.Header{"Content-Type": {"text/plain"}}},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", "hi", 2, true, nil},
		{"chunk extension and trailer",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
			"abc0123456789", -1, false, http.Header{}},
		{"header over the read buffer", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", 10000) + "\r\nContent-Length: 1\r\n\r\n!",
			"!", 1, false, http.Header{"X-Big": {strings.Repeat("x", 10000)}}},
		{"folded header", "HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 0\r\n\r\n", "", 0, false,
			http.Header{"X-Long": {"a   b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				if readHeadLines(br) == nil {
					io.WriteString(c, tc.answer)
				}
			})
			tr := newTestTransport(t, TransportOptions{})
			resp, body := do(t, tr, "GET", url, nil, nil)
			if body != tc.body || resp.ContentLength != tc.wantCL || resp.Close != tc.wantClose {
				t.Errorf("body %q ContentLength %d Close %v; want %q %d %v", body, resp.ContentLength, resp.Close,
					tc.body, tc.wantCL, tc.wantClose)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header[k]; strings.Join(got, ",") != strings.Join(v, ",") {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestTransportMalformedAnswers(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/9.9 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Key: v\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	} {
		url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
			if readHeadLines(br) == nil {
				io.WriteString(c, answer)
			}
		})
		tr := newTestTransport(t, TransportOptions{})
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("%q: no error", answer)
		}
	}
}

func TestTransportRejectsBadRequests(t *testing.T) {
	srv := newTPServer(t, echo)
	tr := newTestTransport(t, TransportOptions{})
	bad := []func(r *http.Request){
		func(r *http.Request) { r.Header.Set("X-Evil", "a\r\nX-Smuggled: 1") },
		func(r *http.Request) { r.Header["Bad Key"] = []string{"v"} },
		func(r *http.Request) { r.Host = "a\r\nb" },
		func(r *http.Request) { r.URL.Scheme = "ftp" },
	}
	for i, f := range bad {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		f(req)
		if _, err := tr.RoundTrip(req); err == nil {
			t.Errorf("bad request %d was sent", i)
		}
	}
	if n := srv.opened.Load(); n != 0 {
		t.Errorf("bad requests opened %d connections", n)
	}
}

// ---- allocations and benchmarks ----

// cannedServer answers every request on a conn with answer, reading
// requests that carry a Content-Length body. It allocates nothing per
// request, so allocation counts are the client's.
func cannedServer(tb testing.TB, answer []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCanned(c, answer)
		}
	}()
	return "http://" + ln.Addr().String()
}

func serveCanned(c net.Conn, answer []byte) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		n := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
				for _, d := range bytes.TrimSpace(v) {
					n = n*10 + int(d-'0')
				}
			}
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if _, err := c.Write(answer); err != nil {
			return
		}
	}
}

// A chat completion answer as OpenAI sends it: ~1.5 KB of JSON and the usual
// headers.
var (
	benchAnswerBody = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"` + strings.Repeat("lorem ipsum ", 110) +
		`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":300,"total_tokens":312}}`
	benchAnswer = []byte("HTTP/1.1 200 OK\r\n" +
		"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(benchAnswerBody)) + "\r\n" +
		"Connection: keep-alive\r\n" +
		"openai-processing-ms: 312\r\n" +
		"x-request-id: req_0123456789abcdef\r\n" +
		"x-ratelimit-remaining-requests: 9999\r\n" +
		"Strict-Transport-Security: max-age=31536000\r\n" +
		"\r\n" + benchAnswerBody)
	benchRequestBody = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` +
		strings.Repeat("hello ", 150) + `"}]}`)
)

func setBenchHeaders(req *http.Request) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-0123456789abcdef0123456789abcdef")
}

func newBenchStdTransport() *http.Transport {
	return &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
}

// The context of a gateway request is cancelable; the transport pays for
// watching it, so the measurement must too.
func cancelableRoundTrip(tb testing.TB, rt http.RoundTripper, url string, buf []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(benchRequestBody))
	if err != nil {
		tb.Error(err) // not Fatal: RunParallel goroutines call this
		return
	}
	setBenchHeaders(req)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		tb.Error(err) // not Fatal: RunParallel goroutines call this
		return
	}
	if _, err := io.ReadFull(resp.Body, buf[:len(benchAnswerBody)]); err != nil {
		tb.Error(err) // not Fatal: RunParallel goroutines call this
		return
	}
	resp.Body.Close()
}

// TestTransportAllocs holds the transport to its allocation budget: a POST
// with a 1.5 KB answer, read to the end, under a cancelable context.
func TestTransportAllocs(t *testing.T) {
	url := cannedServer(t, benchAnswer)
	tr := newTestTransport(t, TransportOptions{})
	buf := make([]byte, 4096)
	cancelableRoundTrip(t, tr, url, buf) // dial outside the measurement
	total := testing.AllocsPerRun(200, func() { cancelableRoundTrip(t, tr, url, buf) })
	build := testing.AllocsPerRun(200, func() {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(benchRequestBody))
		setBenchHeaders(req)
		cancel()
	})
	t.Logf("allocs per request: %.0f total, %.0f building the request, %.0f in the transport", total, build, total-build)
	if total-build > 12 {
		t.Errorf("transport allocates %.0f times per request, budget 12", total-build)
	}
}

func BenchmarkTransportPOST(b *testing.B) {
	url := cannedServer(b, benchAnswer)
	tr := NewTransport(TransportOptions{})
	defer tr.CloseIdleConnections()
	benchPOST(b, tr, url)
}

func BenchmarkStdTransportPOST(b *testing.B) {
	url := cannedServer(b, benchAnswer)
	tr := newBenchStdTransport()
	defer tr.CloseIdleConnections()
	benchPOST(b, tr, url)
}

func benchPOST(b *testing.B, rt http.RoundTripper, url string) {
	b.Run("serial", func(b *testing.B) {
		buf := make([]byte, 4096)
		b.ReportAllocs()
		for b.Loop() {
			cancelableRoundTrip(b, rt, url, buf)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 4096)
			for pb.Next() {
				cancelableRoundTrip(b, rt, url, buf)
			}
		})
	})
}

// Chunks that arrived together are read together; one still on the way is
// not waited for; the end is seen in the same read when it is there.
func TestTransportChunksBufferedTogether(t *testing.T) {
	release := make(chan struct{})
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if readHeadLines(br) != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n2\r\nhi\r\n")
		<-release
		io.WriteString(c, "5\r\njklmn\r\n1\r\no\r\n0\r\n\r\n")
	})
	tr := newTestTransport(t, TransportOptions{})
	req, _ := http.NewRequest("GET", url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 100)
	read := func(want string, wantErr error) {
		t.Helper()
		got := ""
		var err error
		// The head and the first chunks may come in separate packets:
		// read until the burst is all there, each read returning at once.
		for len(got) < len(want) && err == nil {
			var n int
			n, err = resp.Body.Read(buf)
			got += string(buf[:n])
		}
		if got != want || err != wantErr {
			t.Fatalf("read %q, %v; want %q, %v", got, err, want, wantErr)
		}
	}
	read("abcdefghi", nil) // returns without the rest: the server is still holding it
	close(release)
	time.Sleep(50 * time.Millisecond) // the second burst is in the socket
	n, err := resp.Body.Read(buf)
	if string(buf[:n]) != "jklmno" || err != nil && err != io.EOF {
		t.Fatalf("second burst: %q, %v; want it whole in one read", buf[:n], err)
	}
	if err == nil {
		if n, err = resp.Body.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("after the last chunk: %d, %v; want io.EOF", n, err)
		}
	}
}
