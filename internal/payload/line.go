package payload

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// line is one record of the sink, in the order its fields are written.
// Bodies are strings: a JSON body is kept as the text it was, not parsed
// and re-encoded, so what is logged is what went over the wire.
type line struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	TeamID    string    `json:"team_id"`
	KeyID     string    `json:"key_id"`
	Model     string    `json:"model"`
	Status    int       `json:"status"`
	Stream    bool      `json:"stream"`
	Request   string    `json:"request"`
	Response  string    `json:"response"`
	Truncated bool      `json:"truncated"`
}

// encoder turns entries into lines: redaction, then the size cap, then
// JSON. It belongs to the writer goroutine; its buffer is reused.
type encoder struct {
	red      *redactor
	maxBytes int
	buf      bytes.Buffer
	enc      *json.Encoder
}

func newEncoder(red *redactor, maxBytes int64) *encoder {
	e := &encoder{red: red, maxBytes: int(min(maxBytes, int64(maxInt)))}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false) // "<" stays "<": the file is not HTML
	return e
}

const maxInt = int(^uint(0) >> 1)

// encode returns the line for en, newline included, and whether a body was
// cut. The result is valid until the next call. Bytes that are not UTF-8
// become U+FFFD, as encoding/json does.
func (c *encoder) encode(en *Entry) (b []byte, truncated bool, err error) {
	req, cutReq := cut(c.red.redact(en.Request), c.maxBytes)
	resp, cutResp := cut(c.red.redact(en.Response), c.maxBytes)
	c.buf.Reset()
	err = c.enc.Encode(line{
		Time:      en.Time.UTC(),
		RequestID: en.RequestID,
		TeamID:    en.TeamID,
		KeyID:     en.KeyID,
		Model:     en.Model,
		Status:    en.Status,
		Stream:    en.Stream,
		Request:   string(req),
		Response:  string(resp),
		Truncated: cutReq || cutResp,
	})
	if err != nil {
		return nil, false, err
	}
	return c.buf.Bytes(), cutReq || cutResp, nil
}

// cut returns b's first max bytes or fewer, never splitting a UTF-8
// sequence, and whether anything was cut. It backs off at most three bytes:
// past that the text is not UTF-8 anyway.
func cut(b []byte, max int) ([]byte, bool) {
	if len(b) <= max {
		return b, false
	}
	i := max
	for k := 0; k < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(b[i]); k++ {
		i--
	}
	return b[:i], true
}
