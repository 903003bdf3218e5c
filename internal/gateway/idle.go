package gateway

import (
	"runtime/debug"
	"time"
)

// idleTrim is how long the gateway must go without a new request before it
// gives memory back to the operating system.
const idleTrim = time.Second

// trimWhenIdle returns the heap's free memory to the operating system once
// traffic stops. Under load the collector lets the heap grow to several
// times what is live (GOGC 400: less CPU per request), and without a
// collection nothing shrinks it again; an idle gateway should not hold the
// high-water mark of its last burst. One forced collection per quiet spell
// costs a few milliseconds when nobody is waiting; the first comes a
// second after start, when loading the configuration's garbage is gone. It
// stops with Close.
func (g *Gateway) trimWhenIdle() {
	t := time.NewTicker(idleTrim)
	defer t.Stop()
	var seen uint64
	trimmed := ^uint64(0) // so the first quiet second, at start, trims too
	for {
		select {
		case <-g.departures.stop:
			return
		case <-t.C:
		}
		n := g.requests.Load()
		if n == seen && n != trimmed {
			debug.FreeOSMemory()
			trimmed = n
		}
		seen = n
	}
}
