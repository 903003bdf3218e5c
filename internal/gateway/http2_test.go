package gateway_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// http2Config adds provider up2, the mock spoken to over HTTP/2 (h2c), and
// model h2 on it, which asks the mock for m2 as model m2 does over HTTP/1.1.
func http2Config() string {
	y := strings.Replace(testConfig, "  ant:\n", "  up2:\n    kind: openai\n    base_url: MOCK/v1\n    api_key: upstream-key\n    protocol: http2\n  ant:\n", 1)
	return strings.Replace(y, "models:\n", "models:\n  h2: {provider: up2, upstream: m2, context_window: 8000, max_output_tokens: 1000, price: {input: 1, output: 2}}\n", 1)
}

// A provider whose protocol is http2 gets its requests over HTTP/2: a chat
// completion and streams, several at once, come back as they do over
// HTTP/1.1, and the upstream saw HTTP/2.0 for each of them.
func TestProviderHTTP2(t *testing.T) {
	s := startStackWith(t, http2Config())
	c := s.client()
	ctx := context.Background()
	plain, err := c.Chat.Completions.New(ctx, chatParams("m2", "Tell me a story"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Chat.Completions.New(ctx, chatParams("h2", "Tell me a story"))
	if err != nil {
		t.Fatalf("over http2: %v", err)
	}
	if got.Choices[0].Message.Content != plain.Choices[0].Message.Content || got.Usage.TotalTokens != plain.Usage.TotalTokens {
		t.Errorf("over http2: %q %+v; over http1: %q %+v", got.Choices[0].Message.Content, got.Usage,
			plain.Choices[0].Message.Content, plain.Usage)
	}

	const streams = 8
	contents := make([]string, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			p := chatParams("h2", "Tell me a story")
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			st := c.Chat.Completions.NewStreaming(ctx, p)
			var acc openai.ChatCompletionAccumulator
			for st.Next() {
				acc.AddChunk(st.Current())
			}
			errs[i] = st.Err()
			if errs[i] == nil {
				contents[i] = acc.Choices[0].Message.Content
				if acc.Usage.TotalTokens != plain.Usage.TotalTokens {
					t.Errorf("stream %d usage %+v, want %+v", i, acc.Usage, plain.Usage)
				}
			}
		})
	}
	wg.Wait()
	for i := range streams {
		if errs[i] != nil || contents[i] != plain.Choices[0].Message.Content {
			t.Errorf("stream %d: %v, content %q", i, errs[i], contents[i])
		}
	}

	recs := s.mock.Stats().Requests
	if len(recs) != 2+streams {
		t.Fatalf("upstream saw %d requests, want %d", len(recs), 2+streams)
	}
	for i, r := range recs {
		want := "HTTP/2.0"
		if i == 0 {
			want = "HTTP/1.1" // model m2, provider up
		}
		if r.Proto != want {
			t.Errorf("upstream request %d (stream %v) came as %s, want %s", i, r.Stream, r.Proto, want)
		}
	}
}

// Over HTTP/2 the request timeout still ends a hung upstream with 504
// upstream_timeout, and a broken stream still ends with an error event.
func TestProviderHTTP2Failures(t *testing.T) {
	s := startStackWith(t, http2Config())
	s.mock.AddFault(mockupstream.Rule{Model: "m2", Fault: "hang", Times: 1})
	code, _, body := s.post(t, "/v1/chat/completions", `{"model":"h2","messages":[{"role":"user","content":"hi"}]}`)
	if _, c := errorBody(t, body); code != 504 || c != "upstream_timeout" {
		t.Errorf("hung upstream: %d %s, want 504 upstream_timeout", code, c)
	}
	s.mock.AddFault(mockupstream.Rule{Model: "m2", Fault: "reset_after=3", Times: 1})
	code, _, body = s.post(t, "/v1/chat/completions", `{"model":"h2","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if text := string(body); code != 200 || strings.Contains(text, "[DONE]") || !strings.Contains(text, `data: {"error":`) {
		t.Errorf("broken stream: %d %q, want 200, an error event and no [DONE]", code, text)
	}
	// The gateway and the connection pool are fine after both.
	code, _, body = s.post(t, "/v1/chat/completions", `{"model":"h2","messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 {
		t.Errorf("after the failures: %d %s", code, body)
	}
}
