// Package meter turns tokens into money: the price catalogue, cost arithmetic
// and (later) the usage ledger. Money is integer, never float: float sums drift.
package meter

import (
	"fmt"
	"math"

	"github.com/tollgate-gw/tollgate/internal/wire"
)

// Nanos is an amount of US dollars in units of 1e-9 USD. int64 holds about
// 9.2 billion dollars, far above any ledger sum this gateway keeps.
type Nanos int64

// USD returns n in dollars, for display and logs only.
func (n Nanos) USD() float64 { return float64(n) / 1e9 }

func (n Nanos) String() string { return fmt.Sprintf("$%.9f", n.USD()) }

// PerMillion is a token price in micro-dollars per million tokens, which is
// pico-dollars per token: $0.0375 per million is 37500, exactly.
type PerMillion int64

// PerMillionFromUSD converts a price in USD per million tokens, rounding to
// the nearest micro-dollar.
func PerMillionFromUSD(usd float64) PerMillion {
	return PerMillion(math.Round(usd * 1e6))
}

// PerMillionFromPerToken converts the catalogue's USD-per-token figure.
func PerMillionFromPerToken(usdPerToken float64) PerMillion {
	return PerMillion(math.Round(usdPerToken * 1e12))
}

// USD returns p in dollars per million tokens.
func (p PerMillion) USD() float64 { return float64(p) / 1e6 }

// Of returns the cost of n tokens at p, in nanos (pico → nano, truncated).
func (p PerMillion) Of(n int) Nanos { return Nanos(int64(n) * int64(p) / 1000) }

// Price is what a model costs. The zero Price is free; callers tell "free on
// purpose" from "unknown" before they get one.
type Price struct {
	Input       PerMillion
	Output      PerMillion
	CachedInput PerMillion // prompt tokens read from the provider's cache
	CacheWrite  PerMillion // Anthropic-style cache creation; Input when unknown
}

// Cost prices one request's usage: uncached prompt tokens at Input, cached at
// CachedInput, cache writes at CacheWrite, completion tokens at Output.
func (p Price) Cost(u *wire.Usage) Nanos {
	if u == nil {
		return 0
	}
	cached, written := u.CachedTokens(), u.CacheWriteTokens()
	uncached := max(u.PromptTokens-cached-written, 0)
	return p.Input.Of(uncached) + p.CachedInput.Of(cached) + p.CacheWrite.Of(written) +
		p.Output.Of(u.CompletionTokens)
}
