package gateway

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/route"
)

// health is what the gateway knows about its deployments beyond the
// configuration: breakers, latency and load, and the retry budget. It lives
// across reloads, keyed by deployment id.
type health struct {
	*route.Health
	budget *route.RetryBudget
}

func newHealth(prof *config.Profile, log *slog.Logger, rnd func() float64, changed func(string, route.State)) *health {
	h := &health{
		Health: route.NewHealth(prof.Breaker, time.Now, rnd),
		budget: route.NewRetryBudget(prof.RetryBudget, time.Now),
	}
	h.Breakers.OnChange(func(id string, from, to route.State) {
		log.Warn("circuit breaker", slog.String("event", "breaker_state_changed"), slog.String("deployment", id),
			slog.String("from", from.String()), slog.String("to", to.String()))
		changed(id, to)
	})
	return h
}

// configure applies a (re)loaded profile's settings; state is kept.
func (h *health) configure(prof *config.Profile) {
	h.Breakers.SetConfig(prof.Breaker)
	h.budget.SetRatio(prof.RetryBudget)
}

// admit returns the deployment attempt number try goes to: the next one in
// order, rotating so that a retry prefers another deployment, whose breaker
// lets it through. Nil means every breaker refused, and nothing waits.
func (h *health) admit(order []*config.Deployment, try int) *config.Deployment {
	n := len(order)
	for i := range n {
		if d := order[(try+i)%n]; h.Breakers.Allow(d.ID) {
			return d
		}
	}
	return nil
}

// report feeds an attempt's outcome to d's breaker.
func (h *health) report(d *config.Deployment, x *exchange, err error) {
	h.Breakers.Report(d.ID, outcome(x, err))
}

// outcome decides whose fault a result was. Only the provider's failures
// count against a deployment: a client that left, or a request the upstream
// rightly refused (400, 404, 413, 422), is no sign of a sick deployment.
func outcome(x *exchange, err error) route.Outcome {
	if err == nil {
		return route.Success
	}
	if errors.Is(err, errDelivered) {
		switch {
		case x.status == 0 || x.status == http.StatusOK:
			return route.Success
		case x.status == 499:
			return route.Ignored
		}
		return route.Failure
	}
	pe, ok := provider.AsProviderError(err)
	if !ok || pe.Kind == provider.KindCanceled {
		return route.Ignored
	}
	if pe.Kind == provider.KindStatus && !pe.Fallbackable() {
		return route.Ignored
	}
	return route.Failure
}
