package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/gateway"
	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// resilienceConfig: "solo" has one deployment and falls back to "spare";
// "bal" has two weighted deployments; "lat" balances on latency. Breakers
// open after 3 consecutive failures and cool down for 300 ms.
const resilienceConfig = `
providers:
  up: {kind: openai, base_url: MOCK/v1, api_key: k}
models:
  solo: {provider: up, upstream: solo-up, context_window: 8000, price: {input: 1, output: 2}, fallbacks: [spare]}
  spare: {provider: up, upstream: spare-up, context_window: 8000, price: {input: 1, output: 2}}
  bal:
    deployments:
      - {id: bal-a, provider: up, upstream: bal-a, weight: 3}
      - {id: bal-b, provider: up, upstream: bal-b, weight: 1}
    price: {input: 1, output: 2}
  lat:
    balancing: latency
    deployments:
      - {id: lat-fast, provider: up, upstream: lat-fast}
      - {id: lat-slow, provider: up, upstream: lat-slow}
    price: {input: 1, output: 2}
tiers:
  budget: [solo]
  standard: [solo]
  premium: [bal]
profiles:
  dev:
    default_tier: budget
    max_retries: 0
    request_timeout: 2s
    timeouts: {first_byte: 500ms, idle: 300ms}
    breaker: {failures: 3, cooldown: 300ms, min_requests: 1000}
`

func request(t *testing.T, s *stack, model string, hdr ...string) (int, http.Header) {
	t.Helper()
	code, h, _ := s.post(t, "/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`, hdr...)
	return code, h
}

// A deployment that keeps failing is skipped without a call until its
// cool-down, then probed once; a good probe closes the breaker.
func TestBreakerSkipsOpenDeployment(t *testing.T) {
	s := startStackWith(t, resilienceConfig)
	s.mock.AddFault(mockupstream.Rule{Model: "solo-up", Fault: "status=500"})
	for i := range 3 {
		if code, h := request(t, s, "solo"); code != 200 || h.Get("X-Tollgate-Model") != "spare" {
			t.Fatalf("request %d: %d served by %q, want spare", i, code, h.Get("X-Tollgate-Model"))
		}
	}
	if n := s.calls("solo-up"); n != 3 {
		t.Fatalf("solo-up calls = %d, want 3", n)
	}
	for range 5 {
		request(t, s, "solo")
	}
	if n := s.calls("solo-up"); n != 3 {
		t.Errorf("open breaker: solo-up calls = %d, want still 3", n)
	}
	time.Sleep(350 * time.Millisecond)
	request(t, s, "solo")
	request(t, s, "solo")
	if n := s.calls("solo-up"); n != 4 {
		t.Errorf("after cool-down: solo-up calls = %d, want 4 (one failed probe)", n)
	}
	s.mock.ClearFaults()
	time.Sleep(350 * time.Millisecond)
	for range 3 {
		if _, h := request(t, s, "solo"); h.Get("X-Tollgate-Model") != "solo" {
			t.Errorf("after a good probe: served by %q, want solo", h.Get("X-Tollgate-Model"))
		}
	}
	if n := s.calls("solo-up"); n != 7 {
		t.Errorf("closed again: solo-up calls = %d, want 7", n)
	}
	if !strings.Contains(string(s.logs.Bytes()), `"event":"breaker_state_changed"`) {
		t.Error("no breaker_state_changed log line")
	}
}

// A client that cancels never counts against a deployment.
func TestClientCancelDoesNotOpenBreaker(t *testing.T) {
	s := startStackWith(t, resilienceConfig)
	s.mock.AddFault(mockupstream.Rule{Model: "solo-up", Fault: "hang"})
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		if resp, err := s.chat(ctx, `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`); err == nil {
			resp.Body.Close()
		}
		cancel()
	}
	s.mock.ClearFaults()
	if _, h := request(t, s, "solo"); h.Get("X-Tollgate-Model") != "solo" {
		t.Errorf("after 5 client cancels the breaker opened: served by %q", h.Get("X-Tollgate-Model"))
	}
}

func TestWeightedBalancing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := startStackWith(t, resilienceConfig, func(o *gateway.Options) { o.Rand = rng.Float64 })
	const n = 400
	for range n {
		if code, _ := request(t, s, "bal"); code != 200 {
			t.Fatal(code)
		}
	}
	a, b := s.calls("bal-a"), s.calls("bal-b")
	if a+b != n || a < 280 || a > 320 {
		t.Errorf("bal-a %d, bal-b %d of %d: want 75%% ± 5%% on bal-a", a, b, n)
	}
}

func TestLatencyBalancing(t *testing.T) {
	s := startStackWith(t, resilienceConfig)
	s.mock.AddFault(mockupstream.Rule{Model: "lat-slow", Fault: "latency=40ms"})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				request(t, s, "lat")
			}
		})
	}
	wg.Wait()
	fast, slow := s.calls("lat-fast"), s.calls("lat-slow")
	if fast+slow != 80 || slow > 16 {
		t.Errorf("lat-fast %d, lat-slow %d: the slow deployment should get clearly less (≤ 20%%)", fast, slow)
	}
}

func TestCriticalityPicksTier(t *testing.T) {
	s := startStackWith(t, resilienceConfig)
	code, h := request(t, s, "auto", "X-Tollgate-Criticality", "critical")
	if code != 200 || h.Get("X-Tollgate-Tier") != "premium" || !strings.HasPrefix(h.Get("X-Tollgate-Deployment"), "bal-") {
		t.Errorf("critical: %d tier %q deployment %q", code, h.Get("X-Tollgate-Tier"), h.Get("X-Tollgate-Deployment"))
	}
	if _, h := request(t, s, "auto", "X-Tollgate-Criticality", "critical", "X-Tollgate-Tier", "budget"); h.Get("X-Tollgate-Tier") != "budget" {
		t.Errorf("X-Tollgate-Tier must win over criticality, got %q", h.Get("X-Tollgate-Tier"))
	}
	code, _, body := s.post(t, "/v1/chat/completions", hi, "X-Tollgate-Criticality", "urgent")
	if _, c := errorBody(t, body); code != 400 || c != "invalid_criticality" {
		t.Errorf("unknown criticality: %d %s", code, c)
	}
}

// Timeouts: a stream whose first event never comes, and one that stalls
// between events, each end within their bound; a steady one runs to its end.
func TestStreamTimeouts(t *testing.T) {
	s := startStackWith(t, resilienceConfig)
	s.mock.AddFault(mockupstream.Rule{Model: "solo-up", Fault: "ttft=5s"})
	s.mock.AddFault(mockupstream.Rule{Model: "spare-up", Fault: "ttft=5s"})
	start := time.Now()
	code, _, body := s.post(t, "/v1/chat/completions", `{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if _, c := errorBody(t, body); code != 504 || c != "upstream_timeout" {
		t.Errorf("first-byte timeout: %d %s", code, c)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %v; two 500 ms first-byte timeouts should end it near 1 s", d)
	}
	s.mock.ClearFaults()
	s.mock.AddFault(mockupstream.Rule{Model: "solo-up", Fault: "tps=2"}) // 500 ms between events > 300 ms idle
	code, _, body = s.post(t, "/v1/chat/completions", `{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 || !strings.Contains(string(body), `"code":"upstream_timeout"`) || strings.Contains(string(body), "[DONE]") {
		t.Errorf("idle timeout mid-stream: %d %s", code, body)
	}
	// Events 125 ms apart never trip the 300 ms idle timeout, however long
	// the stream lasts (here about 1.5 s, five idle periods).
	s.mock.ClearFaults()
	s.mock.AddFault(mockupstream.Rule{Model: "solo-up", Fault: "tps=8"})
	code, _, body = s.post(t, "/v1/chat/completions", `{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 || strings.Contains(string(body), "upstream_timeout") || !strings.Contains(string(body), "[DONE]") {
		t.Errorf("a steady stream longer than the idle timeout: %d %s", code, body)
	}
}

// upstreamFor serves h for a provider speaking protocol (http1 or http2)
// and returns resilienceConfig pointed at it.
func upstreamFor(t *testing.T, protocol string, h http.HandlerFunc) string {
	up := upstreamServer(t, h)
	return strings.ReplaceAll(resilienceConfig, "base_url: MOCK/v1, api_key: k}", "base_url: "+up.URL+", api_key: k, protocol: "+protocol+"}")
}

// When the client goes away mid-stream, the upstream request is cancelled at
// once, over HTTP/1.1 (the connection is closed) and over HTTP/2 (the stream
// is reset).
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	for _, protocol := range []string{"http1", "http2"} {
		t.Run(protocol, func(t *testing.T) {
			closed := make(chan time.Time, 1)
			cfg := upstreamFor(t, protocol, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				rc := http.NewResponseController(w)
				for i := 0; ; i++ {
					fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%d \"}}]}\n\n", i)
					rc.Flush()
					select {
					case <-r.Context().Done():
						closed <- time.Now()
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			})
			s := startStackWith(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			resp, err := s.chat(ctx, `{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 256)
			io.ReadAtLeast(resp.Body, buf, 100)
			gone := time.Now()
			cancel()
			resp.Body.Close()
			upstreamClosedWithin(t, closed, gone, 200*time.Millisecond, 2*time.Second)
			// The stream's end still ends the request: it is settled, as a
			// client that left.
			var rec map[string]any
			waitFor(t, func() bool {
				for _, l := range s.logLines(t) {
					rec = l
				}
				return rec != nil
			})
			if rec["status"] != float64(499) || rec["error_code"] != "client_closed_request" || rec["stream"] != true {
				t.Errorf("log line: status %v code %v stream %v, want a 499 client_closed_request stream", rec["status"], rec["error_code"], rec["stream"])
			}
		})
	}
}

// A client that leaves a non-stream request while it waits upstream is
// noticed (the server is not reading its connection then) and the upstream
// call is cancelled, well before any timeout: over HTTP/1.1 by the call's
// context closing the connection it watches, over HTTP/2 by net/http's
// transport resetting the stream.
func TestClientLeavingNonStreamCancelsUpstream(t *testing.T) {
	for _, protocol := range []string{"http1", "http2"} {
		t.Run(protocol, func(t *testing.T) {
			closed := make(chan time.Time, 1)
			cfg := upstreamFor(t, protocol, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body) // net/http watches for the peer leaving once the body is read
				<-r.Context().Done()
				closed <- time.Now()
			})
			s := startStackWith(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			if resp, err := s.chat(ctx, `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`); err == nil {
				resp.Body.Close()
				t.Fatal("the hanging upstream answered")
			}
			gone := time.Now()
			upstreamClosedWithin(t, closed, gone, 400*time.Millisecond, 3*time.Second)
			var rec map[string]any
			waitFor(t, func() bool {
				for _, l := range s.logLines(t) {
					rec = l
				}
				return rec != nil
			})
			if rec["status"] != float64(499) || rec["error_code"] != "client_closed_request" {
				t.Errorf("log line: status %v code %v, want 499 client_closed_request", rec["status"], rec["error_code"])
			}
		})
	}
}

// Reload under load: twenty swaps while requests run, and not one fails.
func TestReloadUnderLoad(t *testing.T) {
	s := startStackWith(t, resilienceConfig)
	other := parseConfig(t, strings.Replace(resilienceConfig, "budget: [solo]", "budget: [spare]", 1), s.mockURL)
	orig := parseConfig(t, resilienceConfig, s.mockURL)
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _ := request(t, s, "auto")
				total.Add(1)
				if code != 200 {
					failures.Add(1)
				}
			}
		})
	}
	for i := range 20 {
		cfg := orig
		if i%2 == 0 {
			cfg = other
		}
		if err := s.gw.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || total.Load() < 20 {
		t.Errorf("%d of %d requests failed during reloads", failures.Load(), total.Load())
	}
	if _, h := request(t, s, "auto"); h.Get("X-Tollgate-Model") != "solo" {
		t.Errorf("after the last reload auto is served by %q, want solo", h.Get("X-Tollgate-Model"))
	}
}

// POST /admin/explain shows the live breaker state.
func TestAdminExplain(t *testing.T) {
	s := startStackWith(t, resilienceConfig)
	s.mock.AddFault(mockupstream.Rule{Model: "solo-up", Fault: "status=500"})
	for range 3 {
		request(t, s, "solo")
	}
	code, _, body := s.post(t, "/admin/explain", `{"model":"solo","request":{"messages":[{"role":"user","content":"hello"}],"max_tokens":20}}`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var ex struct {
		Tier       string `json:"tier"`
		Candidates []struct {
			Model        string `json:"model"`
			PromptTokens int    `json:"prompt_tokens"`
			MaxOutput    int    `json:"max_output_tokens"`
			Fits         bool   `json:"fits"`
			Deployments  []struct {
				ID, Breaker string
			} `json:"deployments"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(body, &ex); err != nil {
		t.Fatal(err)
	}
	if len(ex.Candidates) != 2 || ex.Candidates[0].Model != "solo" || ex.Candidates[1].Model != "spare" {
		t.Fatalf("candidates %+v", ex.Candidates)
	}
	c := ex.Candidates[0]
	if c.Deployments[0].Breaker != "open" || c.PromptTokens == 0 || c.MaxOutput != 20 || !c.Fits {
		t.Errorf("solo: %+v", c)
	}
	if code, _, _ := s.do(t, "POST", "/admin/explain", `{"model":"solo"}`, "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("explain without the master key: %d", code)
	}
}

// Events that arrive together leave together, and none waits for the next
// read: the client has the whole first burst while the upstream holds the rest.
func TestStreamFlushesEachBurst(t *testing.T) {
	release := make(chan struct{})
	chunk := func(content string) string {
		return `data: {"id":"c","object":"chat.completion.chunk","model":"solo-up","choices":[{"index":0,"delta":{"content":"` + content + `"}}]}` + "\n\n"
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		io.WriteString(w, chunk("a")+chunk("b")+chunk("c"))
		rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, chunk("d")+`data: {"id":"c","object":"chat.completion.chunk","model":"solo-up","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`+"\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	s := startStackWith(t, strings.ReplaceAll(resilienceConfig, "base_url: MOCK/v1", "base_url: "+up.URL))
	resp, err := s.chat(context.Background(), `{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); l != "" {
				lines <- l
			}
		}
		close(lines)
	}()
	var got []string
	read := func(n int) {
		for range n {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended after %q", got)
				}
				got = append(got, l)
			case <-time.After(2 * time.Second):
				t.Fatalf("after %q the gateway sent nothing for 2 s: an event that arrived is held back", got)
			}
		}
	}
	read(3)
	for i, want := range []string{`"content":"a"`, `"content":"b"`, `"content":"c"`} {
		if !strings.Contains(got[i], want) {
			t.Fatalf("event %d = %q, want %s", i, got[i], want)
		}
	}
	close(release)
	read(2) // d and [DONE]; the usage chunk the client did not ask for is dropped
	if !strings.Contains(got[3], `"content":"d"`) || got[4] != "data: [DONE]" {
		t.Errorf("rest of the stream = %q", got[3:])
	}
	if l, ok := <-lines; ok {
		t.Errorf("after [DONE]: %q", l)
	}
}

// The event a stream commits with leaves at once, in a write of its own,
// though more came with it: the client's first byte does not wait for the
// rest of the burst to be read, checked and framed. The rest of the burst
// then leaves together, in the next write. Over the wire a write is one
// chunk of the chunked body, so the test reads the chunks as they come.
func TestStreamCommitEventLeavesAlone(t *testing.T) {
	release := make(chan struct{})
	chunk := func(content string) string {
		return `data: {"id":"c","object":"chat.completion.chunk","model":"solo-up","choices":[{"index":0,"delta":{"content":"` + content + `"}}]}` + "\n\n"
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, chunk("a")+chunk("b")+chunk("c"))
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	defer close(release)
	s := startStackWith(t, strings.ReplaceAll(resilienceConfig, "base_url: MOCK/v1", "base_url: "+up.URL))
	conn, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(s.url, "http://"), "/v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	body := `{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		masterKey, len(body), body)
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("response head: %v", err)
		}
		if line == "\r\n" {
			break
		}
		if strings.HasPrefix(line, "HTTP/1.1 ") && !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("status line %q", line)
		}
	}
	next := func() string {
		size, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("chunk size: %v", err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		if err != nil {
			t.Fatalf("chunk size %q: %v", size, err)
		}
		data := make([]byte, n+2) // and its CRLF
		if _, err := io.ReadFull(br, data); err != nil {
			t.Fatalf("chunk: %v", err)
		}
		return string(data[:n])
	}
	if first := next(); first != chunk("a") {
		t.Errorf("first write = %q, want only the event the stream committed with", first)
	}
	if second := next(); second != chunk("b")+chunk("c") {
		t.Errorf("second write = %q, want the rest of the burst together", second)
	}
}

// chat posts body to the gateway's chat endpoint with the master key, bound
// by ctx, with no client of ours in between: the tests here control when
// the connection goes away.
func (s *stack) chat(ctx context.Context, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/chat/completions", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+masterKey)
	return http.DefaultClient.Do(req)
}

// upstreamClosedWithin checks that the upstream saw its request end (the
// time sent on closed) at most within after the client left at gone; it
// gives up after giveUp.
func upstreamClosedWithin(t *testing.T, closed <-chan time.Time, gone time.Time, within, giveUp time.Duration) {
	t.Helper()
	select {
	case at := <-closed:
		if d := at.Sub(gone); d > within {
			t.Errorf("upstream closed %v after the client left, want < %v", d, within)
		}
	case <-time.After(giveUp):
		t.Fatalf("upstream request still open %v after the client left", giveUp)
	}
}
