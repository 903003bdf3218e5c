package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// scenarioResult is one scenario against one target.
type scenarioResult struct {
	Scenario   string `json:"scenario"`
	Kind       string `json:"kind"`
	Target     string `json:"target"`
	Status     string `json:"status"` // ok, skipped, unavailable, failed
	Note       string `json:"note,omitempty"`
	Command    string `json:"command,omitempty"`
	Sent       int    `json:"sent"`
	OK         int    `json:"ok"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`

	RateTarget    float64 `json:"rate_target,omitempty"`
	RateAchieved  float64 `json:"rate_achieved,omitempty"`
	Saturated     bool    `json:"saturated,omitempty"` // fell behind the schedule or had errors
	ThroughputRPS float64 `json:"throughput_rps,omitempty"`
	PeakOpen      int64   `json:"peak_in_flight,omitempty"`

	Latency   pcts  `json:"latency"`
	TTFB      *pcts `json:"ttfb,omitempty"`
	Added     *pcts `json:"added_vs_direct,omitempty"`      // latency minus direct's, per percentile
	AddedTTFB *pcts `json:"added_ttfb_vs_direct,omitempty"` // streams

	OverheadHdrMeanMs *float64 `json:"x_tollgate_overhead_ms_mean,omitempty"`
	OverheadHdrN      int      `json:"x_tollgate_overhead_n,omitempty"`

	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUPerReqUs   float64 `json:"cpu_us_per_request"`
	RSSBeforeMB   float64 `json:"rss_before_mb"`
	RSSMaxMB      float64 `json:"rss_max_mb"`
	ThreadsMax    int64   `json:"threads_max,omitempty"`
	GoroutinesMax float64 `json:"goroutines_max,omitempty"`
	MetricsRSSMB  float64 `json:"metrics_rss_max_mb,omitempty"` // process_resident_memory_bytes from /metrics

	Streams     int     `json:"streams,omitempty"`
	EventsP50   int     `json:"events_p50,omitempty"`
	MaxGapP50Ms float64 `json:"max_event_gap_p50_ms,omitempty"`
	MaxGapMaxMs float64 `json:"max_event_gap_max_ms,omitempty"`

	// A slice, kept to merge the slices (rounds.go): of floor-c1, the
	// latency of every request and wrk's measured time; of an open-loop
	// scenario, vegeta's samples and times.
	hist       hist
	wrkSeconds float64
	loop       openLoop
}

func (r *scenarioResult) fill(t *tally, sent int) {
	r.Sent, r.OK, r.Errors, r.FirstError = sent, t.ok, t.errors, t.firstError
	r.Latency = percentiles(t.lat)
	if t.overheadN > 0 {
		v := t.overheadMean
		r.OverheadHdrMeanMs, r.OverheadHdrN = &v, t.overheadN
	}
}

func (r scenarioResult) brief() string {
	if r.Status != "ok" {
		return r.Status + ": " + r.Note
	}
	s := fmt.Sprintf("%d ok, %d errors, p50 %s p99 %s ms, CPU %.1f µs/req, RSS max %.1f MB",
		r.OK, r.Errors, f3(r.Latency.P50), f3(r.Latency.P99), r.CPUPerReqUs, r.RSSMaxMB)
	if r.ThroughputRPS > 0 && r.Kind == "closed" {
		s += fmt.Sprintf(", %.0f req/s", r.ThroughputRPS)
	}
	if r.FirstError != "" {
		s += "; first error: " + r.FirstError
	}
	return s
}

// check is one target of issue #6, as a ratio or a bound, with its verdict.
type check struct {
	Target    string `json:"target"`
	Measured  string `json:"measured"`
	Threshold string `json:"threshold"`
	Verdict   string `json:"verdict"` // PASS, MISS, N/A, NOT MEASURED, INFO
	Note      string `json:"note,omitempty"`
}

type report struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Params   params            `json:"params"`
	Machine  machineInfo       `json:"machine"`
	Versions map[string]string `json:"versions"`
	Commands []string          `json:"commands"`
	Micro    *microResult      `json:"micro,omitempty"`
	Ready    *readyResult      `json:"start_to_ready,omitempty"`
	Targets  []targetInfo      `json:"targets"`
	Results  []scenarioResult  `json:"results"`
	Checks   []check           `json:"checks"`
}

func (r *report) find(target, scenario string) *scenarioResult {
	for i := range r.Results {
		if res := &r.Results[i]; res.Target == target && res.Scenario == scenario && res.Status == "ok" {
			return res
		}
	}
	return nil
}

func (r *report) target(name string) *targetInfo {
	for i := range r.Targets {
		if r.Targets[i].Name == name {
			return &r.Targets[i]
		}
	}
	return nil
}

func sub(a, b pcts) pcts {
	return pcts{Mean: a.Mean - b.Mean, P50: a.P50 - b.P50, P90: a.P90 - b.P90, P99: a.P99 - b.P99, Max: a.Max - b.Max}
}

// compute fills the added latencies (versus direct, same scenario) and the
// checks.
func (r *report) compute() {
	for i := range r.Results {
		res := &r.Results[i]
		if res.Status != "ok" || res.Target == "direct" || res.Kind == "soak" {
			continue
		}
		d := r.find("direct", res.Scenario)
		if d == nil {
			continue
		}
		a := sub(res.Latency, d.Latency)
		res.Added = &a
		if res.TTFB != nil && d.TTFB != nil {
			at := sub(*res.TTFB, *d.TTFB)
			res.AddedTTFB = &at
		}
	}
	r.Checks = r.checks()
}

// minAdded is the floor of a denominator "nginx's added latency": below
// 10 µs the difference of two percentiles is noise, and a ratio over it
// would mean nothing.
const minAdded = 0.010

func (r *report) checks() []check {
	var out []check
	const full = "tollgate-full"
	na := func(target, threshold, why string) check {
		return check{Target: target, Threshold: threshold, Verdict: "N/A", Measured: "—", Note: why}
	}
	ratioCheck := func(name, threshold string, limit float64, le bool, fv, nv float64, unit string, floor float64) check {
		den := nv
		note := ""
		if floor > 0 && den < floor {
			den = floor
			note = fmt.Sprintf("nginx's value (%s %s) is below the %s %s noise floor; the ratio uses the floor", f3(nv), unit, f3(floor), unit)
		}
		ratio := fv / den
		ok := ratio <= limit
		if !le {
			ok = ratio >= limit
		}
		num := map[string]func(float64) string{"ms": f3, "µs": f1, "req/s": f0}[unit]
		return check{Target: name, Threshold: threshold, Verdict: verdict(ok), Note: note,
			Measured: fmt.Sprintf("%s× (tollgate-full %s %s, nginx %s %s)", f2(ratio), num(fv), unit, num(nv), unit)}
	}
	// 1, 2: added latency at 500 req/s.
	rate := "open-500"
	for _, q := range []string{"p50", "p99"} {
		name := "added latency " + q + " at 500 req/s ≤ 1.5× nginx's"
		f, n := r.find(full, rate), r.find("nginx", rate)
		if f == nil || n == nil || f.Added == nil || n.Added == nil {
			out = append(out, na(name, "≤ 1.5× (goal ≤ 1.0×)", "needs tollgate-full, nginx and direct at "+rate))
			continue
		}
		fv, nv := f.Added.P50, n.Added.P50
		if q == "p99" {
			fv, nv = f.Added.P99, n.Added.P99
		}
		c := ratioCheck(name, "≤ 1.5× (goal ≤ 1.0×)", 1.5, true, fv, nv, "ms", minAdded)
		if f.Saturated || n.Saturated {
			c.Note = strings.TrimSpace(c.Note + " a target fell behind the schedule or had errors")
		}
		out = append(out, c)
	}
	// 3: latency floor.
	{
		name := "added p99 at concurrency 1 ≤ 150 µs"
		f, d := r.find(full, "floor-c1"), r.find("direct", "floor-c1")
		if f == nil || d == nil {
			out = append(out, na(name, "≤ 0.150 ms", "needs tollgate-full and direct at floor-c1"))
		} else {
			add := f.Latency.P99 - d.Latency.P99
			c := check{Target: name, Threshold: "≤ 0.150 ms", Verdict: verdict(add <= 0.150),
				Measured: fmt.Sprintf("%s ms (p99 %s vs direct %s)", f3(add), f3(f.Latency.P99), f3(d.Latency.P99))}
			// An absolute bar, unlike the others: what a plain proxy adds
			// on this machine tells whether any gateway could meet it here.
			if n := r.find("nginx", "floor-c1"); n != nil {
				c.Note = fmt.Sprintf("nginx adds %s ms at p99 here (p99 %s)", f3(n.Latency.P99-d.Latency.P99), f3(n.Latency.P99))
			}
			out = append(out, c)
		}
	}
	closed := fmt.Sprintf("closed-c%d", r.Params.Conns)
	f, n, pk := r.find(full, closed), r.find("nginx", closed), r.find("portkey", closed)
	// 4, 5: throughput.
	if f != nil && n != nil {
		out = append(out, ratioCheck("throughput at c=32 ≥ 0.6× nginx's", "≥ 0.6× (goal ≥ 1.0×)", 0.6, false, f.ThroughputRPS, n.ThroughputRPS, "req/s", 0))
	} else {
		out = append(out, na("throughput at c=32 ≥ 0.6× nginx's", "≥ 0.6× (goal ≥ 1.0×)", "needs tollgate-full and nginx at "+closed))
	}
	if f != nil && pk != nil {
		c := ratioCheck("throughput at c=32 ≥ 10× Portkey's", "≥ 10×", 10, false, f.ThroughputRPS, pk.ThroughputRPS, "req/s", 0)
		c.Measured = strings.Replace(c.Measured, "nginx", "portkey", 1)
		out = append(out, c)
	} else {
		out = append(out, na("throughput at c=32 ≥ 10× Portkey's", "≥ 10×", "needs tollgate-full and portkey at "+closed))
	}
	// 6: CPU per request.
	if f != nil && n != nil && n.CPUPerReqUs > 0 {
		out = append(out, ratioCheck("CPU time per request at c=32 ≤ 2× nginx's", "≤ 2× (goal ≤ 1.0×)", 2, true, f.CPUPerReqUs, n.CPUPerReqUs, "µs", 0))
	} else {
		out = append(out, na("CPU time per request at c=32 ≤ 2× nginx's", "≤ 2× (goal ≤ 1.0×)", "needs tollgate-full and nginx at "+closed))
	}
	// 7: stream TTFB.
	for _, sc := range []string{"stream-100", "stream-500"} {
		name := "stream TTFB overhead (p50) at " + strings.TrimPrefix(sc, "stream-") + " req/s ≤ 1.5× nginx's"
		fs, ns := r.find(full, sc), r.find("nginx", sc)
		if fs == nil || ns == nil || fs.AddedTTFB == nil || ns.AddedTTFB == nil {
			out = append(out, na(name, "≤ 1.5×", "needs tollgate-full, nginx and direct at "+sc))
			continue
		}
		out = append(out, ratioCheck(name, "≤ 1.5×", 1.5, true, fs.AddedTTFB.P50, ns.AddedTTFB.P50, "ms", minAdded))
	}
	// 8, 9: soak.
	var soak *scenarioResult
	for i := range r.Results {
		res := &r.Results[i]
		if res.Target == full && res.Kind == "soak" && res.Status == "ok" && (soak == nil || res.Streams > soak.Streams) {
			soak = res
		}
	}
	if soak == nil {
		out = append(out, na("every SSE event flushed as it arrives", "median per-stream largest gap ≤ 150 ms (chunks every 100 ms)", "no soak ran for tollgate-full"))
		out = append(out, na("10,000 concurrent slow streams: RSS < 1 GiB, no errors", "RSS < 1024 MB, 0 errors", "no soak ran for tollgate-full"))
	} else {
		out = append(out, r.flushCheck(full, soak))
		c := check{Target: "10,000 concurrent slow streams: RSS < 1 GiB, no errors", Threshold: "RSS < 1024 MB, 0 errors",
			Measured: fmt.Sprintf("N=%d (peak %d open): RSS max %s MB, %d errors, %s goroutines", soak.Streams, soak.PeakOpen, f1(soak.RSSMaxMB), soak.Errors, f0(soak.GoroutinesMax))}
		if soak.Streams >= 10000 {
			c.Verdict = verdict(soak.RSSMaxMB < 1024 && soak.Errors == 0)
		} else {
			c.Verdict = "NOT MEASURED"
			per := (soak.RSSMaxMB - soak.RSSBeforeMB) / float64(max(soak.Streams, 1))
			c.Note = fmt.Sprintf("largest N run is %d (quick run, or capped by RLIMIT_NOFILE: a proxied stream holds 2 descriptors); linear extrapolation to 10,000: %s MB",
				soak.Streams, f0(soak.RSSBeforeMB+per*10000))
		}
		out = append(out, c)
	}
	// 10: idle RSS (measured at the start: it stands even if the target
	// died later in the run).
	if t := r.target(full); t != nil && (t.Status == "ok" || t.WarmRSSMB > 0) {
		out = append(out, check{Target: "idle RSS < 40 MB", Threshold: "< 40 MB", Verdict: verdict(t.WarmRSSMB < 40),
			Measured: fmt.Sprintf("%s MB after the warm-up and 2 s idle (%s MB at start, before any request)", f1(t.WarmRSSMB), f1(t.IdleRSSMB))})
	} else {
		out = append(out, na("idle RSS < 40 MB", "< 40 MB", "tollgate-full did not run"))
	}
	// 11: start to ready.
	if rd := r.Ready; rd != nil && len(rd.Runs) > 0 {
		out = append(out, check{Target: "start to ready < 100 ms (empty SQLite file)", Threshold: "< 100 ms", Verdict: verdict(rd.MedianMs < 100),
			Measured: fmt.Sprintf("median %s ms of %d runs (%s)", f1(rd.MedianMs), len(rd.Runs), joinF(rd.Runs))})
	} else {
		why := "not measured"
		if r.Ready != nil && r.Ready.Error != "" {
			why = r.Ready.Error
		}
		out = append(out, na("start to ready < 100 ms (empty SQLite file)", "< 100 ms", why))
	}
	// 12: allocations.
	if m := r.Micro; m != nil {
		ns, okN := m.Benches["BenchmarkChatNonStream"]
		md, okD := m.Benches["BenchmarkMockDirect"]
		if gw, ok := m.Benches["BenchmarkGatewayInProcess"]; ok {
			// The gateway alone, no sockets on either side: its own allocations.
			out = append(out, check{Target: "≤ 30 allocations per proxied non-stream request", Threshold: "≤ 30 allocs/op",
				Verdict:  verdict(gw.AllocsOp <= 30),
				Measured: fmt.Sprintf("%s allocs/op (BenchmarkGatewayInProcess)", f0(gw.AllocsOp)),
				Note:     "the whole pipeline in process with an in-memory upstream; the server's socket I/O and the upstream transport's own allocations are not counted"})
		} else if okN && okD {
			net := ns.AllocsOp - md.AllocsOp
			out = append(out, check{Target: "≤ 30 allocations per proxied non-stream request", Threshold: "≤ 30 allocs/op",
				Verdict:  verdict(net <= 30),
				Measured: fmt.Sprintf("%s allocs/op added by the gateway (BenchmarkChatNonStream %s − BenchmarkMockDirect %s)", f0(net), f0(ns.AllocsOp), f0(md.AllocsOp)),
				Note:     "the in-process benchmark counts client, gateway and mock together; the gateway's share is the difference"})
		} else {
			out = append(out, na("≤ 30 allocations per proxied non-stream request", "≤ 30 allocs/op", "benchmark did not run: "+m.Error))
		}
	} else {
		out = append(out, na("≤ 30 allocations per proxied non-stream request", "≤ 30 allocs/op", "BENCH_SKIP_MICRO=1"))
	}
	// 13: x-tollgate-overhead-ms against the harness.
	for _, name := range []string{"tollgate-minimal", full} {
		res := r.find(name, rate)
		if res == nil || res.OverheadHdrMeanMs == nil || res.Added == nil {
			continue
		}
		out = append(out, check{Target: "x-tollgate-overhead-ms vs measured added latency (" + name + ", 500 req/s)", Threshold: "side by side",
			Verdict: "INFO", Measured: fmt.Sprintf("header mean %s ms, measured added mean %s ms (header/added %s)", f3(*res.OverheadHdrMeanMs), f3(res.Added.Mean), f2(*res.OverheadHdrMeanMs/math.Max(res.Added.Mean, 1e-9))),
			Note: "the header leaves out the network (the sends to the upstream, its wait) and the client-side hop; the harness's added latency holds them, and the body copy"})
	}
	return out
}

// Formatting.

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

func joinF(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = f1(x)
	}
	return strings.Join(s, ", ")
}

// table renders a Markdown table with padded columns (readable as text too).
func table(head []string, rows [][]string) string {
	w := make([]int, len(head))
	for i, h := range head {
		w[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + c + strings.Repeat(" ", w[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", w[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

func addedCell(a *pcts, p50 bool) string {
	if a == nil {
		return "—"
	}
	if p50 {
		return signed(a.P50)
	}
	return signed(a.P99)
}

func signed(v float64) string {
	if v >= 0 {
		return "+" + f3(v)
	}
	return f3(v)
}

func (r *report) rowsOf(kind string) []scenarioResult {
	var out []scenarioResult
	for _, sc := range scenarios(r.Params) {
		if sc.kind != kind {
			continue
		}
		for _, res := range r.Results {
			if res.Scenario == sc.id {
				out = append(out, res)
			}
		}
	}
	return out
}

func statusRow(res scenarioResult, width int) []string {
	row := []string{res.Scenario, res.Target, res.Status + ": " + shorten(res.Note, 60)}
	for len(row) < width {
		row = append(row, "")
	}
	return row
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "|", "/")
	s = strings.ReplaceAll(s, "\n", " ")
	if len([]rune(s)) > n {
		return string([]rune(s)[:n]) + "…"
	}
	return s
}

func ohCell(v *float64) string {
	if v == nil {
		return "—"
	}
	return f3(*v)
}

// tables renders the result tables.
func (r *report) tables() string {
	var b strings.Builder
	head := []string{"scenario", "target", "sent", "rate/s", "ok", "err", "p50 ms", "p90 ms", "p99 ms", "max ms", "+p50 ms", "+p99 ms", "CPU µs/req", "RSS max MB", "hdr ms"}
	var rows [][]string
	for _, res := range r.rowsOf("open") {
		if res.Status != "ok" {
			rows = append(rows, statusRow(res, len(head)))
			continue
		}
		rate := f0(res.RateAchieved)
		if res.Saturated {
			rate += "*"
		}
		rows = append(rows, []string{res.Scenario, res.Target, strconv.Itoa(res.Sent), rate, strconv.Itoa(res.OK), strconv.Itoa(res.Errors),
			f3(res.Latency.P50), f3(res.Latency.P90), f3(res.Latency.P99), f3(res.Latency.Max), addedCell(res.Added, true), addedCell(res.Added, false),
			f1(res.CPUPerReqUs), f1(res.RSSMaxMB), ohCell(res.OverheadHdrMeanMs)})
	}
	b.WriteString("### Open loop, non-stream (fixed rate)\n\n")
	b.WriteString(table(head, rows))
	b.WriteString("\n`+p50`/`+p99`: added latency versus direct at the same percentile. `hdr`: mean `x-tollgate-overhead-ms`. `*`: the target fell behind: requests sent late (achieved rate < 95%), errors, or answers completing slower than 90% of the rate (a queue built up).\n")
	if r.Params.OpenRounds > 1 {
		fmt.Fprintf(&b, "\nOpen-loop and stream scenarios: %s, each round every target in turn after a wait for quiet, a target's connections kept from one slice to the next; a row is computed from all its target's requests.\n",
			r.Params.openHow())
	}
	b.WriteString("\n")

	head = []string{"scenario", "target", "req/s", "ok", "err", "p50 ms", "p90 ms", "p99 ms", "max ms", "+p50 ms", "+p99 ms", "CPU µs/req", "RSS max MB"}
	rows = nil
	for _, res := range r.rowsOf("closed") {
		if res.Status != "ok" {
			rows = append(rows, statusRow(res, len(head)))
			continue
		}
		rows = append(rows, []string{res.Scenario, res.Target, f0(res.ThroughputRPS), strconv.Itoa(res.OK), strconv.Itoa(res.Errors),
			f3(res.Latency.P50), f3(res.Latency.P90), f3(res.Latency.P99), f3(res.Latency.Max), addedCell(res.Added, true), addedCell(res.Added, false),
			f1(res.CPUPerReqUs), f1(res.RSSMaxMB)})
	}
	b.WriteString("### Closed loop, non-stream (wrk)\n\n")
	b.WriteString(table(head, rows))
	if r.Params.FloorRounds > 0 {
		fmt.Fprintf(&b, "\n`floor-c1`: %s, each round every target in turn after a wait for quiet; a row merges its target's slices, its percentiles exact over all its requests and without wrk's coordinated-omission correction (`closed-c32`'s are wrk's own, with it).\n",
			r.Params.floorHow())
	}
	b.WriteString("\n")

	head = []string{"scenario", "target", "sent", "rate/s", "ok", "err", "TTFB p50", "TTFB p99", "+TTFB p50", "+TTFB p99", "total p50", "total p99", "events", "CPU µs/req", "RSS max MB"}
	rows = nil
	for _, res := range r.rowsOf("stream") {
		if res.Status != "ok" {
			rows = append(rows, statusRow(res, len(head)))
			continue
		}
		rate := f0(res.RateAchieved)
		if res.Saturated {
			rate += "*"
		}
		tt := res.TTFB
		if tt == nil {
			tt = &pcts{}
		}
		rows = append(rows, []string{res.Scenario, res.Target, strconv.Itoa(res.Sent), rate, strconv.Itoa(res.OK), strconv.Itoa(res.Errors),
			f3(tt.P50), f3(tt.P99), addedCell(res.AddedTTFB, true), addedCell(res.AddedTTFB, false), f3(res.Latency.P50), f3(res.Latency.P99),
			strconv.Itoa(res.EventsP50), f1(res.CPUPerReqUs), f1(res.RSSMaxMB)})
	}
	b.WriteString("### Streams (fixed rate; 20 content chunks + finish + usage + [DONE])\n\n")
	b.WriteString(table(head, rows))
	b.WriteString("\nTimes in ms. TTFB: request sent to first body byte. `events`: median SSE events per stream.\n\n")

	head = []string{"scenario", "target", "streams", "peak open", "ok", "err", "RSS before MB", "RSS max MB", "/metrics RSS MB", "goroutines", "threads", "gap p50 ms", "gap max ms", "CPU µs/stream", "first error"}
	rows = nil
	for _, res := range r.rowsOf("soak") {
		if res.Status != "ok" {
			rows = append(rows, statusRow(res, len(head)))
			continue
		}
		g, mr := "—", "—"
		if res.GoroutinesMax > 0 {
			g = f0(res.GoroutinesMax)
		}
		if res.MetricsRSSMB > 0 {
			mr = f1(res.MetricsRSSMB)
		}
		rows = append(rows, []string{res.Scenario, res.Target, strconv.Itoa(res.Streams), strconv.FormatInt(res.PeakOpen, 10), strconv.Itoa(res.OK), strconv.Itoa(res.Errors),
			f1(res.RSSBeforeMB), f1(res.RSSMaxMB), mr, g, strconv.FormatInt(res.ThreadsMax, 10), f1(res.MaxGapP50Ms), f1(res.MaxGapMaxMs), f1(res.CPUPerReqUs), shorten(res.FirstError, 50)})
	}
	b.WriteString(fmt.Sprintf("### Long-stream soak (a chunk every 100 ms for %d s per stream)\n\n", r.Params.SoakSeconds))
	b.WriteString(table(head, rows))
	b.WriteString("\n`gap`: per stream, the longest time between two SSE events; p50 and max over the streams. RSS from `/proc` every second; `/metrics RSS` and goroutines are tollgate's own `process_resident_memory_bytes` and `go_goroutines`, scraped at the same time.\n")
	return b.String()
}

func (r *report) checksTable() string {
	var rows [][]string
	for _, c := range r.Checks {
		rows = append(rows, []string{c.Target, c.Measured, c.Threshold, "**" + c.Verdict + "**", c.Note})
	}
	return table([]string{"target (issue #6)", "measured", "threshold", "verdict", "note"}, rows)
}

func (r *report) targetsTable() string {
	var rows [][]string
	for _, t := range r.Targets {
		status := t.Status
		if t.Why != "" {
			status += ": " + shorten(t.Why, 90)
		}
		ready := "—"
		if t.ReadyMs > 0 {
			ready = f1(t.ReadyMs)
		}
		rows = append(rows, []string{t.Name, status, ready, f1(t.IdleRSSMB), f1(t.WarmRSSMB), strconv.Itoa(t.Processes), t.Description})
	}
	return table([]string{"target", "status", "ready ms", "idle RSS MB", "warm RSS MB", "procs", "what"}, rows)
}

// markdown is the whole report.
func (r *report) markdown() string {
	var b strings.Builder
	kind := "full run"
	if r.Params.Quick {
		kind = "QUICK run (BENCH_QUICK=1: 3 s scenarios, soak N=500 for 5 s) — indicative only, not for claims"
	}
	fmt.Fprintf(&b, "# Tollgate side-by-side benchmark — %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	if r.Params.Interleaved {
		fmt.Fprintf(&b, "**%s.** Took %s. Every target ran the same scenarios on this machine, against the same mock upstream, interleaved: all targets up for the whole run, each scenario run against every target in turn, each run after the machine was quiet (every target and the mocks under %g%% of a core for %d ms, waited for at most %g s).\n\n",
			kind, r.Finished.Sub(r.Started).Round(time.Second), 100*quietShare, quietWindow.Milliseconds(), quietMax.Seconds())
		b.WriteString(r.notQuietLine())
	} else {
		fmt.Fprintf(&b, "**%s.** Took %s. Every target ran the same scenarios one after another on this machine, against the same mock upstream.\n\n",
			kind, r.Finished.Sub(r.Started).Round(time.Second))
	}
	b.WriteString("## Targets of issue #6 (tollgate-full)\n\n")
	b.WriteString(r.checksTable())
	b.WriteString("\n## Targets run\n\n")
	b.WriteString(r.targetsTable())
	b.WriteString("\n`idle RSS`: 1 s after ready, before any request. `warm RSS`: after the warm-up (200 requests and 50 streams) and 2 s idle.\n\n")
	b.WriteString("## Results\n\n")
	b.WriteString(r.tables())
	if m := r.Micro; m != nil {
		b.WriteString("\n## In-process benchmarks (allocations)\n\n`" + m.Command + "`\n\n")
		var rows [][]string
		for _, name := range []string{"BenchmarkMockDirect", "BenchmarkChatNonStream", "BenchmarkChatTenant", "BenchmarkGatewayInProcess"} {
			if v, ok := m.Benches[name]; ok {
				rows = append(rows, []string{name, f0(v.NsOp), f0(v.BytesOp), f0(v.AllocsOp)})
			}
		}
		if len(rows) > 0 {
			b.WriteString(table([]string{"benchmark", "ns/op", "B/op", "allocs/op"}, rows))
		}
		if m.Error != "" {
			b.WriteString("\nError: " + shorten(m.Error, 400) + "\n")
		}
	}
	if rd := r.Ready; rd != nil {
		fmt.Fprintf(&b, "\n## Start to ready\n\n`tollgate serve` with tollgate-full's configuration and a 0-byte SQLite file, exec to first 200 from `/readyz` (polled every 1 ms): %s ms (median %s ms); RSS at ready %s MB.\n",
			joinF(rd.Runs), f1(rd.MedianMs), f1(rd.RSSMB))
		if rd.Error != "" {
			b.WriteString("Error: " + rd.Error + "\n")
		}
	}
	b.WriteString("\n## Machine\n\n")
	fmt.Fprintf(&b, "- CPU: %s, nproc %d\n- Memory: %s\n- Kernel: %s\n- Load average at start: %s (the machine may be shared)\n- RLIMIT_NOFILE (hard): %d → largest soak N %d for a target holding two descriptors per stream (nginx, Portkey), %d for one holding one (direct; tollgate, whose slow provider speaks HTTP/2)\n",
		r.Machine.CPU, r.Machine.NProc, r.Machine.Memory, r.Machine.Kernel, r.Machine.Load, r.Params.NoFile, r.Params.SoakCap, r.Params.SoakCap1)
	b.WriteString("\n## Versions\n\n")
	for _, k := range []string{"tollgate", "go", "nginx", "wrk", "node", "portkey", "portkey @hono/node-server", "vegeta"} {
		if v, ok := r.Versions[k]; ok {
			fmt.Fprintf(&b, "- %s: %s\n", k, v)
		}
	}
	b.WriteString("\n## Commands\n\n```\n" + strings.Join(r.Commands, "\n") + "\n```\n")
	for _, t := range r.Targets {
		if t.Name == "nginx" && t.Config != "" {
			b.WriteString("\n<details><summary>generated nginx.conf</summary>\n\n```nginx\n" + t.Config + "```\n</details>\n")
		}
		if t.Name == "tollgate-full" && t.Config != "" {
			b.WriteString("\n<details><summary>generated tollgate-full config (team and key made with `tollgate teams create` / `keys create --store`)</summary>\n\n```yaml\n" + t.Config + "```\n</details>\n")
		}
	}
	return b.String()
}

// notQuiet starts the note of a result measured after the wait for quiet
// gave up.
const notQuiet = "the machine was not quiet before this run: "

// notQuietLine lists the runs measured although the machine was not quiet,
// or is empty.
func (r *report) notQuietLine() string {
	var runs []string
	for _, res := range r.Results {
		if why, ok := strings.CutPrefix(res.Note, notQuiet); ok {
			runs = append(runs, fmt.Sprintf("%s on %s (%s)", res.Scenario, res.Target, why))
		}
	}
	if len(runs) == 0 {
		return ""
	}
	return fmt.Sprintf("**Not quiet** before %d run(s), measured anyway: %s.\n\n", len(runs), strings.Join(runs, "; "))
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// flushCheck judges flushing on the largest soak the machine itself could
// deliver: where direct (no proxy at all) kept its median largest gap within
// the bar. Past that the load generator and the mock saturate the two
// cores, and every target's gaps measure them; that soak is shown in the
// note, with direct's and nginx's gaps beside it.
func (r *report) flushCheck(full string, largest *scenarioResult) check {
	soak := largest
	// gap finds target's row of soak scenario id: a target capped by its
	// descriptors ran it with fewer streams, which the note says.
	gap := func(target, id string) (*scenarioResult, bool) {
		for i := range r.Results {
			res := &r.Results[i]
			if res.Target == target && res.Kind == "soak" && res.Status == "ok" && res.Scenario == id {
				return res, true
			}
		}
		return nil, false
	}
	for i := range r.Results {
		res := &r.Results[i]
		if res.Target != full || res.Kind != "soak" || res.Status != "ok" || res.Streams >= largest.Streams {
			continue
		}
		if g, ok := gap("direct", largest.Scenario); ok && g.MaxGapP50Ms > 150 {
			if d, ok := gap("direct", res.Scenario); ok && d.MaxGapP50Ms <= 150 && (soak == largest || res.Streams > soak.Streams) {
				soak = res
			}
		}
	}
	c := check{Target: "every SSE event flushed as it arrives", Threshold: "median per-stream largest gap ≤ 150 ms (chunks every 100 ms)",
		Verdict:  verdict(soak.MaxGapP50Ms <= 150 && soak.OK > 0),
		Measured: fmt.Sprintf("median %s ms, worst %s ms over %d streams (N=%d)", f1(soak.MaxGapP50Ms), f1(soak.MaxGapMaxMs), soak.OK, soak.Streams)}
	if soak != largest {
		at := func(target string) string {
			g, ok := gap(target, largest.Scenario)
			switch {
			case !ok:
				return target + " —"
			case g.Streams != largest.Streams:
				return fmt.Sprintf("%s %s ms (N=%d)", target, f1(g.MaxGapP50Ms), g.Streams)
			}
			return fmt.Sprintf("%s %s ms", target, f1(g.MaxGapP50Ms))
		}
		c.Note = fmt.Sprintf("judged at N=%d, the largest soak direct delivered within the bar; at N=%d the machine saturates (median largest gap: %s, %s, %s %s ms)",
			soak.Streams, largest.Streams, at("direct"), at("nginx"), full, f1(largest.MaxGapP50Ms))
	}
	return c
}

// smokeCheck is the smoke run's verdict: the Tollgate targets and direct
// ran, and every scenario that could run (wrk present, say) produced
// answers and numbers. It says nothing of speed.
func (r *report) smokeCheck() error {
	var problems []string
	for _, t := range r.Targets {
		if t.Status != "ok" && (t.Name == "direct" || strings.HasPrefix(t.Name, "tollgate")) {
			problems = append(problems, fmt.Sprintf("target %s: %s %s", t.Name, t.Status, t.Why))
		}
	}
	for _, res := range r.Results {
		if res.Status != "ok" || !(res.Target == "direct" || strings.HasPrefix(res.Target, "tollgate")) {
			continue
		}
		if res.OK == 0 || res.Errors > 0 || res.Latency.P50 <= 0 && res.Kind != "soak" {
			problems = append(problems, fmt.Sprintf("%s on %s: %d ok, %d errors, p50 %.3f ms %s",
				res.Scenario, res.Target, res.OK, res.Errors, res.Latency.P50, res.FirstError))
		}
	}
	if r.Micro == nil || len(r.Micro.Benches) == 0 {
		problems = append(problems, "micro-benchmarks produced no numbers")
	}
	if len(problems) > 0 {
		return fmt.Errorf("smoke run failed:\n  %s", strings.Join(problems, "\n  "))
	}
	fmt.Println("smoke run: every target and scenario that could run produced numbers")
	return nil
}

// write prints the tables and writes results/<date>.{md,json} and RESULTS.md.
func (r *report) write(benchDir string, stdout io.Writer) error {
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "== Targets of issue #6 ==")
	fmt.Fprint(stdout, r.checksTable())
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, r.targetsTable())
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, r.tables())
	dir := filepath.Join(benchDir, "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stamp := r.Started.Format("2006-01-02-150405")
	if r.Params.Smoke {
		stamp += "-smoke"
	} else if r.Params.Quick {
		stamp += "-quick"
	}
	md := r.markdown()
	if err := os.WriteFile(filepath.Join(dir, stamp+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, stamp+".json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	latest := "<!-- Written by make bench (bench/cmd/benchrun); do not edit by hand. -->\n" +
		"Latest run. This run's files: [`results/" + stamp + ".md`](results/" + stamp + ".md), [`results/" + stamp + ".json`](results/" + stamp + ".json). " +
		"How to read it: [README.md](README.md).\n\n" + md
	if err := os.WriteFile(filepath.Join(benchDir, "RESULTS.md"), []byte(latest), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s, %s and %s\n", filepath.Join(dir, stamp+".md"), filepath.Join(dir, stamp+".json"), filepath.Join(benchDir, "RESULTS.md"))
	return nil
}
