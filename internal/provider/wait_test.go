package provider

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// slowUpstream answers after delay, OpenAI's or Anthropic's API by the path,
// and with a 429 to the key "limited".
func slowUpstream(t *testing.T, delay time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(delay)
		if r.Header.Get("Authorization") == "Bearer limited" || r.Header.Get("X-Api-Key") == "limited" {
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`))
			return
		}
		if strings.HasSuffix(r.URL.Path, "/messages") {
			w.Write([]byte(`{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"}],` +
				`"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`))
			return
		}
		if r.Header.Get("Accept") == "text/event-stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"))
			return
		}
		w.Write([]byte(`{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],` +
			`"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// timedDo runs one Do and returns its answer and how long the whole call took.
func timedDo(t *testing.T, p Provider, req *Request) (*Response, time.Duration) {
	t.Helper()
	began := time.Now()
	resp, err := p.Do(context.Background(), req)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	return resp, took
}

// Response.Wait holds the upstream's time — at least its delay — and no
// more than the whole call, which also holds the gateway's own work.
func TestResponseWaitIsTheUpstreamsTime(t *testing.T) {
	const delay = 40 * time.Millisecond
	srv := slowUpstream(t, delay)
	o := NewOpenAI(Account{Name: "p", BaseURL: srv.URL, Keys: []string{"k"}}, NewHTTPClient())
	for _, stream := range []bool{false, true} {
		for i := range 2 { // a new conn, then a reused one
			resp, took := timedDo(t, o, &Request{Body: []byte(`{"model":"m"}`), Model: "m", Stream: stream})
			if resp.Wait < delay || resp.Wait > took {
				t.Errorf("stream=%v call %d: Wait = %v, want between the upstream's delay %v and the call's %v", stream, i, resp.Wait, delay, took)
			}
			if resp.Stream != nil {
				resp.Stream.Close()
			}
		}
	}
}

// A new conn's dialling is network time: the upstream's, not the gateway's.
func TestResponseWaitCountsTheDial(t *testing.T) {
	const dialDelay = 60 * time.Millisecond
	srv := slowUpstream(t, 0)
	d := &net.Dialer{}
	tr := NewTransport(TransportOptions{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(dialDelay)
		return d.DialContext(ctx, network, addr)
	}})
	o := NewOpenAI(Account{Name: "p", BaseURL: srv.URL}, &http.Client{Transport: tr})
	resp, _ := timedDo(t, o, &Request{Body: []byte(`{}`)})
	if resp.Wait < dialDelay {
		t.Errorf("first call: Wait = %v, want at least the dial's %v", resp.Wait, dialDelay)
	}
	resp, _ = timedDo(t, o, &Request{Body: []byte(`{}`)})
	if resp.Wait >= dialDelay {
		t.Errorf("second call, on the pooled conn: Wait = %v, want no dial in it (%v)", resp.Wait, dialDelay)
	}
}

// A 429 on one key and the answer on the next: both rounds are upstream time.
func TestResponseWaitCountsEveryKeysRound(t *testing.T) {
	const delay = 30 * time.Millisecond
	srv := slowUpstream(t, delay)
	for _, kind := range []string{"openai", "anthropic"} {
		a := Account{Name: "p", BaseURL: srv.URL, Keys: []string{"limited", "fine"}}
		var p Provider = NewOpenAI(a, NewHTTPClient())
		body := `{"model":"m"}`
		if kind == "anthropic" {
			p = NewAnthropic(a, NewHTTPClient())
			body = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
		}
		resp, took := timedDo(t, p, &Request{Body: []byte(body), Model: "m"})
		if !strings.Contains(string(resp.Body), `"hi"`) {
			t.Errorf("%s: body = %s, want the answer", kind, resp.Body)
		}
		if resp.Wait < 2*delay || resp.Wait > took {
			t.Errorf("%s: Wait = %v, want both rounds (≥ %v) and no more than the call's %v", kind, resp.Wait, 2*delay, took)
		}
	}
}

// net/http's transport does not say when it wrote: Wait stays zero, and the
// gateway counts the whole call.
func TestResponseWaitUnknownOnNetHTTP(t *testing.T) {
	srv := slowUpstream(t, 0)
	o := NewOpenAI(Account{Name: "p", BaseURL: srv.URL}, srv.Client())
	resp, _ := timedDo(t, o, &Request{Body: []byte(`{}`)})
	if resp.Wait != 0 {
		t.Errorf("Wait = %v over net/http's transport, want 0 (unknown)", resp.Wait)
	}
	if !strings.Contains(string(resp.Body), "usage") {
		t.Errorf("body = %s", resp.Body)
	}
}

// slowBody is a request body that takes its time to produce its bytes, as
// a gateway does that translates a request.
type slowBody struct {
	delay time.Duration
	r     io.Reader
}

func (b *slowBody) Read(p []byte) (int, error) {
	time.Sleep(b.delay)
	b.delay = 0
	return b.r.Read(p)
}

func (*slowBody) Close() error { return nil }

// Producing the request is the gateway's time: the wait starts when the
// request, in the conn's buffer, goes to the socket.
func TestUpstreamWaitStartsAtTheFlush(t *testing.T) {
	const bodyDelay = 60 * time.Millisecond
	srv := slowUpstream(t, 0)
	tr := NewTransport(TransportOptions{})
	for i := range 2 { // a new conn, then a reused one
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Body, req.ContentLength = &slowBody{delay: bodyDelay, r: strings.NewReader(`{}`)}, 2
		began := time.Now()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		took := time.Since(began)
		wait, ok := upstreamWait(resp)
		resp.Body.Close()
		if !ok || took < bodyDelay || wait >= bodyDelay {
			t.Errorf("call %d: upstreamWait = %v, %v after a call of %v, want known and less than the body's %v", i, wait, ok, took, bodyDelay)
		}
	}
}
