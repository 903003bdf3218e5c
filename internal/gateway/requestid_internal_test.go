package gateway

import (
	"regexp"
	"testing"
	"time"
)

// Request ids are "req_" and 28 hex digits, distinct within one nanosecond
// and ordered by time across nanoseconds (the ledger's index relies on it).
func TestNewRequestID(t *testing.T) {
	shape := regexp.MustCompile(`^req_[0-9a-f]{28}$`)
	now := time.Unix(1_790_000_000, 123)
	seen := make(map[string]bool)
	for range 10000 {
		id := newRequestID(now)
		if !shape.MatchString(id) {
			t.Fatalf("id %q, want req_ and 28 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("id %q twice in 10000 at one instant", id)
		}
		seen[id] = true
	}
	prev := newRequestID(now)
	for i := range 1000 {
		next := newRequestID(now.Add(time.Duration(i+1) * time.Nanosecond))
		if next <= prev {
			t.Fatalf("id %q at a later time sorts before %q", next, prev)
		}
		prev = next
	}
}
