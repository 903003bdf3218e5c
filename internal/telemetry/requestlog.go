package telemetry

import (
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// JSONHandler is slog's JSON handler with a fast path for the one line every
// request writes (LogRequest): that line is appended straight into a pooled
// buffer, field by field, instead of going through slog's Record and
// generic attribute handling (which formats each float with encoding/json).
// The output is the same line slog would write; everything else is slog's.
// The fast path is off when ReplaceAttr or AddSource is set, which it would
// not honour.
type JSONHandler struct {
	slog.Handler // the standard JSON handler, writing through out
	out          *lockedWriter
	level        slog.Leveler
	fast         bool
}

// NewJSONHandler returns a JSON handler writing to w; opts as slog's.
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) *JSONHandler {
	out := &lockedWriter{w: w}
	h := &JSONHandler{Handler: slog.NewJSONHandler(out, opts), out: out, level: slog.LevelInfo, fast: true}
	if opts != nil {
		if opts.Level != nil {
			h.level = opts.Level
		}
		h.fast = opts.ReplaceAttr == nil && !opts.AddSource
	}
	return h
}

// lockedWriter serializes the slog handler's lines and the fast path's on
// one writer, one Write per line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// logRequest writes r's line if level is enabled; it reports false when
// the fast path is off and slog must write it.
func (h *JSONHandler) logRequest(level slog.Level, r *Request) bool {
	if !h.fast {
		return false
	}
	if level < h.level.Level() {
		return true
	}
	bp := lineBufs.Get().(*[]byte)
	b := appendRequestLine((*bp)[:0], time.Now(), level, r)
	h.out.Write(b)
	*bp = b
	lineBufs.Put(bp)
	return true
}

// appendRequestLine is LogRequest's line, field for field as slog writes it.
func appendRequestLine(b []byte, now time.Time, level slog.Level, r *Request) []byte {
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":`...)
	b = appendString(b, level.String())
	b = append(b, `,"msg":"request","event":"llm_request_completed","request_id":`...)
	b = appendString(b, r.ID)
	b = appendStringField(b, "endpoint", r.Endpoint)
	b = appendStringField(b, "tier", r.Tier)
	b = appendStringField(b, "criticality", r.Criticality)
	b = appendStringField(b, "team_id", r.TeamID)
	b = appendStringField(b, "key_id", r.KeyID)
	b = appendBoolField(b, "downgraded", r.Downgraded)
	b = appendStringField(b, "requested_model", r.RequestedModel)
	b = appendStringField(b, "model", r.Model)
	b = appendStringField(b, "provider", r.Provider)
	b = appendStringField(b, "deployment", r.Deployment)
	b = appendBoolField(b, "stream", r.Stream)
	b = appendIntField(b, "attempts", r.Attempts)
	b = appendBoolField(b, "fallback_triggered", r.Fallback)
	b = appendIntField(b, "context_trimmed", r.Trimmed)
	b = appendIntField(b, "status", r.Status)
	b = appendStringField(b, "error_code", r.ErrorCode)
	b = appendIntField(b, "prompt_tokens", r.PromptTokens)
	b = appendIntField(b, "completion_tokens", r.CompletionTokens)
	b = appendIntField(b, "cached_tokens", r.CachedTokens)
	b = appendIntField(b, "tokens", r.PromptTokens+r.CompletionTokens)
	b = appendBoolField(b, "usage_reported", r.UsageReported)
	b = appendFloatField(b, "estimated_cost", r.CostUSD)
	b = appendBoolField(b, "cost_estimated", r.CostEstimated)
	b = appendFloatField(b, "latency_ms", ms(r.Latency))
	b = appendFloatField(b, "ttfb_ms", ms(r.TTFB))
	b = appendFloatField(b, "overhead_ms", ms(r.Overhead))
	b = append(b, `,"timestamp":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

func appendKey(b []byte, k string) []byte {
	return append(append(append(b, `,"`...), k...), `":`...)
}

func appendStringField(b []byte, k, v string) []byte { return appendString(appendKey(b, k), v) }

func appendIntField(b []byte, k string, v int) []byte {
	return strconv.AppendInt(appendKey(b, k), int64(v), 10)
}

func appendBoolField(b []byte, k string, v bool) []byte {
	return strconv.AppendBool(appendKey(b, k), v)
}

// appendFloatField formats v as encoding/json does (slog uses it for floats).
func appendFloatField(b []byte, k string, v float64) []byte {
	b = appendKey(b, k)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return appendString(b, strconv.FormatFloat(v, 'g', -1, 64)) // slog's error text differs; never produced here
	}
	format := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' { // e-09 → e-9, as encoding/json writes it
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString appends s as a JSON string, escaped as slog escapes it:
// quotes, backslashes and control characters; invalid UTF-8 as U+FFFD;
// U+2028 and U+2029.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		if c < utf8.RuneSelf {
			b = appendEscapedByte(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, "0123456789abcdef"[r&0xF])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}

func appendEscapedByte(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xF])
}
