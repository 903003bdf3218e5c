// Package limit is admission control: rate limits (requests and tokens per
// minute, per key, team or model) and budget reservations (a hard cap on
// spend per key or team and period). It knows nothing of HTTP: the gateway
// turns a refusal into a status, a code and headers.
//
// Two types carry the contract, and a second backend (Redis, for a fleet of
// replicas) is to implement the same methods with the same meaning:
//
//   - RateLimiter: Admit checks every rule of a request at once, all or
//     nothing, and counts it; Correct adjusts the token count once the real
//     usage is known.
//   - Budgets: Reserve holds a request's maximum possible cost against
//     every budget that applies, all or nothing, before any upstream call;
//     the Reservation it returns is settled with the actual cost, or
//     released when nothing was served. Usage reports a scope's period.
//
// The one guarantee that matters most: at every Reserve, for each scope,
// spent + reserved + amount ≤ limit, checked and recorded under the locks
// of all the scopes at once. Concurrent requests therefore never push a
// budget past its limit by admission; only a Settle whose actual cost is
// above its own reservation (a wrong estimate) can, and that is real spend
// which is recorded anyway and refuses what follows.
package limit
