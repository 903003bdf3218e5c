package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scenario is one load shape.
type scenario struct {
	id    string
	kind  string // open, closed, stream, soak
	rate  float64
	conns int
	n     int // soak: concurrent streams
	// rounds: run in this many interleaved rounds, a slice of
	// params.floorSlice (floor-c1) or params.openSlice (open, stream) per
	// target in each (rounds.go says why); 0: one run of the whole duration
	// per target.
	rounds int
}

func scenarios(p params) []scenario {
	var out []scenario
	open := 0
	if p.OpenRounds > 1 {
		open = p.OpenRounds
	}
	for _, r := range p.Rates {
		out = append(out, scenario{id: fmt.Sprintf("open-%g", r), kind: "open", rate: r, rounds: open})
	}
	out = append(out, scenario{id: fmt.Sprintf("closed-c%d", p.Conns), kind: "closed", conns: p.Conns})
	out = append(out, scenario{id: "floor-c1", kind: "closed", conns: 1, rounds: p.FloorRounds})
	for _, r := range p.StreamRates {
		out = append(out, scenario{id: fmt.Sprintf("stream-%g", r), kind: "stream", rate: r, rounds: open})
	}
	for _, n := range p.SoakSteps {
		out = append(out, scenario{id: fmt.Sprintf("soak-%d", min(n, p.SoakCap1)), kind: "soak", n: min(n, p.SoakCap1)})
	}
	return out
}

func (t *target) request(stream bool) request {
	maxTokens := nonStreamMax
	if stream {
		maxTokens = streamTokens
	}
	h := t.header.Clone()
	h.Set("Content-Type", "application/json")
	return request{url: t.baseURL + "/chat/completions", body: chatBody(t.model, maxTokens, stream), header: h}
}

func (t *target) soakRequest(l *lab) request {
	h := t.soakHeader(l)
	h.Set("Content-Type", "application/json")
	return request{url: t.soakURL + "/chat/completions", body: chatBody(t.soakModel, l.p.soakTokens(), true), header: h}
}

// validate sends one request of each kind and checks the answers have the
// benchmark's shape, so that a misrouted target fails loudly instead of
// producing fast numbers for error pages.
func validate(ctx context.Context, t *target, l *lab) error {
	client := &http.Client{Timeout: 30 * time.Second}
	for _, stream := range []bool{false, true} {
		r := t.request(stream)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
		req.Header = r.header
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		snippet := string(body[:min(len(body), 300)])
		switch {
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("stream=%v: HTTP %d: %s", stream, resp.StatusCode, snippet)
		case !stream && (!bytes.Contains(body, []byte(`"chat.completion"`)) || len(body) < 1000):
			return fmt.Errorf("non-stream answer is not the mock's ~1.4 KB completion (%d bytes): %s", len(body), snippet)
		case stream && (!bytes.Contains(body, []byte("data: [DONE]")) || bytes.Count(body, []byte(`"delta":{"content":"`)) < streamTokens):
			return fmt.Errorf("stream has not %d content chunks and [DONE]: %s", streamTokens, snippet)
		}
	}
	return nil
}

// warmUp sends a second of traffic of each kind and ignores it: connection
// pools, JIT (Node), caches.
func warmUp(ctx context.Context, t *target, l *lab) {
	attack(ctx, nil, t.request(false), 200, 200, 30*time.Second, l.p.MaxWorkers, nil)
	attack(ctx, nil, t.request(true), 50, 50, 30*time.Second, l.p.MaxWorkers, nil)
}

// runScenario runs sc against t, sampling t's processes (CPU before and
// after, RSS and goroutines while it runs). pt, when not nil, is the
// transport of an open-loop scenario's slices (runner.probe).
func runScenario(ctx context.Context, l *lab, t *target, sc scenario, pt *probeTransport) scenarioResult {
	res := scenarioResult{Scenario: sc.id, Kind: sc.kind, Target: t.Name, Status: "ok"}
	soak := sc.kind == "soak"
	pidsOf := func() []int { return t.pids(soak) }
	// /metrics (goroutines, the gateway's own RSS) is scraped at the start,
	// the end and every 5 s between, as a Prometheus would at most; a soak
	// reports its goroutines' peak, so it scrapes every second.
	every, scrapeEvery := 250*time.Millisecond, 5*time.Second
	if soak {
		every, scrapeEvery = time.Second, time.Second
	}
	smp := newSampler(pidsOf, t.metricsURL, every, scrapeEvery)
	before := measure(pidsOf())
	res.RSSBeforeMB = mb(before.rssBytes)
	smp.start()
	var served int
	switch sc.kind {
	case "open", "stream":
		served = runOpen(ctx, l, t, sc, pt, &res)
	case "closed":
		served = runClosed(ctx, l, t, sc, &res)
	case "soak":
		served = runSoak(ctx, l, t, sc, &res)
	}
	smp.finish()
	after := measure(pidsOf())
	res.CPUSeconds = float64(after.cpuTicks-before.cpuTicks) / clockTicks
	if served > 0 {
		res.CPUPerReqUs = res.CPUSeconds / float64(served) * 1e6
	}
	res.RSSMaxMB = mb(smp.maxRSS)
	res.ThreadsMax = smp.maxThreads
	res.GoroutinesMax = smp.maxGoroutines
	res.MetricsRSSMB = smp.maxPromRSS / (1 << 20)
	return res
}

// runOpen is an open-loop scenario: rate requests per second for the
// scenario's duration, each sent on schedule whatever the others do. A
// scenario in rounds runs one slice, on pt, and keeps its samples, to be
// merged.
func runOpen(ctx context.Context, l *lab, t *target, sc scenario, pt *probeTransport, res *scenarioResult) int {
	d := l.p.Duration
	if sc.rounds > 0 {
		d = l.p.openSlice()
	}
	n := uint64(math.Round(sc.rate * d.Seconds()))
	out := attack(ctx, pt, t.request(sc.kind == "stream"), sc.rate, n, 30*time.Second, l.p.MaxWorkers, nil)
	res.Command = fmt.Sprintf("vegeta (library): %g req/s, %d requests, max %d in flight", sc.rate, n, l.p.MaxWorkers)
	res.openStats(out, sc.rate)
	if sc.rounds > 0 {
		res.loop = out
	}
	return len(out.samples)
}

// openStats fills res from an attack's result: one run's, or a target's
// slices' put together (mergeSlices).
func (res *scenarioResult) openStats(out openLoop, rate float64) {
	stream := res.Kind == "stream"
	tl := count(out.samples, stream, streamTokens)
	res.fill(tl, len(out.samples))
	res.RateTarget = rate
	if out.sendSpan > 0 && out.sends > 0 {
		res.RateAchieved = float64(out.sends) / out.sendSpan.Seconds()
	}
	res.PeakOpen = out.peakOpen
	if out.elapsed > 0 {
		res.ThroughputRPS = float64(tl.ok) / out.elapsed.Seconds()
	}
	// Behind schedule: requests could not be sent on time, some failed, or
	// answers came back slower than they were asked for (a queue built up).
	res.Saturated = res.RateAchieved < 0.95*rate || tl.errors > 0 || res.ThroughputRPS < 0.9*rate
	if stream {
		tt := percentiles(tl.ttfb)
		res.TTFB = &tt
		res.EventsP50 = medianInt(tl.events)
	}
}

// runClosed is a closed-loop scenario with wrk (conns connections, each
// sending its next request when the previous answer is in). A scenario in
// rounds runs one slice and keeps its histogram, to be merged.
func runClosed(ctx context.Context, l *lab, t *target, sc scenario, res *scenarioResult) int {
	if _, err := exec.LookPath("wrk"); err != nil {
		res.Status, res.Note = "unavailable", "wrk is not installed"
		return 0
	}
	threads := min(sc.conns, 2)
	d, slice := l.p.Duration, sc.rounds > 0
	if slice {
		d = l.p.floorSlice()
	}
	w, line, err := runWrk(ctx, filepath.Join(l.root, "bench", "wrk", "chat.lua"), t.request(false), sc.conns, threads, d, slice)
	res.Command = line
	if err != nil {
		res.Status, res.Note = "failed", err.Error()
		return 0
	}
	res.Sent = int(w.Requests)
	res.Errors = int(w.errorCount())
	res.OK = res.Sent - res.Errors
	if res.Errors > 0 {
		res.FirstError = fmt.Sprintf("wrk errors: %+v", w.Errors)
	}
	if w.DurationUS > 0 {
		res.ThroughputRPS = float64(res.OK) / (float64(w.DurationUS) / 1e6)
	}
	us := func(v int64) float64 { return float64(v) / 1000 }
	res.Latency = pcts{Mean: w.LatencyUS.Mean / 1000, P50: us(w.LatencyUS.P50), P90: us(w.LatencyUS.P90), P99: us(w.LatencyUS.P99), Max: us(w.LatencyUS.Max)}
	if slice {
		h, err := w.requestHist(sc.conns)
		if err != nil {
			res.Status, res.Note = "failed", err.Error()
		}
		res.hist, res.Latency, res.wrkSeconds = h, h.pcts(), float64(w.DurationUS)/1e6
	}
	return res.Sent
}

// runSoak opens n slow streams (a chunk every 100 ms for the soak's length),
// ramped at BENCH_SOAK_RAMP per second, and holds them to their end.
func runSoak(ctx context.Context, l *lab, t *target, sc scenario, res *scenarioResult) int {
	n := l.p.soakStreams(t, sc)
	res.Streams = n
	if n < sc.n {
		res.Note = fmt.Sprintf("capped at N=%d: two descriptors per stream under a limit of %d", n, l.p.NoFile)
	}
	timeout := time.Duration(l.p.SoakSeconds+60) * time.Second
	ramp := math.Min(l.p.SoakRamp, float64(n))
	out := attack(ctx, nil, t.soakRequest(l), ramp, uint64(n), timeout, uint64(n)+10, nil)
	res.Command = fmt.Sprintf("vegeta (library): %d streams opened at %g/s, each %d tokens at 10/s", n, ramp, l.p.soakTokens())
	tl := count(out.samples, true, l.p.soakTokens())
	res.fill(tl, len(out.samples))
	res.PeakOpen = out.peakOpen
	gaps := percentiles(tl.gaps)
	res.MaxGapP50Ms, res.MaxGapMaxMs = gaps.P50, gaps.Max
	res.EventsP50 = medianInt(tl.events)
	tt := percentiles(tl.ttfb)
	res.TTFB = &tt
	return len(out.samples)
}

func medianInt(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// readyResult is the start-to-ready measurement.
type readyResult struct {
	Runs     []float64 `json:"runs_ms"`
	MedianMs float64   `json:"median_ms"`
	RSSMB    float64   `json:"rss_at_ready_mb"`
	Error    string    `json:"error,omitempty"`
}

// measureReady starts tollgate with tollgate-full's configuration and an
// empty (0-byte) SQLite file, and times exec to the first 200 from /readyz.
func measureReady(ctx context.Context, l *lab) *readyResult {
	out := &readyResult{}
	var rss []float64
	for i := range l.p.ReadyRuns {
		dir := filepath.Join(l.work, fmt.Sprintf("ready-%d", i))
		_ = os.MkdirAll(dir, 0o755)
		port, err := freePort()
		if err != nil {
			out.Error = err.Error()
			return out
		}
		db := filepath.Join(dir, "tollgate.db")
		_ = os.WriteFile(db, nil, 0o644)
		cfg := filepath.Join(dir, "tollgate.yaml")
		_ = os.WriteFile(cfg, []byte(tollgateConfig(port, db, l.fastPort, l.slowPort, true)), 0o644)
		start := time.Now()
		c, err := startChild("tollgate (start-to-ready)", []string{l.tollgate, "serve", "--config", cfg},
			[]string{"TOLLGATE_MASTER_KEY=" + l.masterKey}, dir, filepath.Join(dir, "log.json"))
		if err != nil {
			out.Error = err.Error()
			return out
		}
		_, err = waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", port), c, 20*time.Second)
		d := time.Since(start)
		if err == nil {
			out.Runs = append(out.Runs, ms(d))
			rss = append(rss, mb(measure([]int{c.pid()}).rssBytes))
		} else {
			out.Error = err.Error()
		}
		c.stop(10 * time.Second)
	}
	if len(out.Runs) > 0 {
		s := slices.Clone(out.Runs)
		slices.Sort(s)
		out.MedianMs = s[len(s)/2]
		slices.Sort(rss)
		out.RSSMB = rss[len(rss)/2]
	}
	return out
}

// microResult is the in-process allocation benchmark.
type microResult struct {
	Command string             `json:"command"`
	Benches map[string]benchNs `json:"benchmarks"`
	Error   string             `json:"error,omitempty"`
}

type benchNs struct {
	NsOp     float64 `json:"ns_op"`
	BytesOp  float64 `json:"bytes_op"`
	AllocsOp float64 `json:"allocs_op"`
}

// runMicro runs the gateway's end-to-end in-process benchmarks with
// -benchmem: BenchmarkChatNonStream (client → gateway → mock in one process),
// BenchmarkMockDirect (client → mock: what the gateway does not add) and
// BenchmarkChatTenant (with a virtual key, limits, budget and ledger), and
// BenchmarkGatewayInProcess (the gateway alone, no sockets: the allocation
// target's figure).
func runMicro(ctx context.Context, root, benchtime string) *microResult {
	args := []string{"test", "-run", "^$", "-bench", "^(BenchmarkChatNonStream|BenchmarkMockDirect|BenchmarkChatTenant|BenchmarkGatewayInProcess)$",
		"-benchmem", "-benchtime", benchtime, "-count", "1", "./internal/gateway"}
	out := &microResult{Command: "go " + strings.Join(args, " "), Benches: map[string]benchNs{}}
	goBin := "go"
	if _, err := exec.LookPath("go"); err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		var r benchNs
		for i := 2; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseFloat(f[i], 64)
			switch f[i+1] {
			case "ns/op":
				r.NsOp = v
			case "B/op":
				r.BytesOp = v
			case "allocs/op":
				r.AllocsOp = v
			}
		}
		out.Benches[name] = r
	}
	if err != nil {
		out.Error = fmt.Sprintf("%v: %s", err, lastLines(b, 8))
	}
	return out
}

// machineInfo describes the machine.
type machineInfo struct {
	CPU    string `json:"cpu"`
	NProc  int    `json:"nproc"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	Load   string `json:"loadavg_at_start"`
	NoFile uint64 `json:"rlimit_nofile"`
}

func machine() machineInfo {
	m := machineInfo{}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	m.NProc, _ = strconv.Atoi(commandVersion("nproc"))
	if out, err := exec.Command("free", "-m").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 1 {
			m.Memory = strings.Join(strings.Fields(lines[1]), " ") + " (free -m: total used free shared buff/cache available)"
		}
	}
	m.Kernel = commandVersion("uname", "-sr")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.TrimSpace(string(b))
	}
	return m
}

// versions records the versions of everything in the run. git is only read.
func versions(root, bin string) map[string]string {
	v := map[string]string{}
	goBin := "go"
	if _, err := exec.LookPath("go"); err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	v["go"] = commandVersion(goBin, "version")
	if p, err := exec.LookPath("nginx"); err == nil {
		v["nginx"] = commandVersion(p, "-v")
	} else {
		v["nginx"] = "not installed"
	}
	if p, err := exec.LookPath("wrk"); err == nil {
		w, _, _ := strings.Cut(commandVersion(p, "-v"), " Copyright")
		v["wrk"] = w
	} else {
		v["wrk"] = "not installed"
	}
	if p, err := exec.LookPath("node"); err == nil {
		v["node"] = commandVersion(p, "--version")
	}
	pk := filepath.Join(root, "bench", ".peers", "portkey", "node_modules")
	v["portkey"] = packageVersion(filepath.Join(pk, "@portkey-ai", "gateway", "package.json"))
	v["portkey @hono/node-server"] = packageVersion(filepath.Join(pk, "@hono", "node-server", "package.json"))
	v["vegeta"] = "github.com/tsenart/vegeta/v12 v12.13.0 (library)"
	commit := commandVersion("git", "-C", root, "rev-parse", "--short", "HEAD")
	dirty, _ := exec.Command("git", "--no-optional-locks", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if n := len(strings.Fields(string(dirty))) / 2; n > 0 {
		commit += fmt.Sprintf(" + %d modified tracked files (uncommitted work in the tree was measured)", n)
	}
	v["tollgate"] = commit
	return v
}

// commands lists the exact commands of the run, for RESULTS.md.
func commands(p params) []string {
	env := []string{}
	for _, k := range []string{"BENCH_QUICK", "BENCH_TARGETS", "BENCH_SCENARIOS", "BENCH_DURATION", "BENCH_FLOOR_ROUNDS", "BENCH_OPEN_ROUNDS", "BENCH_SOAK_SECONDS", "BENCH_SOAK_STEPS",
		"BENCH_SOAK_RAMP", "BENCH_NGINX_WORKERS", "BENCH_EXTRA_TARGETS", "BENCH_MAX_IN_FLIGHT", "BENCH_SKIP_MICRO", "BENCH_MOCK_PORT", "BENCH_MOCK_SLOW_PORT"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return []string{
		strings.TrimSpace(strings.Join(env, " ") + " make bench"),
		"  = make build; bash bench/install.sh; cd bench && go build -o bin/benchrun ./cmd/benchrun && bin/benchrun -root ..",
		fmt.Sprintf("mock-upstream: tollgate mock-upstream --listen 127.0.0.1:PORT --reply-tokens %d   (fast)", replyTokens),
		fmt.Sprintf("mock-upstream: tollgate mock-upstream --listen 127.0.0.1:PORT --reply-tokens %d --tps 10   (slow, soak)", p.soakTokens()),
		fmt.Sprintf("closed loop: wrk -t 2 -c %d -d %ds --timeout 10s --latency -s bench/wrk/chat.lua URL", p.Conns, int(p.Duration.Seconds())),
		fmt.Sprintf("floor-c1: wrk -t 1 -c 1 -d %ds (same options, BENCH_HIST=1), %s: each round every target in turn, each target's slices merged (exact percentiles over all its requests)",
			int(p.floorSlice().Seconds()), p.floorHow()),
		fmt.Sprintf("open loop and streams: vegeta library in benchrun, constant rate, exact count (rate x %gs), up to %d in flight%s", p.Duration.Seconds(), p.MaxWorkers, p.openHowCmd()),
		"request (non-stream): " + string(chatBody(benchModel, nonStreamMax, false)),
		"request (stream):     " + string(chatBody(benchModel, streamTokens, true)),
	}
}
