package main

import (
	"context"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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
// targets' order, before the next scenario; BENCH_SCENARIOS still filters.
func TestSchedule(t *testing.T) {
	p := params{Rates: []float64{100, 500}, StreamRates: []float64{100}, Conns: 32, SoakSteps: []int{1000, 20000}, SoakCap: 9900, SoakCap1: 19800}
	targets := []*target{{Name: "direct"}, {Name: "nginx"}, {Name: "tollgate-full"}}
	var got []string
	for _, s := range schedule(p, targets) {
		got = append(got, s.sc.id+"/"+s.t.Name)
	}
	var want []string
	for _, sc := range []string{"open-100", "open-500", "closed-c32", "floor-c1", "stream-100", "soak-1000", "soak-19800"} {
		for _, tg := range []string{"direct", "nginx", "tollgate-full"} {
			want = append(want, sc+"/"+tg)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("schedule =\n%v\nwant\n%v", got, want)
	}
	p.scenarios = []string{"closed", "soak-19"}
	got = nil
	for _, s := range schedule(p, targets[:2]) {
		got = append(got, s.sc.id+"/"+s.t.Name)
	}
	if want := []string{"closed-c32/direct", "closed-c32/nginx", "soak-19800/direct", "soak-19800/nginx"}; !slices.Equal(got, want) {
		t.Errorf("filtered schedule = %v, want %v", got, want)
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
