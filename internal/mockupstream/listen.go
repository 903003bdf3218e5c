package mockupstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// stoppingKey is the context key under which Listen stores a channel that is
// closed when shutdown begins, so that hung requests can be released.
type stoppingKey struct{}

// Listen starts a new Server with opts on addr, as [Server.Listen] does,
// for callers that need only its URL (the gateway's demo mode).
func Listen(addr string, opts Options) (rootURL string, shutdown func(context.Context) error, err error) {
	return New(opts).Listen(addr)
}

// Listen serves s on addr (for example "127.0.0.1:0") in a new goroutine and
// returns the root URL of the bound address, such as "http://127.0.0.1:41234".
// The OpenAI base URL is rootURL+"/v1"; the Anthropic SDK takes rootURL itself.
//
// shutdown stops accepting connections, releases requests hung by the "hang"
// fault (their clients see a reset), waits for the other requests until ctx
// is done, then closes what remains and waits for the serving goroutine.
func (s *Server) Listen(addr string) (rootURL string, shutdown func(context.Context) error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("mock upstream listen on %s: %w", addr, err)
	}
	stopping := make(chan struct{})
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), stoppingKey{}, (<-chan struct{})(stopping))
		},
	}
	// HTTP/1.1, and HTTP/2 with prior knowledge (h2c) for gateways whose
	// provider speaks http2.
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	hs.RegisterOnShutdown(func() { close(stopping) })
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	var once sync.Once
	var result error
	shutdown = func(ctx context.Context) error {
		once.Do(func() { result = stop(ctx, hs, served) })
		return result
	}
	return "http://" + ln.Addr().String(), shutdown, nil
}

// stop shuts hs down gracefully within ctx, then forcibly, and waits for the
// serving goroutine to report on served.
func stop(ctx context.Context, hs *http.Server, served <-chan error) error {
	err := hs.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, hs.Close())
	}
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("mock upstream shutdown: %w", err)
	}
	return nil
}

// stoppingFrom returns the channel Listen closes at shutdown, or nil (which
// blocks forever in a select) when the server was not started by Listen.
func stoppingFrom(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(<-chan struct{})
	return ch
}
