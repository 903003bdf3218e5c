package provider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A 429 on one key rests it and the same attempt goes again with the other
// key: the client never sees the rate limit.
func TestKeyCooldownAfter429(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Authorization")
		mu.Lock()
		seen[key]++
		mu.Unlock()
		if key == "Bearer limited" {
			w.Header().Set("Retry-After", "20")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`))
			return
		}
		w.Write([]byte(`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`))
	}))
	defer srv.Close()
	o := NewOpenAI(Account{Name: "p", BaseURL: srv.URL, Keys: []string{"limited", "fine"}}, srv.Client())
	req := &Request{Body: []byte(`{"model":"m"}`), Model: "m"}
	for i := range 6 {
		if _, err := o.Do(context.Background(), req); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["Bearer limited"] != 1 || seen["Bearer fine"] != 6 {
		t.Errorf("calls per key = %v, want the limited key tried once, then resting", seen)
	}
}

// With every key resting, the 429 reaches the gateway, which decides.
func TestAllKeysLimited(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`))
	}))
	defer srv.Close()
	o := NewOpenAI(Account{Name: "p", BaseURL: srv.URL, Keys: []string{"a", "b"}, KeyCooldown: time.Minute}, srv.Client())
	_, err := o.Do(context.Background(), &Request{Body: []byte(`{}`)})
	pe, ok := AsProviderError(err)
	if !ok || pe.Status != 429 || !pe.Retryable() {
		t.Fatalf("err = %v, want a retryable 429", err)
	}
}

func TestKeyRingPick(t *testing.T) {
	now := time.Unix(1000, 0)
	k := newKeyRing([]string{"a", "b", "c"}, time.Second)
	k.rest(0, 0, now)
	k.rest(1, 5*time.Second, now)
	for range 5 {
		if _, key := k.pick(now); key != "c" {
			t.Fatalf("pick = %q, want the only rested-out key c", key)
		}
	}
	k.rest(2, 3*time.Second, now)
	if _, key := k.pick(now); key != "a" {
		t.Errorf("all resting: pick = %q, want a (its rest ends first)", key)
	}
	if _, key := k.pick(now.Add(2 * time.Second)); key == "b" {
		t.Errorf("b still rests at +2s")
	}
}

// A timer the gateway fires is a timeout, not a client that left.
func TestAttemptTimeoutCause(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrAttemptTimeout)
	if e := transportError(ctx, "p", context.Canceled); e.Kind != KindTimeout {
		t.Errorf("kind = %v, want KindTimeout", e.Kind)
	}
	ctx, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if e := transportError(ctx, "p", context.Canceled); e.Kind != KindCanceled {
		t.Errorf("kind = %v, want KindCanceled", e.Kind)
	}
}

// A team's allocated key replaces the provider's own for that request.
func TestAPIKeyOverride(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Write([]byte(`{"choices":[]}`))
	}))
	defer srv.Close()
	o := NewOpenAI(Account{Name: "p", BaseURL: srv.URL, Keys: []string{"shared"}}, srv.Client())
	if _, err := o.Do(context.Background(), &Request{Body: []byte(`{}`), APIKey: "team-own"}); err != nil {
		t.Fatal(err)
	}
	if got != "Bearer team-own" {
		t.Errorf("Authorization = %q, want the team's key", got)
	}
}

func TestReadUsage(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		prompt int
		nilOK  bool
		err    bool
	}{
		{"usage last", `{"choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\":99}"}}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":1}}}`, 7, false, false},
		{"spaces", `{"usage" :  {"prompt_tokens":3} }`, 3, false, false},
		{"nested only", `{"choices":[{"usage":{"prompt_tokens":5}}]}`, 0, true, false}, // not the response's usage
		{"not an object", `{"usage":[1]}`, 0, true, false},
		{"null usage", `{"choices":[],"usage":null}`, 0, true, false},
		{"no usage", `{"choices":[]}`, 0, true, false},
		{"braces in strings", `{"usage":{"prompt_tokens":4,"x":"}{"}}`, 4, false, false},
		{"malformed", `{"usage":{"prompt_tokens":4}`, 0, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := readUsage([]byte(tc.body))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			if tc.nilOK {
				if u != nil {
					t.Errorf("usage = %+v, want nil", u)
				}
				return
			}
			if u == nil || u.PromptTokens != tc.prompt {
				t.Errorf("usage = %+v, want prompt %d", u, tc.prompt)
			}
		})
	}
}
