package limit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = date(2026, time.March, 2, 10, 0, 0).Add(250 * time.Millisecond)

// admit calls Admit and fails the test on an error.
func admit(t *testing.T, l *RateLimiter, rules []Rule, tokens int) Decision {
	t.Helper()
	d, err := l.Admit(rules, tokens)
	if err != nil {
		t.Fatalf("Admit(%v, %d): %v", rules, tokens, err)
	}
	return d
}

// count returns what the limiter counts for scope (zeros when it holds no
// window for it).
func count(l *RateLimiter, scope string) (reqs, toks int64) {
	s := l.shard(scope)
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.m[scope]; w != nil {
		return w.nreq, w.ntok
	}
	return 0, 0
}

func TestAdmitRPMBurst(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 100)
	rules := []Rule{{Scope: "key:a", RPM: 60}}
	var rejected int
	for i := range 70 {
		d := admit(t, l, rules, 0)
		if d.OK {
			if want := 60 - (i + 1); d.Headers.RemainingRequests != want || d.Headers.LimitRequests != 60 {
				t.Errorf("request %d: headers %+v, want limit 60 remaining %d", i, d.Headers, want)
			}
			continue
		}
		rejected++
		if d.Reason != ReasonRequests || d.Refused == nil || d.Refused.Scope != "key:a" {
			t.Errorf("request %d: refused %+v for %q, want key:a for requests", i, d.Refused, d.Reason)
		}
		// The burst is in the bucket of second 10:00:00; it leaves at 10:01:00.
		if want := 59750 * time.Millisecond; d.RetryAfter != want {
			t.Errorf("request %d: RetryAfter %v, want %v", i, d.RetryAfter, want)
		}
		if d.Headers.RemainingRequests != 0 || d.Headers.ResetRequests != 59750*time.Millisecond {
			t.Errorf("request %d: headers %+v, want 0 remaining, reset 59.75s", i, d.Headers)
		}
	}
	if rejected != 10 {
		t.Fatalf("70 requests at 60 RPM: %d rejected, want exactly 10", rejected)
	}
	if reqs, _ := count(l, "key:a"); reqs != 60 {
		t.Errorf("counted %d requests, want 60 (refusals count nothing)", reqs)
	}
}

func TestAdmitWindowSlides(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 100)
	rules := []Rule{{Scope: "team:t", RPM: 60}}
	for range 30 {
		admit(t, l, rules, 0)
	}
	c.add(30 * time.Second) // 10:00:30.25
	for range 30 {
		admit(t, l, rules, 0)
	}
	c.add(29 * time.Second) // 10:00:59.25, both halves still in the window
	d := admit(t, l, rules, 0)
	if d.OK || d.RetryAfter != 750*time.Millisecond {
		t.Fatalf("full window: %+v, want refused with RetryAfter 750ms", d)
	}
	c.add(d.RetryAfter) // 10:01:00: the first 30 leave
	for i := range 30 {
		if d := admit(t, l, rules, 0); !d.OK {
			t.Fatalf("after the slide, request %d refused: %+v", i, d)
		}
	}
	d = admit(t, l, rules, 0)
	if d.OK || d.RetryAfter != 30*time.Second {
		t.Fatalf("full again: %+v, want refused until the 10:00:30 bucket leaves (30s)", d)
	}
	c.add(10 * time.Minute)
	if d := admit(t, l, rules, 0); !d.OK || d.Headers.RemainingRequests != 59 {
		t.Fatalf("after 10 idle minutes: %+v, want OK with 59 remaining", d)
	}
}

func TestAdmitTokens(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 100)
	rules := []Rule{{Scope: "model:m", TPM: 1000}}
	for i, want := range []bool{true, true, false} {
		if d := admit(t, l, rules, 400); d.OK != want {
			t.Fatalf("estimate %d of 400 tokens at 1000 TPM: OK %v, want %v (%+v)", i, d.OK, want, d)
		}
	}
	d := admit(t, l, rules, 400)
	if d.Reason != ReasonTokens || d.RetryAfter <= 0 || d.Headers.RemainingTokens != 200 || d.Headers.LimitTokens != 1000 {
		t.Fatalf("refusal %+v, want tokens with RetryAfter > 0 and 200 remaining", d)
	}
	l.Correct(rules, -300) // the first request used 100, not 400
	if d := admit(t, l, rules, 400); !d.OK || d.Headers.RemainingTokens != 100 {
		t.Fatalf("after a correction of -300: %+v, want OK with 100 remaining", d)
	}
	l.Correct(rules, 500) // another used 900
	if _, toks := count(l, "model:m"); toks != 1400 {
		t.Fatalf("counted %d tokens, want 1400", toks)
	}
	if d := admit(t, l, rules, 0); d.OK || d.Reason != ReasonTokens {
		t.Fatalf("over the limit after a positive correction: %+v, want refused for tokens", d)
	}
	l.Correct(rules, -5000) // never below zero
	if _, toks := count(l, "model:m"); toks != 0 {
		t.Fatalf("counted %d tokens after a large refund, want 0", toks)
	}
}

// TestCorrectOldestFirst: a refund comes out of the oldest tokens, so the
// window never counts less than it holds: the newer request's 100 tokens
// stay counted after the old bucket leaves.
func TestCorrectOldestFirst(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 100)
	rules := []Rule{{Scope: "key:a", TPM: 10_000}}
	admit(t, l, rules, 500)
	c.add(30 * time.Second)
	admit(t, l, rules, 100)
	l.Correct(rules, -400)
	if _, toks := count(l, "key:a"); toks != 200 {
		t.Fatalf("after the refund: %d tokens, want 200", toks)
	}
	c.add(30 * time.Second) // the first bucket (now 100) leaves
	if d := admit(t, l, rules, 0); d.Headers.RemainingTokens != 9900 {
		t.Fatalf("after the first bucket left: %+v, want 9900 tokens remaining", d.Headers)
	}
}

func TestAdmitAllOrNothing(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 100)
	key, team := Rule{Scope: "key:a", RPM: 10}, Rule{Scope: "team:t", RPM: 2, TPM: 1000}
	both := []Rule{key, team}
	for range 2 {
		admit(t, l, both, 10)
	}
	d := admit(t, l, both, 10)
	if d.OK || d.Refused.Scope != "team:t" || d.Reason != ReasonRequests {
		t.Fatalf("third request: %+v, want refused by team:t for requests", d)
	}
	if reqs, toks := count(l, "key:a"); reqs != 2 || toks != 20 {
		t.Fatalf("key counted %d requests, %d tokens after the refusal; want 2, 20", reqs, toks)
	}
	if d.Headers.LimitRequests != 2 || d.Headers.RemainingRequests != 0 {
		t.Errorf("headers %+v, want the team's (tightest) requests", d.Headers)
	}
	for i := range 8 {
		if d := admit(t, l, []Rule{key}, 0); !d.OK {
			t.Fatalf("key alone, request %d: %+v, want OK (the key had room)", i, d)
		}
	}
	if d := admit(t, l, []Rule{key}, 0); d.OK {
		t.Fatal("11th request on the key passed")
	}
}

// TestAdmitRetryAfterLatest: when two rules refuse, the decision waits for
// the one that clears last.
func TestAdmitRetryAfterLatest(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 100)
	early, late := Rule{Scope: "a", RPM: 1}, Rule{Scope: "b", RPM: 1}
	admit(t, l, []Rule{early}, 0)
	c.add(20 * time.Second)
	admit(t, l, []Rule{late}, 0)
	for _, rules := range [][]Rule{{early, late}, {late, early}} {
		d := admit(t, l, rules, 0)
		if d.OK || d.Refused.Scope != "b" || d.RetryAfter != 60*time.Second-250*time.Millisecond {
			t.Errorf("Admit(%v): %+v, want refused by b for 59.75s", rules, d)
		}
	}
}

func TestAdmitTooLarge(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 100)
	rules := []Rule{{Scope: "key:a", RPM: 10}, {Scope: "model:m", TPM: 100}}
	d := admit(t, l, rules, 101)
	if d.OK || d.Reason != ReasonTooLarge || d.RetryAfter != 0 || d.Refused.Scope != "model:m" {
		t.Fatalf("101 tokens at 100 TPM: %+v, want too_large by model:m with no RetryAfter", d)
	}
	if reqs, _ := count(l, "key:a"); reqs != 0 {
		t.Errorf("key counted %d requests for a refused request", reqs)
	}
	if d := admit(t, l, rules, 100); !d.OK {
		t.Errorf("100 tokens at 100 TPM: %+v, want OK", d)
	}
}

func TestAdmitInvalid(t *testing.T) {
	l := NewRateLimiter(nil, 10)
	for _, tc := range []struct {
		name   string
		rules  []Rule
		tokens int
	}{
		{"negative tokens", []Rule{{Scope: "a", RPM: 1}}, -1},
		{"empty scope", []Rule{{RPM: 1}}, 0},
		{"negative RPM", []Rule{{Scope: "a", RPM: -1}}, 0},
		{"negative TPM", []Rule{{Scope: "a", TPM: -1}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d, err := l.Admit(tc.rules, tc.tokens); err == nil {
				t.Errorf("Admit(%v, %d) = %+v, want an error", tc.rules, tc.tokens, d)
			}
		})
	}
}

// TestAdmitUnlimited: rules without limits, and no rules, admit everything
// and keep no window.
func TestAdmitUnlimited(t *testing.T) {
	l := NewRateLimiter(nil, 10)
	for range 100 {
		if d := admit(t, l, []Rule{{Scope: "free"}}, 1e6); !d.OK || d.Headers != (State{}) {
			t.Fatalf("unlimited rule: %+v", d)
		}
		if d := admit(t, l, nil, 5); !d.OK {
			t.Fatalf("no rules: %+v", d)
		}
	}
	if len(l.shard("free").m) != 0 {
		t.Error("a window was kept for an unlimited rule")
	}
}

// TestAdmitSameScopeTwice: two rules on one scope count the request once
// and both limits hold.
func TestAdmitSameScopeTwice(t *testing.T) {
	l := NewRateLimiter(newClock(t0).now, 10)
	rules := []Rule{{Scope: "s", RPM: 5}, {Scope: "s", RPM: 3}}
	var ok int
	for range 10 {
		if admit(t, l, rules, 1).OK {
			ok++
		}
	}
	if reqs, toks := count(l, "s"); ok != 3 || reqs != 3 || toks != 3 {
		t.Fatalf("%d admitted, %d requests and %d tokens counted; want 3, 3, 3", ok, reqs, toks)
	}
	l.Correct(rules, 2)
	if _, toks := count(l, "s"); toks != 5 {
		t.Fatalf("after Correct(+2): %d tokens, want 5 (once per scope)", toks)
	}
}

func TestRateEvictsLeastRecentlyUsed(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 3)
	one := func(s string) []Rule { return []Rule{{Scope: s, RPM: 1}} }
	for _, s := range []string{"a", "b", "c"} {
		admit(t, l, one(s), 0)
	}
	c.add(2 * time.Minute)
	admit(t, l, one("a"), 0) // a is now the most recent; b the least
	admit(t, l, one("d"), 0) // evicts b
	s := l.shard("a")
	for scope, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := s.m[scope]; ok != want {
			t.Errorf("scope %s kept: %v, want %v", scope, ok, want)
		}
	}
	if d := admit(t, l, one("a"), 0); d.OK {
		t.Error("a's count was lost: it was used most recently")
	}
}

func TestRateMemoryBounded(t *testing.T) {
	const maxScopes = 40_000
	l := NewRateLimiter(newClock(t0).now, maxScopes)
	if len(l.shards) != 16 {
		t.Errorf("%d shards for %d scopes, want 16", len(l.shards), maxScopes)
	}
	rules := make([]Rule, 1)
	for i := range 3 * maxScopes / 2 {
		rules[0] = Rule{Scope: fmt.Sprintf("key:%d", i), RPM: 1}
		admit(t, l, rules, 0)
	}
	var n int
	for i := range l.shards {
		n += len(l.shards[i].m)
	}
	if n > maxScopes || n < maxScopes*9/10 {
		t.Fatalf("%d windows after %d scopes, want at most %d (and close to it)", n, 3*maxScopes/2, maxScopes)
	}
}

func TestAdmitConcurrent(t *testing.T) {
	c := newClock(t0)
	l := NewRateLimiter(c.now, 1000)
	rules := []Rule{{Scope: "key:a", RPM: 1000}, {Scope: "team:t", RPM: 50}, {Scope: "model:m", TPM: 100_000}}
	var ok atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 200 {
		wg.Go(func() {
			<-start
			d, err := l.Admit(rules, 10)
			if err != nil {
				t.Error(err)
			}
			if d.OK {
				ok.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 50 {
		t.Fatalf("%d of 200 concurrent requests admitted at 50 RPM, want exactly 50", ok.Load())
	}
	for scope, want := range map[string]int64{"key:a": 50, "team:t": 50, "model:m": 50} {
		if reqs, toks := count(l, scope); reqs != want || toks != 10*want {
			t.Errorf("%s counted %d requests, %d tokens; want %d, %d", scope, reqs, toks, want, 10*want)
		}
	}
}

func BenchmarkAdmit3Rules(b *testing.B) {
	rules := []Rule{{Scope: "key:key_123", RPM: 1 << 30, TPM: 1 << 30}, {Scope: "team:team_9", RPM: 1 << 30},
		{Scope: "model:gpt-4o", TPM: 1 << 30}}
	b.Run("serial", func(b *testing.B) {
		l := NewRateLimiter(time.Now, 100_000)
		for b.Loop() {
			if d, _ := l.Admit(rules, 100); !d.OK {
				b.Fatal(d)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := NewRateLimiter(time.Now, 100_000)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if d, _ := l.Admit(rules, 100); !d.OK {
					b.Fatal(d)
				}
			}
		})
	})
	b.Run("parallel-distinct-keys", func(b *testing.B) {
		l := NewRateLimiter(time.Now, 100_000)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			rs := append([]Rule(nil), rules...)
			rs[0].Scope = fmt.Sprintf("key:%d", n.Add(1))
			rs[1].Scope = fmt.Sprintf("team:%d", n.Add(1))
			for pb.Next() {
				if d, _ := l.Admit(rs, 100); !d.OK {
					b.Fatal(d)
				}
			}
		})
	})
}
