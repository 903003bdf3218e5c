package route

import (
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// TestHealthOrder checks that an open breaker keeps its deployment from
// going first, and that once the cool-down is over it can be picked again,
// so it gets probed even while the other deployment serves well.
func TestHealthOrder(t *testing.T) {
	c := newFakeClock()
	h := NewHealth(config.Breaker{Failures: 1, Cooldown: time.Second}, c.Now, seeded())
	m := model(config.BalanceWeighted, 1, 1)
	h.Breakers.Report("d0", Failure)
	firsts := func() map[string]int {
		n := map[string]int{}
		for range 200 {
			n[h.Order(m)[0].ID]++
		}
		return n
	}
	if got := firsts(); got["d0"] != 0 {
		t.Errorf("first picks with d0 open = %v, want none for d0", got)
	}
	c.Advance(time.Second)
	if got := firsts(); got["d0"] == 0 {
		t.Errorf("first picks after d0's cool-down = %v, want some for d0", got)
	}
	if !h.Breakers.Allow("d0") {
		t.Fatalf("Allow(d0) after cool-down = false, want the probe")
	}
	if got := firsts(); got["d0"] != 0 {
		t.Errorf("first picks with d0's probe out = %v, want none for d0", got)
	}
}
