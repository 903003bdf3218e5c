package wire

import "sync"

// Buffer is a recycled byte buffer: GetBuffer takes one, Release gives it
// back. A buffer taken fresh from the heap is, most often, memory the
// runtime's scavenger returned to the operating system since the last
// collection, and each of its pages is faulted in again on the request's
// path (on the benchmark's VM about 20 µs a fault). Response bodies and
// stream events are read into these.
type Buffer struct{ B []byte }

var buffers = sync.Pool{New: func() any { return new(Buffer) }}

// maxPooledBuffer is the largest buffer kept for reuse: a rare large body
// or event is left to the collector rather than held by the pool.
const maxPooledBuffer = 64 << 10

// GetBuffer returns a buffer with B empty, and the room a previous use left.
func GetBuffer() *Buffer { return buffers.Get().(*Buffer) }

// Release gives b back; neither b nor its bytes may be used afterwards.
func (b *Buffer) Release() {
	if cap(b.B) > maxPooledBuffer {
		b.B = nil
	}
	b.B = b.B[:0]
	buffers.Put(b)
}
