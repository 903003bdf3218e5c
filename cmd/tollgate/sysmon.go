package main

import (
	"os"
	"strings"
	"syscall"
)

// sysmonSetting keeps the Go runtime's system monitor (sysmon) out of deep
// sleep. By default sysmon sleeps whenever every P is idle and the next
// system call wakes it, which on a proxy means at the start of almost every
// request at moderate load; after each such wake it polls every 20 µs for a
// millisecond or more before backing off. On a VM each of those sleeps costs
// a timer exit and a context switch: on the 2-vCPU VM of bench/, sysmon was
// about 8% of the gateway's CPU at c=32, and keeping it awake cut CPU per
// request by 11% at c=32 and by 30% at 500 req/s. Kept awake, sysmon backs
// off to one wake every 10 ms while it has nothing to do (0.1–0.2% of a core
// when idle). The runtime's only switch for this is schedtrace, which also
// prints a scheduler summary to stderr every N ms; N is the largest it takes
// (2^31-1 ms, 24.8 days), so the line appears once every 24.8 days of host
// uptime, counted from boot (CLOCK_MONOTONIC).
const sysmonSetting = "schedtrace=2147483647"

// keepSysmonAwake re-executes `tollgate serve` in place (same pid, same
// arguments and open descriptors) with sysmonSetting added to GODEBUG,
// because the runtime reads it only at start. GODEBUG that already sets
// schedtrace is left alone: GODEBUG=schedtrace=0 keeps Go's default. It
// returns only when it did not re-execute.
func keepSysmonAwake() {
	env, ok := sysmonEnv(os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, env) // on failure, run with Go's default
}

// sysmonEnv returns environ with sysmonSetting added to GODEBUG, or false
// when GODEBUG already sets schedtrace.
func sysmonEnv(environ []string) ([]string, bool) {
	out := make([]string, 0, len(environ)+1)
	godebug := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			godebug = v
			continue
		}
		out = append(out, kv)
	}
	for _, f := range strings.Split(godebug, ",") {
		if strings.HasPrefix(f, "schedtrace=") {
			return nil, false
		}
	}
	if godebug != "" {
		godebug += ","
	}
	return append(out, "GODEBUG="+godebug+sysmonSetting), true
}
