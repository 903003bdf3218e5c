package config

import (
	"fmt"
	"strconv"
)

// Severity says whether a Problem stops the file from loading.
type Severity int

const (
	// Warning is a problem the file loads with: worth fixing, not fatal.
	Warning Severity = iota
	// Error is a problem that makes the file invalid.
	Error
)

// String returns "warning" or "error".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Problem is one finding about a config file, placed at the line of the
// offending YAML node.
type Problem struct {
	File     string
	Line     int // 1-based; 0 when the problem has no line (an unreadable file)
	Severity Severity
	Message  string
}

// String formats p the way compilers do, so editors can jump to it:
// "FILE:LINE: message", and "FILE:LINE: warning: message" for warnings.
// Without a line it is "FILE: message".
func (p Problem) String() string {
	where := p.File
	if p.Line > 0 {
		where += ":" + strconv.Itoa(p.Line)
	}
	if p.Severity == Warning {
		return where + ": warning: " + p.Message
	}
	return where + ": " + p.Message
}

// InvalidError is the error Load and Parse return when the file has at least
// one Error-severity problem. Its message names the first error, so a caller
// that only logs the error (a hot reload, say) still says what is wrong.
type InvalidError struct {
	File     string
	Problems []Problem // every problem found, warnings included
}

// Error returns "FILE: N errors; first: FILE:LINE: message".
func (e *InvalidError) Error() string {
	n, first := 0, ""
	for _, p := range e.Problems {
		if p.Severity == Error {
			if n == 0 {
				first = p.String()
			}
			n++
		}
	}
	if n == 1 {
		return first
	}
	return fmt.Sprintf("%s: %d errors; first: %s", e.File, n, first)
}

// Errors counts the Error-severity problems in ps.
func Errors(ps []Problem) int {
	n := 0
	for _, p := range ps {
		if p.Severity == Error {
			n++
		}
	}
	return n
}
