package route

import (
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// Health ties the per-deployment breakers to the balancer, so the gateway
// asks one place for the order in which to try a model's deployments. The
// retry budget is per profile and stays apart (NewRetryBudget).
//
// Per attempt, the gateway does:
//
//	for _, d := range h.Order(m) {
//		if !h.Breakers.Allow(d.ID) {
//			continue // open, or a half-open probe already out
//		}
//		done := h.Balancer.Start(d)
//		… attempt …
//		done(latency, outcome == route.Success)
//		h.Breakers.Report(d.ID, outcome)
//	}
//
// It is safe for concurrent use; make it with NewHealth. Both fields are
// set once and must not be replaced.
type Health struct {
	Breakers *Breakers
	Balancer *Balancer

	healthy func(*config.Deployment) bool // made once, so Order does not allocate it
}

// NewHealth returns breakers configured by cfg and a balancer, both on the
// clock now and the balancer on rnd (nil for either means the default, as
// in NewBreakers and NewBalancer).
func NewHealth(cfg config.Breaker, now func() time.Time, rnd func() float64) *Health {
	h := &Health{
		Breakers: NewBreakers(cfg, now),
		Balancer: NewBalancer(now, rnd),
	}
	h.healthy = func(d *config.Deployment) bool { return h.Breakers.Available(d.ID) }
	return h
}

// Order returns m's deployments in the order to try them: a deployment is
// healthy for the balancer when its breaker would admit an attempt now
// (Breakers.Available), so one whose cool-down is over can be picked again
// and probed even while the others serve well.
func (h *Health) Order(m *config.Model) []*config.Deployment {
	return h.Balancer.Order(m, h.healthy)
}
