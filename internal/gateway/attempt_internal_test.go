package gateway

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/provider"
)

// The overhead header subtracts what the provider measured as the
// upstream's time, so the gateway's own work inside the call stays in it;
// only when the provider cannot tell, or the call failed, is the whole call
// the upstream's.
func TestUpstreamTime(t *testing.T) {
	began := time.Now().Add(-time.Second)
	if got := upstreamTime(&provider.Response{Wait: 5 * time.Millisecond}, nil, began); got != 5*time.Millisecond {
		t.Errorf("measured wait: upstreamTime = %v, want the provider's 5ms", got)
	}
	if got := upstreamTime(&provider.Response{}, nil, began); got < time.Second {
		t.Errorf("unknown wait: upstreamTime = %v, want the whole call (≥ 1s)", got)
	}
	if got := upstreamTime(nil, errors.New("refused"), began); got < time.Second {
		t.Errorf("failed call: upstreamTime = %v, want the whole call (≥ 1s)", got)
	}
}
