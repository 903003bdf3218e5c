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
	Tier string
	// Downgraded reports that Request.Downgrade moved the tier cheaper.
	Downgraded bool
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

// UnknownCriticalityError says X-Tollgate-Criticality named no known level.
type UnknownCriticalityError struct{ Criticality string }

func (e *UnknownCriticalityError) Error() string {
	return fmt.Sprintf("criticality %q does not exist; use critical, standard or background", e.Criticality)
}

// Request is what routing reads of a client request.
type Request struct {
	Model       string
	Tier        string // X-Tollgate-Tier; wins over Criticality
	Criticality string // X-Tollgate-Criticality, mapped to a tier by the profile
	// Downgrade moves the chosen tier this many steps cheaper (premium →
	// standard → budget): a team past its budget's downgrade point.
	Downgrade int
}

// Resolve plans a request. The tier is the request's own, else the one its
// criticality maps to in the profile, else the profile's default.
func Resolve(cfg *config.Config, prof *config.Profile, req Request) (Plan, error) {
	tier, err := pickTier(prof, req)
	if err != nil {
		return Plan{}, err
	}
	asked := tier
	tier = Cheaper(tier, req.Downgrade)
	chain, ok := cfg.Chain(req.Model, tier)
	if !ok {
		return Plan{}, &UnknownModelError{Name: req.Model}
	}
	p := Plan{Tier: tier, Downgraded: tier != asked, Candidates: make([]*config.Model, 0, len(chain))}
	for _, m := range chain {
		p.Candidates = append(p.Candidates, cfg.Models[m])
	}
	return p, nil
}

func pickTier(prof *config.Profile, req Request) (string, error) {
	switch {
	case req.Tier != "":
		if !validTier(req.Tier) {
			return "", &UnknownTierError{Tier: req.Tier}
		}
		return req.Tier, nil
	case req.Criticality != "":
		t, ok := prof.Criticality[req.Criticality]
		if !ok {
			return "", &UnknownCriticalityError{Criticality: req.Criticality}
		}
		return t, nil
	}
	return prof.DefaultTier, nil
}

// Cheaper returns the tier steps below t, stopping at budget.
func Cheaper(t string, steps int) string {
	for ; steps > 0; steps-- {
		switch t {
		case config.TierPremium:
			t = config.TierStandard
		case config.TierStandard:
			t = config.TierBudget
		}
	}
	return t
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
