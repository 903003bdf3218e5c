package mockupstream_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// start serves a new mock on a loopback httptest server.
func start(t *testing.T, opts mockupstream.Options) (*mockupstream.Server, *httptest.Server) {
	t.Helper()
	m := mockupstream.New(opts)
	ts := httptest.NewServer(m)
	t.Cleanup(ts.Close)
	return m, ts
}

// openAIClient is an openai-go client of ts that does not retry.
func openAIClient(ts *httptest.Server, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(ts.URL + "/v1"), option.WithAPIKey("test-key"), option.WithMaxRetries(0),
	}, opts...)...)
}

// anthropicClient is an anthropic-sdk-go client of ts that does not retry.
func anthropicClient(ts *httptest.Server, opts ...aoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]aoption.RequestOption{
		aoption.WithBaseURL(ts.URL), aoption.WithAPIKey("test-key"), aoption.WithMaxRetries(0),
	}, opts...)...)
}

// testCtx is a context that ends with the test, bounded so a bug cannot hang it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// send posts body to ts+path with headers given as name, value pairs
// ("anthropic" adds the anthropic-version header).
func send(t *testing.T, ts *httptest.Server, path, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// post is send that reads the whole body.
func post(t *testing.T, ts *httptest.Server, path, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	resp := send(t, ts, path, body, hdr...)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	name string
	data string
}

// readSSE parses events from r until it ends, returning them and the read
// error (nil on a clean end).
func readSSE(r io.Reader) ([]sseEvent, error) {
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		}
	}
	return events, sc.Err()
}

// dataOf returns the data of events.
func dataOf(events []sseEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.data)
	}
	return out
}

// namesOf returns the names of events.
func namesOf(events []sseEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.name)
	}
	return out
}

// countContaining counts the strings holding sub.
func countContaining(ss []string, sub string) int {
	n := 0
	for _, s := range ss {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// chatBody is a minimal chat completions request for model with one user message.
func chatBody(model, user string, extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return `{"model":"` + model + `","messages":[{"role":"user","content":"` + user + `"}]` + extra + `}`
}

// messagesBody is a minimal Messages request for model with one user message.
func messagesBody(model, user string, extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return `{"model":"` + model + `","max_tokens":256,"messages":[{"role":"user","content":"` + user + `"}]` + extra + `}`
}

// anthropicHdr are the headers every Anthropic request needs.
var anthropicHdr = []string{"anthropic-version", "2023-06-01"}

// waitFor polls cond for up to 2 s; requests finish asynchronously from the
// client's point of view (a cancelled client does not wait for the handler).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// optionFault asks the mock for a fault through openai-go.
func optionFault(spec string) option.RequestOption {
	return option.WithHeader(mockupstream.FaultHeader, spec)
}

// aOptionFault asks the mock for a fault through anthropic-sdk-go.
func aOptionFault(spec string) aoption.RequestOption {
	return aoption.WithHeader(mockupstream.FaultHeader, spec)
}
