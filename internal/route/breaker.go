package route

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// State is a circuit breaker's state.
type State int32

// Breaker states. The zero value is Closed, so a deployment never seen is
// closed.
const (
	Closed   State = iota // attempts flow; outcomes are counted
	Open                  // attempts are refused until the cool-down ends
	HalfOpen              // one probe at a time decides between Closed and Open
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// Outcome is what became of one attempt, as far as a breaker cares.
type Outcome int

// Outcomes.
const (
	// Success is an answer from the provider (2xx, or a stream that ended well).
	Success Outcome = iota
	// Failure is the provider's fault: 5xx, 429, timeout, connection reset,
	// malformed response.
	Failure
	// Ignored is not the provider's fault (client canceled or disconnected,
	// client 4xx errors). It counts for nothing; if it was the half-open probe
	// it frees the probe slot without changing state.
	Ignored
)

// Defaults for zero fields of config.Breaker. They mirror the defaults
// documented on config.Breaker, which compile fills in; they matter only for a
// config.Breaker built by hand (as tests and a hand-built Config do).
const (
	defaultFailures    = 5
	defaultErrorRate   = 0.5
	defaultMinRequests = 20
	defaultWindow      = 60 * time.Second
	defaultCooldown    = 30 * time.Second
)

// windowBuckets is how many time buckets make up the error-rate window: the
// window slides in steps of Window/windowBuckets, and memory per deployment
// is fixed.
const windowBuckets = 10

// Breakers holds one circuit breaker per deployment, keyed by
// config.Deployment.ID. It is safe for concurrent use and starts no
// goroutines; time comes only from the injected clock.
//
// A breaker is created on the first outcome reported for an ID and is never
// removed, so memory is bounded by the number of distinct IDs passed in. The
// gateway passes only IDs the configuration names; IDs dropped by a reload
// keep a small, fixed-size entry (a few hundred bytes) until the process
// ends. Do not pass IDs taken from requests.
//
// The zero value is not usable; call NewBreakers. A Breakers must not be
// copied.
type Breakers struct {
	now  func() time.Time
	base time.Time // bucket numbers count from here (monotonic when now has it)

	cfg      atomic.Pointer[config.Breaker] // with defaults filled; replaced whole by SetConfig
	m        atomic.Pointer[map[string]*breaker]
	onChange atomic.Pointer[[]func(id string, from, to State)]

	// mu serializes writers of m and onChange; both are copied on write so
	// that readers (Allow, Report) never lock.
	mu sync.Mutex
}

// breaker is one deployment's state.
type breaker struct {
	// state mirrors st so that Allow on a closed breaker needs no lock. It is
	// written only with mu held.
	state atomic.Int32

	// mu guards every field below.
	mu          sync.Mutex
	st          State
	consecutive int       // failures in a row while closed
	openedAt    time.Time // when it last opened
	probing     bool      // a half-open probe is out
	probeAt     time.Time // when the probe went out
	width       time.Duration
	buckets     [windowBuckets]bucket
}

// bucket counts outcomes in one slice of the window.
type bucket struct {
	n        int64 // bucket number: time since base / width
	ok, fail int32
}

// transition is a state change to announce once locks are released.
type transition struct {
	from, to State
}

// NewBreakers returns breakers configured by cfg (zero fields take the
// defaults documented on config.Breaker). A nil now means time.Now.
func NewBreakers(cfg config.Breaker, now func() time.Time) *Breakers {
	if now == nil {
		now = time.Now
	}
	b := &Breakers{now: now, base: now()}
	b.SetConfig(cfg)
	m := map[string]*breaker{}
	b.m.Store(&m)
	return b
}

// SetConfig replaces the configuration, for a reload. States, consecutive
// counts and open times are kept: a new Cooldown applies to breakers already
// open. If the Window changes, each breaker's window counts start over at
// its next outcome, since old buckets have the old width.
func (b *Breakers) SetConfig(cfg config.Breaker) {
	if cfg.Failures <= 0 {
		cfg.Failures = defaultFailures
	}
	if cfg.ErrorRate <= 0 {
		cfg.ErrorRate = defaultErrorRate
	}
	if cfg.MinRequests <= 0 {
		cfg.MinRequests = defaultMinRequests
	}
	if cfg.Window <= 0 {
		cfg.Window = defaultWindow
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = defaultCooldown
	}
	b.cfg.Store(&cfg)
}

// OnChange adds fn to the functions called on every state change, with the
// deployment ID and the states before and after. They run on the goroutine
// that caused the change, outside any lock, so they may call back into b;
// they must be quick (log, count a metric). Two changes racing on different
// goroutines may be announced in either order.
func (b *Breakers) OnChange(fn func(id string, from, to State)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var fns []func(string, State, State)
	if old := b.onChange.Load(); old != nil {
		fns = append(fns, *old...)
	}
	fns = append(fns, fn)
	b.onChange.Store(&fns)
}

// Allow reports whether an attempt may go to deployment id now; it does not
// wait. Closed admits. Open refuses until Cooldown has passed since it
// opened, then turns half-open. HalfOpen admits exactly one probe at a time
// and refuses the rest until the probe is reported. A probe not reported
// within Cooldown is presumed lost (a caller that forgot to Report), and its
// slot is given to the next caller, so a breaker cannot stay stuck.
//
// Every attempt Allow admits must be followed by exactly one Report.
func (b *Breakers) Allow(id string) bool {
	br := b.lookup(id)
	if br == nil || State(br.state.Load()) == Closed {
		return true
	}
	ok, tr, changed := br.allow(b.now(), b.cfg.Load())
	if changed {
		b.announce(id, tr)
	}
	return ok
}

// Available reports, without changing anything, whether Allow would admit an
// attempt to id now: the breaker is closed, or it is open with its cool-down
// over, or half-open with its probe slot free. It suits the healthy function
// of Balancer.Order, so that a deployment whose cool-down is over gets
// picked again and probed even when the others are fine.
func (b *Breakers) Available(id string) bool {
	br := b.lookup(id)
	if br == nil || State(br.state.Load()) == Closed {
		return true
	}
	now, cfg := b.now(), b.cfg.Load()
	br.mu.Lock()
	defer br.mu.Unlock()
	switch br.st {
	case Open:
		return now.Sub(br.openedAt) >= cfg.Cooldown
	case HalfOpen:
		return !br.probing || now.Sub(br.probeAt) >= cfg.Cooldown
	}
	return true
}

// Report records the outcome of an attempt that Allow admitted.
//
// Closed: Success resets the consecutive count; Failure opens the breaker
// after Failures in a row, or when failures are more than ErrorRate of the
// outcomes in the sliding Window and there are at least MinRequests of
// them. HalfOpen: the report is taken as the probe's; Success closes (with
// fresh counts), Failure re-opens and restarts the cool-down, Ignored frees
// the probe slot. Open: the report is of an attempt admitted before it
// opened, and is dropped. Ignored never changes counts or state.
func (b *Breakers) Report(id string, o Outcome) {
	if o == Ignored {
		// Only a half-open probe needs to hear about it.
		if br := b.lookup(id); br != nil && State(br.state.Load()) == HalfOpen {
			br.mu.Lock()
			if br.st == HalfOpen {
				br.probing = false
			}
			br.mu.Unlock()
		}
		return
	}
	br := b.lookup(id)
	if br == nil {
		br = b.create(id)
	}
	tr, changed := br.report(o, b.now(), b.base, b.cfg.Load())
	if changed {
		b.announce(id, tr)
	}
}

// State returns the state of id's breaker as last changed by Allow or
// Report; an unknown id is Closed. An Open breaker whose cool-down is over
// reads Open until the next Allow turns it half-open; use Available to ask
// whether it would admit.
func (b *Breakers) State(id string) State {
	if br := b.lookup(id); br != nil {
		return State(br.state.Load())
	}
	return Closed
}

func (b *Breakers) lookup(id string) *breaker {
	return (*b.m.Load())[id]
}

// create adds a closed breaker for id, copying the map so readers stay
// lock-free. IDs are few and fixed by configuration, so copies are rare.
func (b *Breakers) create(id string) *breaker {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.m.Load()
	if br, ok := old[id]; ok {
		return br
	}
	m := make(map[string]*breaker, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	br := &breaker{}
	m[id] = br
	b.m.Store(&m)
	return br
}

func (b *Breakers) announce(id string, tr transition) {
	fns := b.onChange.Load()
	if fns == nil {
		return
	}
	for _, fn := range *fns {
		fn(id, tr.from, tr.to)
	}
}

// allow is Allow's slow path, for a breaker that is not closed.
func (br *breaker) allow(now time.Time, cfg *config.Breaker) (ok bool, tr transition, changed bool) {
	br.mu.Lock()
	defer br.mu.Unlock()
	switch br.st {
	case Closed:
		return true, tr, false // closed since the atomic load
	case Open:
		if now.Sub(br.openedAt) < cfg.Cooldown {
			return false, tr, false
		}
		tr, changed = br.setLocked(HalfOpen), true
		br.probing, br.probeAt = true, now
		return true, tr, changed
	default: // HalfOpen
		if br.probing && now.Sub(br.probeAt) < cfg.Cooldown {
			return false, tr, false
		}
		br.probing, br.probeAt = true, now
		return true, tr, false
	}
}

func (br *breaker) report(o Outcome, now, base time.Time, cfg *config.Breaker) (tr transition, changed bool) {
	br.mu.Lock()
	defer br.mu.Unlock()
	switch br.st {
	case Open:
		return tr, false
	case HalfOpen:
		if !br.probing {
			return tr, false // no probe out: a late report from before it opened
		}
		br.probing = false
		if o == Success {
			br.resetCountsLocked()
			return br.setLocked(Closed), true
		}
		br.openedAt = now
		return br.setLocked(Open), true
	}
	// Closed.
	fail := br.recordLocked(o == Failure, now, base, cfg.Window)
	if o == Success {
		br.consecutive = 0
		return tr, false
	}
	br.consecutive++
	if br.consecutive >= cfg.Failures || br.rateExceededLocked(fail, cfg) {
		br.openedAt = now
		return br.setLocked(Open), true
	}
	return tr, false
}

// recordLocked counts one outcome in the current bucket and returns the
// bucket number it used.
func (br *breaker) recordLocked(failed bool, now, base time.Time, window time.Duration) int64 {
	width := max(window/windowBuckets, 1)
	if width != br.width {
		br.width = width
		br.buckets = [windowBuckets]bucket{}
	}
	n := int64(max(now.Sub(base), 0) / width)
	bk := &br.buckets[n%windowBuckets]
	if bk.n != n {
		*bk = bucket{n: n}
	}
	if failed {
		bk.fail++
	} else {
		bk.ok++
	}
	return n
}

// rateExceededLocked reports whether failures are more than cfg.ErrorRate of
// at least cfg.MinRequests outcomes in the window ending at bucket cur.
func (br *breaker) rateExceededLocked(cur int64, cfg *config.Breaker) bool {
	var ok, fail int64
	for _, bk := range br.buckets {
		if bk.n > cur-windowBuckets && bk.n <= cur {
			ok += int64(bk.ok)
			fail += int64(bk.fail)
		}
	}
	total := ok + fail
	return total >= int64(cfg.MinRequests) && float64(fail) > cfg.ErrorRate*float64(total)
}

func (br *breaker) resetCountsLocked() {
	br.consecutive = 0
	br.buckets = [windowBuckets]bucket{}
}

func (br *breaker) setLocked(to State) transition {
	tr := transition{from: br.st, to: to}
	br.st = to
	br.state.Store(int32(to))
	return tr
}
