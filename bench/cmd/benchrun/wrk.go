package main

import (
	"bufio"
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
}

func (w wrkResult) errorCount() int64 {
	e := w.Errors
	return e.Connect + e.Read + e.Write + e.Status + e.Timeout
}

// parseWrk finds the BENCH_JSON line in wrk's output.
func parseWrk(out []byte) (wrkResult, error) {
	var res wrkResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "BENCH_JSON "); ok {
			err := json.Unmarshal([]byte(line), &res)
			return res, err
		}
	}
	return res, errors.New("no BENCH_JSON line in wrk output")
}

// runWrk runs wrk with chat.lua: closed loop, conns connections on threads
// threads for d. It returns the parsed result and the command line.
func runWrk(ctx context.Context, script string, r request, conns, threads int, d time.Duration) (wrkResult, string, error) {
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--timeout", "10s", "--latency", "-s", script, r.url}
	cmd := exec.CommandContext(ctx, "wrk", args...)
	cmd.Env = append(os.Environ(), "BENCH_BODY="+string(r.body), "BENCH_HEADERS="+headerLines(r.header))
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
