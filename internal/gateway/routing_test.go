package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

const hi = `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`

// The budget chain is m1 then m2; the dev profile allows one retry per model.
func TestRetryAndFallback(t *testing.T) {
	cases := []struct {
		name           string
		stream         bool
		fault          string
		times          int
		wantStatus     int
		wantM1, wantM2 int
		wantAttempts   string
		wantFallback   string
		wantModel      string
		wantCode       string
	}{
		{name: "retry then success", fault: "status=503,retry_after_ms=1", times: 1,
			wantStatus: 200, wantM1: 2, wantM2: 0, wantAttempts: "2", wantFallback: "false", wantModel: "m1"},
		{name: "retries exhausted, fallback", fault: "status=503,retry_after_ms=1", times: 2,
			wantStatus: 200, wantM1: 2, wantM2: 1, wantAttempts: "3", wantFallback: "true", wantModel: "m2"},
		{name: "429 honours retry-after", fault: "status=429,retry_after=0.01", times: 1,
			wantStatus: 200, wantM1: 2, wantAttempts: "2", wantFallback: "false", wantModel: "m1"},
		{name: "insufficient quota falls back without retry", fault: "status=429,code=insufficient_quota,type=insufficient_quota", times: 0,
			wantStatus: 200, wantM1: 1, wantM2: 1, wantAttempts: "2", wantFallback: "true", wantModel: "m2"},
		{name: "upstream 401 falls back", fault: "status=401", times: 0,
			wantStatus: 200, wantM1: 1, wantM2: 1, wantAttempts: "2", wantFallback: "true", wantModel: "m2"},
		{name: "400 is not retried", fault: "status=400", times: 0,
			wantStatus: 400, wantM1: 1, wantM2: 0, wantAttempts: "", wantCode: ""},
		{name: "malformed body retried", fault: "malformed", times: 1,
			wantStatus: 200, wantM1: 2, wantAttempts: "2", wantFallback: "false", wantModel: "m1"},
		{name: "connection reset retried", fault: "reset_after=0", times: 1,
			wantStatus: 200, wantM1: 2, wantAttempts: "2", wantFallback: "false", wantModel: "m1"},
		{name: "500 retried then fallback", fault: "status=500", times: 0,
			wantStatus: 200, wantM1: 2, wantM2: 1, wantAttempts: "3", wantFallback: "true", wantModel: "m2"},
		{name: "429 without Retry-After backs off", fault: "status=429", times: 1,
			wantStatus: 200, wantM1: 2, wantAttempts: "2", wantFallback: "false", wantModel: "m1"},
		{name: "hang times out per attempt, then fallback", fault: "hang", times: 0,
			wantStatus: 200, wantM1: 2, wantM2: 1, wantAttempts: "3", wantFallback: "true", wantModel: "m2"},
		{name: "stream reset before first byte retried", stream: true, fault: "reset_after=0", times: 1,
			wantStatus: 200, wantM1: 2, wantAttempts: "2", wantFallback: "false", wantModel: "m1"},
		{name: "stream malformed event before first byte retried", stream: true, fault: "malformed", times: 1,
			wantStatus: 200, wantM1: 2, wantAttempts: "2", wantFallback: "false", wantModel: "m1"},
		{name: "upstream context-length error not retried", fault: "context_limit=1", times: 0,
			wantStatus: 400, wantM1: 1, wantM2: 0, wantCode: "context_length_exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startStack(t)
			s.mock.AddFault(mockupstream.Rule{Model: "m1", Fault: tc.fault, Times: tc.times})
			in := hi
			if tc.stream {
				in = `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			}
			code, hdr, body := s.post(t, "/v1/chat/completions", in)
			if code != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", code, tc.wantStatus, body)
			}
			if g1, g2 := s.calls("m1"), s.calls("m2"); g1 != tc.wantM1 || g2 != tc.wantM2 {
				t.Errorf("calls m1=%d m2=%d, want m1=%d m2=%d", g1, g2, tc.wantM1, tc.wantM2)
			}
			if code == 200 {
				if hdr.Get("X-Tollgate-Attempts") != tc.wantAttempts || hdr.Get("X-Tollgate-Fallback") != tc.wantFallback ||
					hdr.Get("X-Tollgate-Model") != tc.wantModel {
					t.Errorf("attempts=%q fallback=%q model=%q, want %q %q %q", hdr.Get("X-Tollgate-Attempts"),
						hdr.Get("X-Tollgate-Fallback"), hdr.Get("X-Tollgate-Model"), tc.wantAttempts, tc.wantFallback, tc.wantModel)
				}
				if tc.stream && !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
					t.Errorf("stream did not end cleanly: %q", body)
				}
			} else if _, c := errorBody(t, body); tc.wantCode != "" && c != tc.wantCode {
				t.Errorf("code = %q, want %q", c, tc.wantCode)
			}
		})
	}
}

func TestAllCandidatesFail(t *testing.T) {
	s := startStack(t)
	s.mock.AddFault(mockupstream.Rule{Model: "*", Fault: "status=500,retry_after_ms=1"})
	code, hdr, body := s.post(t, "/v1/chat/completions", hi)
	if typ, c := errorBody(t, body); code != 502 || c != "upstream_unavailable" || typ != "server_error" {
		t.Errorf("got %d %s %s, want 502 server_error upstream_unavailable", code, typ, c)
	}
	if hdr.Get("X-Tollgate-Attempts") != "4" || hdr.Get("X-Tollgate-Model") != "m2" || hdr.Get("X-Tollgate-Fallback") != "true" {
		t.Errorf("error headers: attempts %q model %q fallback %q", hdr.Get("X-Tollgate-Attempts"),
			hdr.Get("X-Tollgate-Model"), hdr.Get("X-Tollgate-Fallback"))
	}
	if g1, g2 := s.calls("m1"), s.calls("m2"); g1 != 2 || g2 != 2 {
		t.Errorf("calls m1=%d m2=%d, want 2 and 2", g1, g2)
	}
	l := s.logLines(t)
	if len(l) != 1 || l[0]["status"].(float64) != 502 || l[0]["attempts"].(float64) != 4 || l[0]["error_code"] != "upstream_unavailable" {
		t.Errorf("log = %v", l)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	s := startStack(t)
	s.mock.AddFault(mockupstream.Rule{Model: "*", Fault: "hang"})
	code, _, body := s.post(t, "/v1/chat/completions", hi)
	if _, c := errorBody(t, body); code != 504 || c != "upstream_timeout" {
		t.Errorf("got %d %s, want 504 upstream_timeout", code, c)
	}
}

// After the first byte the gateway never switches model: a broken stream ends
// with an error event the SDK raises, never with [DONE].
func TestStreamBreaksAfterFirstByte(t *testing.T) {
	for _, fault := range []string{"reset_after=3", "stream_error_after=3"} {
		t.Run(fault, func(t *testing.T) {
			s := startStack(t)
			s.mock.AddFault(mockupstream.Rule{Model: "m1", Fault: fault})
			code, _, body := s.post(t, "/v1/chat/completions", `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			if code != 200 {
				t.Fatalf("status %d", code)
			}
			text := string(body)
			if strings.Contains(text, "[DONE]") || !strings.Contains(text, `data: {"error":`) {
				t.Errorf("stream = %q, want an error event and no [DONE]", text)
			}
			if s.calls("m2") != 0 || s.calls("m1") != 1 {
				t.Errorf("calls m1=%d m2=%d: a started stream must not be retried or switched", s.calls("m1"), s.calls("m2"))
			}
			c := s.client()
			stream := c.Chat.Completions.NewStreaming(context.Background(), chatParams("m1", "hi"))
			for stream.Next() {
			}
			if stream.Err() == nil {
				t.Error("openai-go saw a clean end of a broken stream")
			}
			if l := s.logLines(t); l[0]["status"].(float64) < 500 {
				t.Errorf("log status = %v, want a 5xx", l[0]["status"])
			}
		})
	}
}

// A stream that fails before its first byte is retried invisibly.
func TestStreamRetriedBeforeFirstByte(t *testing.T) {
	s := startStack(t)
	s.mock.AddFault(mockupstream.Rule{Model: "m1", Fault: "status=503,retry_after_ms=1", Times: 1})
	c := s.client()
	stream := c.Chat.Completions.NewStreaming(context.Background(), chatParams("chat", "hi"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || acc.Choices[0].Message.Content == "" {
		t.Fatalf("stream err %v, content %q", err, acc.Choices[0].Message.Content)
	}
	if s.calls("m1") != 2 {
		t.Errorf("m1 calls = %d, want 2", s.calls("m1"))
	}
}
