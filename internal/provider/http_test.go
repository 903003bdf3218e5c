package provider

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readBody returns the whole body whatever its size and however the reader
// splits it, and refuses one over the limit.
func TestReadBody(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 100_000} {
		want := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(want),
			"one byte": iotest.OneByteReader(bytes.NewReader(want)),
			"data+EOF": iotest.DataErrReader(bytes.NewReader(want)),
		} {
			got, err := readBody(r)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%d bytes, %s: got %d bytes (%v), want them all", n, name, len(got), err)
			}
		}
	}
	if _, err := readBody(iotest.ErrReader(io.ErrUnexpectedEOF)); err != io.ErrUnexpectedEOF {
		t.Errorf("a failing reader: err %v, want io.ErrUnexpectedEOF", err)
	}
	if got, err := readBody(io.LimitReader(zeros{}, maxResponseBytes)); err != nil || len(got) != maxResponseBytes {
		t.Errorf("a body of exactly the limit: %d bytes, %v", len(got), err)
	}
	if _, err := readBody(io.LimitReader(zeros{}, maxResponseBytes+1)); err == nil || !strings.Contains(err.Error(), "64 MiB") {
		t.Errorf("a body over the limit: err %v, want it refused", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
