package wire

import "testing"

// A released buffer comes back empty with its room; one over the cap is
// not kept.
func TestBufferRelease(t *testing.T) {
	b := &Buffer{B: append(make([]byte, 0, 100), "abc"...)}
	b.Release()
	if len(b.B) != 0 || cap(b.B) != 100 {
		t.Errorf("released buffer: len %d cap %d, want 0 and 100", len(b.B), cap(b.B))
	}
	big := &Buffer{B: make([]byte, maxPooledBuffer+1)}
	big.Release()
	if big.B != nil {
		t.Error("a buffer over maxPooledBuffer was kept for reuse")
	}
}
