package gateway

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// afterResponse settles a request on its connection's own goroutine, right
// after the server has put the response on the wire and before it reads the
// connection's next request: fasthttp reports that moment as the connection
// turning idle (ConnState StateIdle, after its flush). The client is then
// reading the answer and writing its next request, which takes longer than
// a settle, so the settle is off the request path — and it runs on a thread
// that is already awake, with the request still in its caches. Handing it
// to another goroutine instead (the settler) wakes a thread every few
// milliseconds under load, and on a small VM a wake-up is the dearest thing
// a fast request does: at concurrency 1 the settler's ticks and the ledger
// writer they woke made most of the gateway's futex wake-ups (0.14 a
// request, 0.02 without them) and a third of the context switches it made
// beyond a bare fasthttp proxy's.
//
// Only connections the server announced (StateNew) take part: a request
// handled any other way (a RequestCtx made in a test or benchmark) goes to
// the settler, as does a request whose connection already holds one, which
// fasthttp's one-request-at-a-time loop does not allow.
type afterResponse struct {
	mu    sync.RWMutex
	conns map[net.Conn]*connSlot
}

// connSlot is one open connection's request awaiting its settle. Only the
// connection's goroutine sets it; Close may empty it from another, hence
// the atomic swap: whoever takes the request settles it, once.
type connSlot struct {
	pending atomic.Pointer[exchange]
}

func newAfterResponse() *afterResponse {
	return &afterResponse{conns: map[net.Conn]*connSlot{}}
}

// put leaves x to be settled when conn turns idle; false when conn does not
// take part.
func (a *afterResponse) put(conn net.Conn, x *exchange) bool {
	if conn == nil {
		return false
	}
	a.mu.RLock()
	s := a.conns[conn]
	a.mu.RUnlock()
	return s != nil && s.pending.CompareAndSwap(nil, x)
}

// connState is the server's ConnState hook. A connection's request is
// settled when its response has gone out (StateIdle) or the connection
// ended without that (StateClosed, StateHijacked).
func (g *Gateway) connState(conn net.Conn, state fasthttp.ConnState) {
	a := g.after
	switch state {
	case fasthttp.StateNew:
		a.mu.Lock()
		a.conns[conn] = &connSlot{}
		a.mu.Unlock()
	case fasthttp.StateIdle:
		a.mu.RLock()
		s := a.conns[conn]
		a.mu.RUnlock()
		if s != nil {
			g.settleTaken(s)
		}
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		a.mu.Lock()
		s := a.conns[conn]
		delete(a.conns, conn)
		a.mu.Unlock()
		if s != nil {
			g.settleTaken(s)
		}
	}
}

// settleTaken settles the request s holds, if it still holds one.
func (g *Gateway) settleTaken(s *connSlot) {
	if x := s.pending.Swap(nil); x != nil {
		g.settle(context.Background(), x)
	}
}

// settleLeft settles what connections still hold: Close must not wait on a
// connection whose response is stuck in a write.
func (g *Gateway) settleLeft() {
	a := g.after
	a.mu.RLock()
	slots := make([]*connSlot, 0, len(a.conns))
	for _, s := range a.conns {
		slots = append(slots, s)
	}
	a.mu.RUnlock()
	for _, s := range slots {
		g.settleTaken(s)
	}
}
