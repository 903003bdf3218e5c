package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// wrkResult is the JSON line chat.lua's done() prints.
type wrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Bytes      int64 `json:"bytes"`
	Errors     struct {
		Connect, Read, Write, Status, Timeout int64
	} `json:"errors"`
	LatencyUS struct {
		Min  int64   `json:"min"`
		Mean float64 `json:"mean"`
		Max  int64   `json:"max"`
		P50  int64   `json:"p50"`
		P90  int64   `json:"p90"`
		P99  int64   `json:"p99"`
		P999 int64   `json:"p999"`
	} `json:"latency_us"`
	// Hist is wrk's latency histogram, printed when BENCH_HIST=1: wrk's
	// counts, its coordinated-omission correction included (requestHist).
	Hist hist `json:"hist"`
}

func (w wrkResult) errorCount() int64 {
	e := w.Errors
	return e.Connect + e.Read + e.Write + e.Status + e.Timeout
}

// parseWrk finds the BENCH_JSON line in wrk's output. With the histogram
// the line can be far longer than a bufio.Scanner's default token.
func parseWrk(out []byte) (wrkResult, error) {
	var res wrkResult
	for rest := out; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if js, ok := bytes.CutPrefix(line, []byte("BENCH_JSON ")); ok {
			err := json.Unmarshal(js, &res)
			return res, err
		}
	}
	return res, errors.New("no BENCH_JSON line in wrk output")
}

// requestHist is w's histogram with wrk's coordinated-omission correction
// taken out: one count per request answered. After the run wrk
// (stats_correct) takes e = duration / (requests / conns), one
// connection's mean interval between requests, and for every latency n ≥
// 2e adds its count again at n − e, n − 2e, … while above e, as if the
// requests a slow answer held back had been sent on time. So a corrected
// count above e is the sum of the true counts at v, v + e, v + 2e, …, and
// the true count at v is corrected(v) − corrected(v + e); at e and below
// nothing was added. wrk's own percentiles (closed-c32) are of the
// corrected histogram.
func (w wrkResult) requestHist(conns int) (hist, error) {
	perConn := w.Requests / int64(max(conns, 1))
	if perConn == 0 {
		return w.Hist, nil // wrk corrects nothing then
	}
	e := w.DurationUS / perConn
	at := make(map[int64]int64, len(w.Hist))
	for _, b := range w.Hist {
		at[b.us()] = b.n()
	}
	var out hist
	var sum int64
	for _, b := range w.Hist {
		n := b.n()
		if b.us() > e {
			n -= at[b.us()+e]
		}
		if n < 0 {
			return nil, fmt.Errorf("wrk histogram: %d requests at %d µs after undoing the correction (interval %d µs)", n, b.us(), e)
		}
		if n > 0 {
			out = append(out, bucket{b.us(), n})
			sum += n
		}
	}
	// A latency past --timeout is not in the histogram: wrk counts it as a timeout.
	if sum > w.Requests || sum < w.Requests-w.Errors.Timeout {
		return nil, fmt.Errorf("wrk histogram: %d requests after undoing the correction, wrk answered %d", sum, w.Requests)
	}
	return out, nil
}

// runWrk runs wrk with chat.lua: closed loop, conns connections on threads
// threads for d. It returns the parsed result and the command line. With
// withHist the result carries wrk's latency histogram.
func runWrk(ctx context.Context, script string, r request, conns, threads int, d time.Duration, withHist bool) (wrkResult, string, error) {
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--timeout", "10s", "--latency", "-s", script, r.url}
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Env = append(os.Environ(), "BENCH_BODY="+string(r.body), "BENCH_HEADERS="+headerLines(r.header))
	if withHist {
		cmd.Env = append(cmd.Env, "BENCH_HIST=1")
	}
	out, err := cmd.CombinedOutput()
	line := "wrk " + strings.Join(args, " ")
	if err != nil {
		return wrkResult{}, line, fmt.Errorf("wrk: %v: %s", err, lastLines(out, 5))
	}
	res, err := parseWrk(out)
	if err != nil {
		return res, line, fmt.Errorf("%v: %s", err, lastLines(out, 5))
	}
	return res, line, nil
}

// headerLines renders h as "Name: value" lines, sorted.
func headerLines(h http.Header) string {
	var lines []string
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
