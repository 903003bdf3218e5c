package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses; fields after it as in proc(5).
	line := "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 0 0 20 0 7 0 100 123456789 2500 18446744073709551615"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 1 || st.cpuTicks != 168 || st.numThreads != 7 || st.rssPages != 2500 {
		t.Errorf("parseStat = %+v, want ppid 1, 168 ticks, 7 threads, 2500 pages", st)
	}
	if _, err := parseStat([]byte("garbage")); err == nil {
		t.Error("parseStat accepted garbage")
	}
	self, err := readStat(os.Getpid())
	if err != nil || self.rssPages <= 0 || self.numThreads <= 0 {
		t.Errorf("readStat(self) = %+v, %v", self, err)
	}
}

func TestParseExtra(t *testing.T) {
	got, err := parseExtra("litellm=http://127.0.0.1:4000/v1|Authorization:Bearer sk-1,X-Team: a ; bifrost = http://127.0.0.1:8080/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].name != "litellm" || got[0].url != "http://127.0.0.1:4000/v1" ||
		got[0].header.Get("Authorization") != "Bearer sk-1" || got[0].header.Get("X-Team") != "a" {
		t.Errorf("first = %+v", got[0])
	}
	if got[1].name != "bifrost" || got[1].url != "http://127.0.0.1:8080/v1" || len(got[1].header) != 0 {
		t.Errorf("second = %+v", got[1])
	}
	for _, bad := range []string{"nourl", "x=ftp://h/v1", "x=http://h/v1|NoColon"} {
		if _, err := parseExtra(bad); err == nil {
			t.Errorf("parseExtra(%q) succeeded", bad)
		}
	}
	if got, err := parseExtra(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(ds)
	if p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 || p.Mean != 50.5 {
		t.Errorf("percentiles = %+v", p)
	}
	if (percentiles(nil) != pcts{}) {
		t.Error("empty input must give zeros")
	}
}

func TestParseWrk(t *testing.T) {
	out := []byte("Running 1s test @ http://x\nBENCH_JSON {\"requests\":10,\"duration_us\":1000000,\"bytes\":5,\"errors\":{\"connect\":0,\"read\":1,\"write\":0,\"status\":2,\"timeout\":0},\"latency_us\":{\"min\":1,\"mean\":2.5,\"max\":9,\"p50\":2,\"p90\":5,\"p99\":8,\"p999\":9}}\n")
	w, err := parseWrk(out)
	if err != nil || w.Requests != 10 || w.errorCount() != 3 || w.LatencyUS.P99 != 8 {
		t.Errorf("parseWrk = %+v, %v", w, err)
	}
	if _, err := parseWrk([]byte("no json")); err == nil {
		t.Error("parseWrk without the line succeeded")
	}
}

// The probe counts SSE events across read boundaries, finds [DONE] and
// publishes into the response header at EOF.
func TestProbeBody(t *testing.T) {
	pt := newProbeTransport(1)
	pt.inflight.Store(1)
	body := "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"
	hdr := make(map[string][]string)
	pb := &probeBody{rc: io.NopCloser(&slowReader{s: body, n: 3}), start: time.Now(), hdr: hdr, t: pt}
	if _, err := io.Copy(io.Discard, pb); err != nil {
		t.Fatal(err)
	}
	pb.Close()
	s := toSample(&vegeta.Result{Code: 200, Headers: hdr})
	if s.events != 3 || !s.done || s.ttfb <= 0 {
		t.Errorf("sample = %+v, want 3 events, done, a TTFB", s)
	}
	if pt.inflight.Load() != 0 {
		t.Errorf("in flight = %d after Close", pt.inflight.Load())
	}
	tl := count([]sample{s, {code: 200, done: false, events: 3}, {code: 500}}, true, 2)
	if tl.ok != 1 || tl.errors != 2 {
		t.Errorf("count: %d ok %d errors, want 1 and 2", tl.ok, tl.errors)
	}
}

type slowReader struct {
	s string
	n int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	k := min(r.n, len(r.s), len(p))
	copy(p, r.s[:k])
	r.s = r.s[k:]
	return k, nil
}

func TestCountPacerStops(t *testing.T) {
	p := countPacer{ConstantPacer: vegeta.ConstantPacer{Freq: 10, Per: time.Second}, n: 5}
	if _, stop := p.Pace(0, 4); stop {
		t.Error("stopped before n")
	}
	if _, stop := p.Pace(0, 5); !stop {
		t.Error("did not stop at n")
	}
}

// The generated configurations are accepted by the programs that read them,
// when those are at hand.
func TestGeneratedConfigs(t *testing.T) {
	dir := t.TempDir()
	if bin, err := filepath.Abs("../../../bin/tollgate"); err == nil {
		if _, err := os.Stat(bin); err == nil {
			for _, full := range []bool{false, true} {
				cfg := filepath.Join(dir, "t.yaml")
				os.WriteFile(cfg, []byte(tollgateConfig(18999, filepath.Join(dir, "t.db"), 18090, 18091, full)), 0o644)
				if out, err := exec.Command(bin, "config", "validate", cfg).CombinedOutput(); err != nil {
					t.Errorf("tollgate config validate (full=%v): %v: %s", full, err, out)
				}
			}
		}
	}
	if nginx, err := exec.LookPath("nginx"); err == nil && os.Geteuid() == 0 {
		conf := filepath.Join(dir, "nginx.conf")
		os.WriteFile(conf, []byte(nginxConf(dir, 18998, 18090, 18091, "auto", 20000)), 0o644)
		if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "e.log")).CombinedOutput(); err != nil {
			t.Errorf("nginx -t: %v: %s", err, out)
		}
	}
	if !strings.Contains(string(chatBody("m", 20, true)), `"include_usage":true`) {
		t.Error("stream body must ask for the usage chunk")
	}
}

// The run is scenario-major: each scenario against every target, in the
// targets' order, before the next scenario; floor-c1 is its rounds, each
// every target in turn; BENCH_SCENARIOS still filters.
func TestSchedule(t *testing.T) {
	p := params{Rates: []float64{100, 500}, StreamRates: []float64{100}, Conns: 32, SoakSteps: []int{1000, 20000}, SoakCap: 9900, SoakCap1: 19800, FloorRounds: 3}
	targets := []*target{{Name: "direct"}, {Name: "nginx"}, {Name: "tollgate-full"}}
	names := func(steps []step) []string {
		var out []string
		for _, s := range steps {
			out = append(out, s.sc.id+s.roundLabel()+"/"+s.t.Name)
		}
		return out
	}
	var want []string
	for _, sc := range []string{"open-100", "open-500", "closed-c32", "floor-c1 round 1/3", "floor-c1 round 2/3", "floor-c1 round 3/3", "stream-100", "soak-1000", "soak-19800"} {
		for _, tg := range []string{"direct", "nginx", "tollgate-full"} {
			want = append(want, sc+"/"+tg)
		}
	}
	if got := names(schedule(p, targets)); !slices.Equal(got, want) {
		t.Errorf("schedule =\n%v\nwant\n%v", got, want)
	}
	p.scenarios = []string{"closed", "soak-19"}
	if got, want := names(schedule(p, targets[:2])), []string{"closed-c32/direct", "closed-c32/nginx", "soak-19800/direct", "soak-19800/nginx"}; !slices.Equal(got, want) {
		t.Errorf("filtered schedule = %v, want %v", got, want)
	}
	// The slices of one round are one round; the wait for quiet and the
	// pause between runs come only between rounds.
	p.scenarios = []string{"floor"}
	steps := schedule(p, targets[:2])
	if len(steps) != 6 || !steps[1].sameRound(steps[0]) || steps[2].sameRound(steps[1]) || steps[0].sameRound(step{}) {
		t.Errorf("rounds: %v", names(steps))
	}
	// A run recorded before the rounds (FloorRounds 0) has floor-c1 whole.
	p.FloorRounds = 0
	if got, want := names(schedule(p, targets[:2])), []string{"floor-c1/direct", "floor-c1/nginx"}; !slices.Equal(got, want) {
		t.Errorf("floor-c1 without rounds = %v, want %v", got, want)
	}
	if (step{sc: scenario{id: "closed-c32"}}).sameRound(step{sc: scenario{id: "closed-c32"}}) {
		t.Error("two whole-scenario steps must not count as one round")
	}
}

// A slice is the duration over the rounds, in whole seconds, at least 1 s.
func TestFloorSlice(t *testing.T) {
	for _, c := range []struct {
		d      time.Duration
		rounds int
		want   time.Duration
	}{{20 * time.Second, 10, 2 * time.Second}, {6 * time.Second, 3, 2 * time.Second}, {20 * time.Second, 3, 6 * time.Second}, {time.Second, 2, time.Second}, {3 * time.Second, 0, 3 * time.Second}} {
		if got := (params{Duration: c.d, FloorRounds: c.rounds}).floorSlice(); got != c.want {
			t.Errorf("%s in %d rounds: slice %s, want %s", c.d, c.rounds, got, c.want)
		}
	}
	if got := (params{Duration: 20 * time.Second, FloorRounds: 10}).floorHow(); got != "10 interleaved rounds of 2 s per target" {
		t.Errorf("floorHow = %q", got)
	}
}

// histOf is the histogram of latencies in µs.
func histOf(us []int64) hist {
	h := make(hist, len(us))
	for i, v := range us {
		h[i] = bucket{v, 1}
	}
	return mergeHists(h) // sorts and adds up
}

// wrkCorrect is wrk's stats_correct (src/stats.c), on a dense histogram.
func wrkCorrect(h hist, expected int64) hist {
	top := h[len(h)-1].us()
	data := make([]int64, top+1)
	for _, b := range h {
		data[b.us()] = b.n()
	}
	for n := expected * 2; n <= top; n++ {
		count := data[n]
		for m := n - expected; count > 0 && m > expected; m -= expected {
			data[m] += count
		}
	}
	var out hist
	for us, n := range data {
		if n > 0 {
			out = append(out, bucket{int64(us), n})
		}
	}
	return out
}

// Latencies of a closed loop at c=1: mostly 150-400 µs, a tail of stalls
// up to 30 ms (what the correction multiplies).
func sampleLatencies(r *rand.Rand, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = 150 + r.Int64N(250)
		if r.IntN(100) == 0 {
			out[i] = 1000 + r.Int64N(29000)
		}
	}
	return out
}

// The histogram comes in the BENCH_JSON line (however long) and, with
// wrk's correction taken out, counts each request once, as they were.
func TestParseWrkHist(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lat := sampleLatencies(r, 50000)
	raw := histOf(lat)
	var sum int64
	for _, v := range lat {
		sum += v
	}
	const conns = 1
	requests, durationUS := int64(len(lat)), sum+int64(len(lat))*5 // a little time between requests
	corrected := wrkCorrect(raw, durationUS/(requests/conns))
	if corrected.count() <= raw.count() {
		t.Fatal("the test's tail must be long enough for wrk to correct it")
	}
	js, _ := json.Marshal(corrected)
	out := fmt.Sprintf("Running 1s test\nBENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"errors\":{},\"latency_us\":{\"p99\":1},\"hist\":%s}\n  Latency ...\n", requests, durationUS, js)
	if len(out) < 1<<16 {
		t.Fatalf("line of %d bytes: the test must exceed bufio.Scanner's 64 KB", len(out))
	}
	w, err := parseWrk([]byte(out))
	if err != nil || !slices.Equal(w.Hist, corrected) {
		t.Fatalf("parseWrk: %v; %d buckets, want %d", err, len(w.Hist), len(corrected))
	}
	got, err := w.requestHist(conns)
	if err != nil || !slices.Equal(got, raw) {
		t.Errorf("requestHist: %v; %d requests in %d buckets, want %d in %d", err, got.count(), len(got), raw.count(), len(raw))
	}
	// Four connections: each one's interval is four times the mean gap.
	w.Hist = wrkCorrect(raw, durationUS/(requests/4))
	if got, err := w.requestHist(4); err != nil || !slices.Equal(got, raw) {
		t.Errorf("requestHist(4): %v; %d requests, want %d", err, got.count(), raw.count())
	}
	// The histogram does not match the requests: an error, not numbers.
	w.Requests++
	if _, err := w.requestHist(4); err == nil {
		t.Error("a histogram that misses a request was accepted")
	}
	// Not a correction wrk made: above e = 200/4 = 50 µs, 3 at 150 µs
	// cannot have been added to the 1 at 100 µs.
	w = wrkResult{Requests: 4, DurationUS: 200, Hist: hist{{100, 1}, {150, 3}}}
	if _, err := w.requestHist(1); err == nil {
		t.Error("a histogram that is not wrk's correction was accepted")
	}
}

// Percentiles of a merged histogram are those of all the samples, sorted.
func TestHistPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all []time.Duration
	var parts []hist
	for range 5 { // five slices, of different sizes
		lat := sampleLatencies(r, 500+r.IntN(3000))
		parts = append(parts, histOf(lat))
		for _, v := range lat {
			all = append(all, time.Duration(v)*time.Microsecond)
		}
	}
	merged := mergeHists(parts...)
	if merged.count() != int64(len(all)) {
		t.Fatalf("merged %d requests, want %d", merged.count(), len(all))
	}
	if !slices.IsSortedFunc(merged, func(a, b bucket) int { return int(a.us() - b.us()) }) {
		t.Error("merged histogram not in ascending order")
	}
	for i := 1; i < len(merged); i++ {
		if merged[i].us() == merged[i-1].us() || merged[i].n() <= 0 {
			t.Fatalf("bucket %d: %v after %v", i, merged[i], merged[i-1])
		}
	}
	got, want := merged.pcts(), percentiles(all)
	if got.P50 != want.P50 || got.P90 != want.P90 || got.P99 != want.P99 || got.Max != want.Max || math.Abs(got.Mean-want.Mean) > 1e-6 {
		t.Errorf("from the histogram %+v, from the samples %+v", got, want)
	}
	// Small cases where nearest rank is easy to get wrong by one.
	for _, lat := range [][]int64{{7}, {5, 9}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {3, 3, 3, 1000}} {
		var ds []time.Duration
		for _, v := range lat {
			ds = append(ds, time.Duration(v)*time.Microsecond)
		}
		if got, want := histOf(lat).pcts(), percentiles(ds); got != want {
			t.Errorf("%v: %+v, want %+v", lat, got, want)
		}
	}
	if (hist{}).pcts() != (pcts{}) {
		t.Error("an empty histogram must give zeros")
	}
}

// A target's slices make one row: counts and times add up, latency is the
// merged histogram's, peaks are the largest, the worst status and every
// note stay.
func TestMergeSlices(t *testing.T) {
	slice := func(lat []int64, cpu, rss float64, note string) scenarioResult {
		h := histOf(lat)
		return scenarioResult{Scenario: "floor-c1", Kind: "closed", Target: "nginx", Status: "ok", Note: note,
			Command: "wrk -t 1 -c 1 -d 2s URL", Sent: len(lat), OK: len(lat), CPUSeconds: cpu, RSSBeforeMB: rss, RSSMaxMB: rss + 1,
			ThreadsMax: int64(rss), hist: h, Latency: h.pcts(), wrkSeconds: 2}
	}
	a := slice([]int64{100, 200, 300}, 0.5, 10, "")
	b := slice([]int64{400, 5000}, 0.25, 12, notQuiet+"round 2/3, after 20.00 s, portkey at 35.0% of a core")
	c := slice([]int64{150}, 0.25, 11, notQuiet+"round 2/3, after 20.00 s, portkey at 35.0% of a core")
	c.Errors, c.OK, c.FirstError = 1, 0, "wrk errors: status 1"
	m := mergeSlices([]scenarioResult{a, b, c}, "3 interleaved rounds of 2 s per target")
	if m.Scenario != "floor-c1" || m.Target != "nginx" || m.Status != "ok" || m.Sent != 6 || m.OK != 5 || m.Errors != 1 || m.FirstError != c.FirstError {
		t.Errorf("counts: %+v", m)
	}
	if m.ThroughputRPS != 5.0/6 || m.CPUSeconds != 1 || math.Abs(m.CPUPerReqUs-1e6/6) > 1e-6 {
		t.Errorf("throughput %g req/s, CPU %g s, %g µs/req; want 5/6, 1, 1e6/6", m.ThroughputRPS, m.CPUSeconds, m.CPUPerReqUs)
	}
	if m.RSSBeforeMB != 10 || m.RSSMaxMB != 13 || m.ThreadsMax != 12 {
		t.Errorf("RSS before %g, max %g, threads %d; want 10 (first), 13, 12", m.RSSBeforeMB, m.RSSMaxMB, m.ThreadsMax)
	}
	if want := (pcts{Mean: 6150.0 / 6 / 1000, P50: 0.2, P90: 5, P99: 5, Max: 5}); math.Abs(m.Latency.Mean-want.Mean) > 1e-9 || m.Latency.P50 != want.P50 || m.Latency.P99 != want.P99 || m.Latency.Max != want.Max {
		t.Errorf("latency %+v, want %+v", m.Latency, want)
	}
	if m.Command != "wrk -t 1 -c 1 -d 2s URL; 3 interleaved rounds of 2 s per target" {
		t.Errorf("command %q", m.Command)
	}
	if m.Note != notQuiet+"round 2/3, after 20.00 s, portkey at 35.0% of a core" {
		t.Errorf("note %q: the round's wait, once", m.Note)
	}
	// The target died in round 2: the row is failed, with why, and keeps
	// the note of the rounds that were not quiet first (the report's line).
	b.Status, b.Note = "failed", "the target exited during this scenario: signal: killed"
	down := scenarioResult{Scenario: "floor-c1", Kind: "closed", Target: "nginx", Status: "failed", Note: "exited during floor-c1: signal: killed"}
	c.Note = notQuiet + "round 1/3, after 20.00 s, portkey at 35.0% of a core"
	m = mergeSlices([]scenarioResult{c, b, down}, "3 interleaved rounds of 2 s per target")
	want := notQuiet + "round 1/3, after 20.00 s, portkey at 35.0% of a core; the target exited during this scenario: signal: killed; exited during floor-c1: signal: killed"
	if m.Status != "failed" || m.Note != want || m.Sent != 3 {
		t.Errorf("fell: status %s, %d sent, note %q", m.Status, m.Sent, m.Note)
	}
	r := &report{Results: []scenarioResult{m}}
	if !strings.Contains(r.notQuietLine(), "floor-c1 on nginx (round 1/3, after 20.00 s") {
		t.Errorf("not-quiet line: %q", r.notQuietLine())
	}
	// Never started: one skipped row, its note once.
	skip := scenarioResult{Scenario: "floor-c1", Kind: "closed", Target: "portkey", Status: "skipped", Note: "unavailable: not installed"}
	if m := mergeSlices([]scenarioResult{skip, skip, skip}, "x"); m.Status != "skipped" || m.Note != skip.Note || m.Command != "" || m.Sent != 0 {
		t.Errorf("skipped: %+v", m)
	}
}

// chat.lua's histogram from the real wrk: with wrk's correction taken
// out, one count per request answered. A few slow answers make wrk
// correct something.
func TestWrkHistogram(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil || testing.Short() {
		t.Skip("wrk is not installed, or -short")
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%50 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
		io.WriteString(w, `{"object":"chat.completion"}`)
	}))
	defer srv.Close()
	req := request{url: srv.URL, body: []byte(`{}`), header: http.Header{}}
	w, _, err := runWrk(context.Background(), filepath.Join("..", "..", "wrk", "chat.lua"), req, 1, 1, time.Second, true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Requests < 100 || w.Hist.count() <= w.Requests {
		t.Fatalf("%d requests, wrk's histogram %d: want a run wrk corrected", w.Requests, w.Hist.count())
	}
	h, err := w.requestHist(1)
	if err != nil || h.count() != w.Requests {
		t.Fatalf("requestHist: %v; %d counts for %d requests", err, h.count(), w.Requests)
	}
	if p := h.pcts(); p.Max*1000 != float64(w.LatencyUS.Max) || p.P50 <= 0 || p.P99 < p.P50 {
		t.Errorf("percentiles %+v, wrk's max %d µs", p, w.LatencyUS.Max)
	}
	w, _, err = runWrk(context.Background(), filepath.Join("..", "..", "wrk", "chat.lua"), req, 1, 1, time.Second, false)
	if err != nil || w.Hist != nil || w.Requests == 0 {
		t.Errorf("without BENCH_HIST: %v, %d buckets", err, len(w.Hist))
	}
}

// fakeCPU plays the quiet gate's clock and /proc: each group uses a given
// share of a core during each window (the last share repeats).
type fakeCPU struct {
	at     time.Time
	used   map[string]time.Duration
	shares map[string][]float64
	window int
}

func (f *fakeCPU) gate() quietGate {
	return quietGate{window: quietWindow, share: quietShare, limit: quietMax,
		read: func() map[string]time.Duration { return maps.Clone(f.used) },
		now:  func() time.Time { return f.at },
		sleep: func(ctx context.Context, d time.Duration) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			f.at = f.at.Add(d)
			for name, s := range f.shares {
				f.used[name] += time.Duration(s[min(f.window, len(s)-1)] * float64(d))
			}
			f.window++
			return nil
		}}
}

func TestQuietGate(t *testing.T) {
	ctx := context.Background()
	// Idle at once: one window.
	f := &fakeCPU{used: map[string]time.Duration{"mock-upstream": 0, "nginx": time.Second}, shares: map[string][]float64{"mock-upstream": {0}, "nginx": {0.005}}}
	if q := f.gate().wait(ctx); !q.quiet || q.waited != quietWindow || q.busy != "" {
		t.Errorf("idle: %+v, want quiet after one window, nothing holding it", q)
	}
	// Portkey works through a backlog for 2 s (8 windows), then idles; a
	// small share of another group does not hold the wait.
	f = &fakeCPU{used: map[string]time.Duration{"portkey": 0, "tollgate-full": 0},
		shares: map[string][]float64{"portkey": {0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.1, 0.03, 0.01}, "tollgate-full": {0.015}}}
	q := f.gate().wait(ctx)
	if !q.quiet || q.waited != 9*quietWindow || q.busy != "portkey" || math.Abs(q.load-0.03) > 1e-9 {
		t.Errorf("backlog: %+v, want quiet after 9 windows, held by portkey at 3%% last", q)
	}
	// Each group is judged on its own: two at 1.5% each are quiet.
	f = &fakeCPU{used: map[string]time.Duration{"a": 0, "b": 0}, shares: map[string][]float64{"a": {0.015}, "b": {0.015}}}
	if q := f.gate().wait(ctx); !q.quiet {
		t.Errorf("two groups under the share: %+v, want quiet", q)
	}
	// Never quiet: give up at the limit, naming the culprit.
	f = &fakeCPU{used: map[string]time.Duration{"mock-upstream": 0, "portkey": 0}, shares: map[string][]float64{"mock-upstream": {0.01}, "portkey": {0.3}}}
	q = f.gate().wait(ctx)
	if q.quiet || q.waited != quietMax || q.busy != "portkey" || math.Abs(q.load-0.3) > 1e-9 {
		t.Errorf("busy: %+v, want not quiet after %s, held by portkey at 30%%", q, quietMax)
	}
	if !strings.Contains(q.String(), "portkey at 30.0% of a core") {
		t.Errorf("String() = %q", q.String())
	}
	// A decrease (a thread ended) counts as zero, not as negative load.
	f = &fakeCPU{used: map[string]time.Duration{"x": time.Second}, shares: map[string][]float64{"x": {-1}}}
	if q := f.gate().wait(ctx); !q.quiet {
		t.Errorf("decrease: %+v, want quiet", q)
	}
	// Cancelled: returns at once, not quiet.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	f = &fakeCPU{used: map[string]time.Duration{"x": 0}, shares: map[string][]float64{"x": {1}}}
	if q := f.gate().wait(cctx); q.quiet || q.waited != 0 {
		t.Errorf("cancelled: %+v", q)
	}
}

// cpuTime reads this process's own threads: it grows as the process works,
// in finer steps than the 10 ms of /proc/PID/stat.
func TestCPUTime(t *testing.T) {
	pid := []int{os.Getpid()}
	before := cpuTime(pid)
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	if d := cpuTime(pid) - before; d < 5*time.Millisecond {
		t.Errorf("30 ms of spinning counted as %s", d)
	}
	if cpuTime([]int{1 << 30}) != 0 {
		t.Error("a missing process must count as zero")
	}
}

// A target's rows are in the markdown in scenario order and target order
// within each scenario; a run that was not quiet says so at the top.
func TestInterleavedReport(t *testing.T) {
	p := params{Rates: []float64{100}, Conns: 32, Interleaved: true}
	r := &report{Params: p, Targets: []targetInfo{{Name: "direct", Status: "ok"}, {Name: "nginx", Status: "ok"}, {Name: "portkey", Status: "unavailable"}}}
	for _, sc := range []string{"open-100", "closed-c32"} {
		r.Results = append(r.Results,
			scenarioResult{Scenario: sc, Kind: strings.Split(sc, "-")[0], Target: "direct", Status: "ok", OK: 1, Latency: pcts{P50: 1, P99: 2}},
			scenarioResult{Scenario: sc, Kind: strings.Split(sc, "-")[0], Target: "nginx", Status: "ok", OK: 1, Latency: pcts{P50: 1.5, P99: 3}},
			scenarioResult{Scenario: sc, Kind: strings.Split(sc, "-")[0], Target: "portkey", Status: "skipped", Note: "unavailable: not installed"})
	}
	r.Results[1].Note = notQuiet + "20.00 s, portkey at 35.0% of a core"
	r.compute()
	md := r.markdown()
	if !strings.Contains(md, "interleaved") || strings.Contains(md, "one after another") {
		t.Error("the description does not say the run was interleaved")
	}
	if !strings.Contains(md, "**Not quiet** before 1 run(s), measured anyway: open-100 on nginx (20.00 s, portkey at 35.0% of a core)") {
		t.Errorf("no not-quiet line in:\n%s", md[:min(len(md), 800)])
	}
	if a := r.find("nginx", "open-100").Added; a == nil || a.P50 != 0.5 {
		t.Errorf("added vs direct = %+v", a)
	}
	var order []string
	for _, line := range strings.Split(md, "\n") {
		if f := strings.Split(line, "|"); len(f) > 3 && strings.TrimSpace(f[1]) == "open-100" {
			order = append(order, strings.TrimSpace(f[2]))
		}
	}
	if want := []string{"direct", "nginx", "portkey"}; !slices.Equal(order, want) {
		t.Errorf("open-100 rows: %v, want %v", order, want)
	}
	r.Params.Interleaved = false // a run recorded before: -render keeps its description
	if md := r.markdown(); !strings.Contains(md, "one after another") {
		t.Error("an old run's description changed")
	}
}

func TestPlain(t *testing.T) {
	if got := plain("\x1b[1m🚀 running\x1b[0m\r⠦ up\x07\n"); got != "🚀 running⠦ up\n" {
		t.Errorf("plain = %q", got)
	}
}

// Under a 20,000-descriptor limit a target holding one descriptor per
// stream runs soak-10000 whole; one holding two is capped below it.
func TestSoakStreamsPerTarget(t *testing.T) {
	p := params{SoakCap: soakCap(20000, 2), SoakCap1: soakCap(20000, 1)}
	sc := scenario{id: "soak-10000", kind: "soak", n: 10000}
	for _, c := range []struct {
		t    *target
		want int
	}{{&target{Name: "tollgate-full", streamFDs: 1}, 10000}, {&target{Name: "nginx"}, 9900}, {&target{Name: "portkey", streamFDs: 2}, 9900}} {
		if got := p.soakStreams(c.t, sc); got != c.want {
			t.Errorf("%s: %d streams, want %d", c.t.Name, got, c.want)
		}
	}
	if soakCap(100, 1) != 0 {
		t.Error("a limit under the reserve must cap at 0")
	}
}

// Flushing is judged at the largest soak direct delivered within the bar;
// the note gives each target's gap in the saturated soak, at the N it ran.
func TestFlushCheckCappedTarget(t *testing.T) {
	row := func(target, id string, n int, gap float64) scenarioResult {
		return scenarioResult{Scenario: id, Target: target, Kind: "soak", Status: "ok", Streams: n, OK: n, MaxGapP50Ms: gap, MaxGapMaxMs: gap + 20}
	}
	r := &report{Results: []scenarioResult{
		row("direct", "soak-1000", 1000, 110), row("nginx", "soak-1000", 1000, 111), row("tollgate-full", "soak-1000", 1000, 113),
		row("direct", "soak-10000", 10000, 7000), row("nginx", "soak-10000", 9900, 8000), row("tollgate-full", "soak-10000", 10000, 12000),
	}}
	c := r.flushCheck("tollgate-full", &r.Results[5])
	if c.Verdict != "PASS" || !strings.Contains(c.Measured, "N=1000") {
		t.Errorf("verdict %s, measured %q: want PASS at N=1000", c.Verdict, c.Measured)
	}
	for _, want := range []string{"direct 7000.0 ms", "nginx 8000.0 ms (N=9900)", "tollgate-full 12000.0 ms"} {
		if !strings.Contains(c.Note, want) {
			t.Errorf("note %q lacks %q", c.Note, want)
		}
	}
}

// The floor's bar is absolute: its row says what nginx adds on the same
// machine, the floor of any proxy there.
func TestFloorCheckShowsNginx(t *testing.T) {
	row := func(target string, p99 float64) scenarioResult {
		return scenarioResult{Scenario: "floor-c1", Kind: "closed", Target: target, Status: "ok", OK: 1, Latency: pcts{P50: p99 / 2, P99: p99}}
	}
	r := &report{Results: []scenarioResult{row("direct", 0.7), row("nginx", 1.0), row("tollgate-full", 1.2)}}
	var c *check
	for _, ch := range r.checks() {
		if strings.HasPrefix(ch.Target, "added p99 at concurrency 1") {
			c = &ch
		}
	}
	if c == nil || c.Verdict != "MISS" || !strings.Contains(c.Measured, "0.500 ms") || c.Note != "nginx adds 0.300 ms at p99 here (p99 1.000)" {
		t.Errorf("floor check = %+v, want a MISS of 0.500 ms noting nginx's 0.300 ms", c)
	}
	r.Results = r.Results[:1:1]
	r.Results = append(r.Results, row("tollgate-full", 0.8))
	for _, ch := range r.checks() {
		if strings.HasPrefix(ch.Target, "added p99 at concurrency 1") && (ch.Verdict != "PASS" || ch.Note != "") {
			t.Errorf("without nginx: %+v, want a PASS without a note", ch)
		}
	}
}

// With BENCH_OPEN_ROUNDS > 1 the open-loop and stream scenarios run in
// rounds, each round every target in turn, like floor-c1; with 1 they
// run whole, in the old order.
func TestScheduleOpenRounds(t *testing.T) {
	p := params{Rates: []float64{500}, StreamRates: []float64{100}, Conns: 32, OpenRounds: 2, scenarios: []string{"open", "stream"}}
	targets := []*target{{Name: "direct"}, {Name: "nginx"}}
	names := func(steps []step) []string {
		var out []string
		for _, s := range steps {
			out = append(out, s.sc.id+s.roundLabel()+"/"+s.t.Name)
		}
		return out
	}
	want := []string{"open-500 round 1/2/direct", "open-500 round 1/2/nginx", "open-500 round 2/2/direct", "open-500 round 2/2/nginx",
		"stream-100 round 1/2/direct", "stream-100 round 1/2/nginx", "stream-100 round 2/2/direct", "stream-100 round 2/2/nginx"}
	steps := schedule(p, targets)
	if got := names(steps); !slices.Equal(got, want) {
		t.Errorf("schedule =\n%v\nwant\n%v", got, want)
	}
	if !steps[1].sameRound(steps[0]) || steps[2].sameRound(steps[1]) || steps[4].sameRound(steps[3]) {
		t.Errorf("rounds: %v", names(steps))
	}
	p.OpenRounds = 1
	if got, want := names(schedule(p, targets)), []string{"open-500/direct", "open-500/nginx", "stream-100/direct", "stream-100/nginx"}; !slices.Equal(got, want) {
		t.Errorf("one round: %v, want %v", got, want)
	}
	p = params{Duration: 20 * time.Second, OpenRounds: 5}
	if p.openSlice() != 4*time.Second || p.openHow() != "5 interleaved rounds of 4 s per target" || p.roundsHow("stream") != p.openHow() {
		t.Errorf("slice %s, how %q", p.openSlice(), p.openHow())
	}
	if cmds := strings.Join(commands(p), "\n"); !strings.Contains(cmds, "in flight; 5 interleaved rounds of 4 s per target") {
		t.Errorf("commands do not say how the open loop ran:\n%s", cmds)
	}
	if p.OpenRounds = 3; p.openHow() != "3 interleaved rounds of 6.667 s per target" {
		t.Errorf("how %q", p.openHow())
	}
}

// A target's open-loop slices make the row one run over all their
// samples would: percentiles, TTFB, events, errors, overhead header,
// rates from the summed spans; CPU time adds up.
func TestMergeOpenSlices(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all []sample
	var parts []scenarioResult
	var whole openLoop
	for i := range 3 {
		var loop openLoop
		for range 200 + 50*i {
			s := sample{latency: time.Duration(1e6 + r.Int64N(9e6)), ttfb: time.Duration(5e5 + r.Int64N(2e6)), code: 200, events: 23 + r.IntN(2), done: true, overhead: r.Float64()}
			if r.IntN(50) == 0 {
				s.code, s.err = 502, "502 Bad Gateway"
			}
			loop.samples = append(loop.samples, s)
		}
		loop.sends, loop.sendSpan, loop.elapsed, loop.peakOpen = len(loop.samples)-1, 2*time.Second, 2100*time.Millisecond, int64(5+i)
		res := scenarioResult{Scenario: "stream-100", Kind: "stream", Target: "nginx", Status: "ok", Command: "vegeta (library): 100 req/s, 200 requests, max 5000 in flight", CPUSeconds: 0.5}
		res.openStats(loop, 100)
		res.loop = loop
		parts = append(parts, res)
		all = append(all, loop.samples...)
		whole.sends += loop.sends
		whole.sendSpan += loop.sendSpan
		whole.elapsed += loop.elapsed
		whole.peakOpen = max(whole.peakOpen, loop.peakOpen)
	}
	whole.samples = all
	one := scenarioResult{Scenario: "stream-100", Kind: "stream", Target: "nginx", Status: "ok"}
	one.openStats(whole, 100)
	m := mergeSlices(parts, "3 interleaved rounds of 2 s per target")
	if m.Latency != one.Latency || *m.TTFB != *one.TTFB || m.EventsP50 != one.EventsP50 || m.Latency != percentiles(count(all, true, streamTokens).lat) {
		t.Errorf("merged latency %+v TTFB %+v events %d, want %+v %+v %d", m.Latency, *m.TTFB, m.EventsP50, one.Latency, *one.TTFB, one.EventsP50)
	}
	if m.Sent != len(all) || m.OK != one.OK || m.Errors != one.Errors || m.Errors == 0 || m.FirstError != "502 Bad Gateway" {
		t.Errorf("counts: %d sent %d ok %d errors (%q), want %d %d %d", m.Sent, m.OK, m.Errors, m.FirstError, len(all), one.OK, one.Errors)
	}
	if m.RateAchieved != one.RateAchieved || m.ThroughputRPS != one.ThroughputRPS || m.PeakOpen != 7 || m.RateTarget != 100 || m.Saturated != one.Saturated {
		t.Errorf("rates %g %g peak %d target %g saturated %v, want %g %g 7 100 %v", m.RateAchieved, m.ThroughputRPS, m.PeakOpen, m.RateTarget, m.Saturated, one.RateAchieved, one.ThroughputRPS, one.Saturated)
	}
	if m.OverheadHdrMeanMs == nil || math.Abs(*m.OverheadHdrMeanMs-*one.OverheadHdrMeanMs) > 1e-12 || m.OverheadHdrN != one.OverheadHdrN {
		t.Errorf("overhead header: %v over %d", m.OverheadHdrMeanMs, m.OverheadHdrN)
	}
	if m.CPUSeconds != 1.5 || math.Abs(m.CPUPerReqUs-1.5/float64(len(all))*1e6) > 1e-9 {
		t.Errorf("CPU %g s, %g µs/req", m.CPUSeconds, m.CPUPerReqUs)
	}
	if !strings.HasSuffix(m.Command, "; 3 interleaved rounds of 2 s per target") || m.loop.samples != nil {
		t.Errorf("command %q, %d samples kept", m.Command, len(m.loop.samples))
	}
	// A target that never started: one skipped row, no numbers.
	skip := scenarioResult{Scenario: "open-500", Kind: "open", Target: "portkey", Status: "skipped", Note: "unavailable: not installed"}
	if m := mergeSlices([]scenarioResult{skip, skip}, "x"); m.Status != "skipped" || m.Saturated || m.Sent != 0 || m.Note != skip.Note {
		t.Errorf("skipped: %+v", m)
	}
}

// A target's slices share one transport: the second slice reuses the
// first's connections instead of opening as many again.
func TestAttackKeepsConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(20 * time.Millisecond) // a few requests in flight at once
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	req := request{url: srv.URL, body: []byte("{}"), header: http.Header{}}
	ctx := context.Background()
	pt := newProbeTransport(100)
	defer pt.base.CloseIdleConnections()
	first := attack(ctx, pt, req, 200, 100, 5*time.Second, 100, nil)
	c1 := conns.Load()
	second := attack(ctx, pt, req, 200, 100, 5*time.Second, 100, nil)
	c2 := conns.Load()
	if len(first.samples) != 100 || len(second.samples) != 100 || first.peakOpen < 2 || second.peakOpen < 2 || second.peakOpen > 100 {
		t.Fatalf("samples %d and %d, peaks %d and %d", len(first.samples), len(second.samples), first.peakOpen, second.peakOpen)
	}
	if c1 < 2 || c2-c1 > c1/2 {
		t.Errorf("connections: %d in the first slice, %d more in the second; want few more", c1, c2-c1)
	}
	// Without a shared transport every attack dials anew.
	attack(ctx, nil, req, 200, 100, 5*time.Second, 100, nil)
	if c3 := conns.Load(); c3-c2 < 2 {
		t.Errorf("a fresh transport opened %d connections", c3-c2)
	}
	t.Logf("connections: %d, then %d more with the same transport, %d with a new one", c1, c2-c1, conns.Load()-c2)
}

// The sampler reads the processes every period but scrapes /metrics only
// every scrapeEvery, and at the first and the last sample: a scrape is
// load on the target that nginx and direct never carry.
func TestSamplerSpacesScrapes(t *testing.T) {
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		fmt.Fprintf(w, "# HELP go_goroutines x\ngo_goroutines %d\nprocess_resident_memory_bytes 2097152\n", 10*n)
	}))
	defer srv.Close()
	s := newSampler(func() []int { return []int{os.Getpid()} }, srv.URL, 10*time.Millisecond, 100*time.Millisecond)
	s.start()
	time.Sleep(350 * time.Millisecond)
	s.finish()
	// About 35 samples; scrapes at the start, every 100 ms (3) and the end.
	if n := scrapes.Load(); n < 4 || n > 7 {
		t.Errorf("%d scrapes over 350 ms with a sample every 10 ms and a scrape at most every 100 ms, want 4–7", n)
	}
	if s.maxRSS == 0 || s.maxGoroutines != float64(10*scrapes.Load()) || s.maxPromRSS != 2<<20 {
		t.Errorf("peaks: RSS %d, goroutines %v (scrapes %d), /metrics RSS %v", s.maxRSS, s.maxGoroutines, scrapes.Load(), s.maxPromRSS)
	}
}

// Between two slices of a round the runner waits for the target of the
// slice before, and only for it, to finish its work (tollgate's last
// ledger batch), for at most sliceQuietMax.
func TestWaitSettledWatchesTheTargetBefore(t *testing.T) {
	ctx := context.Background()
	minimal, full := &target{Name: "tollgate-minimal"}, &target{Name: "tollgate-full"}
	sc := scenario{id: "floor-c1", kind: "closed", rounds: 3}
	var f *fakeCPU
	var watched []string
	r := &runner{down: map[*target]why{}, gate: func(ts []*target) quietGate {
		watched = nil
		for _, t := range ts {
			watched = append(watched, t.Name)
		}
		return f.gate()
	}}
	// tollgate-minimal writes its ledger for two windows after its slice.
	f = &fakeCPU{used: map[string]time.Duration{"mock-upstream": 0, "tollgate-minimal": 0},
		shares: map[string][]float64{"mock-upstream": {0}, "tollgate-minimal": {0.1, 0.05, 0.01}}}
	start := f.at
	r.waitSettled(ctx, step{sc: sc, t: minimal, round: 2}, step{sc: sc, t: full, round: 2})
	if !slices.Equal(watched, []string{"tollgate-minimal"}) {
		t.Errorf("watched %v, want the target before only", watched)
	}
	if got := f.at.Sub(start); got != 3*quietWindow {
		t.Errorf("waited %s, want 3 windows (quiet in the third)", got)
	}
	// A target busy for good holds the next slice sliceQuietMax at most.
	f = &fakeCPU{used: map[string]time.Duration{"portkey": 0}, shares: map[string][]float64{"portkey": {0.5}}}
	start = f.at
	r.waitSettled(ctx, step{sc: sc, t: &target{Name: "portkey"}, round: 1}, step{sc: sc, t: full, round: 1})
	if got := f.at.Sub(start); got != sliceQuietMax {
		t.Errorf("busy target: waited %s, want %s", got, sliceQuietMax)
	}
	// A target that is down is not watched: the mocks only.
	r.down[minimal] = why{"failed", "exited"}
	f = &fakeCPU{used: map[string]time.Duration{"mock-upstream": 0}, shares: map[string][]float64{"mock-upstream": {0}}}
	r.waitSettled(ctx, step{sc: sc, t: minimal, round: 3}, step{sc: sc, t: full, round: 3})
	if len(watched) != 0 {
		t.Errorf("watched %v for a target that is down, want none", watched)
	}
}
