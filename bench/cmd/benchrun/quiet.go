package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Before each measurement the harness waits until every process of the run
// is idle. All targets stay up for the whole run, and one that fell behind
// (Portkey at 2,000 req/s) goes on working through its backlog after its
// scenario has ended; measured then, the next target would share the two
// cores with it. The wait is bounded: a process that never settles costs
// quietMax per measurement, is logged and noted in the result, and the run
// goes on.
const (
	quietWindow = 250 * time.Millisecond
	quietShare  = 0.02 // of one core, per group of processes, over quietWindow
	quietMax    = 20 * time.Second
)

// quietGate decides when the machine is quiet. read returns the CPU time
// each group of processes (a target, the mocks) has used so far; now and
// sleep are the clock, replaced in tests.
type quietGate struct {
	window time.Duration
	share  float64
	limit  time.Duration
	read   func() map[string]time.Duration
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
}

// quietResult is what one wait found.
type quietResult struct {
	quiet  bool          // every group stayed under the share for one window
	waited time.Duration // from the first reading to the decision
	// busy is the group that held the wait, with its share of one core, in
	// the last window that was not quiet; empty when the first was.
	busy string
	load float64
}

func (q quietResult) String() string {
	if q.busy == "" {
		return fmt.Sprintf("%.2f s", q.waited.Seconds())
	}
	return fmt.Sprintf("%.2f s, %s at %.1f%% of a core", q.waited.Seconds(), q.busy, 100*q.load)
}

func newQuietGate(read func() map[string]time.Duration) quietGate {
	return quietGate{window: quietWindow, share: quietShare, limit: quietMax, read: read, now: time.Now, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// wait reads the groups' CPU time every window, back to back, and returns
// as soon as one window saw every group use less than share of a core, or
// when limit has passed (quiet false), or ctx is done (quiet false).
func (q quietGate) wait(ctx context.Context) quietResult {
	start := q.now()
	prev, prevAt := q.read(), start
	var res quietResult
	for {
		if err := q.sleep(ctx, q.window); err != nil {
			res.waited = q.now().Sub(start)
			return res
		}
		cur, at := q.read(), q.now()
		span := at.Sub(prevAt)
		if span <= 0 {
			span = q.window
		}
		res.waited = at.Sub(start)
		busy, top := "", 0.0
		names := make([]string, 0, len(cur))
		for name := range cur {
			names = append(names, name)
		}
		slices.Sort(names) // ties go to the first name: the same log every time
		for _, name := range names {
			before, ok := prev[name]
			if !ok {
				continue // appeared meanwhile: judged from the next window
			}
			// A thread that ended took its time with it: a decrease is zero.
			load := float64(max(cur[name]-before, 0)) / float64(span)
			if busy == "" || load > top {
				busy, top = name, load
			}
		}
		if top < q.share {
			res.quiet = true
			return res
		}
		res.busy, res.load = busy, top
		if res.waited >= q.limit {
			return res
		}
		prev, prevAt = cur, at
	}
}

// cpuGroups returns the reader of the quiet gate for the targets still up:
// the two mocks (every target's upstream, direct's own processes) as one
// group, and each other target's process tree as another. The process
// lists are taken once, at the start of a wait.
func cpuGroups(l *lab, up []*target) func() map[string]time.Duration {
	groups := map[string][]int{"mock-upstream": {l.fast.pid(), l.slow.pid()}}
	seen := map[int]bool{l.fast.pid(): true, l.slow.pid(): true}
	for _, t := range up {
		var pids []int
		for _, p := range append(t.pids(false), t.pids(true)...) {
			if !seen[p] {
				seen[p] = true
				pids = append(pids, p)
			}
		}
		if len(pids) > 0 {
			groups[t.Name] = pids
		}
	}
	return func() map[string]time.Duration {
		out := make(map[string]time.Duration, len(groups))
		for name, pids := range groups {
			out[name] = cpuTime(pids)
		}
		return out
	}
}
