package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Exchanges, response body buffers and stream read buffers are recycled
// between requests. Many concurrent requests, streams and not, each with its
// own prompt (the mock echoes it) and its own answer length, must each get
// exactly their own answer and settle exactly once under their own request
// id, with their own usage: a buffer or an exchange handed to a later
// request too early would mix them. make test runs it under -race too.
func TestConcurrentRequestsKeepTheirOwn(t *testing.T) {
	s := startStack(t)
	c := s.client()
	const workers, each = 16, 12
	type answer struct {
		id, content string
		completion  int64
	}
	answers := make([][]answer, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				prompt := fmt.Sprintf("worker%d request%d", w, i)
				p := chatParams("chat", prompt)
				p.MaxTokens = openai.Int(int64(6 + (w*each+i)%40)) // five words echo the prompt
				var resp *http.Response
				var content string
				var completion int64
				if i%2 == 0 {
					got, err := c.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp))
					if err != nil {
						t.Errorf("%s: %v", prompt, err)
						return
					}
					content, completion = got.Choices[0].Message.Content, got.Usage.CompletionTokens
				} else {
					p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
					st := c.Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
					var acc openai.ChatCompletionAccumulator
					for st.Next() {
						acc.AddChunk(st.Current())
					}
					if err := st.Err(); err != nil || len(acc.Choices) == 0 {
						t.Errorf("%s (stream): %v", prompt, err)
						return
					}
					content, completion = acc.Choices[0].Message.Content, acc.Usage.CompletionTokens
				}
				if !strings.HasPrefix(content, "Mock reply to: "+prompt) {
					t.Errorf("%s got the answer %q", prompt, content)
				}
				answers[w] = append(answers[w], answer{resp.Header.Get("X-Request-Id"), content, completion})
			}
		})
	}
	wg.Wait()

	logged := map[string]map[string]any{}
	for _, l := range s.logLines(t) {
		id, _ := l["request_id"].(string)
		if logged[id] != nil {
			t.Errorf("request %s settled twice", id)
		}
		logged[id] = l
	}
	if len(logged) != workers*each {
		t.Errorf("%d requests settled, want %d", len(logged), workers*each)
	}
	for w := range answers {
		for _, a := range answers[w] {
			l := logged[a.id]
			if l == nil {
				t.Errorf("request %s (%q) not settled under its id", a.id, a.content)
				continue
			}
			if got, _ := l["completion_tokens"].(float64); int64(got) != a.completion || l["status"] != float64(200) {
				t.Errorf("request %s logged %v completion tokens, status %v; its answer had %d", a.id, l["completion_tokens"], l["status"], a.completion)
			}
		}
	}
}
