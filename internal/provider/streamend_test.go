package provider

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// sseHandler streams events, each flushed on its own, and returns: net/http
// then writes the chunked body's terminator in a write of its own, after
// the last event, as servers commonly do. A request with X-Hold gets the
// first event only, and an answer that ends when the client leaves.
func sseHandler(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, e := range events {
			fmt.Fprint(w, e)
			rc.Flush()
			if r.Header.Get("X-Hold") != "" {
				<-r.Context().Done()
				return
			}
		}
	}
}

// A stream read to its clean end gives its connection back to the pool,
// though the body's terminator arrives after the last event: three streams
// in a row use one connection. A stream closed before its end does not: its
// connection is closed, and the next stream opens a new one.
func TestStreamEndKeepsConnection(t *testing.T) {
	openai := sseHandler(
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
		"data: [DONE]\n\n")
	anthropic := sseHandler(
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		open    func(a Account, c *http.Client) Provider
	}{
		{"openai", openai, func(a Account, c *http.Client) Provider { return NewOpenAI(a, c) }},
		{"anthropic", anthropic, func(a Account, c *http.Client) Provider { return NewAnthropic(a, c) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTPServer(t, tt.handler)
			client := NewHTTPClient()
			p := tt.open(Account{Name: tt.name, BaseURL: srv.URL, Keys: []string{"k"}}, client)
			held := tt.open(Account{Name: tt.name, BaseURL: srv.URL, Keys: []string{"k"}, Headers: map[string]string{"X-Hold": "1"}}, client)
			stream := func(toEnd bool) {
				t.Helper()
				p := p
				if !toEnd {
					p = held
				}
				resp, err := p.Do(context.Background(), &Request{Endpoint: Chat, Stream: true, Model: "m",
					Body: []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)})
				if err != nil {
					t.Fatal(err)
				}
				for {
					_, err := resp.Stream.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("Next: %v", err)
					}
					if !toEnd {
						break
					}
				}
				if err := resp.Stream.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				stream(true)
			}
			if n := srv.opened.Load(); n != 1 {
				t.Fatalf("three streams read to their end opened %d connections, want 1", n)
			}
			stream(false)
			srv.waitClosed(t, 1)
			stream(true)
			if n := srv.opened.Load(); n != 2 {
				t.Errorf("after a stream cut short, %d connections opened, want 2", n)
			}
		})
	}
}
