package main

import (
	"os"
	"strings"
	"syscall"
)

// runtimeSettings are GODEBUG settings `tollgate serve` runs with, each
// unless GODEBUG already sets its key (GODEBUG=schedtrace=0 or
// madvdontneed=1 restores Go's default). The runtime reads them only at
// start, so serve re-executes itself with them (tuneRuntime).
var runtimeSettings = []string{
	// schedtrace keeps the runtime's system monitor (sysmon) out of deep
	// sleep. By default sysmon sleeps whenever every P is idle and the next
	// system call wakes it, which on a proxy means at the start of almost
	// every request at moderate load; after each such wake it polls every
	// 20 µs for a millisecond or more before backing off. On a VM each of
	// those sleeps costs a timer exit and a context switch: on the 2-vCPU VM
	// of bench/, sysmon was about 8% of the gateway's CPU at c=32, and
	// keeping it awake cut CPU per request by 11% at c=32 and by 30% at 500
	// req/s. Kept awake, sysmon backs off to one wake every 10 ms while it
	// has nothing to do (0.1–0.2% of a core when idle). The runtime's only
	// switch for this is schedtrace, which also prints a scheduler summary
	// to stderr every N ms; N is the largest it takes (2^31-1 ms, 24.8
	// days), so the line appears once every 24.8 days of host uptime,
	// counted from boot (CLOCK_MONOTONIC).
	"schedtrace=2147483647",
	// madvdontneed=0 has the runtime give free heap memory back with
	// MADV_FREE instead of MADV_DONTNEED. After each collection the runtime
	// returns most of the heap's free pages to the kernel, and the heap then
	// grows again through those very pages, each faulted in anew — on a
	// request's path, for every byte a request allocates. With MADV_FREE a
	// page the kernel has not yet taken back is reused without a fault. On
	// the bench VM a fault costs about 20 µs: page faults per stream went
	// from 1.37 to 0.15, per non-stream request from 0.75 to 0.24, CPU per
	// stream down 7% and a stream's p50 latency by some 50 µs. The price:
	// freed memory stays counted in the process's RSS until the kernel needs
	// it (cgroup v2's working set does not count it), so RSS after a burst
	// falls only under memory pressure.
	"madvdontneed=0",
}

// tuneRuntime re-executes `tollgate serve` in place (same pid, same
// arguments and open descriptors) with the runtimeSettings that GODEBUG
// does not already set. It returns only when it did not re-execute.
func tuneRuntime() {
	env, ok := godebugEnv(os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, env) // on failure, run with Go's defaults
}

// godebugEnv returns environ with the runtimeSettings that GODEBUG does not
// set added to it, or false when it sets them all.
func godebugEnv(environ []string) ([]string, bool) {
	out := make([]string, 0, len(environ)+1)
	godebug := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			godebug = v
			continue
		}
		out = append(out, kv)
	}
	set := map[string]bool{}
	for _, f := range strings.Split(godebug, ",") {
		if k, _, ok := strings.Cut(f, "="); ok {
			set[k] = true
		}
	}
	added := false
	for _, s := range runtimeSettings {
		k, _, _ := strings.Cut(s, "=")
		if set[k] {
			continue
		}
		if godebug != "" {
			godebug += ","
		}
		godebug += s
		added = true
	}
	if !added {
		return nil, false
	}
	return append(out, "GODEBUG="+godebug), true
}
