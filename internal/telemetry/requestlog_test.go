package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"time"
)

// The fast path writes the line slog would: same keys, same order, same
// values, strings escaped alike. Only "time" differs (each takes its own).
func TestRequestLineMatchesSlog(t *testing.T) {
	r := &Request{ID: "req_1", Endpoint: "chat.completions", Tier: "standard", Criticality: "crit\"\\\n\t\x01<&>",
		TeamID: "team_1", KeyID: "key_1", Downgraded: true, RequestedModel: "bad\xffutf8 \u2028 é ✓",
		Model: "m", Provider: "p", Deployment: "d", Stream: true, Attempts: 3, Fallback: true, Trimmed: 2,
		Status: 502, ErrorCode: "upstream_unavailable", PromptTokens: 12, CompletionTokens: 30, CachedTokens: 4,
		UsageReported: true, CostUSD: 0.0000123, CostEstimated: true, Latency: 1234567 * time.Nanosecond,
		TTFB: 89 * time.Microsecond, Overhead: 2 * time.Second, Time: time.Date(2026, 11, 29, 12, 0, 0, 5, time.UTC)}
	for _, cost := range []float64{0.0000123, 0, 1e-9, 12.5, 3e21} {
		r.CostUSD = cost
		var fast, slow bytes.Buffer
		LogRequest(context.Background(), slog.New(NewJSONHandler(&fast, nil)), r)
		LogRequest(context.Background(), slog.New(slog.NewJSONHandler(&slow, nil)), r)
		if bytes.Count(fast.Bytes(), []byte("\n")) != 1 {
			t.Fatalf("fast path wrote %q", fast.Bytes())
		}
		a, b := decodeOrdered(t, fast.Bytes()), decodeOrdered(t, slow.Bytes())
		if !reflect.DeepEqual(a, b) {
			t.Errorf("cost %g:\nfast %s\nslog %s", cost, fast.Bytes(), slow.Bytes())
		}
	}
}

// decodeOrdered returns a line's keys in order with their raw values, time
// left out.
func decodeOrdered(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%v in %s", err, line)
		}
		if k != "time" {
			out = append(out, k.(string)+"="+string(v))
		}
	}
	return out
}

// A level above info drops the line; 5xx lines are warnings.
func TestRequestLineLevel(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	LogRequest(context.Background(), log, &Request{ID: "ok", Status: 200})
	LogRequest(context.Background(), log, &Request{ID: "bad", Status: 503})
	if bytes.Contains(buf.Bytes(), []byte(`"ok"`)) || !bytes.Contains(buf.Bytes(), []byte(`"level":"WARN","msg":"request","event":"llm_request_completed","request_id":"bad"`)) {
		t.Errorf("got %s", buf.Bytes())
	}
}

func BenchmarkLogRequest(b *testing.B) {
	r := &Request{ID: "req_0123456789abcdef", Endpoint: "chat.completions", Tier: "standard", TeamID: "team_1",
		KeyID: "key_1", RequestedModel: "auto", Model: "gpt-4o-mini", Provider: "openai", Deployment: "gpt-4o-mini",
		Attempts: 1, Status: 200, PromptTokens: 12, CompletionTokens: 150, UsageReported: true, CostUSD: 0.0000918,
		Latency: 1234567, TTFB: 1234567, Overhead: 45678, Time: time.Now()}
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{{"fast", NewJSONHandler(discard{}, nil)}, {"slog", slog.NewJSONHandler(discard{}, nil)}} {
		b.Run(h.name, func(b *testing.B) {
			log := slog.New(h.h)
			b.ReportAllocs()
			for b.Loop() {
				LogRequest(context.Background(), log, r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
