package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Headers the probe transport adds to each response (after its body was read)
// so that they come back in vegeta's Result.Headers.
const (
	hdrTTFB   = "X-Bench-Ttfb-Ns"    // request start to first body byte
	hdrEvents = "X-Bench-Events"     // SSE events seen ("\n\n" terminators)
	hdrMaxGap = "X-Bench-Max-Gap-Ns" // longest gap between two events
	hdrDone   = "X-Bench-Done"       // "1" when the body ended with data: [DONE]
)

// probeTransport wraps an http.Transport and measures, per response, the time
// to first body byte, the SSE events, the longest gap between two of them and
// whether the stream ended with [DONE]. It also counts responses in flight.
type probeTransport struct {
	base     *http.Transport
	inflight atomic.Int64
	peak     atomic.Int64
}

// newProbeTransport keeps up to maxInFlight idle connections (at most
// maxProbeConns), so that a load of that many requests in flight reuses
// them instead of dialling new ones.
func newProbeTransport(maxInFlight uint64) *probeTransport {
	maxConns := int(min(maxInFlight, maxProbeConns))
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &probeTransport{base: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // no Accept-Encoding: every target sends the same bytes
		ForceAttemptHTTP2:   false,
	}}
}

// maxProbeConns bounds a probe transport's idle connections.
const maxProbeConns = 20000

func (t *probeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	n := t.inflight.Add(1)
	for {
		p := t.peak.Load()
		if n <= p || t.peak.CompareAndSwap(p, n) {
			break
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.inflight.Add(-1)
		return nil, err
	}
	resp.Body = &probeBody{rc: resp.Body, start: start, hdr: resp.Header, t: t}
	return resp, nil
}

// probeBody observes a response body as it is read.
type probeBody struct {
	rc     io.ReadCloser
	t      *probeTransport
	hdr    http.Header
	start  time.Time
	first  time.Duration
	got    bool
	prevNL bool      // the previous byte was '\n'
	events int       // "\n\n" seen
	last   time.Time // when the last event ended
	maxGap time.Duration
	tail   []byte // the last bytes, to find [DONE]
	closed bool
}

func (b *probeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		now := time.Now()
		if !b.got {
			b.got, b.first = true, now.Sub(b.start)
		}
		for _, c := range p[:n] {
			if c == '\n' && b.prevNL {
				if b.events > 0 {
					b.maxGap = max(b.maxGap, now.Sub(b.last))
				}
				b.events++
				b.last = now
			}
			b.prevNL = c == '\n'
		}
		b.tail = append(b.tail, p[:n]...)
		if len(b.tail) > 64 {
			b.tail = b.tail[len(b.tail)-64:]
		}
	}
	if err == io.EOF {
		b.publish()
	}
	return n, err
}

func (b *probeBody) publish() {
	b.hdr.Set(hdrTTFB, strconv.FormatInt(int64(b.first), 10))
	b.hdr.Set(hdrEvents, strconv.Itoa(b.events))
	b.hdr.Set(hdrMaxGap, strconv.FormatInt(int64(b.maxGap), 10))
	if bytes.Contains(b.tail, []byte("data: [DONE]")) {
		b.hdr.Set(hdrDone, "1")
	}
}

func (b *probeBody) Close() error {
	if !b.closed {
		b.closed = true
		b.t.inflight.Add(-1)
	}
	return b.rc.Close()
}

// countPacer paces at a constant rate and stops after n hits, so every
// open-loop scenario sends an exact, bounded number of requests.
type countPacer struct {
	vegeta.ConstantPacer
	n uint64
}

func (p countPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= p.n {
		return 0, true
	}
	return p.ConstantPacer.Pace(elapsed, hits)
}

// request is one kind of request a scenario sends.
type request struct {
	url    string
	body   []byte
	header http.Header
}

// sample is what one request produced.
type sample struct {
	latency  time.Duration
	ttfb     time.Duration
	code     int
	err      string
	events   int
	done     bool
	maxGap   time.Duration
	overhead float64 // x-tollgate-overhead-ms, -1 when absent
}

// openLoop is the result of one vegeta attack.
type openLoop struct {
	samples  []sample
	elapsed  time.Duration // first request sent to last response received
	sendSpan time.Duration // first to last request sent
	sends    int           // intervals between sends in sendSpan: samples - 1 (summed over merged slices)
	peakOpen int64
}

// attack sends n requests at rate per second (open loop: each is sent at its
// scheduled time whatever the state of the others, up to maxWorkers in
// flight) and collects the results. onTick, when set, runs every second
// while results come in. pt, when not nil, is the transport to use and
// keep open (a scenario's slices share one, so that its connections
// persist); nil: a new one, closed on return.
func attack(ctx context.Context, pt *probeTransport, r request, rate float64, n uint64, timeout time.Duration, maxWorkers uint64, onTick func()) openLoop {
	if pt == nil {
		pt = newProbeTransport(maxWorkers)
		defer pt.base.CloseIdleConnections()
	}
	pt.peak.Store(pt.inflight.Load()) // this attack's peak
	client := &http.Client{Transport: pt, Timeout: timeout}
	workers := uint64(math.Min(math.Max(rate/10, 8), float64(maxWorkers)))
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.Workers(workers),
		vegeta.MaxWorkers(maxWorkers),
		vegeta.MaxBody(0), // keep no body: the probe reads it all and notes what it needs
	)
	tgt := vegeta.Target{Method: http.MethodPost, URL: r.url, Body: r.body, Header: r.header}
	pacer := countPacer{ConstantPacer: vegeta.ConstantPacer{Freq: int(math.Round(rate)), Per: time.Second}, n: n}
	if rate < 1 {
		pacer.ConstantPacer = vegeta.ConstantPacer{Freq: 1, Per: time.Duration(float64(time.Second) / rate)}
	}
	out := openLoop{samples: make([]sample, 0, n)}
	results := atk.Attack(vegeta.NewStaticTargeter(tgt), pacer, 0, "bench")
	var tick <-chan time.Time
	if onTick != nil {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	var first, lastSent, lastEnd time.Time
	stopped := false
	for {
		select {
		case <-ctx.Done():
			if !stopped {
				atk.Stop()
				stopped = true
			}
		case <-tick:
			onTick()
		case res, ok := <-results:
			if !ok {
				out.elapsed = lastEnd.Sub(first)
				out.sendSpan = lastSent.Sub(first)
				out.sends = max(len(out.samples)-1, 0)
				out.peakOpen = pt.peak.Load()
				return out
			}
			if first.IsZero() || res.Timestamp.Before(first) {
				first = res.Timestamp
			}
			if res.Timestamp.After(lastSent) {
				lastSent = res.Timestamp
			}
			if res.End().After(lastEnd) {
				lastEnd = res.End()
			}
			out.samples = append(out.samples, toSample(res))
		}
	}
}

func toSample(res *vegeta.Result) sample {
	s := sample{latency: res.Latency, code: int(res.Code), err: res.Error, overhead: -1}
	if h := res.Headers; h != nil {
		ns, _ := strconv.ParseInt(h.Get(hdrTTFB), 10, 64)
		s.ttfb = time.Duration(ns)
		s.events, _ = strconv.Atoi(h.Get(hdrEvents))
		gap, _ := strconv.ParseInt(h.Get(hdrMaxGap), 10, 64)
		s.maxGap = time.Duration(gap)
		s.done = h.Get(hdrDone) == "1"
		if v := h.Get("X-Tollgate-Overhead-Ms"); v != "" {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				s.overhead = f
			}
		}
	}
	return s
}

// pcts are latency percentiles in milliseconds.
type pcts struct {
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// percentiles computes exact nearest-rank percentiles of ds.
func percentiles(ds []time.Duration) pcts {
	if len(ds) == 0 {
		return pcts{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return ms(s[i])
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return pcts{
		Mean: ms(sum / time.Duration(len(s))),
		P50:  rank(0.50),
		P90:  rank(0.90),
		P99:  rank(0.99),
		Max:  ms(s[len(s)-1]),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tally summarises samples: successes, errors (by first message) and the
// mean x-tollgate-overhead-ms.
type tally struct {
	ok, errors   int
	firstError   string
	overheadMean float64
	overheadN    int
	lat, ttfb    []time.Duration
	gaps         []time.Duration
	events       []int
}

// count classifies samples; a stream must end with [DONE] and carry at least
// minEvents events to count as a success.
func count(samples []sample, stream bool, minEvents int) *tally {
	t := &tally{}
	var oh float64
	for _, s := range samples {
		bad := s.err != "" || s.code != http.StatusOK
		if !bad && stream && (!s.done || s.events < minEvents) {
			bad = true
			if s.err == "" {
				s.err = "stream ended without [DONE] or with too few events (" + strconv.Itoa(s.events) + ")"
			}
		}
		if bad {
			t.errors++
			if t.firstError == "" {
				t.firstError = s.err
				if t.firstError == "" {
					t.firstError = "HTTP " + strconv.Itoa(s.code)
				}
			}
			continue
		}
		t.ok++
		t.lat = append(t.lat, s.latency)
		t.ttfb = append(t.ttfb, s.ttfb)
		t.gaps = append(t.gaps, s.maxGap)
		t.events = append(t.events, s.events)
		if s.overhead >= 0 {
			oh += s.overhead
			t.overheadN++
		}
	}
	if t.overheadN > 0 {
		t.overheadMean = oh / float64(t.overheadN)
	}
	return t
}
