// Package store persists teams, keys and the usage ledger. SQLite (a file,
// pure Go, no cgo) is the embedded default; a PostgreSQL backend implements
// the same Store contract for fleets of replicas. Migrations are versioned,
// embedded in the binary and applied at open.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// ErrNotFound is returned when a team, key or credential does not exist. It
// is tenant.ErrNotFound, so the tenant package can tell it without an import.
var ErrNotFound = tenant.ErrNotFound

// ErrConflict is returned when a unique name or id is already taken.
var ErrConflict = errors.New("already exists")

// Store is the contract every backend meets. Consumers declare the smaller
// interfaces they need; this one exists so that backends are checked
// against the whole (var _ Store = (*SQLite)(nil)). All methods are safe for
// concurrent use. Returned values are copies the caller may keep.
type Store interface {
	CreateTeam(ctx context.Context, t *tenant.Team) error // ErrConflict on a taken id or name
	Team(ctx context.Context, idOrName string) (*tenant.Team, error)
	Teams(ctx context.Context) ([]*tenant.Team, error)
	UpdateTeam(ctx context.Context, t *tenant.Team) error

	// CreateKey stores a key with its first credential, in one transaction.
	CreateKey(ctx context.Context, k *tenant.Key, c *tenant.Credential) error
	// Key returns a key and all its credentials, newest first.
	Key(ctx context.Context, id string) (*tenant.Key, []*tenant.Credential, error)
	// Keys lists a team's keys ("" for every team), oldest first.
	Keys(ctx context.Context, teamID string) ([]*tenant.Key, error)
	UpdateKey(ctx context.Context, k *tenant.Key) error
	// Rotate adds credential c to its key, gives every other credential of
	// the key without a NotAfter (or with a later one) the NotAfter graceEnd,
	// and sets the key's RotatedAt to c.CreatedAt — in one transaction.
	Rotate(ctx context.Context, c *tenant.Credential, graceEnd time.Time) error
	// Credential finds the credential with this hash, with its key and team.
	Credential(ctx context.Context, hash []byte) (*tenant.Credential, *tenant.Key, *tenant.Team, error)

	// AppendUsage writes records in one transaction. It is idempotent on
	// RequestID: a record already stored is skipped, so a replayed journal
	// never counts twice.
	AppendUsage(ctx context.Context, recs []meter.Record) error
	// Spend sums the cost of a team's (keyID "") or a key's records since t.
	Spend(ctx context.Context, teamID, keyID string, since time.Time) (meter.Nanos, error)
	// TotalSpend sums the cost of every record since t, for a caller that
	// asks again and again with the same t (the monthly-spend alert): it
	// reads only the records stored since its previous call.
	TotalSpend(ctx context.Context, since time.Time) (meter.Nanos, error)
	// Usage aggregates the ledger, latency percentiles included, so it
	// reads every selected record: one scan and one sort per call.
	Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error)
	// Records calls fn with each ledger record q selects (q.By is
	// ignored), oldest first, streaming: it never holds more than one
	// record in memory. fn runs while a read is open, so it must not
	// write to the store; an error from fn stops the scan and is returned.
	Records(ctx context.Context, q UsageQuery, fn func(meter.Record) error) error

	Close() error
}

// Grouping dimensions for UsageQuery.By.
const (
	ByTeam     = "team"
	ByKey      = "key"
	ByModel    = "model" // the served model
	ByTier     = "tier"
	ByProvider = "provider"
	ByDay      = "day" // UTC date, YYYY-MM-DD
)

// UsageQuery selects and groups ledger records. Zero fields do not filter.
type UsageQuery struct {
	TeamID string
	KeyID  string
	Since  time.Time
	Until  time.Time // exclusive
	By     []string  // grouping, in order; empty means one total row
}

// UsageRow is one group of a usage report.
type UsageRow struct {
	Group            map[string]string `json:"group,omitempty"` // dimension → value
	Requests         int64             `json:"requests"`
	Errors           int64             `json:"errors"` // status >= 400
	Fallbacks        int64             `json:"fallbacks"`
	PromptTokens     int64             `json:"prompt_tokens"`
	CompletionTokens int64             `json:"completion_tokens"`
	CachedTokens     int64             `json:"cached_tokens"`
	Cost             meter.Nanos       `json:"cost_nanos"`
	CostUSD          float64           `json:"cost_usd"`
	AvgLatencyMS     float64           `json:"avg_latency_ms"`
	// P50LatencyMS and P95LatencyMS are nearest-rank percentiles of the
	// group's latencies: with the n latencies sorted, the one at rank
	// ceil(p/100 × n), counting from 1, so always a latency that was
	// recorded. Like the average, they cover every record of the group,
	// rejected ones included.
	P50LatencyMS float64 `json:"p50_latency_ms"`
	P95LatencyMS float64 `json:"p95_latency_ms"`
	// FallbackRate is Fallbacks / Requests, 0 for no requests.
	FallbackRate float64 `json:"fallback_rate"`
}
