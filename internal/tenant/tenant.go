// Package tenant holds teams and their virtual keys: generation, hashing,
// rotation with a grace period, expiry, revocation, and the in-memory lookup
// that authenticates every request. It knows nothing of HTTP or SQL: it
// reads and writes through the Store interface below.
package tenant

import (
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// Team is a tenant: the unit budgets, limits and usage reports are kept for.
type Team struct {
	ID        string            `json:"id"` // "team_…", stable
	Name      string            `json:"name"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// MaxKeyAge, when positive, is the rotation policy: keys older than this
	// stop working, and keys within RotationWarning of it are reported.
	MaxKeyAge       time.Duration `json:"max_key_age,omitempty"`
	RotationWarning time.Duration `json:"rotation_warning,omitempty"`
	Limits          Limits        `json:"limits"`
	Budget          *Budget       `json:"budget,omitempty"`
	// ProviderKeys allocates upstream keys to this team: its traffic to that
	// provider (for that tier, or every tier when Tier is "") uses the key in
	// the named environment variable, so it is billed to the team's own
	// provider account. The secret itself is never stored.
	ProviderKeys []ProviderKey `json:"provider_keys,omitempty"`
}

// ProviderKey names the environment variable holding a team's own key for
// a provider, optionally for one tier only.
type ProviderKey struct {
	Provider string `json:"provider"`
	Tier     string `json:"tier,omitempty"`
	Env      string `json:"env"`
}

// Key is a virtual key. Its ID is public and stable across rotations (for
// audit and infrastructure-as-code); the secret behind it is a Credential.
type Key struct {
	ID                 string     `json:"id"` // "key_…"
	TeamID             string     `json:"team_id"`
	Name               string     `json:"name"`
	AllowedModels      []string   `json:"allowed_models,omitempty"` // empty: every model
	AllowedTiers       []string   `json:"allowed_tiers,omitempty"`  // empty: every tier
	DefaultCriticality string     `json:"default_criticality,omitempty"`
	ExpiresAt          *time.Time `json:"expires_at,omitempty"`
	RevokedAt          *time.Time `json:"revoked_at,omitempty"`
	CreatedAt          time.Time  `json:"created_at"`
	// RotatedAt is when the current secret was issued (CreatedAt before any
	// rotation); the team's MaxKeyAge counts from it.
	RotatedAt time.Time `json:"rotated_at"`
	Limits    Limits    `json:"limits"`
	Budget    *Budget   `json:"budget,omitempty"`
}

// Credential is one secret of a key, stored only as its hash. A rotation
// adds a new credential and gives the old one a NotAfter (the grace end).
type Credential struct {
	KeyID     string     `json:"key_id"`
	Hash      []byte     `json:"-"`      // SHA-256 of the secret
	Prefix    string     `json:"prefix"` // the first characters, for display: "tg-AbCd…"
	CreatedAt time.Time  `json:"created_at"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
}

// Limits are optional rate limits; zero means unlimited.
type Limits struct {
	RPM int `json:"rpm,omitempty"` // requests per minute
	TPM int `json:"tpm,omitempty"` // tokens per minute
}

// Budget periods.
const (
	PeriodDaily   = "daily"
	PeriodWeekly  = "weekly"
	PeriodMonthly = "monthly"
	PeriodNone    = "none" // one budget for all time
)

// Budget is a hard spending cap in integer money, with a soft threshold for
// alerts and an optional downgrade point.
type Budget struct {
	Limit  meter.Nanos `json:"limit_nanos"`
	Period string      `json:"period"` // daily | weekly | monthly | none; periods start at 00:00 UTC, weeks on Monday
	// SoftPercent (0–100) raises an alert when spend passes it; 0 is off.
	SoftPercent int `json:"soft_percent,omitempty"`
	// DowngradePercent (0–100): past it, requests move one tier cheaper
	// (premium → standard → budget) instead of failing; 0 is off.
	DowngradePercent int `json:"downgrade_percent,omitempty"`
}
