// Command benchrun is Tollgate's side-by-side benchmark: it drives the same
// load through "direct" (the mock upstream itself), nginx, tollgate-minimal,
// tollgate-full, Portkey and any extra target, in one run on one machine,
// scenario by scenario (each scenario against every target in turn, all
// targets up for the whole run), and writes the table,
// bench/results/<date>.{md,json} and bench/RESULTS.md. See bench/README.md.
// Run it with "make bench".
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Response shapes (see bench/README.md): the fast mock answers replyTokens
// tokens (a ~1.4 KB chat.completion); streams ask max_tokens streamTokens
// (20 content chunks, then the finish chunk, a usage chunk and [DONE]).
const (
	replyTokens  = 150
	streamTokens = 20
	nonStreamMax = 256 // max_tokens of the non-stream request (bounds the budget reservation)
)

const systemPrompt = "You are a concise assistant. Answer in plain prose."
const userPrompt = "Summarise the quarterly sales report for the leadership team in three short paragraphs."

func chatBody(model string, maxTokens int, stream bool) []byte {
	s := ""
	if stream {
		s = `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return []byte(fmt.Sprintf(`{"model":%q,"max_tokens":%d,"messages":[{"role":"system","content":%q},{"role":"user","content":%q}]%s}`,
		model, maxTokens, systemPrompt, userPrompt, s))
}

// params are the run's settings, from the environment.
type params struct {
	Quick        bool            `json:"quick"`
	Smoke        bool            `json:"smoke"` // BENCH_SMOKE=1: seconds per target, results to a temp dir, CI
	Duration     time.Duration   `json:"-"`
	DurationS    float64         `json:"scenario_seconds"`
	SoakSeconds  int             `json:"soak_seconds"`
	SoakSteps    []int           `json:"soak_steps"`
	SoakCap      int             `json:"soak_cap"`   // largest N the descriptor limit allows a target with two per stream
	SoakCap1     int             `json:"soak_cap_1"` // and one with one per stream (and the load generator)
	SoakRamp     float64         `json:"soak_ramp_per_s"`
	Rates        []float64       `json:"open_rates"`
	StreamRates  []float64       `json:"stream_rates"`
	Conns        int             `json:"closed_conns"`
	FloorRounds  int             `json:"floor_rounds,omitempty"` // floor-c1's interleaved rounds (rounds.go); 0 in runs from before them
	OpenRounds   int             `json:"open_rounds,omitempty"`  // the open-loop and stream scenarios' rounds (rounds.go); 0 or 1: one run per target
	ReadyRuns    int             `json:"ready_runs"`
	Benchtime    string          `json:"micro_benchtime"`
	SkipMicro    bool            `json:"skip_micro"`
	MaxWorkers   uint64          `json:"max_in_flight"`
	Settle       time.Duration   `json:"-"`
	NginxWorkers string          `json:"nginx_workers"`
	NoFile       uint64          `json:"rlimit_nofile"`
	targets      map[string]bool // empty: all
	scenarios    []string        // prefixes; empty: all
	extra        string

	// Interleaved: scenario-major with a wait for quiet before each run.
	// Runs recorded before that have it false, and -render must not
	// describe them as interleaved.
	Interleaved bool `json:"interleaved,omitempty"`
}

func (p params) soakTokens() int { return p.SoakSeconds * 10 }

// soakCap is the largest soak N a process holding perStream descriptors per
// stream can take under the descriptor limit, keeping 200 for the rest.
func soakCap(limit uint64, perStream int) int {
	return int((max(limit, 200) - 200) / uint64(perStream))
}

// soakStreams is how many streams t opens in soak sc: sc.n, capped by what
// t's descriptors allow.
func (p params) soakStreams(t *target, sc scenario) int {
	if t.streamFDs == 1 {
		return min(sc.n, p.SoakCap1)
	}
	return min(sc.n, p.SoakCap)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envList(name string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(os.Getenv(name), func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

func loadParams() params {
	p := params{
		Quick:       os.Getenv("BENCH_QUICK") == "1" || os.Getenv("BENCH_SMOKE") == "1",
		Smoke:       os.Getenv("BENCH_SMOKE") == "1",
		Rates:       []float64{100, 500, 2000},
		StreamRates: []float64{100, 500},
		Conns:       32,
		SoakRamp:    float64(envInt("BENCH_SOAK_RAMP", 1000)),
		MaxWorkers:  uint64(envInt("BENCH_MAX_IN_FLIGHT", 5000)),
		extra:       os.Getenv("BENCH_EXTRA_TARGETS"),
		Interleaved: true,
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	p.NoFile = lim.Max
	// A proxied stream holds two descriptors in a proxy that opens an
	// upstream connection per stream, one in the load generator and the
	// mock; keep 200 for everything else (target.streamFDs).
	p.SoakCap = soakCap(lim.Max, 2)
	p.SoakCap1 = soakCap(lim.Max, 1)
	switch {
	case p.Smoke:
		// Enough to prove every part of the harness still runs and
		// produces numbers; nothing to compare.
		p.Rates, p.StreamRates = []float64{100}, []float64{100}
		p.Duration, p.SoakSeconds, p.SoakSteps, p.FloorRounds, p.OpenRounds = time.Second, 2, []int{20}, 2, 1
		p.ReadyRuns, p.Benchtime, p.Settle = 1, "1x", 200*time.Millisecond
	case p.Quick:
		p.Duration, p.SoakSeconds, p.SoakSteps, p.FloorRounds, p.OpenRounds = 3*time.Second, 5, []int{500}, 3, 1
		p.ReadyRuns, p.Benchtime, p.Settle = 3, "300x", 500*time.Millisecond
	default:
		p.Duration, p.SoakSeconds, p.SoakSteps, p.FloorRounds, p.OpenRounds = 20*time.Second, 60, []int{1000, 5000, 10000}, 10, 5
		p.ReadyRuns, p.Benchtime, p.Settle = 5, "3000x", 2*time.Second
	}
	if v := envInt("BENCH_DURATION", 0); v > 0 {
		p.Duration = time.Duration(v) * time.Second
	}
	p.FloorRounds = envInt("BENCH_FLOOR_ROUNDS", p.FloorRounds)
	p.OpenRounds = envInt("BENCH_OPEN_ROUNDS", p.OpenRounds)
	p.SoakSeconds = envInt("BENCH_SOAK_SECONDS", p.SoakSeconds)
	if steps := envList("BENCH_SOAK_STEPS"); len(steps) > 0 {
		p.SoakSteps = nil
		for _, s := range steps {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				p.SoakSteps = append(p.SoakSteps, n)
			}
		}
	}
	p.DurationS = p.Duration.Seconds()
	p.NginxWorkers = os.Getenv("BENCH_NGINX_WORKERS")
	if p.NginxWorkers == "" {
		p.NginxWorkers = "auto"
	}
	p.SkipMicro = os.Getenv("BENCH_SKIP_MICRO") == "1"
	if l := envList("BENCH_TARGETS"); len(l) > 0 {
		p.targets = map[string]bool{"direct": true}
		for _, t := range l {
			p.targets[t] = true
		}
	}
	p.scenarios = envList("BENCH_SCENARIOS")
	return p
}

func (p params) wantScenario(id string) bool {
	if len(p.scenarios) == 0 {
		return true
	}
	for _, s := range p.scenarios {
		if strings.HasPrefix(id, s) {
			return true
		}
	}
	return false
}

func main() {
	root := flag.String("root", "..", "repository root")
	bin := flag.String("tollgate", "", "tollgate binary (default ROOT/bin/tollgate)")
	out := flag.String("out", "", "directory for the results (default ROOT/bench, which also updates RESULTS.md)")
	render := flag.String("render", "", "recompute the verdicts and tables of a results JSON file and write them again (no run)")
	flag.Parse()
	if *render != "" {
		if err := rerender(*render, *root, *out); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*root, *bin, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run(root, bin, out string) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	if bin == "" {
		bin = filepath.Join(root, "bin", "tollgate")
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (run make build first)", bin, err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	p := loadParams()
	work, err := os.MkdirTemp("", "tollgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	l := &lab{root: root, tollgate: bin, work: work, p: p, masterKey: randomKey(),
		fastPort: envInt("BENCH_MOCK_PORT", 18090), slowPort: envInt("BENCH_MOCK_SLOW_PORT", 18091)}

	rep := &report{Started: time.Now(), Params: p, Machine: machine(), Versions: versions(root, bin)}
	rep.Commands = commands(p)
	logf("benchrun: %s run, %s per scenario, soak %d s at N=%v (cap %d by RLIMIT_NOFILE=%d); work dir %s",
		map[bool]string{true: "QUICK", false: "full"}[p.Quick]+map[bool]string{true: " (smoke)", false: ""}[p.Smoke], p.Duration, p.SoakSeconds, p.SoakSteps, p.SoakCap, p.NoFile, work)

	if !p.SkipMicro {
		logf("micro: go test -bench (allocations per proxied request), benchtime %s", p.Benchtime)
		rep.Micro = runMicro(ctx, root, p.Benchtime)
	}
	logf("start-to-ready: %d runs of tollgate-full's config with an empty SQLite file", p.ReadyRuns)
	rep.Ready = measureReady(ctx, l)

	if err := l.startMocks(ctx); err != nil {
		return err
	}
	defer l.stopMocks()

	all := []*target{l.direct(), l.nginx(), l.tollgateTarget(false), l.tollgateTarget(true), l.portkey()}
	extras, err := parseExtra(p.extra)
	if err != nil {
		return err
	}
	for _, e := range extras {
		all = append(all, l.extra(e))
	}
	var targets []*target
	for _, t := range all {
		if p.targets == nil || p.targets[t.Name] {
			targets = append(targets, t)
		}
	}
	runTargets(ctx, l, targets, rep)
	rep.Finished = time.Now()
	rep.compute()
	if out == "" {
		out = filepath.Join(root, "bench")
	}
	if err := rep.write(out, os.Stdout); err != nil {
		return err
	}
	if p.Smoke {
		return rep.smokeCheck()
	}
	return nil
}

// rerender reads a run's JSON and writes its report again with this
// harness's verdicts: for when how a target is judged changed after a run.
func rerender(path, root, out string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep.Params.Quick = strings.HasSuffix(strings.TrimSuffix(filepath.Base(path), ".json"), "-quick")
	rep.compute()
	if out == "" {
		out = filepath.Join(root, "bench")
	}
	return rep.write(out, os.Stdout)
}

func randomKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "mk-bench-" + hex.EncodeToString(b)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// runTargets measures targets scenario by scenario. The machine this runs
// on is small and shared, and its speed drifts by tens of percent over
// minutes; measured one target after another, two targets' rows of one
// scenario were 10 minutes apart and their ratio measured the drift as much
// as the targets. So every target is started first and stays up, then each
// scenario runs against every target in turn, each run preceded by a wait
// for quiet (quiet.go); floor-c1 (and the open-loop scenarios, with
// BENCH_OPEN_ROUNDS) runs in rounds, a slice per target in each, with one
// wait per round so that its slices stay close in time, and between two
// slices only a short wait for the target before to finish its work
// (waitSettled; rounds.go). Every target is stopped on return, including
// when ctx is cancelled (Ctrl-C).
func runTargets(ctx context.Context, l *lab, targets []*target, rep *report) {
	r := &runner{l: l, rep: rep, down: map[*target]why{}, slices: map[*target][]scenarioResult{}, probes: map[*target]*probeTransport{},
		gate: func(ts []*target) quietGate { return newQuietGate(cpuGroups(l, ts)) }}
	defer r.stopAll()
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		r.started = append(r.started, t)
		if !startTarget(ctx, l, t) {
			r.down[t] = why{"skipped", t.info.Status + ": " + t.info.Why}
		}
	}
	steps := schedule(l.p, r.started)
	var q quietResult
	var gated step // the step the last wait for quiet was for
	for i, s := range steps {
		if ctx.Err() != nil {
			break
		}
		if d, ok := r.isDown(s); ok {
			r.record(s, scenarioResult{Scenario: s.sc.id, Kind: s.sc.kind, Target: s.t.Name, Status: d.status, Note: d.note})
			continue
		}
		if !s.sameRound(gated) {
			gated, q = s, r.waitQuiet(ctx, s)
		} else {
			r.waitSettled(ctx, steps[i-1], s)
		}
		if ctx.Err() != nil {
			break
		}
		r.record(s, r.measure(ctx, s, q))
		if i+1 == len(steps) || !steps[i+1].sameRound(s) {
			time.Sleep(l.p.Settle)
		}
	}
	for _, t := range r.started {
		if len(r.slices[t]) > 0 { // cancelled between rounds: what ran
			r.merge(t)
		}
		rep.Targets = append(rep.Targets, t.info)
	}
}

// runner is the state of runTargets.
type runner struct {
	l       *lab
	rep     *report
	started []*target
	down    map[*target]why
	// slices holds each target's slices of a scenario in rounds until its
	// last round; probes, an open-loop scenario's transport, so that its
	// connections persist from one slice to the next.
	slices map[*target][]scenarioResult
	probes map[*target]*probeTransport
	// gate watches the mocks and the targets given (newQuietGate on
	// cpuGroups; tests play it).
	gate func([]*target) quietGate
}

// why a target's scenarios are not run: it did not start, or its process
// died.
type why struct{ status, note string }

func (r *runner) stopAll() {
	for _, t := range slices.Backward(r.started) {
		t.stop()
	}
}

func (r *runner) up() []*target {
	var up []*target
	for _, t := range r.started {
		if _, ok := r.down[t]; !ok {
			up = append(up, t)
		}
	}
	return up
}

// isDown says whether s's target is down, noticing first whether its
// process has died since its last scenario.
func (r *runner) isDown(s step) (why, bool) {
	if _, ok := r.down[s.t]; !ok {
		if err := s.t.exited(); err != nil {
			r.fell(s.t, s.sc, false, err)
		}
	}
	d, ok := r.down[s.t]
	return d, ok
}

func (r *runner) fell(t *target, sc scenario, during bool, err error) {
	when := "before"
	if during {
		when = "during"
	}
	t.info.Status, t.info.Why = "failed", fmt.Sprintf("exited %s %s: %v", when, sc.id, err)
	r.down[t] = why{"failed", t.info.Why}
	logf("target %s: %s; its remaining scenarios are recorded as failed", t.Name, t.info.Why)
	t.stop() // what it spawned (nginx workers) must not run on beside the others
}

// waitQuiet waits for quiet before s (before a round: s is its first
// step to run) and logs what it found.
func (r *runner) waitQuiet(ctx context.Context, s step) quietResult {
	q := r.gate(r.up()).wait(ctx)
	what := "target " + s.t.Name + ": " + s.sc.id
	if s.round > 0 {
		what = s.sc.id + s.roundLabel()
	}
	if ctx.Err() == nil && !q.quiet {
		logf("%s: not quiet after %s; measuring anyway", what, q)
	} else if ctx.Err() == nil && q.busy != "" {
		logf("%s: quiet after %s", what, q)
	}
	return q
}

// waitSettled waits, between two slices of a round, until the target of
// the slice before (prev) and the mocks are quiet again, for at most
// sliceQuietMax. A gateway finishes its requests' work after its slice:
// tollgate writes the ledger records of its last 200 ms and flushes its
// log, 2–3 ms of CPU in the first 100 ms after a floor-c1 slice. Without
// this wait that cost fell on the first requests of whoever followed a
// tollgate in the round (tollgate-full, after tollgate-minimal), and never
// on nginx's (after direct, whose mock has nothing left to do).
func (r *runner) waitSettled(ctx context.Context, prev, s step) {
	g := r.gate(r.upOf(prev.t))
	g.limit = sliceQuietMax
	if q := g.wait(ctx); ctx.Err() == nil && !q.quiet {
		logf("target %s: %s%s: %s not quiet after %s; measuring anyway", s.t.Name, s.sc.id, s.roundLabel(), prev.t.Name, q)
	}
}

// sliceQuietMax bounds the wait between two slices of a round: the round's
// slices must stay close in time (rounds.go), and a target that is still
// busy after it (Portkey's backlog) is what the wait before the next round
// is for.
const sliceQuietMax = 2 * time.Second

// upOf is t alone if it is still up, else no target: the mocks only.
func (r *runner) upOf(t *target) []*target {
	if _, down := r.down[t]; down {
		return nil
	}
	return []*target{t}
}

// measure runs step s, after a wait for quiet that found q.
func (r *runner) measure(ctx context.Context, s step, q quietResult) scenarioResult {
	t, sc := s.t, s.sc
	logf("target %s: %s%s", t.Name, sc.id, s.roundLabel())
	res := runScenario(ctx, r.l, t, sc, r.probe(s))
	if err := t.exited(); err != nil {
		res.Status, res.Note = "failed", "the target exited during this scenario: "+err.Error()
		r.fell(t, sc, true, err)
	} else if !q.quiet {
		res.Note = notQuiet + q.String()
		if s.round > 0 { // the round's wait; mergeNotes gathers the rounds'
			res.Note = fmt.Sprintf("%sround %d/%d, after %s", notQuiet, s.round, s.sc.rounds, q)
		}
	}
	logf("target %s: %s%s: %s", t.Name, sc.id, s.roundLabel(), res.brief())
	return res
}

// record keeps the result of step s. A slice waits for the target's last
// round; then its slices go into the report as one row.
func (r *runner) record(s step, res scenarioResult) {
	if s.round == 0 {
		r.rep.Results = append(r.rep.Results, res)
		return
	}
	r.slices[s.t] = append(r.slices[s.t], res)
	if s.round == s.sc.rounds {
		r.merge(s.t)
	}
}

// probe is the transport of s: for a slice of an open-loop scenario, its
// target's, made at its first slice and kept to its last (merge); nil
// otherwise (attack makes one of its own).
func (r *runner) probe(s step) *probeTransport {
	if s.round == 0 || (s.sc.kind != "open" && s.sc.kind != "stream") {
		return nil
	}
	if r.probes[s.t] == nil {
		r.probes[s.t] = newProbeTransport(r.l.p.MaxWorkers)
	}
	return r.probes[s.t]
}

func (r *runner) merge(t *target) {
	parts := r.slices[t]
	m := mergeSlices(parts, r.l.p.roundsHow(parts[0].Kind))
	delete(r.slices, t)
	if pt := r.probes[t]; pt != nil {
		pt.base.CloseIdleConnections()
		delete(r.probes, t)
	}
	logf("target %s: %s, %d slices merged: %s", t.Name, m.Scenario, len(parts), m.brief())
	r.rep.Results = append(r.rep.Results, m)
}

// step is one measurement: a scenario against a target, or one round's
// slice of it.
type step struct {
	sc    scenario
	t     *target
	round int // 1 .. sc.rounds; 0: the whole scenario
}

// sameRound says whether s and o are slices of the same round.
func (s step) sameRound(o step) bool {
	return s.round > 0 && s.round == o.round && s.sc.id == o.sc.id
}

func (s step) roundLabel() string {
	if s.round == 0 {
		return ""
	}
	return fmt.Sprintf(" round %d/%d", s.round, s.sc.rounds)
}

// schedule is the order of the measurements: scenario-major, the scenarios
// in their usual order, the targets in theirs within each. A scenario in
// rounds (floor-c1, and the open-loop and stream scenarios when
// BENCH_OPEN_ROUNDS > 1) is its rounds one after another, each a slice per
// target in the targets' order.
func schedule(p params, targets []*target) []step {
	var out []step
	for _, sc := range scenarios(p) {
		if !p.wantScenario(sc.id) {
			continue
		}
		for round := range max(sc.rounds, 1) {
			for _, t := range targets {
				s := step{sc: sc, t: t}
				if sc.rounds > 0 {
					s.round = round + 1
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// startTarget starts t, checks it answers like the mock, measures its idle
// RSS, warms it up and leaves it running. It reports whether t is ready;
// when not, t is stopped and t.info says why.
func startTarget(ctx context.Context, l *lab, t *target) bool {
	t.info.Name, t.info.Description = t.Name, t.Description
	logf("target %s: starting", t.Name)
	if err := t.start(ctx); err != nil {
		t.info.Status, t.info.Why = "failed", err.Error()
		if isUnavailable(err) {
			t.info.Status = "unavailable"
		}
		logf("target %s: %s: %v", t.Name, t.info.Status, err)
		t.stop()
		return false
	}
	t.info.URL = t.baseURL
	var names []string
	for k := range t.header {
		names = append(names, k)
	}
	slices.Sort(names)
	t.info.Headers = strings.Join(names, ", ")
	if err := validate(ctx, t, l); err != nil {
		t.info.Status, t.info.Why = "failed", "validation: "+err.Error()
		logf("target %s: %s", t.Name, t.info.Why)
		t.stop()
		return false
	}
	pids := t.pids(false)
	t.info.Processes = len(pids)
	time.Sleep(time.Second)
	t.info.IdleRSSMB = mb(measure(t.pids(false)).rssBytes)
	warmUp(ctx, t, l)
	time.Sleep(2 * time.Second)
	t.info.WarmRSSMB = mb(measure(t.pids(false)).rssBytes)
	t.info.Status = "ok"
	return true
}
