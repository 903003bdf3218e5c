// Package payload logs request and response bodies for the teams that opted
// in (config payload_logging), to a JSON-lines file of its own: bodies never
// reach the main log. Off by default; a nil *Logger is the "off" value and
// all its methods do nothing.
//
// Record is on the request path and costs a channel send: it copies no body
// and runs no regexp. One goroutine owned by the Logger redacts each body
// (built-in patterns for e-mail addresses, card numbers and API keys, plus
// the configured ones), cuts it to max_bytes, and appends one line to the
// file, rotating it at max_file_bytes.
//
// When that goroutine falls behind, Record DROPS the payload and counts it
// (Stats.Dropped) rather than wait or spill: payload logs are diagnostic, and
// a gateway must not slow down or grow without bound to keep them. This is
// the opposite of the usage ledger (package meter), which never drops a
// record because billing depends on it.
package payload

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// Entry is one request and its response, as Record takes it.
type Entry struct {
	Time      time.Time // when the request came in; zero means when Record is called
	RequestID string
	TeamID    string
	KeyID     string // the public key id, never the secret
	Model     string
	Status    int  // the status sent to the client
	Stream    bool // Response is the event stream as sent
	// Request and Response are the bodies as they went over the wire. The
	// Logger keeps them until they are written: do not change them after
	// Record (hand over a copy if the buffer is reused).
	Request, Response []byte
}

// Stats counts what a Logger has done since New.
type Stats struct {
	Written   int64 // lines in the file
	Dropped   int64 // entries not written: queue full, Logger closed, or a failed write
	Truncated int64 // written lines with at least one body cut to max_bytes
}

// Queue bounds. The entry count bounds the channel; the byte count bounds
// the bodies the queue keeps alive, since each may be megabytes.
const (
	defaultQueue      = 1024
	defaultQueueBytes = 64 << 20
)

// Logger writes payloads for the configured teams. Make one with New; the
// zero value is not usable, a nil *Logger is (it is off), and a Logger must
// not be copied. Enabled, Record and Stats are safe for concurrent use; call
// Close after the last Record has returned (a Record racing with Close is
// dropped). One Logger at a time may use a path: on a reload that keeps
// the path, close the old one before New, or keep it if nothing changed.
type Logger struct {
	teams map[string]struct{} // ids and names; read-only after New
	log   *slog.Logger
	now   func() time.Time
	enc   *encoder       // the goroutine's
	file  *rotatingFile  // the goroutine's
	hook  func(e *Entry) // tests: runs in the goroutine before each entry is written

	queue      chan Entry
	queued     atomic.Int64 // body bytes in queue and in the entry being written
	queueBytes int64

	stop    chan struct{}         // closed when Close begins: the goroutine drains the queue and exits
	done    chan struct{}         // closed when the goroutine has exited
	abort   atomic.Pointer[error] // set when Close's ctx ended, to its Err: drop what is still queued
	wg      sync.WaitGroup
	closing sync.Once
	result  error // the goroutine's outcome; written before done is closed

	// mu guards closed. Record holds it shared while it queues; Close takes
	// it exclusively to set closed, after which nothing enters the queue.
	mu     sync.RWMutex
	closed bool

	// failing is the goroutine's: writes are failing (logged once per streak).
	failing bool

	written, dropped, truncated atomic.Int64
}

// options are what tests change; New uses the defaults.
type options struct {
	queue      int
	queueBytes int64
	now        func() time.Time
	hook       func(e *Entry)
}

// New opens the file and starts the writer goroutine. It returns nil, nil
// when cfg names no team: payload logging is off. A nil log means
// slog.Default().
func New(cfg config.PayloadLogging, log *slog.Logger) (*Logger, error) {
	return newLogger(cfg, log, options{})
}

func newLogger(cfg config.PayloadLogging, log *slog.Logger, o options) (*Logger, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	if cfg.Path == "" || cfg.MaxBytes <= 0 || cfg.MaxFileBytes <= 0 {
		return nil, fmt.Errorf("new payload logger: want a path and positive sizes, got path %q, max_bytes %d, max_file_bytes %d",
			cfg.Path, cfg.MaxBytes, cfg.MaxFileBytes)
	}
	log = cmp.Or(log, slog.Default())
	f, err := openRotating(cfg.Path, cfg.MaxFileBytes, log)
	if err != nil {
		return nil, fmt.Errorf("new payload logger: %w", err)
	}
	l := &Logger{
		teams:      make(map[string]struct{}, len(cfg.Teams)),
		log:        log,
		now:        o.now,
		enc:        newEncoder(newRedactor(cfg.Redact), cfg.MaxBytes),
		file:       f,
		hook:       o.hook,
		queue:      make(chan Entry, cmp.Or(o.queue, defaultQueue)),
		queueBytes: cmp.Or(o.queueBytes, defaultQueueBytes),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	for _, t := range cfg.Teams {
		l.teams[t] = struct{}{}
	}
	l.wg.Go(func() {
		defer close(l.done)
		l.run()
	})
	return l, nil
}

// Enabled reports whether the team's payloads are logged, by its id or its
// name. It is a map lookup, no lock; false on a nil Logger.
func (l *Logger) Enabled(teamID, teamName string) bool {
	if l == nil {
		return false
	}
	if _, ok := l.teams[teamID]; ok && teamID != "" {
		return true
	}
	_, ok := l.teams[teamName]
	return ok && teamName != ""
}

// Record queues one entry and returns at once; it never blocks on I/O. When
// the queue is full (by count, or by the bytes of the bodies it holds) or
// the Logger is closed, the entry is dropped and counted. Record logs what
// it is given: ask Enabled first. Nothing happens on a nil Logger.
func (l *Logger) Record(e Entry) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	n := int64(len(e.Request) + len(e.Response))
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	// An entry larger than the byte bound still goes into an empty queue,
	// so that a big body is not refused forever.
	if total := l.queued.Add(n); total > l.queueBytes && total != n {
		l.queued.Add(-n)
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- e:
	default:
		l.queued.Add(-n)
		l.dropped.Add(1)
	}
}

// Stats returns the counters. They are read one by one, so a snapshot
// taken while entries flow may be off by the ones in motion.
func (l *Logger) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), Truncated: l.truncated.Load()}
}

// Close stops taking entries, writes what is queued, and closes the file.
// If ctx ends first, what is still queued is dropped (the entry being
// written is finished) and the error wraps ctx.Err(). Close waits for the
// goroutine in every case. Calling it again returns the same outcome; on a
// nil Logger it returns nil.
func (l *Logger) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.closing.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		if err := ctx.Err(); err != nil {
			l.abort.CompareAndSwap(nil, &err)
		}
		close(l.stop)
	})
	select {
	case <-l.done:
	case <-ctx.Done():
		err := ctx.Err()
		l.abort.CompareAndSwap(nil, &err)
	}
	l.wg.Wait()
	return l.result
}

// run is the writer goroutine. It looks at stop first, so that once Close
// has begun the queue is emptied by drain, which honours an abort.
func (l *Logger) run() {
	for {
		select {
		case <-l.stop:
			l.result = l.drain()
			return
		default:
		}
		select {
		case e := <-l.queue:
			l.handle(&e)
		case <-l.stop:
		}
	}
}

// drain writes what is queued once Close has begun (nothing enters the
// queue any more), or drops it after an abort, then closes the file.
func (l *Logger) drain() error {
	var lost int64
	for len(l.queue) > 0 {
		e := <-l.queue
		if l.abort.Load() == nil {
			l.handle(&e)
			continue
		}
		l.queued.Add(-int64(len(e.Request) + len(e.Response)))
		l.dropped.Add(1)
		lost++
	}
	var errs []error
	if lost > 0 {
		errs = append(errs, fmt.Errorf("%w; %d queued payloads dropped", *l.abort.Load(), lost))
	}
	if err := l.file.close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close payload log: %w", err)
	}
	return nil
}

// handle writes one entry. A panic (a bug in redaction or encoding) is
// logged with its stack and the entry dropped; the goroutine goes on.
func (l *Logger) handle(e *Entry) {
	defer l.queued.Add(-int64(len(e.Request) + len(e.Response)))
	defer func() {
		if p := recover(); p != nil {
			l.dropped.Add(1)
			l.log.Error("payload logger panicked; entry dropped",
				slog.String("request_id", e.RequestID), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	if l.hook != nil {
		l.hook(e)
	}
	b, truncated, err := l.enc.encode(e)
	if err == nil {
		err = l.file.write(b)
	}
	if err != nil {
		l.dropped.Add(1)
		if !l.failing {
			l.log.Error("payload log write failed; entries are dropped until it works",
				slog.String("request_id", e.RequestID), slog.Any("err", err))
		}
		l.failing = true
		return
	}
	if l.failing {
		l.log.Info("payload log writable again")
		l.failing = false
	}
	l.written.Add(1)
	if truncated {
		l.truncated.Add(1)
	}
}
