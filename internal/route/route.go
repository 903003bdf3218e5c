// Package route turns a requested model name, a tier and a profile into an
// ordered list of candidate deployments, and decides how long to wait between
// attempts. It knows nothing of HTTP: plans are pure functions of
// configuration and request, so they are easy to test and to show.
package route

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// Plan is the ordered chain of models that may serve one request.
type Plan struct {
	Tier       string
	Candidates []*config.Model
}

// UnknownModelError says the requested name is neither a model nor an alias.
type UnknownModelError struct{ Name string }

func (e *UnknownModelError) Error() string { return fmt.Sprintf("model %q does not exist", e.Name) }

// UnknownTierError says the requested tier is not one of the three.
type UnknownTierError struct{ Tier string }

func (e *UnknownTierError) Error() string {
	return fmt.Sprintf("tier %q does not exist; use budget, standard or premium", e.Tier)
}

// Resolve plans a request for name in tier; an empty tier means the profile's
// default.
func Resolve(cfg *config.Config, prof *config.Profile, name, tier string) (Plan, error) {
	if tier == "" {
		tier = prof.DefaultTier
	} else if !validTier(tier) {
		return Plan{}, &UnknownTierError{Tier: tier}
	}
	chain, ok := cfg.Chain(name, tier)
	if !ok {
		return Plan{}, &UnknownModelError{Name: name}
	}
	p := Plan{Tier: tier, Candidates: make([]*config.Model, 0, len(chain))}
	for _, m := range chain {
		p.Candidates = append(p.Candidates, cfg.Models[m])
	}
	return p, nil
}

func validTier(t string) bool {
	return t == config.TierBudget || t == config.TierStandard || t == config.TierPremium
}

// Backoff bounds.
const (
	backoffBase = 250 * time.Millisecond
	backoffCap  = 8 * time.Second
)

// Backoff returns the wait before retry number n (0 for the first retry). A
// positive retryAfter from the upstream wins (it was capped when parsed);
// otherwise the wait is exponential with full jitter, so many clients retrying
// the same failure spread out instead of arriving together.
func Backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	ceil := min(backoffBase<<min(n, 10), backoffCap)
	return ceil/2 + rand.N(ceil/2+1)
}
