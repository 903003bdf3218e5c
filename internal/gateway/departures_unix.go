//go:build linux || darwin || freebsd || netbsd || openbsd

package gateway

import (
	"net"
	"syscall"
)

// clientLeft peeks at conn without consuming anything: an orderly close
// (a zero-byte read) or a reset means the client is gone; no data yet
// (EAGAIN) or a pipelined next request means it is still there. It uses
// Control, not Read, so it never waits for the connection's read lock.
func clientLeft(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var b [1]byte
	err = rc.Control(func(fd uintptr) {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = (n == 0 && rerr == nil) || rerr == syscall.ECONNRESET
	})
	return gone || err != nil
}
