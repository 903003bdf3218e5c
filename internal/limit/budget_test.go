package limit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

func scope(id string, limit meter.Nanos, period string) Scope {
	return Scope{ID: id, Budget: tenant.Budget{Limit: limit, Period: period}}
}

// usage calls Usage and fails the test on an error.
func usage(t *testing.T, b *Budgets, s Scope) (spent, reserved meter.Nanos) {
	t.Helper()
	spent, reserved, _, err := b.Usage(context.Background(), s)
	if err != nil {
		t.Fatalf("Usage(%s): %v", s.ID, err)
	}
	return spent, reserved
}

// reserve calls Reserve and fails the test on an error.
func reserve(t *testing.T, b *Budgets, scopes []Scope, amount meter.Nanos) *Reservation {
	t.Helper()
	r, err := b.Reserve(context.Background(), scopes, amount)
	if err != nil {
		t.Fatalf("Reserve(%v, %d): %v", scopes, amount, err)
	}
	return r
}

// exceeded calls Reserve and fails the test unless it is refused by the
// scope named want.
func exceeded(t *testing.T, b *Budgets, scopes []Scope, amount meter.Nanos, want string) *ExceededError {
	t.Helper()
	r, err := b.Reserve(context.Background(), scopes, amount)
	ee, ok := errors.AsType[*ExceededError](err)
	if !ok || ee.Scope != want {
		t.Fatalf("Reserve(%v, %d) = %v, %v; want an *ExceededError for %s", scopes, amount, r, err, want)
	}
	return ee
}

// TestReserveNeverOvershoots is the contract: 200 concurrent requests of
// at most 1,000 each against a limit of 20,000, settling at random actual
// costs, never spend past the limit.
func TestReserveNeverOvershoots(t *testing.T) {
	for _, settleBeforeAll := range []bool{false, true} {
		t.Run(fmt.Sprintf("settle-while-others-reserve=%v", !settleBeforeAll), func(t *testing.T) {
			b := NewBudgets(newClock(t0).now, nil)
			team := scope("team:t", 20_000, tenant.PeriodMonthly)
			key := scope("key:k", 1_000_000, tenant.PeriodDaily)
			var (
				admitted, refused, settled atomic.Int64
				total                      atomic.Int64 // sum of actual costs settled
				wg                         sync.WaitGroup
				reserved                   sync.WaitGroup // every goroutine has tried to reserve
			)
			start := make(chan struct{})
			reserved.Add(200)
			for i := range 200 {
				wg.Go(func() {
					<-start
					r, err := b.Reserve(context.Background(), []Scope{key, team}, 1_000)
					reserved.Done()
					if _, ok := errors.AsType[*ExceededError](err); ok {
						refused.Add(1)
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					admitted.Add(1)
					if settleBeforeAll {
						reserved.Wait()
					}
					actual := meter.Nanos(rand.N(1_001))
					if i%10 == 0 {
						actual = 1_000
					}
					total.Add(int64(actual))
					settled.Add(1)
					r.Settle(actual)
				})
			}
			close(start)
			wg.Wait()
			if admitted.Load()+refused.Load() != 200 || settled.Load() != admitted.Load() {
				t.Fatalf("%d admitted, %d refused, %d settled of 200", admitted.Load(), refused.Load(), settled.Load())
			}
			if total.Load() > 20_000 {
				t.Fatalf("settled %d against a limit of 20000", total.Load())
			}
			if settleBeforeAll && admitted.Load() != 20 {
				t.Errorf("%d admitted with every reservation held, want exactly 20", admitted.Load())
			}
			for _, s := range []Scope{key, team} {
				if spent, res := usage(t, b, s); spent != meter.Nanos(total.Load()) || res != 0 {
					t.Errorf("%s: spent %d reserved %d, want %d and 0", s.ID, spent, res, total.Load())
				}
			}
			t.Logf("%d admitted, %d refused, %d settled", admitted.Load(), refused.Load(), total.Load())
		})
	}
}

func TestReserveKeyAndTeam(t *testing.T) {
	b := NewBudgets(newClock(t0).now, nil)
	team := scope("team:t", 10_000, tenant.PeriodMonthly)
	keyA := scope("key:a", 3_000, tenant.PeriodDaily)
	keyB := scope("key:b", 100_000, tenant.PeriodDaily)

	// The key's limit is hit while the team has room.
	reserve(t, b, []Scope{keyA, team}, 2_000).Settle(2_000)
	ee := exceeded(t, b, []Scope{keyA, team}, 1_500, "key:a")
	want := ExceededError{Scope: "key:a", Limit: 3_000, Spent: 2_000, Reserved: 0, Requested: 1_500}
	if *ee != want {
		t.Errorf("refusal %+v, want %+v", *ee, want)
	}
	if spent, res := usage(t, b, team); spent != 2_000 || res != 0 {
		t.Errorf("team after the key's refusal: spent %d reserved %d, want 2000 and 0", spent, res)
	}

	// The team's limit is hit while the key has room; the key is untouched.
	held := reserve(t, b, []Scope{keyB, team}, 7_000)
	exceeded(t, b, []Scope{keyB, team}, 1_001, "team:t")
	if spent, res := usage(t, b, keyB); spent != 0 || res != 7_000 {
		t.Errorf("key b after the team's refusal: spent %d reserved %d, want 0 and 7000", spent, res)
	}
	reserve(t, b, []Scope{keyB, team}, 1_000).Release() // exactly at the limit fits
	// The first scope in the given order that does not fit is named.
	exceeded(t, b, []Scope{team, keyA}, 5_000, "team:t")
	exceeded(t, b, []Scope{keyA, team}, 5_000, "key:a")

	held.Settle(500)
	if spent, res := usage(t, b, team); spent != 2_500 || res != 0 {
		t.Errorf("team at the end: spent %d reserved %d, want 2500 and 0", spent, res)
	}
}

func TestReleaseAndSettleOnce(t *testing.T) {
	b := NewBudgets(newClock(t0).now, nil)
	s := scope("team:t", 1_000, tenant.PeriodNone)
	r := reserve(t, b, []Scope{s}, 1_000)
	exceeded(t, b, []Scope{s}, 1, "team:t")
	r.Release()
	r.Release()
	r.Settle(1_000)
	if spent, res := usage(t, b, s); spent != 0 || res != 0 {
		t.Fatalf("after Release: spent %d reserved %d, want 0 and 0", spent, res)
	}
	r = reserve(t, b, []Scope{s}, 1_000) // the money came back
	r.Settle(300)
	r.Settle(300)
	r.Release()
	if spent, res := usage(t, b, s); spent != 300 || res != 0 {
		t.Fatalf("after Settle twice and Release: spent %d reserved %d, want 300 and 0", spent, res)
	}
	var none *Reservation
	none.Settle(1) // a nil reservation does nothing
	none.Release()
}

// TestSettleAboveReservation: a wrong estimate is real spend; it is
// recorded and refuses what follows.
func TestSettleAboveReservation(t *testing.T) {
	b := NewBudgets(newClock(t0).now, nil)
	s := scope("key:k", 1_000, tenant.PeriodDaily)
	reserve(t, b, []Scope{s}, 500).Settle(1_200)
	spent, res, frac, err := b.Usage(context.Background(), s)
	if err != nil || spent != 1_200 || res != 0 || frac != 1.2 {
		t.Fatalf("Usage = %d, %d, %v, %v; want 1200, 0, 1.2", spent, res, frac, err)
	}
	exceeded(t, b, []Scope{s}, 0, "key:k")
	other := scope("key:other", 1_000, tenant.PeriodDaily)
	reserve(t, b, []Scope{other}, 100).Settle(-5) // a negative actual counts as zero
	if spent, res := usage(t, b, other); spent != 0 || res != 0 {
		t.Fatalf("after a negative Settle: spent %d reserved %d, want 0 and 0", spent, res)
	}
}

func TestUsageFraction(t *testing.T) {
	ld := &loads{spend: map[string]meter.Nanos{"team:t 2026-03-01T00:00:00Z": 250}}
	b := NewBudgets(newClock(t0).now, ld.load)
	s := scope("team:t", 1_000, tenant.PeriodMonthly)
	reserve(t, b, []Scope{s}, 250)
	spent, res, frac, err := b.Usage(context.Background(), s)
	if err != nil || spent != 250 || res != 250 || frac != 0.5 {
		t.Fatalf("Usage = %d, %d, %v, %v; want 250, 250, 0.5", spent, res, frac, err)
	}
	zero := scope("team:z", 0, tenant.PeriodMonthly)
	if _, _, frac, _ := b.Usage(context.Background(), zero); frac != 1 {
		t.Errorf("fraction of a zero limit: %v, want 1", frac)
	}
	reserve(t, b, []Scope{zero}, 0) // nothing fits but nothing
	exceeded(t, b, []Scope{zero}, 1, "team:z")
}

// loads records the calls of a load function and answers from spend.
type loads struct {
	mu    sync.Mutex // guards calls
	calls []string
	spend map[string]meter.Nanos // by "scope since-date"
}

func (l *loads) load(_ context.Context, id string, since time.Time) (meter.Nanos, error) {
	k := id + " " + since.Format(time.RFC3339)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, k)
	return l.spend[k], nil
}

func (l *loads) called() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

func TestPeriodRollOver(t *testing.T) {
	for _, tc := range []struct {
		period      string
		at, next    time.Time // an instant late in a period; the start of the next
		start       time.Time // the start of at's period
		nextPeriods int       // loads expected: 2, or 1 when the period never ends
	}{
		{tenant.PeriodDaily, date(2026, 1, 31, 23, 59, 59), date(2026, 2, 1, 0, 0, 0), date(2026, 1, 31, 0, 0, 0), 2},
		{tenant.PeriodDaily, date(2024, 2, 28, 23, 0, 0), date(2024, 2, 29, 0, 0, 0), date(2024, 2, 28, 0, 0, 0), 2},
		{tenant.PeriodWeekly, date(2026, 3, 1, 23, 59, 59), date(2026, 3, 2, 0, 0, 0), date(2026, 2, 23, 0, 0, 0), 2},    // Sunday → Monday
		{tenant.PeriodWeekly, date(2025, 12, 31, 12, 0, 0), date(2026, 1, 5, 0, 0, 0), date(2025, 12, 29, 0, 0, 0), 2},   // across a year
		{tenant.PeriodMonthly, date(2026, 1, 31, 23, 59, 59), date(2026, 2, 1, 0, 0, 0), date(2026, 1, 1, 0, 0, 0), 2},   // 31 days
		{tenant.PeriodMonthly, date(2024, 2, 29, 23, 59, 59), date(2024, 3, 1, 0, 0, 0), date(2024, 2, 1, 0, 0, 0), 2},   // leap February
		{tenant.PeriodMonthly, date(2026, 4, 30, 23, 59, 59), date(2026, 5, 1, 0, 0, 0), date(2026, 4, 1, 0, 0, 0), 2},   // 30 days
		{tenant.PeriodMonthly, date(2025, 12, 31, 23, 59, 59), date(2026, 1, 1, 0, 0, 0), date(2025, 12, 1, 0, 0, 0), 2}, // year end
		{tenant.PeriodNone, date(2025, 12, 31, 23, 59, 59), date(2026, 1, 1, 0, 0, 0), time.Time{}, 1},
	} {
		t.Run(tc.period+" "+tc.at.Format(time.DateOnly), func(t *testing.T) {
			c := newClock(tc.at)
			ld := &loads{spend: map[string]meter.Nanos{
				"team:t " + tc.start.Format(time.RFC3339): 4_000,
				"team:t " + tc.next.Format(time.RFC3339):  100,
			}}
			b := NewBudgets(c.now, ld.load)
			s := scope("team:t", 10_000, tc.period)

			straddler := reserve(t, b, []Scope{s}, 5_000) // in flight across the boundary
			reserve(t, b, []Scope{s}, 1_000).Settle(1_000)
			exceeded(t, b, []Scope{s}, 1, "team:t") // 4000 loaded + 1000 + 5000 held
			c.set(tc.next.Add(-time.Nanosecond))
			exceeded(t, b, []Scope{s}, 1, "team:t") // the last instant is still the old period

			c.set(tc.next)
			spent, res := usage(t, b, s)
			if tc.nextPeriods == 1 {
				if spent != 5_000 || res != 5_000 {
					t.Fatalf("no period: spent %d reserved %d, want 5000 and 5000", spent, res)
				}
				if got := ld.called(); len(got) != 1 {
					t.Fatalf("loads %q, want one", got)
				}
				return
			}
			if spent != 100 || res != 0 {
				t.Fatalf("new period: spent %d reserved %d, want 100 (loaded) and 0", spent, res)
			}
			straddler.Settle(4_000) // charged to the old period: the new one is untouched
			reserve(t, b, []Scope{s}, 9_900).Settle(9_900)
			exceeded(t, b, []Scope{s}, 1, "team:t")
			if spent, res := usage(t, b, s); spent != 10_000 || res != 0 {
				t.Fatalf("new period at the end: spent %d reserved %d, want 10000 and 0", spent, res)
			}
			want := []string{"team:t " + tc.start.Format(time.RFC3339), "team:t " + tc.next.Format(time.RFC3339)}
			if got := ld.called(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("loads %q, want %q (once per scope and period)", got, want)
			}
		})
	}
}

// TestClockStepsBack: a clock that steps back over a boundary keeps the
// current period rather than reloading the old one.
func TestClockStepsBack(t *testing.T) {
	c := newClock(date(2026, 3, 2, 0, 0, 1))
	ld := &loads{}
	b := NewBudgets(c.now, ld.load)
	s := scope("key:k", 1_000, tenant.PeriodDaily)
	reserve(t, b, []Scope{s}, 600).Settle(600)
	c.add(-2 * time.Second)
	exceeded(t, b, []Scope{s}, 500, "key:k")
	if got := ld.called(); len(got) != 1 {
		t.Fatalf("loads %q, want one", got)
	}
}

// TestLoadOncePerScopeAndPeriod: concurrent first requests of a scope wait
// for one load, and no lock is held while it runs.
func TestLoadOncePerScopeAndPeriod(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	load := func(_ context.Context, id string, _ time.Time) (meter.Nanos, error) {
		calls.Add(1)
		if id == "team:slow" {
			<-release
		}
		return 1_000, nil
	}
	b := NewBudgets(newClock(t0).now, load)
	slow := scope("team:slow", 10_000, tenant.PeriodMonthly)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := b.Reserve(context.Background(), []Scope{slow}, 100); err != nil {
				t.Error(err)
			}
		})
	}
	// Another scope loads and reserves while the slow one is loading.
	fast := scope("team:fast", 10_000, tenant.PeriodMonthly)
	reserve(t, b, []Scope{fast}, 100)
	close(release)
	wg.Wait()
	if calls.Load() != 2 {
		t.Fatalf("load called %d times for 2 scopes, want 2", calls.Load())
	}
	if spent, res := usage(t, b, slow); spent != 1_000 || res != 5_000 {
		t.Fatalf("slow scope: spent %d reserved %d, want 1000 (loaded) and 5000", spent, res)
	}
}

func TestLoadError(t *testing.T) {
	fail := errors.New("ledger down")
	var calls atomic.Int64
	b := NewBudgets(newClock(t0).now, func(context.Context, string, time.Time) (meter.Nanos, error) {
		if calls.Add(1) == 1 {
			return 0, fail
		}
		return 0, nil
	})
	s := scope("team:t", 1_000, tenant.PeriodDaily)
	if _, err := b.Reserve(context.Background(), []Scope{s}, 1); !errors.Is(err, fail) {
		t.Fatalf("Reserve with a failing load: %v, want %v", err, fail)
	}
	reserve(t, b, []Scope{s}, 1) // the next call loads again
	if calls.Load() != 2 {
		t.Fatalf("load called %d times, want 2", calls.Load())
	}
}

// TestLoadWaitCanceled: a request waiting for another's load leaves when
// its context ends.
func TestLoadWaitCanceled(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	b := NewBudgets(newClock(t0).now, func(context.Context, string, time.Time) (meter.Nanos, error) {
		close(started)
		<-release
		return 0, nil
	})
	s := scope("team:t", 1_000, tenant.PeriodDaily)
	var wg sync.WaitGroup
	wg.Go(func() { reserve(t, b, []Scope{s}, 1) })
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Reserve(ctx, []Scope{s}, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Reserve with a canceled context during another's load: %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
}

// TestLoadPanics: a panicking load leaves no waiter stuck and no counter
// filled.
func TestLoadPanics(t *testing.T) {
	var calls atomic.Int64
	b := NewBudgets(newClock(t0).now, func(context.Context, string, time.Time) (meter.Nanos, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return 700, nil
	})
	s := scope("team:t", 1_000, tenant.PeriodDaily)
	func() {
		defer func() { recover() }()
		b.Reserve(context.Background(), []Scope{s}, 1)
	}()
	exceeded(t, b, []Scope{s}, 301, "team:t")
}

func TestReserveInvalid(t *testing.T) {
	b := NewBudgets(nil, nil)
	ok := scope("team:t", 1, tenant.PeriodDaily)
	for _, tc := range []struct {
		name   string
		scopes []Scope
		amount meter.Nanos
	}{
		{"negative amount", []Scope{ok}, -1},
		{"no ID", []Scope{scope("", 1, tenant.PeriodDaily)}, 0},
		{"empty period", []Scope{scope("team:t", 1, "")}, 0},
		{"unknown period", []Scope{scope("team:t", 1, "yearly")}, 0},
		{"negative limit", []Scope{scope("team:t", -1, tenant.PeriodDaily)}, 0},
		{"twice", []Scope{ok, ok}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := b.Reserve(context.Background(), tc.scopes, tc.amount)
			if err == nil {
				t.Fatalf("Reserve(%v, %d) = %v, want an error", tc.scopes, tc.amount, r)
			}
			if _, ok := errors.AsType[*ExceededError](err); ok {
				t.Fatalf("Reserve(%v, %d): %v, want an input error, not a refusal", tc.scopes, tc.amount, err)
			}
		})
	}
	if r := reserve(t, b, nil, 5); r == nil {
		t.Fatal("Reserve with no scopes returned nil")
	}
}

// TestPruneEndedPeriods: accounts of ended periods are dropped as new ones
// arrive, and a dropped scope starts again from load.
func TestPruneEndedPeriods(t *testing.T) {
	c := newClock(date(2026, 3, 2, 12, 0, 0))
	var calls atomic.Int64
	b := NewBudgets(c.now, func(context.Context, string, time.Time) (meter.Nanos, error) {
		calls.Add(1)
		return 10, nil
	})
	forever := scope("team:forever", 1_000, tenant.PeriodNone)
	held := reserve(t, b, []Scope{forever}, 500)
	for i := range minPrune {
		reserve(t, b, []Scope{scope(fmt.Sprintf("key:%d", i), 1_000, tenant.PeriodDaily)}, 1)
	}
	// The map doubled past minPrune on the first day, with nothing ended:
	// the next prune waits for twice as many.
	c.add(24 * time.Hour)
	for i := range 2 * minPrune {
		reserve(t, b, []Scope{scope(fmt.Sprintf("key:new%d", i), 1_000, tenant.PeriodDaily)}, 1)
	}
	if n := b.n.Load(); n != 1+2*minPrune {
		t.Fatalf("%d accounts after a day of %d new keys, want %d: yesterday's dropped", n, 2*minPrune, 1+2*minPrune)
	}
	if spent, res := usage(t, b, forever); spent != 10 || res != 500 {
		t.Fatalf("a none-period account: spent %d reserved %d, want it kept (10, 500)", spent, res)
	}
	before := calls.Load()
	old := scope("key:0", 1_000, tenant.PeriodDaily)
	if spent, res := usage(t, b, old); spent != 10 || res != 0 {
		t.Fatalf("a dropped key: spent %d reserved %d, want 10 (loaded again) and 0", spent, res)
	}
	if calls.Load() != before+1 {
		t.Fatalf("load calls went from %d to %d for a dropped key, want one more", before, calls.Load())
	}
	held.Settle(500)
}

func BenchmarkReserveSettle2Scopes(b *testing.B) {
	key := scope("key:key_123", 1<<62, tenant.PeriodDaily)
	team := scope("team:team_9", 1<<62, tenant.PeriodMonthly)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		bs := NewBudgets(time.Now, nil)
		for b.Loop() {
			r, err := bs.Reserve(ctx, []Scope{key, team}, 1_000)
			if err != nil {
				b.Fatal(err)
			}
			r.Settle(900)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		bs := NewBudgets(time.Now, nil)
		b.RunParallel(func(pb *testing.PB) {
			scopes := []Scope{key, team}
			for pb.Next() {
				r, err := bs.Reserve(ctx, scopes, 1_000)
				if err != nil {
					b.Fatal(err)
				}
				r.Settle(900)
			}
		})
	})
	b.Run("parallel-distinct-keys", func(b *testing.B) {
		bs := NewBudgets(time.Now, nil)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			scopes := []Scope{scope(fmt.Sprintf("key:%d", n.Add(1)), 1<<62, tenant.PeriodDaily), team}
			for pb.Next() {
				r, err := bs.Reserve(ctx, scopes, 1_000)
				if err != nil {
					b.Fatal(err)
				}
				r.Settle(900)
			}
		})
	})
}
