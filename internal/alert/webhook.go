package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Webhook delivery limits.
const (
	// queueSize bounds the deliveries waiting for the sender; past it the
	// oldest is dropped. Events are rare (a few per rule per cooldown), so a
	// full queue means the receivers are down, and the newest news wins.
	queueSize = 256
	// maxTries is how many times one delivery is attempted.
	maxTries = 3
	// attemptTimeout bounds one POST even when the client has no timeout.
	attemptTimeout = 10 * time.Second
	// defaultClientTimeout is the timeout of the client New makes.
	defaultClientTimeout = 5 * time.Second
	// retryBase is the wait after the first failed try; it doubles after each.
	retryBase = time.Second
)

// delivery is one event for one webhook, its body already encoded.
type delivery struct {
	url    string
	target string // url redacted to scheme://host, for logs
	name   string // the alert's name, for logs
	body   []byte
}

// sender delivers webhooks from a bounded queue on one goroutine, which
// newSender starts and close stops; nothing that enqueues ever waits on the
// network.
type sender struct {
	client  *http.Client
	log     *slog.Logger
	backoff func(try int) time.Duration // wait after failed try number try (from 1)

	mu      sync.Mutex // guards queue, head, n and closing
	queue   [queueSize]delivery
	head, n int  // the oldest delivery is queue[head]; n are queued
	closing bool // close has begun: enqueue drops, the goroutine drains and exits

	wake  chan struct{} // capacity 1: the queue grew, or closing began
	abort context.CancelFunc
	// aborted ends when close gives up: the POST in flight and any wait
	// between tries end at once.
	aborted context.Context
	done    chan struct{} // closed when the goroutine has returned

	delivered, failed, dropped atomic.Uint64
}

func newSender(client *http.Client, log *slog.Logger) *sender {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{
		client:  client,
		log:     log,
		backoff: func(try int) time.Duration { return retryBase << (try - 1) },
		wake:    make(chan struct{}, 1),
		abort:   cancel,
		aborted: ctx,
		done:    make(chan struct{}),
	}
	go s.run()
	return s
}

// enqueue adds d without waiting. When the queue is full it drops the
// oldest delivery; after close it drops d.
func (s *sender) enqueue(d delivery) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	var lost *delivery
	if s.n == queueSize {
		old := s.queue[s.head]
		lost = &old
		s.queue[s.head] = delivery{}
		s.head = (s.head + 1) % queueSize
		s.n--
	}
	s.queue[(s.head+s.n)%queueSize] = d
	s.n++
	s.mu.Unlock()
	if lost != nil {
		s.dropped.Add(1)
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "alert: webhook queue full; dropped the oldest delivery",
			slog.String("event", "alert_webhook_dropped"), slog.String("name", lost.name), slog.String("target", lost.target))
	}
	s.signal()
}

func (s *sender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sender) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// next waits for a delivery. It returns false when the sender must stop:
// closing with the queue empty, or aborted.
func (s *sender) next() (delivery, bool) {
	for {
		if s.aborted.Err() != nil {
			return delivery{}, false
		}
		s.mu.Lock()
		if s.n > 0 {
			d := s.queue[s.head]
			s.queue[s.head] = delivery{}
			s.head = (s.head + 1) % queueSize
			s.n--
			s.mu.Unlock()
			return d, true
		}
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return delivery{}, false
		}
		select {
		case <-s.wake:
		case <-s.aborted.Done():
		}
	}
}

// run is the sender goroutine: it delivers until close.
func (s *sender) run() {
	defer close(s.done)
	for {
		d, ok := s.next()
		if !ok {
			return
		}
		s.deliverSafely(d)
	}
}

// deliverSafely is deliver with a panic logged instead of ending the sender.
func (s *sender) deliverSafely(d delivery) {
	defer func() {
		if p := recover(); p != nil {
			s.failed.Add(1)
			s.log.LogAttrs(context.Background(), slog.LevelError, "alert: webhook delivery panicked",
				slog.String("event", "alert_webhook_failed"), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	s.deliver(d)
}

// deliver POSTs d, trying up to maxTries times with a doubling wait between.
func (s *sender) deliver(d delivery) {
	for try := 1; ; try++ {
		err := s.post(d)
		if err == nil {
			s.delivered.Add(1)
			return
		}
		if s.aborted.Err() != nil {
			s.dropped.Add(1)
			return
		}
		var perm permanentError
		if errors.As(err, &perm) || try == maxTries {
			s.failed.Add(1)
			s.log.LogAttrs(context.Background(), slog.LevelWarn, "alert: webhook delivery failed",
				slog.String("event", "alert_webhook_failed"), slog.String("name", d.name),
				slog.String("target", d.target), slog.Int("tries", try), slog.Any("error", err))
			return
		}
		if !s.sleep(s.backoff(try)) {
			s.dropped.Add(1)
			return
		}
	}
}

// permanentError is a failure that trying again will not change: a 4xx
// other than 408 and 429, or a request that cannot be built.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }

func (e permanentError) Unwrap() error { return e.err }

// post makes one try.
func (s *sender) post(d delivery) error {
	ctx, cancel := context.WithTimeout(s.aborted, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return permanentError{fmt.Errorf("build request to %s: invalid URL", d.target)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tollgate-alert")
	resp, err := s.client.Do(req)
	if err != nil {
		// The error text holds the URL, which may be a secret.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("post to %s: %w", d.target, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		return permanentError{fmt.Errorf("post to %s: refused with status %d", d.target, c)}
	default:
		return fmt.Errorf("post to %s: status %d", d.target, c)
	}
}

// sleep waits d, and reports false if the sender was aborted meanwhile.
func (s *sender) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.aborted.Done():
		return false
	}
}

// close stops taking deliveries, lets the goroutine work through the queue
// until ctx ends, then aborts what is left and waits for the goroutine.
func (s *sender) close(ctx context.Context) error {
	before := s.dropped.Load()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.signal()
	stop := context.AfterFunc(ctx, s.abort)
	<-s.done
	stop()
	s.abort()

	s.mu.Lock()
	left := s.n
	s.queue, s.head, s.n = [queueSize]delivery{}, 0, 0
	s.mu.Unlock()
	s.dropped.Add(uint64(left))
	if lost := s.dropped.Load() - before; lost > 0 && ctx.Err() != nil {
		return fmt.Errorf("alert: stop webhook sender: %d deliveries abandoned: %w", lost, ctx.Err())
	}
	return nil
}

// redact keeps a webhook URL's scheme and host: its path and query may
// hold a token.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(webhook)"
	}
	return u.Scheme + "://" + u.Host
}
