package store

import "syscall"

// yieldCore gives the core to any thread waiting for it, and returns at once
// when none is (sched_yield(2)). See insertUsage.
func yieldCore() { _, _, _ = syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
