package limit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// Reasons a RateLimiter refuses a request (Decision.Reason).
const (
	ReasonRequests = "requests" // the rule's requests per minute are used up
	ReasonTokens   = "tokens"   // the rule's tokens per minute are used up
	// ReasonTooLarge: the request's token estimate alone is above the rule's
	// tokens per minute, so no wait makes it pass; RetryAfter is 0.
	ReasonTooLarge = "too_large"
)

// Rule is one rate limit that applies to a request. Scope names the counter
// ("key:key_123", "team:team_9", "model:gpt-4o"): rules with the same Scope
// share it. RPM and TPM are per minute; zero means no limit of that kind.
type Rule struct {
	Scope    string
	RPM, TPM int
}

// Decision is the outcome of Admit.
type Decision struct {
	OK bool
	// Refused is the rule that refused the request (a copy), nil when OK.
	// When several refuse, it is the one that clears last.
	Refused *Rule
	Reason  string // ReasonRequests, ReasonTokens or ReasonTooLarge; "" when OK
	// RetryAfter is how long until a retry can pass the refusing rule
	// (positive), or 0 with ReasonTooLarge, when none can. The caller
	// rounds it up to whole seconds for Retry-After.
	RetryAfter time.Duration
	// Headers is the state of the tightest rules after the decision, for
	// the x-ratelimit-* headers; zero with ReasonTooLarge.
	Headers State
}

// State is what the x-ratelimit-* headers report: for requests, the rule
// with the fewest requests remaining, and for tokens, the one with the
// fewest tokens remaining (ties: the lower limit). A zero Limit means no
// rule limits that kind: send no headers for it. Reset is how long until
// that rule's window is empty again.
type State struct {
	LimitRequests, RemainingRequests int
	ResetRequests                    time.Duration
	LimitTokens, RemainingTokens     int
	ResetTokens                      time.Duration
}

// RateLimiter counts requests and tokens per scope over a sliding minute
// (see window). It is safe for concurrent use.
//
// Memory is bounded: at most maxScopes windows of about 800 bytes are kept.
// Scopes are spread over up to 16 shards, each with its own mutex and at
// most maxScopes/shards windows; a shard that is full forgets its least
// recently used scope to make room. That scope is the one idle the longest,
// so nothing is lost when it has been idle a minute; when even it was used
// within the minute, its counts are forgotten and it is briefly lenient.
// Size maxScopes above the number of scopes active in any minute (keys +
// teams + models) and this never happens.
//
// The zero value is not usable; use NewRateLimiter.
type RateLimiter struct {
	now    func() time.Time
	seed   maphash.Seed
	shards []shard // len is a power of two
}

// shard is a part of the limiter's scopes, with its own lock and LRU list.
type shard struct {
	mu  sync.Mutex         // guards m, the list at lru and every window in m
	m   map[string]*window // scope → window
	lru window             // sentinel of a ring: lru.next is the most recent
	max int                // most windows kept
}

// NewRateLimiter returns a limiter that reads time from now (nil:
// time.Now) and keeps at most maxScopes scopes. It panics when maxScopes is
// below 1.
func NewRateLimiter(now func() time.Time, maxScopes int) *RateLimiter {
	if maxScopes < 1 {
		panic(fmt.Sprintf("limit: NewRateLimiter: maxScopes %d < 1", maxScopes))
	}
	if now == nil {
		now = time.Now
	}
	// Sharding only pays with many scopes; a small limiter is one shard so
	// that its LRU order is exact.
	n := 1
	for n < 16 && maxScopes/(2*n) >= 1024 {
		n *= 2
	}
	l := &RateLimiter{now: now, seed: maphash.MakeSeed(), shards: make([]shard, n)}
	for i := range l.shards {
		s := &l.shards[i]
		s.m = make(map[string]*window)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
		s.max = maxScopes / n
	}
	return l
}

// maxRules is how many rules Admit handles without allocating.
const maxRules = 8

// Admit decides a request that will count tokens (the admission estimate)
// against rules, all or nothing: if every rule has room for one more
// request and tokens more tokens, each distinct scope counts them;
// otherwise nothing is counted anywhere and the Decision says which rule
// refused, why, and when to retry. A rule with neither RPM nor TPM is
// ignored.
//
// The error is for a backend that cannot decide (the Redis one) and for
// invalid input (an empty scope, a negative limit or estimate); the caller
// chooses to fail open or closed. Contract for every backend: safe for
// concurrent use, all or nothing across the rules under any concurrency,
// and at most one round trip to shared state (for Redis, one script).
func (l *RateLimiter) Admit(rules []Rule, tokens int) (Decision, error) {
	if err := checkRules(rules, tokens); err != nil {
		return Decision{}, err
	}
	for i := range rules {
		if rules[i].TPM > 0 && tokens > rules[i].TPM {
			r := rules[i]
			return Decision{Refused: &r, Reason: ReasonTooLarge}, nil
		}
	}
	var wbuf [maxRules]*window
	var sbuf [maxRules]int
	ws, locked := wbuf[:0], sbuf[:0]
	if len(rules) > maxRules {
		ws, locked = make([]*window, 0, len(rules)), make([]int, 0, len(rules))
	}
	locked = l.lockAll(rules, locked)
	defer l.unlockAll(locked)

	now := l.now()
	sec := now.Unix()
	for _, r := range rules {
		var w *window
		if r.RPM > 0 || r.TPM > 0 {
			w = l.shard(r.Scope).windowLocked(r.Scope, sec)
		}
		ws = append(ws, w)
	}
	if d, refused := refusal(rules, ws, tokens, now); refused {
		d.Headers = headers(rules, ws, now)
		return d, nil
	}
	for i, w := range ws {
		if w != nil && !seen(ws[:i], w) {
			w.add(tokens)
		}
	}
	return Decision{OK: true, Headers: headers(rules, ws, now)}, nil
}

// Correct adds delta tokens (positive or negative) to the count of every
// distinct scope of rules, once a request's real usage is known. A positive
// delta counts from now; a negative one takes back tokens still in the
// window, oldest first, and never takes a count below zero. Scopes the
// limiter no longer holds are skipped.
//
// A request admitted more than a minute ago has left the window: callers
// should not return its tokens (it would credit other requests' tokens).
func (l *RateLimiter) Correct(rules []Rule, delta int) {
	if delta == 0 {
		return
	}
	sec := l.now().Unix()
	for i, r := range rules {
		if dupScope(rules[:i], r.Scope) {
			continue
		}
		s := l.shard(r.Scope)
		s.mu.Lock()
		if w := s.m[r.Scope]; w != nil {
			w.advance(sec)
			w.correct(int64(delta))
		}
		s.mu.Unlock()
	}
}

func checkRules(rules []Rule, tokens int) error {
	if tokens < 0 {
		return fmt.Errorf("limit: negative token estimate %d", tokens)
	}
	for _, r := range rules {
		if r.Scope == "" {
			return errors.New("limit: rule without a scope")
		}
		if r.RPM < 0 || r.TPM < 0 {
			return fmt.Errorf("limit: rule %s has a negative limit", r.Scope)
		}
	}
	return nil
}

// refusal checks every rule against its window (nil: not limited). Of the
// rules that refuse, it reports the one whose retry is furthest away: no
// retry passes before then.
func refusal(rules []Rule, ws []*window, tokens int, now time.Time) (Decision, bool) {
	var d Decision
	refused := -1
	for i, w := range ws {
		if w == nil {
			continue
		}
		r := rules[i]
		if r.RPM > 0 && w.nreq+1 > int64(r.RPM) {
			at := freedAt(&w.reqs, w.head, w.nreq+1-int64(r.RPM))
			if after := time.Unix(at, 0).Sub(now); refused < 0 || after > d.RetryAfter {
				refused, d.Reason, d.RetryAfter = i, ReasonRequests, after
			}
		}
		if r.TPM > 0 && w.ntok+int64(tokens) > int64(r.TPM) {
			at := freedAt(&w.toks, w.head, w.ntok+int64(tokens)-int64(r.TPM))
			if after := time.Unix(at, 0).Sub(now); refused < 0 || after > d.RetryAfter {
				refused, d.Reason, d.RetryAfter = i, ReasonTokens, after
			}
		}
	}
	if refused < 0 {
		return Decision{}, false
	}
	r := rules[refused]
	d.Refused = &r
	return d, true
}

// headers reports the tightest rules (see State).
func headers(rules []Rule, ws []*window, now time.Time) State {
	var st State
	for i, w := range ws {
		if w == nil {
			continue
		}
		r := rules[i]
		if r.RPM > 0 {
			rem := max(r.RPM-int(w.nreq), 0)
			if st.LimitRequests == 0 || rem < st.RemainingRequests ||
				rem == st.RemainingRequests && r.RPM < st.LimitRequests {
				st.LimitRequests, st.RemainingRequests = r.RPM, rem
				st.ResetRequests = resetAfter(&w.reqs, w.head, now)
			}
		}
		if r.TPM > 0 {
			rem := max(r.TPM-int(w.ntok), 0)
			if st.LimitTokens == 0 || rem < st.RemainingTokens ||
				rem == st.RemainingTokens && r.TPM < st.LimitTokens {
				st.LimitTokens, st.RemainingTokens = r.TPM, rem
				st.ResetTokens = resetAfter(&w.toks, w.head, now)
			}
		}
	}
	return st
}

func seen(ws []*window, w *window) bool {
	for _, v := range ws {
		if v == w {
			return true
		}
	}
	return false
}

func dupScope(rules []Rule, scope string) bool {
	for _, r := range rules {
		if r.Scope == scope {
			return true
		}
	}
	return false
}

func (l *RateLimiter) shardIndex(scope string) int {
	return int(maphash.String(l.seed, scope) & uint64(len(l.shards)-1))
}

func (l *RateLimiter) shard(scope string) *shard { return &l.shards[l.shardIndex(scope)] }

// lockAll locks the shards of the limited rules, each once, in ascending
// order (so that two requests never wait on each other), and returns their
// indices appended to buf.
func (l *RateLimiter) lockAll(rules []Rule, buf []int) []int {
	for _, r := range rules {
		if r.RPM == 0 && r.TPM == 0 {
			continue
		}
		i := l.shardIndex(r.Scope)
		j := 0
		for j < len(buf) && buf[j] < i {
			j++
		}
		if j < len(buf) && buf[j] == i {
			continue
		}
		buf = append(buf, 0)
		copy(buf[j+1:], buf[j:])
		buf[j] = i
	}
	for _, i := range buf {
		l.shards[i].mu.Lock()
	}
	return buf
}

func (l *RateLimiter) unlockAll(locked []int) {
	for _, i := range locked {
		l.shards[i].mu.Unlock()
	}
}

// windowLocked returns scope's window moved to second sec, creating it
// (and forgetting the least recently used scope if the shard is full), and
// marks it most recently used.
func (s *shard) windowLocked(scope string, sec int64) *window {
	w := s.m[scope]
	if w == nil {
		if len(s.m) >= s.max {
			s.evictLocked()
		}
		w = &window{scope: scope, head: sec}
		s.m[scope] = w
	} else {
		w.advance(sec)
		if s.lru.next == w {
			return w
		}
		w.prev.next, w.next.prev = w.next, w.prev
	}
	w.prev, w.next = &s.lru, s.lru.next
	s.lru.next.prev = w
	s.lru.next = w
	return w
}

// evictLocked forgets the least recently used scope.
func (s *shard) evictLocked() {
	w := s.lru.prev
	if w == &s.lru {
		return
	}
	w.prev.next, w.next.prev = w.next, w.prev
	w.prev, w.next = nil, nil
	delete(s.m, w.scope)
}
