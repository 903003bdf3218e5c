package wire

import (
	"encoding/binary"
	"math/bits"
)

// maxDepth is encoding/json's nesting limit (scanner.go, maxNestingDepth):
// 10000 open arrays and objects are accepted, 10001 are not. Valid counts the
// same way, so the two agree on every input.
const maxDepth = 10000

// Valid reports whether b is one JSON value, optionally surrounded by
// whitespace. It accepts exactly what encoding/json.Valid accepts, including
// invalid UTF-8 inside strings, which encoding/json lets through (its decoder
// later turns such bytes into U+FFFD); it does not check that \u escapes pair
// up as surrogates, and neither does encoding/json.
//
// It exists because the gateway validates every non-streaming upstream body
// before relaying it, and gjson.ValidBytes, which did so before, spent most of
// its time stepping one byte at a time through long strings (the content of a
// chat completion). Valid skips eight ordinary string bytes per step.
//
// Valid loops rather than recurses: the containers it is inside are kept on an
// explicit stack of brackets, so hostile nesting costs some 10 KB of heap at
// worst (maxDepth bytes, grown by append), never goroutine stack.
func Valid(b []byte) bool {
	return validEnd(b, 0, maxDepth) == len(b)
}

// ValidMember is Valid, and also returns the raw value of the member called
// name when b is an object that has one at its top level (the last, if the
// name repeats, as encoding/json would decode it). Keys are compared as
// written: an escaped spelling of name does not match. It costs one pass,
// where Valid and then a search for the member cost two or three; the
// gateway reads every non-stream response's "usage" this way.
func ValidMember(b []byte, name string) (valid bool, value []byte) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return Valid(b), nil
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b), nil
	}
	for {
		if i == len(b) || b[i] != '"' {
			return false, nil
		}
		k := stringEnd(b, i+1)
		if k < 0 {
			return false, nil
		}
		match := k-i-2 == len(name) && string(b[i+1:k-1]) == name
		if k = skipSpace(b, k); k == len(b) || b[k] != ':' {
			return false, nil
		}
		start := skipSpace(b, k+1)
		// The object is one level, so its values get one less.
		end := validEnd(b, start, maxDepth-1)
		if end < 0 {
			return false, nil
		}
		if match {
			value = trimSpaceRight(b[start:end])
		}
		switch {
		case end == len(b):
			return false, nil
		case b[end] == ',':
			i = skipSpace(b, end+1)
		case b[end] == '}':
			if skipSpace(b, end+1) != len(b) {
				return false, nil
			}
			return true, value
		default:
			return false, nil
		}
	}
}

func trimSpaceRight(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\n', '\r':
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// validEnd returns the index after the JSON value that starts at b[i] (after
// whitespace) and the whitespace that follows it, or -1 when there is no
// valid value there or it nests deeper than depth.
func validEnd(b []byte, i, depth int) int {
	// open holds '[' or '{' for each container entered and not yet closed.
	// Its first 64 levels live in buf, on the stack.
	var buf [64]byte
	open := buf[:0]
value:
	for {
		// A value starts at b[i], after whitespace.
		if i = skipSpace(b, i); i == len(b) {
			return -1
		}
		switch c := b[i]; c {
		case '[', '{':
			if len(open) == depth {
				return -1
			}
			open = append(open, c)
			if i = skipSpace(b, i+1); i < len(b) && b[i] == c+2 { // '['+2 is ']', '{'+2 is '}'
				open = open[:len(open)-1]
				i++
				break // an empty container is a whole value
			}
			if c == '{' {
				i = key(b, i)
			}
			if i < 0 {
				return -1
			}
			continue value
		case '"':
			i = stringEnd(b, i+1)
		case 't':
			i = literalEnd(b, i, "true")
		case 'f':
			i = literalEnd(b, i, "false")
		case 'n':
			i = literalEnd(b, i, "null")
		default:
			i = numberEnd(b, i)
		}
		// A value ended at b[i]: close containers until one takes a comma.
		for {
			if i < 0 {
				return -1
			}
			if i = skipSpace(b, i); len(open) == 0 {
				return i
			}
			if i == len(b) {
				return -1
			}
			top := open[len(open)-1]
			switch b[i] {
			case top + 2:
				open = open[:len(open)-1]
				i++
			case ',':
				if i++; top == '{' {
					i = key(b, skipSpace(b, i))
				}
				if i < 0 {
					return -1
				}
				continue value
			default:
				return -1
			}
		}
	}
}

// key returns the index after an object key and its colon, which start at
// b[i] (the colon may follow whitespace), or -1.
func key(b []byte, i int) int {
	if i == len(b) || b[i] != '"' {
		return -1
	}
	if i = stringEnd(b, i+1); i < 0 {
		return -1
	}
	if i = skipSpace(b, i); i == len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

// skipSpace returns the index of the first byte from b[i] on that is not
// JSON whitespace. Its first test is the whole work in compact JSON.
func skipSpace(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return i
		}
	}
	return i
}

// SWAR ("SIMD within a register") constants: ones has 0x01 in every byte of a
// word, highs has 0x80.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special returns a nonzero mask if any byte of the word w (eight string bytes,
// the first in the low byte) is a '"', a '\\' or below 0x20: the bytes that
// end, escape or invalidate a string. The lowest set bit is always in the
// first such byte; bits above it may be false alarms, since a borrow from a
// matching byte can carry into the next one.
//
// The tests are the classic ones (Hacker's Delight 6-1; Anderson's "Bit
// Twiddling Hacks"): x-ones has its high bit set in a byte that was 0, or
// more than 0x80; &^x drops the latter. Bytes of 0x80 and above thus never
// match, which is what JSON wants: they are all ordinary in a string.
func special(w uint64) uint64 {
	q := w ^ (ones * '"')  // a zero byte where w has '"'
	s := w ^ (ones * '\\') // a zero byte where w has '\\'
	return ((q-ones)&^q | (s-ones)&^s | (w-ones*0x20)&^w) & highs
}

// stringEnd returns the index after the closing quote of a string whose
// contents start at b[i], or -1. It tests eight bytes at a time with special
// and goes byte by byte only at a special byte and in the last seven bytes.
// A 256-entry table of ordinary bytes, read four bytes a step, was measured
// 10-15% slower on a chat completion.
func stringEnd(b []byte, i int) int {
	for i < len(b) {
		if i+8 <= len(b) {
			m := special(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8 // to the first special byte
		}
		// b[i] is special, or one of the last seven bytes.
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i = escapeEnd(b, i+1); i < 0 {
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
	return -1
}

// escapeEnd returns the index after an escape whose letter (after the
// backslash) is at b[i], or -1.
func escapeEnd(b []byte, i int) int {
	if i == len(b) {
		return -1
	}
	switch b[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1
	case 'u':
		if len(b)-i < 5 {
			return -1
		}
		for _, c := range b[i+1 : i+5] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return -1
			}
		}
		return i + 5
	}
	return -1
}

// literalEnd returns the index after lit, if b holds it at b[i], or -1. What
// follows is checked by the caller, as after any value.
func literalEnd(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// numberEnd returns the index after a number that starts at b[i], or -1:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return -1
	case b[i] == '0':
		i++ // no leading zeros: "01" stops after the 0, and the caller rejects the 1
	case '1' <= b[i] && b[i] <= '9':
		i = digitsEnd(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digitsEnd(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digitsEnd(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digitsEnd(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
