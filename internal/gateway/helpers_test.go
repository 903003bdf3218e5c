package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/valyala/fasthttp"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/gateway"
	"github.com/tollgate-gw/tollgate/internal/mockupstream"
	"github.com/tollgate-gw/tollgate/internal/telemetry"
)

const masterKey = "tg-test-master"

// testConfig points every provider at the mock upstream. MOCK is replaced by
// its URL. m1/m2 are OpenAI-format deployments; claude is Anthropic-format.
const testConfig = `
server:
  max_body_bytes: 65536
providers:
  up:
    kind: openai
    base_url: MOCK/v1
    api_key: upstream-key
  ant:
    kind: anthropic
    base_url: MOCK
    api_key: anthropic-key
models:
  m1: {provider: up, upstream: m1, context_window: 8000, max_output_tokens: 1000, price: {input: 1, output: 2}, timeouts: {total: 400ms}}
  m2: {provider: up, upstream: m2, context_window: 8000, max_output_tokens: 1000, price: {input: 1, output: 2}}
  claude: {provider: ant, upstream: claude-up, context_window: 200000, max_output_tokens: 4096, price: {input: 3, output: 15}}
  emb: {provider: up, upstream: emb-1, type: embedding, context_window: 8191, price: {input: 0.02, output: 0}}
tiers:
  budget: [m1, m2]
  standard: [m2, m1]
  premium: [claude, m1]
aliases:
  chat:
    budget: [m1, m2]
    premium: [claude, m1]
profiles:
  dev: {default_tier: budget, max_retries: 1, request_timeout: 3s}
`

// stack is a gateway and a mock upstream, both on loopback ports.
type stack struct {
	url     string // the gateway's base URL, ending in /v1
	mock    *mockupstream.Server
	mockURL string
	logs    *syncBuffer
	gw      *gateway.Gateway
}

func startStack(t testing.TB) *stack { return startStackWith(t, testConfig) }

// startStackWith starts a stack on yaml, in which MOCK stands for the mock
// upstream's URL.
func startStackWith(t testing.TB, yaml string, opts ...func(*gateway.Options)) *stack {
	t.Helper()
	mock := mockupstream.New(mockupstream.Options{})
	up := upstreamServer(t, mock)
	logs := &syncBuffer{}
	o := gateway.Options{MasterKey: masterKey, Logger: slog.New(telemetry.NewJSONHandler(logs, nil))}
	for _, f := range opts {
		f(&o)
	}
	g, err := gateway.New(parseConfig(t, yaml, up.URL), o)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	return &stack{url: serve(t, g.Server()) + "/v1", mock: mock, logs: logs, gw: g, mockURL: up.URL}
}

// upstreamServer serves h on a loopback port until the test ends, over
// HTTP/1.1 and h2c, for providers of either protocol.
func upstreamServer(t testing.TB, h http.Handler) *httptest.Server {
	up := httptest.NewUnstartedServer(h)
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetHTTP1(true)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	t.Cleanup(up.Close)
	return up
}

// serve runs srv on a loopback port until the test ends and returns its URL.
func serve(t testing.TB, srv *fasthttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.ShutdownWithContext(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}

func parseConfig(t testing.TB, yaml, mockURL string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse("test.yaml", []byte(strings.ReplaceAll(yaml, "MOCK", mockURL)),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return cfg
}

func (s *stack) client(opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{option.WithBaseURL(s.url), option.WithAPIKey(masterKey),
		option.WithMaxRetries(0)}, opts...)...)
}

// post sends a raw request and returns status, headers and body.
func (s *stack) post(t *testing.T, path, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	return s.do(t, http.MethodPost, path, body, hdr...)
}

func (s *stack) do(t *testing.T, method, path, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(s.url, "/v1")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+masterKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// calls returns how many requests reached the upstream model.
func (s *stack) calls(model string) int {
	return s.mock.Stats().Models[model].Requests
}

// logLines returns the decoded llm_request_completed log lines.
func (s *stack) logLines(t *testing.T) []map[string]any {
	t.Helper()
	s.gw.WaitSettled()
	var out []map[string]any
	for _, line := range bytes.Split(s.logs.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["event"] == "llm_request_completed" {
			out = append(out, m)
		}
	}
	return out
}

// errorBody decodes an OpenAI error envelope, failing the test if it is not one.
func errorBody(t *testing.T, b []byte) (typ, code string) {
	t.Helper()
	var env struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Error == nil || env.Error.Message == "" {
		t.Fatalf("not an OpenAI error envelope: %s", b)
	}
	if env.Error.Code == nil {
		return env.Error.Type, ""
	}
	return env.Error.Type, *env.Error.Code
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	discard bool // benchmarks format every line but keep none
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.discard {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func mockupstreamRule(model, fault string, times int) mockupstream.Rule {
	return mockupstream.Rule{Model: model, Fault: fault, Times: times}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitFor polls cond for up to 2 s: for what the gateway does after the
// response (settle), which a test sees a moment later.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 2 s")
}
