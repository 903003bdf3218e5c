package meter

// The usage-ledger writer. Append is on the request path and costs a channel
// send; one goroutine batches records into the store. When that goroutine
// falls behind (a slow or failing store), Append spills to a local journal of
// JSON lines instead of waiting, and the goroutine feeds the journal back to
// the store once the queue has room. It never discards a record: another Go
// gateway dropped a third of its usage records at saturation, and a ledger
// with holes cannot bill.
//
// Journal files, for a journal path P:
//
//	P          the active journal: Append adds lines under jmu
//	P.replay   a journal being written to the store, oldest records first;
//	           only the writer goroutine reads it, and removes it once all of
//	           it is in the store
//	P.corrupt  lines that could not be decoded, kept for a human
//
// The goroutine renames P to P.replay when it has drained the previous
// P.replay, so Append never writes a file that is being read, and nothing is
// ever truncated in place. A crash at any point leaves records in P or
// P.replay (or both), and the next NewWriter replays both; what was already
// written comes again and the store skips it (AppendUsage is idempotent on
// RequestID). One process at a time may use a journal path.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// LedgerStore is what the Writer needs of a store.
type LedgerStore interface {
	// AppendUsage writes recs in one transaction and skips any record whose
	// RequestID is already stored. The Writer relies on that: it retries a
	// batch after a failure it cannot tell from a commit (a timeout), and it
	// replays its journal after a crash, so a record may arrive twice. It is
	// called from one goroutine, off the request path; it must honour ctx and
	// must not keep recs after it returns (the slice is reused).
	AppendUsage(ctx context.Context, recs []Record) error
}

// WriterOptions configures a Writer. The zero value is usable: defaults as
// documented, no journal (Append pushes back), slog.Default.
type WriterOptions struct {
	// Batch is the most records per AppendUsage call; 0 means 1024.
	Batch int
	// Interval is the longest a queued record waits before a write starts;
	// 0 means 200ms. It is also how often the journal is fsynced while
	// records are being spilled.
	Interval time.Duration
	// Queue is the in-memory queue length; 0 means 8192.
	Queue int
	// Journal is the path of the spill journal (JSON lines); its directory
	// must exist. "" disables spilling: Append then blocks while the queue is
	// full (push-back).
	Journal string
	// Logger receives write failures and journal problems; nil means
	// slog.Default().
	Logger *slog.Logger

	// retryMin and retryMax bound the backoff between attempts at a failing
	// write (0 means 100ms and 10s); writeTimeout bounds one attempt (0 means
	// 30s). Tests shorten them.
	retryMin, retryMax, writeTimeout time.Duration
}

// Defaults for WriterOptions.
const (
	// Under load a batch fills long before Interval. Each transaction
	// rewrites the last, partly filled page of the table and of each index
	// in the WAL, so larger ones cost less per record: ~13.5 µs at 256, ~10.8
	// at 1024, no better at 4096 (BenchmarkSQLiteAppendUsage/time-ordered-N).
	defaultBatch        = 1024
	defaultInterval     = 200 * time.Millisecond
	defaultQueue        = 8192
	defaultRetryMin     = 100 * time.Millisecond
	defaultRetryMax     = 10 * time.Second
	defaultWriteTimeout = 30 * time.Second
)

// ErrWriterClosed is returned by Append once Close has begun. The record was
// not taken; the caller must report it.
var ErrWriterClosed = errors.New("usage ledger writer closed")

// ErrNoRequestID is returned by Append for a record without a RequestID: the
// store deduplicates on it, so such a record would collide with others.
var ErrNoRequestID = errors.New("usage record has no request id")

// WriterStats counts what a Writer has done since NewWriter.
type WriterStats struct {
	Appended  int64 // records Append accepted (queued or spilled)
	Recovered int64 // records found in the journal by NewWriter (a previous run's)
	Written   int64 // records the store acknowledged, journal replays included
	Spilled   int64 // records written to the journal (queue full, or held at an aborted Close)
	// Pending is accepted or recovered records not yet acknowledged by the
	// store, minus Lost and Corrupt: what is queued, in flight, or in the
	// journal.
	Pending       int64
	Lost          int64 // records dropped at an aborted Close with no journal to keep them
	Corrupt       int64 // journal lines that did not decode, moved to the .corrupt file
	WriteErrors   int64 // failed AppendUsage calls (every attempt counts)
	JournalErrors int64 // failed journal writes, reads, renames or fsyncs
}

// Writer batches usage records into a LedgerStore from one goroutine it
// owns. Make one with NewWriter; the zero value is not usable, and a Writer
// must not be copied. Append is safe for concurrent use; call Close once the
// last Append has returned (Appends racing with Close get ErrWriterClosed).
//
// Durability, exactly:
//   - Close(ctx) returning nil means every record Append accepted (and every
//     record a previous run left in the journal) is in the store.
//   - If ctx ends first, Close stops the goroutine, appends what it held in
//     memory to the journal and keeps the journal; the next NewWriter on the
//     same path replays it. Without a journal those records are lost, and
//     Close's error and Stats().Lost say how many.
//   - A spilled record is one write(2) of one JSON line before Append
//     returns; the journal is fsynced every Interval while it is being
//     written, on rotation and at Close, not per record. So a process crash
//     (no Close) loses the records in memory — queued or in the batch being
//     written, at most Queue+Batch — and nothing spilled. An OS crash or power
//     loss can also lose journal lines not yet fsynced: normally the last
//     Interval's, but up to writeTimeout's while one store call hangs, and a
//     journal file created just before the crash (its directory is not
//     fsynced).
//   - Replays repeat records that were already written when the run before
//     stopped between a write and removing its journal file; the store's
//     idempotency on RequestID makes that harmless.
type Writer struct {
	st                               LedgerStore
	log                              *slog.Logger
	batch                            int
	interval                         time.Duration
	retryMin, retryMax, writeTimeout time.Duration
	journal                          string // "" when spilling is off

	queue    chan Record
	full     chan struct{} // cap 1: the queue holds kickAt records; wakes the goroutine waiting out Interval
	kickAt   int           // a batch, or half the queue if that is less
	stopping chan struct{} // closed when Close begins: wakes Appends blocked on a full queue
	drain    chan struct{} // closed once no Append can run: the goroutine writes everything and exits
	done     chan struct{} // closed when the goroutine has exited
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closing  sync.Once
	result   error // the goroutine's outcome; written before done is closed

	// mu guards closed. Append holds it shared for its whole call; Close
	// takes it exclusively to set closed, after which no Append touches the
	// queue or the journal.
	mu     sync.RWMutex
	closed bool

	// jmu guards jf and jTorn and serialises journal appends and rotation.
	jmu      sync.Mutex
	jf       *os.File      // the active journal; nil when spilling is off or reopening failed
	jTorn    bool          // the last write to jf failed, maybe mid-line: the next starts a new line
	jCount   atomic.Int64  // records in the active journal; changed under jmu
	jDirty   atomic.Bool   // jf was written since its last fsync
	jKick    chan struct{} // cap 1: a spill made jf dirty; the goroutine starts its fsync ticker
	jFailing atomic.Bool   // journal writes are failing (logged once per streak)

	appended, recovered, written, spilled, lost, corrupt atomic.Int64
	writeErrors, journalErrors                           atomic.Int64
}

// NewWriter checks opts, opens the journal if one is configured and starts
// the writer goroutine. Records left in the journal by a previous run are
// replayed by that goroutine before it starts on new ones (the queue is empty
// then), so a store that is down at start-up does not hold NewWriter up.
func NewWriter(st LedgerStore, opts WriterOptions) (*Writer, error) {
	if st == nil {
		return nil, errors.New("new usage ledger writer: nil store")
	}
	if opts.Batch < 0 || opts.Queue < 0 || opts.Interval < 0 {
		return nil, fmt.Errorf("new usage ledger writer: negative option (batch %d, queue %d, interval %v)",
			opts.Batch, opts.Queue, opts.Interval)
	}
	w := &Writer{
		st:           st,
		log:          cmp.Or(opts.Logger, slog.Default()),
		batch:        cmp.Or(opts.Batch, defaultBatch),
		interval:     cmp.Or(opts.Interval, defaultInterval),
		retryMin:     cmp.Or(opts.retryMin, defaultRetryMin),
		retryMax:     cmp.Or(opts.retryMax, defaultRetryMax),
		writeTimeout: cmp.Or(opts.writeTimeout, defaultWriteTimeout),
		journal:      opts.Journal,
		queue:        make(chan Record, cmp.Or(opts.Queue, defaultQueue)),
		stopping:     make(chan struct{}),
		drain:        make(chan struct{}),
		done:         make(chan struct{}),
		jKick:        make(chan struct{}, 1),
		full:         make(chan struct{}, 1),
	}
	w.kickAt = max(min(w.batch, cap(w.queue)/2), 1)
	l := &loop{w: w, batch: make([]Record, 0, w.batch)}
	if w.journal != "" {
		if err := w.openJournal(l); err != nil {
			return nil, fmt.Errorf("new usage ledger writer: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Go(func() {
		defer close(w.done)
		w.run(ctx, l)
	})
	return w, nil
}

// Append hands over one record. While the queue has room it is a channel
// send that never blocks. When the queue is full it appends the record to
// the journal (holding the journal lock across that write), or — with no
// journal, or when the journal write fails — blocks until there is room or
// ctx ends. A non-nil error means the record was NOT taken (ctx ended,
// ErrWriterClosed, ErrNoRequestID): the caller must report it.
func (w *Writer) Append(ctx context.Context, r Record) error {
	if r.RequestID == "" {
		return ErrNoRequestID
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrWriterClosed
	}
	select {
	case w.queue <- r:
		w.appended.Add(1)
		w.kickWhenFull()
		return nil
	default:
	}
	return w.appendSlow(ctx, r) // by value: &r must not make the fast path allocate
}

// kickWhenFull wakes the goroutine when the queue holds a whole batch (or
// is half full, should the queue be the smaller): it stops receiving once
// it has records waiting out Interval (runSafe), and a full queue would
// make Append spill or block.
func (w *Writer) kickWhenFull() {
	if len(w.queue) >= w.kickAt {
		select {
		case w.full <- struct{}{}:
		default:
		}
	}
}

// appendSlow handles a full queue; w.mu is held shared.
func (w *Writer) appendSlow(ctx context.Context, r Record) error {
	if w.journal != "" {
		err := w.spill(&r)
		if err == nil {
			w.appended.Add(1)
			w.spilled.Add(1)
			if w.jFailing.Load() && w.jFailing.Swap(false) {
				w.log.Info("usage ledger journal writable again", slog.String("journal", w.journal))
			}
			return nil
		}
		w.journalErrors.Add(1)
		if !w.jFailing.Swap(true) {
			w.log.Error("usage ledger journal write failed; Append blocks while the queue is full",
				slog.String("journal", w.journal), slog.Any("err", err))
		}
	}
	select {
	case w.queue <- r:
		w.appended.Add(1)
		w.kickWhenFull()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("usage ledger queue full: %w", ctx.Err())
	case <-w.stopping:
		select { // prefer taking it if room appeared at the same moment
		case w.queue <- r:
			w.appended.Add(1)
			return nil
		default:
			return ErrWriterClosed
		}
	}
}

// Close stops accepting records, writes everything queued and everything in
// the journal to the store, removes the journal files, and returns nil. If
// ctx ends first (or has already ended), the goroutine is stopped, what it
// held in memory is appended to the journal, the journal is kept for the
// next NewWriter, and the error wraps ctx.Err() and says how many records
// are kept (or lost, with no journal). Close waits for the goroutine in
// every case, so the store must honour ctx. Calling Close again returns the
// same outcome.
func (w *Writer) Close(ctx context.Context) error {
	w.closing.Do(func() {
		close(w.stopping)
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		if ctx.Err() != nil {
			w.cancel() // before drain: do not start writing what we will not finish
		}
		close(w.drain)
	})
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
	}
	w.wg.Wait()
	w.cancel()
	if w.result == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("close usage ledger: %w: %w", err, w.result)
	}
	return fmt.Errorf("close usage ledger: %w", w.result)
}

// Stats returns the Writer's counters. They are read one by one, so a
// snapshot taken while records flow may be off by the records in motion.
func (w *Writer) Stats() WriterStats {
	s := WriterStats{
		Appended:      w.appended.Load(),
		Recovered:     w.recovered.Load(),
		Written:       w.written.Load(),
		Spilled:       w.spilled.Load(),
		Lost:          w.lost.Load(),
		Corrupt:       w.corrupt.Load(),
		WriteErrors:   w.writeErrors.Load(),
		JournalErrors: w.journalErrors.Load(),
	}
	s.Pending = s.Appended + s.Recovered - s.Written - s.Lost - s.Corrupt
	return s
}

// run is the writer goroutine. A panic (a bug here or in the store) is
// logged with its stack and the loop restarts after a pause, keeping its
// batch; it exits only through finish or abort.
func (w *Writer) run(ctx context.Context, l *loop) {
	l.timer = time.NewTimer(w.interval)
	l.timer.Stop()
	l.tick = time.NewTicker(w.interval)
	l.tick.Stop() // runs only while spills leave the journal unsynced
	defer l.timer.Stop()
	defer l.tick.Stop()
	for !l.runSafe(ctx) {
		if ctx.Err() != nil {
			w.result = errors.New("usage ledger writer panicked while stopping; records held in memory may be lost")
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// loop is the state the writer goroutine owns; nothing else touches it.
type loop struct {
	w     *Writer
	batch []Record // queued records first, then (fromJournal) records read from P.replay
	// fromQueue and fromJournal split batch: on abort only the queued part
	// needs saving, the rest is still in P.replay.
	fromQueue, fromJournal int
	timer                  *time.Timer // armed while batch holds queued records: Interval from the first
	due                    bool        // timer fired: write what we have
	// tick fsyncs the journal every interval while spills make it dirty
	// (ticking); stopped otherwise, so an idle writer wakes no thread.
	tick    *time.Ticker
	ticking bool

	rf *os.File      // P.replay, open while being read
	rr *bufio.Reader // reads rf
	// replayExists: P.replay is on disk. replayEOF: all of it is in batch,
	// and it goes once batch is written. broken: the journal cannot be read;
	// stop reading it and keep it for the next start.
	replayExists, replayEOF, broken bool
}

// runSafe runs the loop; it reports false after a recovered panic.
func (l *loop) runSafe(ctx context.Context) (exited bool) {
	defer func() {
		if p := recover(); p != nil {
			l.w.log.Error("usage ledger writer panicked; restarting",
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			exited = false
		}
	}()
	w := l.w
	for {
		l.takeQueued()
		if len(l.batch) < w.batch && l.journalWork() && len(w.queue) <= cap(w.queue)/2 {
			l.takeJournal()
		}
		if len(l.batch) > 0 && (l.due || l.fromJournal > 0 || len(l.batch) >= w.batch) {
			if !l.flush(ctx) {
				l.abort()
				return true
			}
			continue
		}
		// The first record wakes the goroutine; the rest of the batch
		// waits out Interval in the queue (or until it holds a whole
		// batch: kickWhenFull) rather than waking it one by one, a thread
		// wake-up each when requests come one at a time.
		queue := w.queue
		if len(l.batch) > 0 {
			queue = nil
		}
		select {
		case r := <-queue:
			l.add(r)
		case <-w.full:
		case <-l.timer.C:
			l.due = true
		case <-w.jKick:
			l.kicked()
		case <-l.tick.C:
			l.ticked()
		case <-w.drain:
			l.finish(ctx)
			return true
		}
	}
}

// finish runs once no Append can run: it writes the queue, then the journal,
// oldest first, and removes the journal; or it aborts when ctx ends.
func (l *loop) finish(ctx context.Context) {
	for ctx.Err() == nil {
		l.takeQueued()
		if len(l.batch) < l.w.batch && l.journalWork() {
			l.takeJournal()
		}
		if len(l.batch) == 0 {
			l.closeJournal()
			if l.broken {
				l.w.result = fmt.Errorf("journal %s unreadable, kept for the next start (%d records)",
					l.w.journal, l.w.Stats().Pending)
			}
			return
		}
		if !l.flush(ctx) {
			break
		}
	}
	l.abort()
}

// abort runs when ctx has ended. Every Append has returned (ctx is cancelled
// only after Close stopped accepting), so the queued part of batch and the
// queue are all that is held only in memory: they go to the journal.
func (l *loop) abort() {
	w := l.w
	var kept, lost int64
	save := func(r *Record) {
		if w.journal == "" {
			lost++
			return
		}
		if err := w.spill(r); err != nil {
			lost++
			w.journalErrors.Add(1)
			w.log.Error("usage ledger journal write failed at shutdown",
				slog.String("request_id", r.RequestID), slog.Any("err", err))
			return
		}
		kept++
	}
	for i := range l.batch[:l.fromQueue] {
		save(&l.batch[i])
	}
	for empty := false; !empty; {
		select {
		case r := <-w.queue:
			save(&r)
		default:
			empty = true
		}
	}
	w.spilled.Add(kept)
	w.lost.Add(lost)
	l.closeJournal()
	pending := w.Stats().Pending
	switch {
	case lost > 0:
		w.result = fmt.Errorf("stopped before writing everything: %d records lost (no journal)", lost)
		w.log.Error("usage ledger records lost at shutdown", slog.Int64("records", lost))
	case pending > 0:
		w.result = fmt.Errorf("stopped before writing everything: %d records kept in journal %s", pending, w.journal)
	}
}

// add appends one queued record to batch, arming the timer for the first.
func (l *loop) add(r Record) {
	if len(l.batch) == 0 {
		l.timer.Reset(l.w.interval)
	}
	l.batch = append(l.batch, r)
	l.fromQueue++
}

// takeQueued moves queued records into batch until it is full or the queue
// is empty. Journal records are only ever added after it, just before a
// write, so batch stays queued-then-journal.
func (l *loop) takeQueued() {
	for len(l.batch) < l.w.batch {
		select {
		case r := <-l.w.queue:
			l.add(r)
		default:
			return
		}
	}
}

// flush writes batch, retrying with jittered exponential backoff until the
// store takes it. It reports false, batch intact, when ctx ends.
func (l *loop) flush(ctx context.Context) bool {
	w := l.w
	delay := w.retryMin
	for attempt := 1; ; attempt++ {
		err := w.appendUsage(ctx, l.batch)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		w.writeErrors.Add(1)
		wait := delay/2 + rand.N(delay/2+1)
		w.log.Warn("usage ledger write failed; retrying", slog.Int("records", len(l.batch)),
			slog.Int("attempt", attempt), slog.Duration("retry_in", wait), slog.Any("err", err))
		if !l.sleep(ctx, wait) {
			return false
		}
		delay = min(delay*2, w.retryMax)
	}
	w.written.Add(int64(len(l.batch)))
	if l.replayEOF {
		l.removeReplay()
	}
	clear(l.batch) // drop the strings for the collector
	l.batch = l.batch[:0]
	l.fromQueue, l.fromJournal, l.due = 0, 0, false
	l.timer.Stop()
	return true
}

// sleep waits d, fsyncing the journal meanwhile (spills pile up while the
// store is down); it reports false when ctx ends.
func (l *loop) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-l.w.jKick:
			l.kicked()
		case <-l.tick.C:
			l.ticked()
		}
	}
}

// kicked starts the fsync ticker after a spill.
func (l *loop) kicked() {
	if !l.ticking {
		l.tick.Reset(l.w.interval)
		l.ticking = true
	}
}

// ticked fsyncs the journal, and stops the ticker when no spill came since.
// A spill after that check kicks it again.
func (l *loop) ticked() {
	l.w.syncJournal()
	if !l.w.jDirty.Load() {
		l.tick.Stop()
		l.ticking = false
	}
}

// appendUsage is one attempt, bounded by writeTimeout; a store panic
// becomes an error, so it is retried with backoff rather than spun on.
func (w *Writer) appendUsage(ctx context.Context, recs []Record) (err error) {
	ctx, cancel := context.WithTimeout(ctx, w.writeTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("usage ledger store panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("store panicked: %v", p)
		}
	}()
	return w.st.AppendUsage(ctx, recs)
}

// journalWork reports whether the journal holds records to replay.
func (l *loop) journalWork() bool {
	if l.w.journal == "" || l.broken {
		return false
	}
	return l.rf != nil || l.replayExists || l.w.jCount.Load() > 0
}

// takeJournal tops batch up from P.replay, first rotating P into place when
// there is no P.replay. It stops at the end of P.replay, so one batch never
// spans two files. A failure marks the journal broken.
func (l *loop) takeJournal() {
	w := l.w
	for len(l.batch) < w.batch {
		if l.rf == nil {
			if l.replayEOF {
				return // P.replay goes when batch is written
			}
			if err := l.openReplay(); err != nil {
				l.fail(err)
				return
			}
			if l.rf == nil {
				return // nothing to replay
			}
		}
		r, err := l.readRecord()
		if errors.Is(err, io.EOF) {
			l.rf.Close()
			l.rf, l.rr, l.replayEOF = nil, nil, true
			if l.fromJournal > 0 {
				return
			}
			l.removeReplay() // nothing of it is waiting for a write
			continue
		}
		if err != nil {
			l.fail(err)
			return
		}
		l.batch = append(l.batch, r)
		l.fromJournal++
	}
}

// fail stops journal replay for this run; the files stay for the next start.
func (l *loop) fail(err error) {
	l.w.journalErrors.Add(1)
	l.w.log.Error("usage ledger journal unreadable; kept for the next start",
		slog.String("journal", l.w.journal), slog.Any("err", err))
	if l.rf != nil {
		l.rf.Close()
	}
	l.rf, l.rr, l.broken = nil, nil, true
}

// openReplay opens P.replay, first renaming P to it if there is none. It
// leaves rf nil when there is nothing to replay.
func (l *loop) openReplay() error {
	if !l.replayExists {
		ok, err := l.w.rotate()
		if err != nil || !ok {
			return err
		}
		l.replayExists = true
	}
	f, err := os.Open(replayPath(l.w.journal))
	if errors.Is(err, fs.ErrNotExist) {
		l.replayExists = false
		return nil
	}
	if err != nil {
		return err
	}
	l.rf, l.rr = f, bufio.NewReaderSize(f, 64<<10)
	return nil
}

// removeReplay deletes P.replay once all its records are in the store.
func (l *loop) removeReplay() {
	if err := os.Remove(replayPath(l.w.journal)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.fail(fmt.Errorf("remove written journal: %w", err)) // replaying it again would only repeat records
		return
	}
	l.replayExists, l.replayEOF = false, false
}

// readRecord returns the next record of P.replay. Lines that do not decode
// (a torn last write, damage) go to P.corrupt; blank lines are skipped.
func (l *loop) readRecord() (Record, error) {
	for {
		line, err := l.rr.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var r Record
			jerr := json.Unmarshal(line, &r)
			if jerr == nil && r.RequestID != "" {
				return r, nil
			}
			l.w.quarantine(line, jerr)
		}
		if err != nil {
			return Record{}, err
		}
	}
}

// quarantine keeps an undecodable journal line in P.corrupt.
func (w *Writer) quarantine(line []byte, cause error) {
	w.corrupt.Add(1)
	if cause == nil {
		cause = errors.New("no request_id")
	}
	w.log.Error("usage ledger journal line undecodable; moved aside",
		slog.String("file", w.journal+".corrupt"), slog.Any("err", cause))
	f, err := os.OpenFile(w.journal+".corrupt", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err == nil {
		line = bytes.TrimRight(line, "\n")
		_, err = f.Write(append(line, '\n'))
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		w.journalErrors.Add(1)
		w.log.Error("usage ledger journal line lost", slog.Any("err", err))
	}
}

// openJournal runs in NewWriter: it counts what a previous run left and
// opens P for appending.
func (w *Writer) openJournal(l *loop) error {
	n, err := countFile(replayPath(w.journal))
	switch {
	case err == nil:
		l.replayExists = true
		w.recovered.Add(n)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read journal: %w", err)
	}
	f, err := openActive(w.journal)
	if err != nil {
		return err
	}
	n, err = countRecords(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		f.Close()
		return fmt.Errorf("read journal %s: %w", w.journal, err)
	}
	w.jf = f
	w.jCount.Store(n)
	w.recovered.Add(n)
	return nil
}

// openActive opens the journal at path for appending, creating it, and ends
// a torn last line so that the next record does not join it.
func openActive(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte{'\n'})
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return f, nil
}

// spill appends one record to the active journal; callers count it in spilled.
func (w *Writer) spill(r *Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record %q: %w", r.RequestID, err)
	}
	line = append(line, '\n')
	w.jmu.Lock()
	defer w.jmu.Unlock()
	if w.jf == nil {
		if w.jf, err = openActive(w.journal); err != nil {
			return err
		}
	}
	if w.jTorn {
		line = append([]byte{'\n'}, line...)
	}
	if _, err := w.jf.Write(line); err != nil {
		w.jTorn = true
		return fmt.Errorf("write journal %s: %w", w.journal, err)
	}
	w.jTorn = false
	w.jCount.Add(1)
	w.jDirty.Store(true)
	select {
	case w.jKick <- struct{}{}:
	default:
	}
	return nil
}

// rotate renames P to P.replay and opens a fresh P. It reports false when P
// holds no records. Only the writer goroutine calls it.
func (w *Writer) rotate() (bool, error) {
	old, ok, err := w.renameActive()
	if old != nil {
		// Off the lock, so spills go on meanwhile; its lines would escape
		// syncJournal once renamed.
		if err := errors.Join(old.Sync(), old.Close()); err != nil {
			w.journalErrors.Add(1)
			w.log.Error("usage ledger journal sync failed", slog.String("journal", w.journal), slog.Any("err", err))
		}
	}
	return ok, err
}

// renameActive does rotate's renaming under jmu and hands back the old file.
func (w *Writer) renameActive() (old *os.File, ok bool, err error) {
	w.jmu.Lock()
	defer w.jmu.Unlock()
	if w.jCount.Load() == 0 {
		return nil, false, nil
	}
	if err := os.Rename(w.journal, replayPath(w.journal)); err != nil {
		return nil, false, fmt.Errorf("rotate journal: %w", err) // spills go on into P
	}
	old, w.jf = w.jf, nil
	w.jCount.Store(0)
	w.jTorn = false
	w.jDirty.Store(false)
	f, err := openActive(w.journal)
	if err != nil {
		w.journalErrors.Add(1)
		w.log.Error("usage ledger journal reopen failed; retried on the next spill", slog.Any("err", err))
		return old, true, nil
	}
	w.jf = f
	return old, true, nil
}

// syncJournal fsyncs the active journal if it was written since the last
// call. Only the writer goroutine closes jf, so f stays open meanwhile.
func (w *Writer) syncJournal() {
	if !w.jDirty.Swap(false) {
		return
	}
	w.jmu.Lock()
	f := w.jf
	w.jmu.Unlock()
	if f == nil {
		return
	}
	if err := f.Sync(); err != nil {
		w.journalErrors.Add(1)
		w.log.Error("usage ledger journal fsync failed", slog.String("journal", w.journal), slog.Any("err", err))
	}
}

// closeJournal runs as the goroutine exits: it fsyncs and closes the files,
// and removes P when it holds no records.
func (l *loop) closeJournal() {
	w := l.w
	if w.journal == "" {
		return
	}
	if l.rf != nil {
		l.rf.Close()
		l.rf, l.rr = nil, nil
	}
	w.jmu.Lock()
	defer w.jmu.Unlock()
	if w.jf != nil {
		err := w.jf.Sync()
		if err = errors.Join(err, w.jf.Close()); err != nil {
			w.journalErrors.Add(1)
			w.log.Error("usage ledger journal close failed", slog.String("journal", w.journal), slog.Any("err", err))
		}
		w.jf = nil
	}
	if w.jCount.Load() == 0 {
		if err := os.Remove(w.journal); err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.log.Warn("usage ledger journal not removed", slog.String("journal", w.journal), slog.Any("err", err))
		}
	}
}

func replayPath(journal string) string { return journal + ".replay" }

// countFile counts the records in the file at path.
func countFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return countRecords(f)
}

// countRecords counts non-blank lines, as readRecord will see them.
func countRecords(r io.Reader) (int64, error) {
	var n int64
	inLine := false
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			switch c {
			case '\n':
				if inLine {
					n++
				}
				inLine = false
			case ' ', '\t', '\r':
			default:
				inLine = true
			}
		}
		if errors.Is(err, io.EOF) {
			if inLine {
				n++
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
