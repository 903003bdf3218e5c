//go:build !linux

package store

import "runtime"

// yieldCore lets other goroutines run; on this system the thread keeps its
// core. See insertUsage.
func yieldCore() { runtime.Gosched() }
