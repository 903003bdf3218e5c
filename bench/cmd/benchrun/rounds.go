package main

// floor-c1, the latency floor at concurrency 1, is measured in interleaved
// rounds. Its verdict, tollgate-full's p99 minus direct's, is the
// difference of two p99s, and this machine's speed drifts over minutes:
// run as one 20 s window per target, one target after another, direct's
// and tollgate-full's windows were a minute or two apart, and nginx's
// added p99 ranged from −0.42 to +1.36 ms over six runs. In rounds, every
// target runs one short slice per round in turn, so every target's
// requests are spread over the same minutes. Each target's slices are then
// merged into one row, its percentiles exact over all its requests (from
// wrk's histograms, not averages of per-slice percentiles).
//
// The open-loop and stream scenarios run in rounds too (BENCH_OPEN_ROUNDS,
// 5 in a full run): their verdicts, tollgate-full's added latency and TTFB
// over nginx's, compared targets measured 20 s windows apart and flipped
// between runs of one build. A target's slices share one transport
// (runner.probe), so that each slice after the first reuses the
// connections of the ones before rather than paying for new ones; its
// row is computed from all its slices' samples as one run's would be.
//
// Between two slices of a round the runner waits, up to 2 s, for the
// target before to be quiet (runner.waitSettled): the work a gateway does
// after its last request would otherwise land on the next target's first.

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// bucket is one latency of a histogram: microseconds, and how many
// requests took that long. In JSON it is [us, count], as chat.lua prints it.
type bucket [2]int64

func (b bucket) us() int64 { return b[0] }
func (b bucket) n() int64  { return b[1] }

// hist is a latency histogram: buckets by ascending latency, none empty.
type hist []bucket

func (h hist) count() int64 {
	var n int64
	for _, b := range h {
		n += b.n()
	}
	return n
}

// mergeHists adds histograms up.
func mergeHists(hs ...hist) hist {
	sum := map[int64]int64{}
	for _, h := range hs {
		for _, b := range h {
			sum[b.us()] += b.n()
		}
	}
	out := make(hist, 0, len(sum))
	for us, n := range sum {
		if n > 0 {
			out = append(out, bucket{us, n})
		}
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmp.Compare(a.us(), b.us()) })
	return out
}

// pcts computes h's percentiles, in ms, as percentiles does from the
// samples themselves: nearest rank.
func (h hist) pcts() pcts {
	n := h.count()
	if n == 0 {
		return pcts{}
	}
	// rank is the latency of the request at 0-based position i in
	// ascending order.
	rank := func(q float64) float64 {
		i := max(0, min(int64(math.Ceil(q*float64(n)))-1, n-1))
		for _, b := range h {
			if i -= b.n(); i < 0 {
				return float64(b.us()) / 1000
			}
		}
		return 0 // not reached: i < n
	}
	var sum int64
	for _, b := range h {
		sum += b.us() * b.n()
	}
	return pcts{Mean: float64(sum) / float64(n) / 1000, P50: rank(0.50), P90: rank(0.90), P99: rank(0.99),
		Max: float64(h[len(h)-1].us()) / 1000}
}

// floorSlice is one target's share of floor-c1 in one round: the
// scenario's duration over the rounds, in whole seconds (wrk's -d), at
// least 1 s.
func (p params) floorSlice() time.Duration {
	return max(time.Second, (p.Duration / time.Duration(max(p.FloorRounds, 1))).Truncate(time.Second))
}

// floorHow says how floor-c1 was run, for its rows and the report.
func (p params) floorHow() string {
	return fmt.Sprintf("%d interleaved rounds of %g s per target", p.FloorRounds, p.floorSlice().Seconds())
}

// openSlice is a target's share of an open-loop scenario in one round:
// the duration over the rounds, to the millisecond.
func (p params) openSlice() time.Duration {
	return (p.Duration / time.Duration(max(p.OpenRounds, 1))).Round(time.Millisecond)
}

// openHow says how the open-loop scenarios were run, for their rows.
func (p params) openHow() string {
	return fmt.Sprintf("%d interleaved rounds of %g s per target", p.OpenRounds, p.openSlice().Seconds())
}

// openHowCmd is openHow for the report's commands: empty without rounds.
func (p params) openHowCmd() string {
	if p.OpenRounds <= 1 {
		return ""
	}
	return fmt.Sprintf("; %s (rate x %gs each), a target's connections kept from one slice to the next, its slices' samples merged", p.openHow(), p.openSlice().Seconds())
}

// roundsHow is floorHow or openHow, by the scenario's kind.
func (p params) roundsHow(kind string) string {
	if kind == "closed" {
		return p.floorHow()
	}
	return p.openHow()
}

// statusRank orders the statuses from best to worst.
var statusRank = map[string]int{"ok": 0, "skipped": 1, "unavailable": 2, "failed": 3}

// mergeSlices makes one row of a target's slices of a scenario in rounds,
// in the order they ran. how (params.roundsHow) is added to the command.
// floor-c1's latency is its slices' histograms added up; an open-loop
// scenario's row is computed from its slices' samples as one run's is.
func mergeSlices(parts []scenarioResult, how string) scenarioResult {
	first := parts[0]
	m := scenarioResult{Scenario: first.Scenario, Kind: first.Kind, Target: first.Target, Status: "ok", RSSBeforeMB: first.RSSBeforeMB}
	var hs []hist
	var notes []string
	var rate float64
	for _, s := range parts {
		m.add(s)
		if m.Command == "" && s.Command != "" {
			m.Command = s.Command + "; " + how
		}
		hs, notes = append(hs, s.hist), append(notes, s.Note)
		m.loop.samples = append(m.loop.samples, s.loop.samples...)
		m.loop.elapsed += s.loop.elapsed
		m.loop.sendSpan += s.loop.sendSpan
		m.loop.sends += s.loop.sends
		m.loop.peakOpen = max(m.loop.peakOpen, s.loop.peakOpen)
		rate = max(rate, s.RateTarget)
	}
	m.Note = mergeNotes(notes)
	switch {
	case m.Kind == "open" || m.Kind == "stream":
		if m.Command != "" { // some slice ran
			m.openStats(m.loop, rate)
		}
		m.loop = openLoop{}
	default:
		m.hist = mergeHists(hs...)
		m.Latency = m.hist.pcts()
		if m.wrkSeconds > 0 {
			m.ThroughputRPS = float64(m.OK) / m.wrkSeconds
		}
	}
	if m.Sent > 0 {
		m.CPUPerReqUs = m.CPUSeconds / float64(m.Sent) * 1e6
	}
	return m
}

// add counts slice s into m: counts, wrk's time and CPU time add up, the
// peaks are the largest, the status is the worst, the first error stays.
func (m *scenarioResult) add(s scenarioResult) {
	m.Sent, m.OK, m.Errors = m.Sent+s.Sent, m.OK+s.OK, m.Errors+s.Errors
	m.CPUSeconds += s.CPUSeconds
	m.wrkSeconds += s.wrkSeconds
	m.RSSMaxMB, m.MetricsRSSMB = max(m.RSSMaxMB, s.RSSMaxMB), max(m.MetricsRSSMB, s.MetricsRSSMB)
	m.ThreadsMax, m.GoroutinesMax = max(m.ThreadsMax, s.ThreadsMax), max(m.GoroutinesMax, s.GoroutinesMax)
	if statusRank[s.Status] > statusRank[m.Status] {
		m.Status = s.Status
	}
	if m.FirstError == "" {
		m.FirstError = s.FirstError
	}
}

// mergeNotes keeps each distinct note once. The rounds that were not quiet
// become one note, first, so that the report's not-quiet line finds it.
func mergeNotes(notes []string) string {
	var quiet, other []string
	for _, n := range notes {
		if why, ok := strings.CutPrefix(n, notQuiet); ok && !slices.Contains(quiet, why) {
			quiet = append(quiet, why)
		} else if !ok && n != "" && !slices.Contains(other, n) {
			other = append(other, n)
		}
	}
	if len(quiet) > 0 {
		other = append([]string{notQuiet + strings.Join(quiet, "; ")}, other...)
	}
	return strings.Join(other, "; ")
}
