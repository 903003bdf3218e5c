package limit

import "time"

// windowSeconds is the length of a rate window, in one-second buckets.
const windowSeconds = 60

// window counts one scope's requests and tokens over the last minute, in
// one-second buckets: a request counted in second s counts until second
// s+60 begins. The window is exact to the second, so with RPM 60 the 61st
// request of any 60 whole seconds is refused, and it says exactly when the
// oldest counts leave (Retry-After). About 800 bytes; a window is guarded by
// the mutex of its shard.
type window struct {
	scope string
	head  int64                // unix second of the newest bucket
	reqs  [windowSeconds]int32 // requests of second s at slot(s)
	toks  [windowSeconds]int64 // tokens of second s at slot(s); never negative
	nreq  int64                // sum of reqs
	ntok  int64                // sum of toks
	prev  *window              // LRU neighbours in the shard, most recent first
	next  *window
}

func slot(sec int64) int { return int((sec%windowSeconds + windowSeconds) % windowSeconds) }

// advance moves the window to second sec, dropping the buckets that left
// it. A clock that steps back is treated as standing still.
func (w *window) advance(sec int64) {
	if sec <= w.head {
		return
	}
	if sec-w.head >= windowSeconds {
		w.reqs, w.toks, w.nreq, w.ntok = [windowSeconds]int32{}, [windowSeconds]int64{}, 0, 0
	} else {
		for s := w.head + 1; s <= sec; s++ {
			i := slot(s)
			w.nreq -= int64(w.reqs[i])
			w.ntok -= w.toks[i]
			w.reqs[i], w.toks[i] = 0, 0
		}
	}
	w.head = sec
}

// add counts one request of tokens in the newest bucket.
func (w *window) add(tokens int) {
	i := slot(w.head)
	w.reqs[i]++
	w.toks[i] += int64(tokens)
	w.nreq++
	w.ntok += int64(tokens)
}

// correct adds delta tokens: a positive delta in the newest bucket, a
// negative one taken from the oldest buckets first, never below zero.
// Taking the oldest first never leaves the window counting less than it
// truly holds while the corrected request is still in it: the tokens taken
// leave no later than the request's own would have.
func (w *window) correct(delta int64) {
	if delta >= 0 {
		w.toks[slot(w.head)] += delta
		w.ntok += delta
		return
	}
	need := -delta
	// From the oldest second, head-59, which shares its slot with head+1,
	// to head, stepping the slot instead of computing each (two modulos a
	// second: most of this function's cost while the window is young and
	// the tokens are all in its newest seconds).
	i := slot(w.head + 1)
	for range windowSeconds {
		if need == 0 {
			return
		}
		take := min(w.toks[i], need)
		w.toks[i] -= take
		w.ntok -= take
		need -= take
		if i++; i == windowSeconds {
			i = 0
		}
	}
}

// freedAt returns the unix second at which at least need units of b will
// have left the window: the end of the oldest buckets that together hold
// need. need must not exceed the sum of b.
func freedAt[T int32 | int64](b *[windowSeconds]T, head, need int64) int64 {
	var acc int64
	for s := head - windowSeconds + 1; s <= head; s++ {
		if acc += int64(b[slot(s)]); acc >= need {
			return s + windowSeconds
		}
	}
	return head + windowSeconds
}

// resetAfter returns how long until b is empty, as seen at now: until its
// newest non-empty bucket leaves the window; 0 when it is empty.
func resetAfter[T int32 | int64](b *[windowSeconds]T, head int64, now time.Time) time.Duration {
	for s := head; s > head-windowSeconds; s-- {
		if b[slot(s)] != 0 {
			return time.Unix(s+windowSeconds, 0).Sub(now)
		}
	}
	return 0
}
