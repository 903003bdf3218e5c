package wire

import "bytes"

// Members calls fn with each member of the JSON object b, in order: its key
// (raw, between the quotes), its raw value and the value's offset in b,
// decoding nothing (ParseUsage reads every response's usage this way, with
// no allocation). It reports whether it got to the end: false when b is not
// an object, a key has an escape (it would need decoding to compare), or fn
// returned false, so a caller can leave such rare input to a general
// parser. b must be valid JSON (Valid).
func Members(b []byte, fn func(key, value []byte, at int) bool) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) && b[i] == '"' {
		end := stringEnd(b, i+1)
		if end < 0 {
			return false
		}
		k := b[i+1 : end-1]
		if bytes.IndexByte(k, '\\') >= 0 {
			return false
		}
		if i = skipSpace(b, end); i == len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vEnd := valueEnd(b, i)
		if vEnd < 0 || !fn(k, b[i:vEnd], i) {
			return false
		}
		if i = skipSpace(b, vEnd); i == len(b) {
			return false
		}
		if b[i] == '}' {
			return true
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
	return false
}

// valueEnd returns the index after the JSON value that starts at b[i], or
// -1. b must be valid JSON, so a container ends at the bracket that brings
// its depth back to zero, strings stepped over whole.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i+1)
	case 't', 'n':
		return min(i+4, len(b))
	case 'f':
		return min(i+5, len(b))
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i+1); i < 0 {
					return -1
				}
				i-- // the loop steps past the closing quote
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	return numberEnd(b, i)
}
