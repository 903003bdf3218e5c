package limit

import (
	"math/rand/v2"
	"testing"
)

// correctByScan is window.correct as first written, second by second from
// the oldest with slot computed for each: the reference.
func correctByScan(w *window, delta int64) {
	if delta >= 0 {
		w.toks[slot(w.head)] += delta
		w.ntok += delta
		return
	}
	need := -delta
	for s := w.head - windowSeconds + 1; s <= w.head && need > 0; s++ {
		i := slot(s)
		take := min(w.toks[i], need)
		w.toks[i] -= take
		w.ntok -= take
		need -= take
	}
}

// A negative correction takes tokens from the oldest seconds first, across
// the wrap of the slot ring, and never below zero, as the reference does.
func TestWindowCorrect(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 5000 {
		var w window
		w.head = int64(r.IntN(1000)) - 500 // negative seconds too, where slot wraps differently
		base := w.head - windowSeconds + 1
		for range r.IntN(12) { // some seconds of the window hold tokens
			s := base + int64(r.IntN(windowSeconds))
			v := int64(r.IntN(100))
			w.toks[slot(s)] += v
			w.ntok += v
		}
		want := w
		delta := int64(r.IntN(600)) - 500
		w.correct(delta)
		correctByScan(&want, delta)
		if w != want {
			t.Fatalf("case %d: head %d, correct(%d):\n got  %v (ntok %d)\n want %v (ntok %d)",
				n, w.head, delta, w.toks, w.ntok, want.toks, want.ntok)
		}
	}
}

// The oldest second is taken first even when it sits at the end of the
// slot ring and the newest at its start.
func TestWindowCorrectOldestFirst(t *testing.T) {
	var w window
	w.head = 60 // slot 0; the oldest second, 1, is slot 1; second 59 is slot 59
	w.toks[slot(1)], w.toks[slot(59)], w.toks[slot(60)] = 5, 7, 9
	w.ntok = 21
	w.correct(-8)
	if w.toks[slot(1)] != 0 || w.toks[slot(59)] != 4 || w.toks[slot(60)] != 9 || w.ntok != 13 {
		t.Fatalf("after -8: seconds 1, 59, 60 hold %d, %d, %d (total %d); want 0, 4, 9 (13)",
			w.toks[slot(1)], w.toks[slot(59)], w.toks[slot(60)], w.ntok)
	}
}
