package meter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// fakeLedger is a LedgerStore that behaves as the real one does: a batch is
// one transaction (all or nothing), and a RequestID already stored is
// skipped. Hooks inject slowness and faults.
type fakeLedger struct {
	delay time.Duration // per call, honouring ctx
	// fail, if set, is asked before each call (numbered from 1); a non-nil
	// error fails the call. commitThenFail stores the batch before failing,
	// as a timed-out commit does.
	fail           func(call int) error
	commitThenFail bool
	panicOn        int           // call number that panics
	gate           chan struct{} // if set, calls wait until it is closed (or ctx ends)
	entered        chan struct{} // if set, receives a token on every call (non-blocking)

	mu      sync.Mutex // guards the fields below
	calls   int
	recs    map[string]Record
	batches [][]string // RequestIDs of every stored batch, in order
	dupes   int        // records skipped as already stored
}

var _ LedgerStore = (*fakeLedger)(nil)

func (f *fakeLedger) AppendUsage(ctx context.Context, recs []Record) error {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	if f.entered != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if call == f.panicOn {
		panic("fake store exploded")
	}
	var err error
	if f.fail != nil {
		err = f.fail(call)
	}
	if err != nil && !f.commitThenFail {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recs == nil {
		f.recs = make(map[string]Record)
	}
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.RequestID)
		if _, ok := f.recs[r.RequestID]; ok {
			f.dupes++
			continue
		}
		f.recs[r.RequestID] = r
	}
	f.batches = append(f.batches, ids)
	return err
}

func (f *fakeLedger) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.recs)
}

func (f *fakeLedger) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.recs[id]
	return ok
}

// ids returns the stored RequestIDs, sorted.
func (f *fakeLedger) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.recs))
}

func (f *fakeLedger) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// checkHas fails t unless the store holds exactly the records 0..n-1, equal
// to what testRecord made (after a JSON round trip when journalled).
func (f *fakeLedger) checkHas(t *testing.T, n int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.recs) != n {
		t.Errorf("store holds %d records, want %d", len(f.recs), n)
	}
	for i := range n {
		want := testRecord(i)
		got, ok := f.recs[want.RequestID]
		if !ok {
			t.Errorf("store lacks %s", want.RequestID)
			continue
		}
		if diff := gocmp.Diff(got, want); diff != "" {
			t.Errorf("store record %s mismatch (-got +want):\n%s", want.RequestID, diff)
			return
		}
	}
}

func testRecord(i int) Record {
	return Record{
		Time:         time.Unix(1_750_000_000, int64(i)).UTC(),
		RequestID:    fmt.Sprintf("req-%06d", i),
		TeamID:       "team-a",
		KeyID:        "key-1",
		Endpoint:     "/v1/chat/completions",
		ServedModel:  "gpt-4o-mini",
		Provider:     "openai",
		Attempts:     1,
		PromptTokens: i,
		Completion:   2 * i,
		Cost:         Nanos(i * 1000),
		Latency:      time.Duration(i) * time.Millisecond,
		Status:       200,
	}
}

// seq is the i of a testRecord's RequestID.
func seq(t *testing.T, id string) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(id, "req-%d", &i); err != nil {
		t.Fatalf("bad request id %q: %v", id, err)
	}
	return i
}

// checkNoLeak fails the test if it leaves more goroutines than it found.
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(),
					buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// newTestWriter makes a Writer with fast retries and checks, when the test
// ends, that its goroutine has exited (Close must have been called).
func newTestWriter(t *testing.T, st LedgerStore, opts WriterOptions) *Writer {
	t.Helper()
	opts.retryMin = cmp.Or(opts.retryMin, 2*time.Millisecond)
	opts.retryMax = cmp.Or(opts.retryMax, 20*time.Millisecond)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	}
	w, err := NewWriter(st, opts)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			t.Errorf("writer goroutine still running at the end of the test")
			w.Close(canceledContext())
		}
	})
	return w
}

// testLog sends a Writer's log lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func canceledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func mustClose(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func checkJournalGone(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, replayPath(path)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("journal file %s still there after a complete Close (stat: %v)", p, err)
		}
	}
}

// TestWriterWritesAllOnClose: N records in, Close, exactly N out, each once,
// in order within each batch (and overall: one appender, nothing spilled).
func TestWriterWritesAllOnClose(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) {
			checkNoLeak(t)
			const n = 1000
			st := &fakeLedger{}
			opts := WriterOptions{Batch: 64, Interval: time.Hour, Queue: 2 * n}
			if journal {
				opts.Journal = filepath.Join(t.TempDir(), "ledger.journal")
			}
			w := newTestWriter(t, st, opts)
			for i := range n {
				if err := w.Append(t.Context(), testRecord(i)); err != nil {
					t.Fatalf("Append(%d): %v", i, err)
				}
			}
			mustClose(t, w)
			st.checkHas(t, n)
			if st.dupes != 0 {
				t.Errorf("store saw %d duplicates, want 0", st.dupes)
			}
			var all []int
			for bi, b := range st.batches {
				if len(b) > opts.Batch {
					t.Errorf("batch %d has %d records, want at most %d", bi, len(b), opts.Batch)
				}
				for _, id := range b {
					all = append(all, seq(t, id))
				}
			}
			if !slices.IsSorted(all) {
				t.Errorf("records written out of order: %v", all)
			}
			want := WriterStats{Appended: n, Written: n}
			if diff := gocmp.Diff(w.Stats(), want); diff != "" {
				t.Errorf("Stats() mismatch (-got +want):\n%s", diff)
			}
			if journal {
				checkJournalGone(t, opts.Journal)
			}
		})
	}
}

// TestWriterFlushesWithinInterval: a lone record is written without Close,
// about Interval after it was appended.
func TestWriterFlushesWithinInterval(t *testing.T) {
	checkNoLeak(t)
	st := &fakeLedger{}
	w := newTestWriter(t, st, WriterOptions{Interval: 20 * time.Millisecond})
	defer mustClose(t, w)
	start := time.Now()
	if err := w.Append(t.Context(), testRecord(1)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	for st.count() == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("record not written 5s after Append with Interval 20ms")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("written after %v (Interval 20ms)", time.Since(start))
}

// TestWriterWritesAFullBatchAtOnce: once it holds a record waiting out
// Interval, the goroutine stops taking records one by one from the queue
// (each would wake it), so a queue that fills a batch must wake it: with an
// Interval of an hour, a batch is written at once, and the rest waits.
func TestWriterWritesAFullBatchAtOnce(t *testing.T) {
	checkNoLeak(t)
	st := &fakeLedger{}
	w := newTestWriter(t, st, WriterOptions{Interval: time.Hour, Batch: 8})
	defer mustClose(t, w)
	if err := w.Append(t.Context(), testRecord(0)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	start := time.Now()
	for len(w.queue) > 0 { // the goroutine took it and waits out Interval
		if time.Since(start) > 5*time.Second {
			t.Fatal("the first record was not taken from the queue in 5s")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 8; i++ {
		if err := w.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	for st.count() < 8 {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%d of a full batch of 8 written 5s after Append (Interval 1h)", st.count())
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := st.count(); n != 8 {
		t.Fatalf("%d records written; the 9th should wait for Interval or Close", n)
	}
}

// TestWriterSmallQueueNeverFills: a queue smaller than a batch must not
// fill up while the goroutine waits out Interval (Append would block, or
// spill): the goroutine is woken when it is half full and takes what it holds.
func TestWriterSmallQueueNeverFills(t *testing.T) {
	checkNoLeak(t)
	st := &fakeLedger{}
	w := newTestWriter(t, st, WriterOptions{Interval: time.Hour, Batch: 1024, Queue: 8})
	defer mustClose(t, w)
	if err := w.Append(t.Context(), testRecord(0)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	start := time.Now()
	for len(w.queue) > 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the first record was not taken from the queue in 5s")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 40; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := w.Append(ctx, testRecord(i))
		cancel()
		if err != nil {
			t.Fatalf("Append %d with a queue of 8 and an Interval of 1h: %v", i, err)
		}
	}
	mustClose(t, w)
	if n := st.count(); n != 41 {
		t.Fatalf("%d of 41 records written after Close", n)
	}
}

// TestWriterAppendNeverWaitsForStore: with a journal, every Append returns
// while the store is stuck, and nothing is lost once it comes back.
func TestWriterAppendNeverWaitsForStore(t *testing.T) {
	checkNoLeak(t)
	const goroutines, per = 20, 100
	st := &fakeLedger{gate: make(chan struct{})}
	path := filepath.Join(t.TempDir(), "ledger.journal")
	w := newTestWriter(t, st, WriterOptions{Batch: 8, Queue: 4, Interval: time.Millisecond, Journal: path})

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				if err := w.Append(t.Context(), testRecord(g*per+i)); err != nil {
					t.Errorf("Append: %v", err)
				}
			}
		})
	}
	appended := make(chan struct{})
	go func() { wg.Wait(); close(appended) }()
	select {
	case <-appended:
	case <-time.After(20 * time.Second):
		close(st.gate)
		<-appended
		t.Fatalf("Append waited for a stuck store")
	}
	if s := w.Stats(); s.Spilled < goroutines*per-4-8 || s.Written != 0 {
		t.Errorf("with the store stuck: Stats() = %+v, want Spilled >= %d and Written 0", s, goroutines*per-12)
	}
	close(st.gate)
	mustClose(t, w)
	st.checkHas(t, goroutines*per)
	if s := w.Stats(); s.Pending != 0 || s.Written < goroutines*per {
		t.Errorf("after Close: Stats() = %+v, want Pending 0, Written >= %d", s, goroutines*per)
	}
	checkJournalGone(t, path)
}

// The journal's fsync ticker is stopped while nothing spills; a spill
// starts it, so spilled records are fsynced within an interval or so while
// the writer backs off a failing store.
func TestJournalSyncedAfterSpill(t *testing.T) {
	checkNoLeak(t)
	var down atomic.Bool
	down.Store(true)
	st := &fakeLedger{fail: func(int) error {
		if down.Load() {
			return errors.New("store down")
		}
		return nil
	}}
	path := filepath.Join(t.TempDir(), "ledger.journal")
	w := newTestWriter(t, st, WriterOptions{Batch: 1, Queue: 1, Interval: 10 * time.Millisecond, Journal: path,
		retryMin: 50 * time.Millisecond, retryMax: 50 * time.Millisecond})
	for i := range 5 {
		if err := w.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if s := w.Stats(); s.Spilled == 0 {
		t.Fatalf("nothing spilled with the store down: %+v", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.jDirty.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	dirty := w.jDirty.Load()
	down.Store(false)
	mustClose(t, w)
	if dirty {
		t.Error("spilled records not fsynced within 5 s")
	}
	st.checkHas(t, 5)
}

// TestWriterSaturation: a slow store (50ms a batch), a tiny queue, 20
// appenders and 5000 records: none lost, spills counted, Append stays fast.
func TestWriterSaturation(t *testing.T) {
	checkNoLeak(t)
	const goroutines, per = 20, 250
	st := &fakeLedger{delay: 50 * time.Millisecond}
	path := filepath.Join(t.TempDir(), "ledger.journal")
	w := newTestWriter(t, st, WriterOptions{Queue: 16, Interval: 10 * time.Millisecond, Journal: path})

	lat := make([]time.Duration, goroutines*per)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				k := g*per + i
				start := time.Now()
				if err := w.Append(t.Context(), testRecord(k)); err != nil {
					t.Errorf("Append(%d): %v", k, err)
				}
				lat[k] = time.Since(start)
				if i%25 == 0 {
					time.Sleep(time.Millisecond) // keep the load up for several store writes
				}
			}
		})
	}
	wg.Wait()
	mid := w.Stats()
	mustClose(t, w)

	st.checkHas(t, goroutines*per)
	s := w.Stats()
	if s.Spilled == 0 || s.Pending != 0 || s.Appended != goroutines*per {
		t.Errorf("Stats() = %+v, want Spilled > 0, Pending 0, Appended %d", s, goroutines*per)
	}
	slices.Sort(lat)
	p50, p99, pmax := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("Append latency p50 %v p99 %v max %v; at end of load %+v; after Close %+v; store calls %d",
		p50, p99, pmax, mid, s, st.callCount())
	// Latency is logged, not asserted: timing belongs in benchmarks.
	// TestWriterAppendNeverWaitsForStore proves Append does not wait.
	checkJournalGone(t, path)
}

// TestWriterPushBack: without a journal Append blocks while the queue is
// full, returns ctx's error when ctx ends (record not taken), and goes
// through once there is room.
func TestWriterPushBack(t *testing.T) {
	checkNoLeak(t)
	st := &fakeLedger{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	w := newTestWriter(t, st, WriterOptions{Batch: 1, Queue: 2, Interval: time.Millisecond})

	if err := w.Append(t.Context(), testRecord(0)); err != nil {
		t.Fatalf("Append(0): %v", err)
	}
	<-st.entered // record 0 is in the stuck store call; the queue is empty
	for i := 1; i <= 2; i++ {
		if err := w.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}

	start := time.Now() // before the deadline is set, so the wait measured is never shorter than it
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := w.Append(ctx, testRecord(3))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Append(3) on a full queue = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("Append(3) returned after %v, want it to block until the 50ms deadline", d)
	}

	blocked := make(chan error, 1)
	go func() { blocked <- w.Append(context.Background(), testRecord(4)) }()
	select {
	case err := <-blocked:
		t.Fatalf("Append(4) on a full queue returned %v, want it to block", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(st.gate)
	if err := <-blocked; err != nil {
		t.Fatalf("Append(4) after the store came back: %v", err)
	}
	mustClose(t, w)

	got := st.ids()
	want := []string{"req-000000", "req-000001", "req-000002", "req-000004"}
	if diff := gocmp.Diff(got, want); diff != "" {
		t.Errorf("stored ids mismatch (-got +want):\n%s", diff)
	}
	if s := w.Stats(); s.Appended != 4 || s.Written != 4 || s.Spilled != 0 {
		t.Errorf("Stats() = %+v, want Appended 4, Written 4, Spilled 0", s)
	}
}

// TestWriterCloseReleasesBlockedAppend: Close wakes an Append blocked on a
// full queue (ErrWriterClosed: not taken), and a Close whose ctx ends with
// records in memory and no journal reports them lost.
func TestWriterCloseReleasesBlockedAppend(t *testing.T) {
	checkNoLeak(t)
	st := &fakeLedger{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	defer close(st.gate)
	w := newTestWriter(t, st, WriterOptions{Batch: 1, Queue: 1, Interval: time.Millisecond})
	for i := range 2 {
		if err := w.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
		if i == 0 {
			<-st.entered
		}
	}
	blocked := make(chan error, 1)
	go func() { blocked <- w.Append(context.Background(), testRecord(2)) }()
	time.Sleep(20 * time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "2 records lost") {
		t.Errorf("Close = %v, want context.DeadlineExceeded and 2 records lost", err)
	}
	if err := <-blocked; !errors.Is(err, ErrWriterClosed) {
		t.Errorf("blocked Append after Close = %v, want ErrWriterClosed", err)
	}
	if err := w.Append(t.Context(), testRecord(3)); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("Append after Close = %v, want ErrWriterClosed", err)
	}
	if s := w.Stats(); s.Lost != 2 || s.Pending != 0 {
		t.Errorf("Stats() = %+v, want Lost 2, Pending 0", s)
	}
}

// TestWriterStoreRecovers: the store fails for a while — some failures
// after committing, as a timed-out commit does — and then recovers:
// everything is written once, Append keeps accepting meanwhile, and retries
// back off rather than spin.
func TestWriterStoreRecovers(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) {
			checkNoLeak(t)
			const n = 2000
			failUntil := time.Now().Add(300 * time.Millisecond)
			st := &fakeLedger{
				fail: func(call int) error {
					if time.Now().Before(failUntil) {
						return errors.New("database is locked")
					}
					return nil
				},
				commitThenFail: true, // the worst case: the retry repeats a commit
			}
			opts := WriterOptions{Batch: 50, Queue: 100, Interval: 5 * time.Millisecond,
				retryMin: 5 * time.Millisecond, retryMax: 40 * time.Millisecond}
			if journal {
				opts.Journal = filepath.Join(t.TempDir(), "ledger.journal")
			}
			w := newTestWriter(t, st, opts)
			for i := range n {
				if err := w.Append(t.Context(), testRecord(i)); err != nil {
					t.Fatalf("Append(%d): %v", i, err)
				}
			}
			mustClose(t, w)
			st.checkHas(t, n)
			s := w.Stats()
			if s.WriteErrors == 0 || s.Pending != 0 {
				t.Errorf("Stats() = %+v, want WriteErrors > 0, Pending 0", s)
			}
			// 300ms of failure at 5ms doubling to 40ms is about a dozen
			// attempts; a spinning writer would make thousands.
			if s.WriteErrors > 40 {
				t.Errorf("%d failed writes in 300ms: the writer is not backing off", s.WriteErrors)
			}
			if journal && s.Spilled == 0 {
				t.Errorf("Stats() = %+v, want spills while the store was down", s)
			}
			t.Logf("%+v, store dupes %d", s, st.dupes)
		})
	}
}

// TestWriterStorePanics: a panic in the store is logged and retried like an
// error; nothing is lost and the goroutine survives.
func TestWriterStorePanics(t *testing.T) {
	checkNoLeak(t)
	st := &fakeLedger{panicOn: 1}
	w := newTestWriter(t, st, WriterOptions{Batch: 10, Interval: time.Millisecond})
	for i := range 100 {
		if err := w.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
	mustClose(t, w)
	st.checkHas(t, 100)
	if s := w.Stats(); s.WriteErrors != 1 {
		t.Errorf("Stats().WriteErrors = %d, want 1", s.WriteErrors)
	}
}

// TestJournalSurvivesRestart: a Writer whose store is down, closed with a
// cancelled ctx, keeps every record (spilled and in memory) in the journal;
// the next Writer on the same path writes them all and removes the journal.
func TestJournalSurvivesRestart(t *testing.T) {
	checkNoLeak(t)
	const n = 300
	path := filepath.Join(t.TempDir(), "ledger.journal")

	down := &fakeLedger{fail: func(int) error { return errors.New("connection refused") }}
	w1 := newTestWriter(t, down, WriterOptions{Batch: 16, Queue: 8, Interval: time.Millisecond, Journal: path})
	for i := range n {
		if err := w1.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
	err := w1.Close(canceledContext())
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), fmt.Sprintf("%d records kept", n)) {
		t.Errorf("Close(cancelled) = %v, want context.Canceled and %d records kept", err, n)
	}
	if s := w1.Stats(); s.Pending != n || s.Written != 0 || s.Lost != 0 {
		t.Errorf("first writer Stats() = %+v, want Pending %d, Written 0, Lost 0", s, n)
	}

	up := &fakeLedger{}
	w2 := newTestWriter(t, up, WriterOptions{Journal: path, Interval: time.Millisecond})
	if got := w2.Stats().Recovered; got != n {
		t.Errorf("second writer Stats().Recovered = %d, want %d", got, n)
	}
	mustClose(t, w2)
	up.checkHas(t, n)
	checkJournalGone(t, path)
}

// TestJournalRestartMidReplay: the first Writer stops while part of its
// journal has been renamed to P.replay and partly written, and new spills
// sit in a fresh P. The next Writer replays both; every record reaches one
// store or the other.
func TestJournalRestartMidReplay(t *testing.T) {
	checkNoLeak(t)
	const first, total = 300, 400
	path := filepath.Join(t.TempDir(), "ledger.journal")
	// The store takes batches of records below 200 and fails every batch
	// that holds a later one: the writer gets stuck part-way through P.replay.
	st1 := &fakeLedger{gate: make(chan struct{})}
	failing := &failOnLate{fakeLedger: st1, limit: 200}
	w1 := newTestWriter(t, failing, WriterOptions{Batch: 16, Queue: 8, Interval: time.Millisecond, Journal: path})
	for i := range first {
		if err := w1.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
	close(st1.gate)
	deadline := time.Now().Add(10 * time.Second)
	for w1.Stats().WriteErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("first writer never reached the failing records; Stats %+v", w1.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := os.Stat(replayPath(path)); err != nil {
		t.Fatalf("want the writer stuck in %s: %v", replayPath(path), err)
	}
	for i := first; i < total; i++ {
		if err := w1.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
	if err := w1.Close(canceledContext()); !errors.Is(err, context.Canceled) {
		t.Errorf("Close(cancelled) = %v, want context.Canceled", err)
	}
	pending := w1.Stats().Pending

	st2 := &fakeLedger{}
	w2 := newTestWriter(t, st2, WriterOptions{Journal: path, Interval: time.Millisecond})
	if got := w2.Stats().Recovered; got < pending {
		t.Errorf("second writer recovered %d records, want at least the %d the first left", got, pending)
	}
	t.Logf("first writer left %d pending (%+v); second recovered %d", pending, w1.Stats(), w2.Stats().Recovered)
	mustClose(t, w2)
	for i := range total {
		id := testRecord(i).RequestID
		if !st1.has(id) && !st2.has(id) {
			t.Errorf("%s lost across the restart", id)
		}
	}
	if st2.count() < int(pending) {
		t.Errorf("second store holds %d records, want at least %d", st2.count(), pending)
	}
	checkJournalGone(t, path)
}

// failOnLate fails, without committing, every batch holding a record at or
// above limit.
type failOnLate struct {
	*fakeLedger
	limit int
}

func (f *failOnLate) AppendUsage(ctx context.Context, recs []Record) error {
	for _, r := range recs {
		var i int
		fmt.Sscanf(r.RequestID, "req-%d", &i)
		if i >= f.limit {
			if f.gate != nil {
				<-f.gate
			}
			return fmt.Errorf("record %s rejected", r.RequestID)
		}
	}
	return f.fakeLedger.AppendUsage(ctx, recs)
}

// TestJournalReplaysWhileRunning: records spilled while the store was down
// are drained by the running goroutine once it recovers, without Close.
func TestJournalReplaysWhileRunning(t *testing.T) {
	checkNoLeak(t)
	const n = 500
	st := &fakeLedger{gate: make(chan struct{})}
	path := filepath.Join(t.TempDir(), "ledger.journal")
	w := newTestWriter(t, st, WriterOptions{Batch: 32, Queue: 16, Interval: time.Millisecond, Journal: path})
	defer mustClose(t, w)
	for i := range n {
		if err := w.Append(t.Context(), testRecord(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
	close(st.gate)
	deadline := time.Now().Add(10 * time.Second)
	for st.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("store holds %d of %d records 10s after recovering; Stats %+v", st.count(), n, w.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := w.Stats(); s.Spilled == 0 {
		t.Errorf("Stats() = %+v, want spills", s)
	}
}

// TestJournalCorruptLines: a journal with an undecodable line and a torn
// last write (a crash mid-line) replays the good lines and moves the bad
// ones to the .corrupt file instead of stopping.
func TestJournalCorruptLines(t *testing.T) {
	checkNoLeak(t)
	path := filepath.Join(t.TempDir(), "ledger.journal")
	good := func(i int) string {
		b, err := jsonLine(testRecord(i))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	torn := good(4)[:30]
	content := good(0) + "not json at all\n\n" + good(1) + `{"time":"2025-01-01T00:00:00Z"}` + "\n" + torn
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	st := &fakeLedger{}
	w := newTestWriter(t, st, WriterOptions{Journal: path, Interval: time.Millisecond})
	mustClose(t, w)
	st.checkHas(t, 2)
	if s := w.Stats(); s.Recovered != 5 || s.Corrupt != 3 || s.Pending != 0 {
		t.Errorf("Stats() = %+v, want Recovered 5, Corrupt 3, Pending 0", s)
	}
	bad, err := os.ReadFile(path + ".corrupt")
	if err != nil {
		t.Fatalf("corrupt lines not kept: %v", err)
	}
	want := "not json at all\n" + `{"time":"2025-01-01T00:00:00Z"}` + "\n" + torn + "\n"
	if diff := gocmp.Diff(string(bad), want); diff != "" {
		t.Errorf(".corrupt content mismatch (-got +want):\n%s", diff)
	}
	checkJournalGone(t, path)
}

// TestJournalTornTailGetsNewline: a record spilled after a crash that tore
// the journal's last line starts on a line of its own, so the torn fragment
// cannot swallow it.
func TestJournalTornTailGetsNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.journal")
	if err := os.WriteFile(path, []byte(`{"request_id":"req-0000`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := openActive(path)
	if err != nil {
		t.Fatalf("openActive: %v", err)
	}
	if _, err := f.WriteString("{}\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, _ := os.ReadFile(path)
	if want := `{"request_id":"req-0000` + "\n{}\n"; string(got) != want {
		t.Errorf("journal after openActive and a write = %q, want %q", got, want)
	}
}

// TestWriterRejects covers Append's and NewWriter's refusals.
func TestWriterRejects(t *testing.T) {
	checkNoLeak(t)
	if _, err := NewWriter(&fakeLedger{}, WriterOptions{Batch: -1}); err == nil {
		t.Errorf("NewWriter(Batch -1) = nil error, want one")
	}
	if _, err := NewWriter(nil, WriterOptions{}); err == nil {
		t.Errorf("NewWriter(nil store) = nil error, want one")
	}
	if _, err := NewWriter(&fakeLedger{}, WriterOptions{Journal: filepath.Join(t.TempDir(), "no", "such", "dir")}); err == nil {
		t.Errorf("NewWriter(journal in a missing dir) = nil error, want one")
	}
	w := newTestWriter(t, &fakeLedger{}, WriterOptions{})
	if err := w.Append(t.Context(), Record{}); !errors.Is(err, ErrNoRequestID) {
		t.Errorf("Append(no RequestID) = %v, want ErrNoRequestID", err)
	}
	mustClose(t, w)
	if err := w.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := w.Append(t.Context(), testRecord(1)); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("Append after Close = %v, want ErrWriterClosed", err)
	}
}

func jsonLine(r Record) (string, error) {
	b, err := json.Marshal(r)
	return string(b) + "\n", err
}

// BenchmarkWriterAppend measures Append with a store that costs nothing:
// the request-path cost of metering.
func BenchmarkWriterAppend(b *testing.B) {
	var stored atomic.Int64
	st := ledgerFunc(func(_ context.Context, recs []Record) error {
		stored.Add(int64(len(recs)))
		return nil
	})
	r := testRecord(1)
	for _, bc := range []struct {
		name     string
		parallel bool
		journal  bool
	}{
		{"serial", false, false},
		{"parallel", true, false},
		{"parallel-journal", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := WriterOptions{}
			if bc.journal {
				opts.Journal = filepath.Join(b.TempDir(), "ledger.journal")
			}
			w, err := NewWriter(st, opts)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := w.Append(ctx, r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if err := w.Append(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
			s := w.Stats()
			b.ReportMetric(float64(s.Spilled)/float64(max(s.Appended, 1))*100, "%spilled")
		})
	}
}

type ledgerFunc func(ctx context.Context, recs []Record) error

func (f ledgerFunc) AppendUsage(ctx context.Context, recs []Record) error { return f(ctx, recs) }
