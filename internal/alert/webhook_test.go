package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
)

// failing is the record of a request that failed upstream.
var failing = meter.Record{Attempts: 1, Status: 502, Latency: 100 * time.Millisecond}

// syncBuffer is a log destination safe for the sender goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSlackBody(t *testing.T) {
	clk := newClock(t0)
	rcv := newReceiver(t)
	e := newEngine(t, clk, Options{Rules: rules(config.Webhook{URL: rcv.srv.URL, Format: config.WebhookSlack})})
	feed(e, 20, failing)
	e.Evaluate(context.Background())

	var got map[string]any
	rcv.next(t, &got)
	want := "[FIRING] error_rate_high: error rate (status 500 or more) 100.0% over the last 5m (20 of 20 requests) is above 5.0%"
	if len(got) != 1 || got["text"] != want {
		t.Errorf("slack body = %v, want {text: %q}", got, want)
	}
}

func TestSlackText(t *testing.T) {
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{Name: "x", State: StateFiring, Message: "a <b> & c"}, "[FIRING] x: a &lt;b&gt; &amp; c"},
		{Event{Name: "x", State: StateFiring, Repeat: true, Message: "m"}, "[FIRING, still] x: m"},
		{Event{Name: "x", State: StateResolved, Message: "m"}, "[RESOLVED] x: m"},
	}
	for _, tt := range tests {
		if got := slackText(&tt.ev); got != tt.want {
			t.Errorf("slackText(%+v) = %q, want %q", tt.ev, got, tt.want)
		}
	}
}

// TestLogLine checks the event's structured line, and that it is written
// even after Close, when webhooks no longer go out.
func TestLogLine(t *testing.T) {
	clk := newClock(t0)
	var buf syncBuffer
	e := newEngine(t, clk, Options{Rules: rules(config.Webhook{URL: "http://127.0.0.1:1/x"}),
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err := e.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e.BreakerChanged("d1", "open")
	clk.advance(time.Minute)
	e.Evaluate(context.Background())

	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	want := map[string]any{"level": "WARN", "msg": "alert", "event": "alert", "name": "breaker_open", "state": "firing",
		"repeat": false, "value": 60.0, "threshold": 60.0, "labels": map[string]any{"deployment": "d1"}}
	for k, v := range want {
		if g, _ := json.Marshal(line[k]); string(g) != mustJSON(t, v) {
			t.Errorf("log field %s = %s, want %s", k, g, mustJSON(t, v))
		}
	}
	if s := e.Alerts().Webhooks; s.Dropped != 1 {
		t.Errorf("Webhooks = %+v, want 1 dropped (sent after Close)", s)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWebhookRetries checks the tries per status: 5xx and 429 three times,
// other 4xx once. The failure log names the host only: the path is a secret.
func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		status    int
		wantTries int32
	}{
		{http.StatusInternalServerError, 3},
		{http.StatusTooManyRequests, 3},
		{http.StatusNotFound, 1},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			var tries atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tries.Add(1)
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			clk := newClock(t0)
			var buf syncBuffer
			e := newEngine(t, clk, Options{Rules: rules(config.Webhook{URL: srv.URL + "/services/secret-token"}),
				Logger: slog.New(slog.NewTextHandler(&buf, nil))})
			e.send.backoff = func(int) time.Duration { return time.Millisecond }
			feed(e, 20, failing)
			e.Evaluate(context.Background())

			waitFor(t, "the delivery to fail", func() bool { return e.Alerts().Webhooks.Failed == 1 })
			time.Sleep(20 * time.Millisecond) // no fourth try
			if got := tries.Load(); got != tt.wantTries {
				t.Errorf("tries = %d, want %d", got, tt.wantTries)
			}
			if s := buf.String(); strings.Contains(s, "secret-token") || !strings.Contains(s, "alert_webhook_failed") {
				t.Errorf("log = %s\nwant alert_webhook_failed without the URL's path", s)
			}
		})
	}
}

// TestHangingWebhook checks that a receiver that never answers slows
// nothing: Observe and Evaluate return at once while the one delivery
// hangs, the queue drops its oldest when full, and Close gives up when its
// context ends.
func TestHangingWebhook(t *testing.T) {
	hits := make(chan struct{}, 1000)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	clk := newClock(t0)
	e := newEngine(t, clk, Options{Rules: rules(config.Webhook{URL: srv.URL}), Client: &http.Client{}}) // no timeout
	feed(e, 20, failing)
	e.Evaluate(context.Background())
	select {
	case <-hits:
	case <-time.After(5 * time.Second):
		t.Fatal("the webhook was never called")
	}

	// The sender is stuck in that POST. 300 more alerts overflow the queue.
	const n = 300
	for i := range n {
		e.BreakerChanged("d"+string(rune('a'+i%26))+strings.Repeat("x", i/26), "open")
	}
	clk.advance(time.Minute)
	start := time.Now()
	e.Evaluate(context.Background())
	feed(e, 10_000, ok)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Evaluate and 10000 Observes took %v with the webhook hanging, want well under 1s", d)
	}
	s := e.Alerts().Webhooks
	if s.Queued != queueSize || s.Dropped != n-queueSize {
		t.Errorf("Webhooks = %+v, want %d queued and %d dropped", s, queueSize, n-queueSize)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	err := e.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v, want about 50ms", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if s := e.Alerts().Webhooks; s.Dropped != n+1 || s.Queued != 0 || s.Delivered != 0 {
		t.Errorf("after Close, Webhooks = %+v, want all %d dropped", s, n+1)
	}
}

// TestCloseDelivers checks that Close delivers what is queued before it
// returns.
func TestCloseDelivers(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		got.Add(1)
	}))
	defer srv.Close()
	clk := newClock(t0)
	e := newEngine(t, clk, Options{Rules: rules(config.Webhook{URL: srv.URL}, config.Webhook{URL: srv.URL, Format: "slack"})})
	for _, d := range []string{"a", "b", "c"} {
		e.BreakerChanged(d, "open")
	}
	clk.advance(time.Minute)
	e.Evaluate(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got.Load() != 6 {
		t.Errorf("delivered %d, want 6 (3 alerts × 2 webhooks)", got.Load())
	}
	if s := e.Alerts().Webhooks; s.Delivered != 6 || s.Dropped != 0 {
		t.Errorf("Webhooks = %+v, want 6 delivered", s)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/secret": "https://hooks.slack.com",
		"http://user:pw@example.com:8080/x?token=t":     "http://example.com:8080",
		"::": "(webhook)",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
