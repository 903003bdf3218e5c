package limit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// Scope is one budget that applies to a request: ID names its counter
// ("team:team_9" or "key:key_123"), Budget its limit and period. The limit
// is read at every call, so a changed limit applies at once; a changed
// period starts the counter again from the ledger.
type Scope struct {
	ID     string
	Budget tenant.Budget
}

// ExceededError is Reserve's refusal: Requested does not fit in Scope's
// budget, of which Spent is spent and Reserved held by requests in flight.
type ExceededError struct {
	Scope                             string
	Limit, Spent, Reserved, Requested meter.Nanos
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("budget of %s exceeded: %s requested, %s spent and %s reserved of %s",
		e.Scope, e.Requested, e.Spent, e.Reserved, e.Limit)
}

// LoadFunc returns what scopeID has spent since the start of its current
// period (since), from the ledger. It must return a non-negative amount.
type LoadFunc func(ctx context.Context, scopeID string, since time.Time) (meter.Nanos, error)

// Budgets holds the spend and the outstanding reservations of every budget
// scope in its current period. It is safe for concurrent use.
//
// Each scope has its own mutex; Reserve takes the mutexes of all its
// scopes in ascending ID order, so it is atomic across them and two
// requests never wait on each other in a cycle. No lock is held across
// load: the first caller of a scope and period loads it while the others
// wait for that one load (or their own context).
//
// Period roll-over: when the clock passes the end of a scope's period, the
// next call loads the new period's spend and starts its reservations at
// zero. A Reservation remembers the period it was made in; settling it
// after the roll-over changes only that old period's (now discarded)
// counters, never the new one's: a request is charged to the period it was
// admitted in. The ledger should agree (record requests at their start), or
// a request straddling midnight counts in the new period after a restart.
//
// Memory: one account (about 200 bytes) per scope that has reserved or
// been asked for, so bounded by the number of keys and teams, which only an
// administrator creates. Accounts of ended periods are dropped whenever
// their number doubles (amortised O(1)); "none"-period accounts stay.
//
// The zero value is not usable; use NewBudgets.
type Budgets struct {
	now  func() time.Time
	load LoadFunc

	accounts sync.Map     // scope ID → *account
	n        atomic.Int64 // accounts in the map
	pruneAt  atomic.Int64 // prune when n passes it
	pruning  atomic.Bool  // a prune is running
}

// minPrune is the number of accounts below which none are dropped.
const minPrune = 4096

// account is one scope's counters for one period.
type account struct {
	id string

	mu       sync.Mutex    // guards everything below
	dead     bool          // dropped from the map: look the scope up again
	loaded   bool          // spent, period, start and end are valid
	loading  chan struct{} // non-nil while a load runs; closed when it ends
	period   string
	start    time.Time // start of the period counted
	end      time.Time // start of the next period; zero: never
	gen      uint64    // incremented at every load; a Reservation holds the one it was made in
	spent    meter.Nanos
	reserved meter.Nanos
}

// NewBudgets returns budgets that read time from now (nil: time.Now) and,
// once per scope and period, the spend already recorded from load (nil:
// every period starts at zero).
func NewBudgets(now func() time.Time, load LoadFunc) *Budgets {
	if now == nil {
		now = time.Now
	}
	b := &Budgets{now: now, load: load}
	b.pruneAt.Store(minPrune)
	return b
}

// Reservation is an amount held against one or more budgets until the
// request ends. Exactly one of Settle and Release takes effect, once; later
// calls, and calls on a nil Reservation, do nothing. Safe for concurrent
// use.
type Reservation struct {
	done   atomic.Bool
	amount meter.Nanos
	holds  []hold
	inline [2]hold // backing of holds for up to two scopes
}

// hold is a reservation's part in one account, in the period (gen) it was
// made in.
type hold struct {
	a   *account
	gen uint64
}

// maxAttempts bounds Reserve's attempts: one more after loading a scope,
// and retries when scopes change under it (an account dropped, or reloaded
// for another period by a concurrent config change).
const maxAttempts = 8

// Reserve holds amount against every scope at once: if spent + reserved +
// amount ≤ limit for each scope, it reserves amount in all of them;
// otherwise it touches none and returns an *ExceededError for the first
// scope (in the order given) that does not fit. Other errors come from
// load, ctx, or invalid input (an empty or repeated ID, an unknown period,
// a negative amount or limit).
//
// Contract for every backend: the check and the reservation are one atomic
// step across all the scopes, whatever the concurrency; a scope's period is
// the one containing the clock at the call.
func (b *Budgets) Reserve(ctx context.Context, scopes []Scope, amount meter.Nanos) (*Reservation, error) {
	if err := checkScopes(scopes, amount); err != nil {
		return nil, err
	}
	r := &Reservation{amount: amount}
	r.holds = r.inline[:0]
	for range maxAttempts {
		now := b.now()
		r.holds = r.holds[:0]
		for _, s := range scopes {
			r.holds = append(r.holds, hold{a: b.account(s.ID, now)})
		}
		again, err := b.reserve(scopes, r, now)
		if !again {
			if err != nil {
				return nil, err
			}
			return r, nil
		}
		// Some account is not loaded for this period (or was dropped):
		// load it, without any lock, and try again.
		for _, s := range scopes {
			if _, err := b.current(ctx, s, now); err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("reserve budget of %s: its period keeps changing", scopes[0].ID)
}

// reserve checks and reserves under the locks of all r's accounts; again
// reports that one is not loaded for the period containing now, or was
// dropped.
func (b *Budgets) reserve(scopes []Scope, r *Reservation, now time.Time) (again bool, err error) {
	var obuf [4]int
	order := lockOrder(scopes, obuf[:0])
	for _, i := range order {
		r.holds[i].a.mu.Lock()
	}
	defer func() {
		for _, i := range order {
			r.holds[i].a.mu.Unlock()
		}
	}()
	for i, s := range scopes {
		if a := r.holds[i].a; a.dead || !a.currentLocked(s.Budget.Period, now) {
			return true, nil
		}
	}
	for i, s := range scopes {
		a := r.holds[i].a
		if r.amount > s.Budget.Limit-a.spent-a.reserved {
			return false, &ExceededError{Scope: s.ID, Limit: s.Budget.Limit, Spent: a.spent, Reserved: a.reserved,
				Requested: r.amount}
		}
	}
	for i := range r.holds {
		a := r.holds[i].a
		a.reserved += r.amount
		r.holds[i].gen = a.gen
	}
	return false, nil
}

// Settle replaces the reservation with actual, the request's real cost,
// in every scope of its period. An actual above the amount reserved (a
// wrong estimate) is recorded anyway: it is real spend, and it refuses the
// requests that follow. A negative actual counts as zero.
func (r *Reservation) Settle(actual meter.Nanos) { r.finish(max(actual, 0)) }

// Release gives the whole reservation back: nothing was spent.
func (r *Reservation) Release() { r.finish(0) }

func (r *Reservation) finish(actual meter.Nanos) {
	if r == nil || !r.done.CompareAndSwap(false, true) {
		return
	}
	for _, h := range r.holds {
		h.a.mu.Lock()
		if h.a.gen == h.gen {
			h.a.reserved -= r.amount
			h.a.spent += actual
		}
		h.a.mu.Unlock()
	}
}

// Usage reports what s has spent and holds reserved in its current period
// (loading the period first if needed), and fraction, the share of the
// limit committed: (spent + reserved) / limit, 1 or more past it, 1 for a
// zero limit. Reservations count because they are money already promised:
// a burst of requests moves a team to a cheaper tier before it is billed.
func (b *Budgets) Usage(ctx context.Context, s Scope) (spent, reserved meter.Nanos, fraction float64, err error) {
	if err := checkScopes([]Scope{s}, 0); err != nil {
		return 0, 0, 0, err
	}
	for range maxAttempts {
		now := b.now()
		a, err := b.current(ctx, s, now)
		if err != nil {
			return 0, 0, 0, err
		}
		a.mu.Lock()
		ok := !a.dead && a.currentLocked(s.Budget.Period, now)
		spent, reserved = a.spent, a.reserved
		a.mu.Unlock()
		if ok {
			return spent, reserved, committed(spent+reserved, s.Budget.Limit), nil
		}
	}
	return 0, 0, 0, fmt.Errorf("usage of budget %s: its period keeps changing", s.ID)
}

func committed(used, limit meter.Nanos) float64 {
	if limit <= 0 {
		return 1
	}
	return float64(used) / float64(limit)
}

// current returns s's account, loaded for the period of s containing now.
func (b *Budgets) current(ctx context.Context, s Scope, now time.Time) (*account, error) {
	for {
		a := b.account(s.ID, now)
		a.mu.Lock()
		if a.dead {
			a.mu.Unlock()
			continue
		}
		if a.currentLocked(s.Budget.Period, now) {
			a.mu.Unlock()
			return a, nil
		}
		if ch := a.loading; ch != nil {
			a.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for the spend of %s: %w", s.ID, ctx.Err())
			}
		}
		ch := make(chan struct{})
		a.loading = ch
		a.mu.Unlock()
		if err := b.fill(ctx, a, s.Budget.Period, now, ch); err != nil {
			return nil, err
		}
	}
}

// fill loads a's spend for the period containing now, with a.loading set
// to ch, and without a's lock. The waiters retry whatever happens, even a
// panic in load.
func (b *Budgets) fill(ctx context.Context, a *account, period string, now time.Time, ch chan struct{}) error {
	start := PeriodStart(period, now)
	var spent meter.Nanos
	ok := false
	defer func() {
		a.mu.Lock()
		if ok {
			a.loaded, a.period, a.start, a.end = true, period, start, periodEnd(period, start)
			a.spent, a.reserved = spent, 0
			a.gen++
		}
		a.loading = nil
		a.mu.Unlock()
		close(ch)
	}()
	if b.load != nil {
		var err error
		if spent, err = b.load(ctx, a.id, start); err != nil {
			return fmt.Errorf("load spend of %s since %s: %w", a.id, start.Format(time.DateOnly), err)
		}
		if spent < 0 {
			return fmt.Errorf("load spend of %s: negative amount %d", a.id, spent)
		}
	}
	ok = true
	return nil
}

// currentLocked reports whether a counts period at now. A clock that steps
// back into an earlier period keeps counting the current one.
func (a *account) currentLocked(period string, now time.Time) bool {
	return a.loaded && a.period == period && (a.end.IsZero() || now.Before(a.end))
}

// account returns the account of id, creating it.
func (b *Budgets) account(id string, now time.Time) *account {
	if v, ok := b.accounts.Load(id); ok {
		return v.(*account)
	}
	v, loaded := b.accounts.LoadOrStore(id, &account{id: id})
	if !loaded && b.n.Add(1) > b.pruneAt.Load() {
		b.prune(now)
	}
	return v.(*account)
}

// prune drops the accounts whose period ended before now. They hold
// nothing the next period needs: it starts from load. Reservations still
// pointing at a dropped account settle into it harmlessly.
func (b *Budgets) prune(now time.Time) {
	if !b.pruning.CompareAndSwap(false, true) {
		return
	}
	defer b.pruning.Store(false)
	b.accounts.Range(func(k, v any) bool {
		a := v.(*account)
		a.mu.Lock()
		if a.loaded && a.loading == nil && !a.end.IsZero() && !now.Before(a.end) {
			a.dead = true
			b.accounts.CompareAndDelete(k, a)
			b.n.Add(-1)
		}
		a.mu.Unlock()
		return true
	})
	b.pruneAt.Store(max(2*b.n.Load(), minPrune))
}

func checkScopes(scopes []Scope, amount meter.Nanos) error {
	if amount < 0 {
		return fmt.Errorf("reserve a negative amount %d", amount)
	}
	for i, s := range scopes {
		if s.ID == "" {
			return errors.New("budget scope without an ID")
		}
		if err := checkPeriod(s.Budget.Period); err != nil {
			return fmt.Errorf("budget of %s: %w", s.ID, err)
		}
		if s.Budget.Limit < 0 {
			return fmt.Errorf("budget of %s: negative limit %d", s.ID, s.Budget.Limit)
		}
		for _, t := range scopes[:i] {
			if t.ID == s.ID {
				return fmt.Errorf("budget scope %s given twice", s.ID)
			}
		}
	}
	return nil
}

// lockOrder returns the indices of scopes in ascending ID order, appended
// to buf: the one order every Reserve locks in.
func lockOrder(scopes []Scope, buf []int) []int {
	for i := range scopes {
		j := len(buf)
		buf = append(buf, i)
		for ; j > 0 && scopes[buf[j-1]].ID > scopes[i].ID; j-- {
			buf[j] = buf[j-1]
		}
		buf[j] = i
	}
	return buf
}
