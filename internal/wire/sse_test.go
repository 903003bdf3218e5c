package wire

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readAll(t *testing.T, in string) ([]Event, error) {
	t.Helper()
	r := NewSSEReader(strings.NewReader(in))
	var out []Event
	for {
		ev, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, Event{Name: ev.Name, Data: append([]byte(nil), ev.Data...)})
	}
}

func TestSSEReader(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []Event
		wantErr error
	}{
		{"openai", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []Event{{Data: []byte(`{"a":1}`)}, {Data: []byte("[DONE]")}}, io.EOF},
		{"anthropic with names", "event: ping\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			[]Event{{Name: "ping", Data: []byte("{}")}, {Name: "message_stop", Data: []byte(`{"type":"message_stop"}`)}}, io.EOF},
		{"comments and CRLF", ": keep-alive\r\n\r\ndata:x\r\n\r\n", []Event{{Data: []byte("x")}}, io.EOF},
		{"multi-line data", "data: a\ndata: b\n\n", []Event{{Data: []byte("a\nb")}}, io.EOF},
		{"empty first data line", "data:\ndata: b\n\n", []Event{{Data: []byte("\nb")}}, io.EOF},
		{"cut inside an event", "data: {\"a\":1}\n\ndata: {\"b\"", []Event{{Data: []byte(`{"a":1}`)}}, io.ErrUnexpectedEOF},
		{"cut after a field line", "data: x\n", nil, io.ErrUnexpectedEOF},
		{"long line", "data: " + strings.Repeat("y", 100000) + "\n\n", []Event{{Data: []byte(strings.Repeat("y", 100000))}}, io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error = %v, want %v", err, tc.wantErr)
			}
			if d := cmp.Diff(got, tc.want); d != "" {
				t.Errorf("events (-got +want):\n%s", d)
			}
		})
	}
}

func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{"data: x\n\n", "event: a\ndata: b\n\n: c\n\n", "data", "\r\n\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := NewSSEReader(strings.NewReader(in))
		for i := 0; i <= len(in); i++ {
			if _, err := r.Next(); err != nil {
				return
			}
		}
		t.Fatalf("reader returned more events than input bytes")
	})
}

func TestErrorEnvelope(t *testing.T) {
	e := &Error{Status: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: "slow down"}
	if got, want := string(e.Body()), `{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`; got != want {
		t.Errorf("Body() = %s, want %s", got, want)
	}
	typ, code, msg, ok := ParseEnvelope(e.Body())
	if !ok || typ != "rate_limit_error" || code != "rate_limit_exceeded" || msg != "slow down" {
		t.Errorf("ParseEnvelope = %q %q %q %v", typ, code, msg, ok)
	}
	if _, code, _, ok := ParseEnvelope([]byte(`{"error":{"message":"x","code":429}}`)); !ok || code != "429" {
		t.Errorf("numeric code = %q %v", code, ok)
	}
	if _, _, _, ok := ParseEnvelope([]byte(`<html>`)); ok {
		t.Error("ParseEnvelope accepted HTML")
	}
	hidden := AsError(errors.New("database password is hunter2"))
	if hidden.Status != 500 || strings.Contains(string(hidden.Body()), "hunter2") {
		t.Errorf("AsError leaks the cause: %s", hidden.Body())
	}
}

// Ready says true only when Next would return an event with data without
// reading: comments, blank lines, event-only and unfinished events do not count.
func TestSSEReaderReady(t *testing.T) {
	cases := []struct {
		buffered string
		want     bool
	}{
		{"", false},
		{"data: {\"a\":1}\n\n", true},
		{"data: {\"a\":1}\r\n\r\n", true},
		{"data: {\"a\":1}\n", false},
		{"data: {\"a\"", false},
		{": keep-alive\n\n", false},
		{"\n\n\n", false},
		{"event: ping\n\n", false},
		{"data:\n\n", false},
		{"event: ping\n\ndata: x\n\n", true},
		{": c\ndata:x\n\n", true},
	}
	for _, tc := range cases {
		// A first event makes the reader fill its buffer with the rest.
		r := NewSSEReader(strings.NewReader("data: first\n\n" + tc.buffered))
		if ev, err := r.Next(); err != nil || string(ev.Data) != "first" {
			t.Fatalf("%q: first event %q, %v", tc.buffered, ev.Data, err)
		}
		if got := r.Ready(); got != tc.want {
			t.Errorf("Ready with %q buffered = %v, want %v", tc.buffered, got, tc.want)
		}
	}
}

// A released reader's buffer serves the next stream, and the released reader
// says so instead of reading someone else's bytes.
func TestSSEReaderRelease(t *testing.T) {
	a := NewSSEReader(strings.NewReader("data: a1\n\ndata: a2\n\n"))
	if ev, err := a.Next(); err != nil || string(ev.Data) != "a1" {
		t.Fatalf("a: %q, %v", ev.Data, err)
	}
	a.Release()
	a.Release() // twice is harmless
	b := NewSSEReader(strings.NewReader("data: b1\n\ndata: b2\n\n"))
	for _, want := range []string{"b1", "b2"} {
		if ev, err := b.Next(); err != nil || string(ev.Data) != want {
			t.Fatalf("b: got %q, %v; want %q", ev.Data, err, want)
		}
	}
	if ev, err := a.Next(); err == nil || a.Ready() {
		t.Fatalf("released reader: Next = %q, %v; Ready = %v; want an error and false", ev.Data, err, a.Ready())
	}
	b.Release()
}
