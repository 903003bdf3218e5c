package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// Team is a team as the API shows it: durations as strings, money both exact
// in nanos and as a decimal string.
type Team struct {
	ID              string               `json:"id"`
	Name            string               `json:"name"`
	Metadata        map[string]string    `json:"metadata,omitempty"`
	CreatedAt       time.Time            `json:"created_at"`
	MaxKeyAge       string               `json:"max_key_age,omitempty"`
	RotationWarning string               `json:"rotation_warning,omitempty"`
	Limits          tenant.Limits        `json:"limits"`
	Budget          *Budget              `json:"budget,omitempty"`
	ProviderKeys    []tenant.ProviderKey `json:"provider_keys,omitempty"`
}

// Budget is a budget as the API shows it.
type Budget struct {
	LimitUSD         string      `json:"limit_usd"`
	LimitNanos       meter.Nanos `json:"limit_nanos"`
	Period           string      `json:"period"`
	SoftPercent      int         `json:"soft_percent"`
	DowngradePercent int         `json:"downgrade_percent"`
}

// Key statuses, from the key, its team and the clock.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
	StatusExpired = "expired"
	StatusTooOld  = "too_old" // past the team's max_key_age: rotate it
)

// Key is a virtual key as the API shows it. Credentials are listed on
// GET /admin/keys/{id} and after create and rotate, by prefix only: hashes
// never leave the store.
type Key struct {
	ID                 string        `json:"id"`
	TeamID             string        `json:"team_id"`
	Name               string        `json:"name"`
	Status             string        `json:"status"`
	AllowedModels      []string      `json:"allowed_models,omitempty"`
	AllowedTiers       []string      `json:"allowed_tiers,omitempty"`
	DefaultCriticality string        `json:"default_criticality,omitempty"`
	ExpiresAt          *time.Time    `json:"expires_at,omitempty"`
	RevokedAt          *time.Time    `json:"revoked_at,omitempty"`
	CreatedAt          time.Time     `json:"created_at"`
	RotatedAt          time.Time     `json:"rotated_at"`
	Limits             tenant.Limits `json:"limits"`
	Budget             *Budget       `json:"budget,omitempty"`
	Credentials        []Credential  `json:"credentials,omitempty"`
}

// Credential is one secret of a key, newest first: its display prefix, and
// when a rotation retired it, the end of its grace.
type Credential struct {
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
}

// KeySecret is the answer to creating or rotating a key: the only time the
// secret is shown.
type KeySecret struct {
	Key    Key    `json:"key"`
	Secret string `json:"secret"`
}

// List is a list answer, OpenAI style.
type List[T any] struct {
	Object string `json:"object"` // "list"
	Data   []T    `json:"data"`
}

// UsageReport is the answer of GET /admin/usage: one row per group, and the
// totals over all of them.
type UsageReport struct {
	Object string           `json:"object"` // "usage_report"
	TeamID string           `json:"team_id,omitempty"`
	KeyID  string           `json:"key_id,omitempty"`
	Since  *time.Time       `json:"since,omitempty"`
	Until  *time.Time       `json:"until,omitempty"`
	By     []string         `json:"by"`
	Rows   []store.UsageRow `json:"rows"`
	Totals store.UsageRow   `json:"totals"`
}

func teamView(t *tenant.Team) Team {
	v := Team{ID: t.ID, Name: t.Name, Metadata: t.Metadata, CreatedAt: t.CreatedAt, Limits: t.Limits,
		Budget: budgetView(t.Budget), ProviderKeys: t.ProviderKeys}
	if t.MaxKeyAge > 0 {
		v.MaxKeyAge = FormatDuration(t.MaxKeyAge)
	}
	if t.RotationWarning > 0 {
		v.RotationWarning = FormatDuration(t.RotationWarning)
	}
	return v
}

func budgetView(b *tenant.Budget) *Budget {
	if b == nil {
		return nil
	}
	return &Budget{LimitUSD: FormatUSD(b.Limit), LimitNanos: b.Limit, Period: b.Period,
		SoftPercent: b.SoftPercent, DowngradePercent: b.DowngradePercent}
}

// keyView shows k; team (may be nil) decides too_old, creds (may be nil)
// are listed by prefix.
func keyView(k *tenant.Key, team *tenant.Team, creds []*tenant.Credential, now time.Time) Key {
	v := Key{ID: k.ID, TeamID: k.TeamID, Name: k.Name, Status: keyStatus(k, team, now),
		AllowedModels: k.AllowedModels, AllowedTiers: k.AllowedTiers, DefaultCriticality: k.DefaultCriticality,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, CreatedAt: k.CreatedAt, RotatedAt: k.RotatedAt,
		Limits: k.Limits, Budget: budgetView(k.Budget)}
	for _, c := range creds {
		v.Credentials = append(v.Credentials, Credential{Prefix: c.Prefix, CreatedAt: c.CreatedAt, NotAfter: c.NotAfter})
	}
	return v
}

// keyStatus mirrors the checks of tenant.Service.Authenticate.
func keyStatus(k *tenant.Key, team *tenant.Team, now time.Time) string {
	switch {
	case k.RevokedAt != nil && !now.Before(*k.RevokedAt):
		return StatusRevoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return StatusExpired
	case team != nil && team.MaxKeyAge > 0 && now.Sub(k.RotatedAt) >= team.MaxKeyAge:
		return StatusTooOld
	}
	return StatusActive
}

// writeJSON writes v indented, for people reading curl output. Answers that
// carry a secret are marked not to be cached.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return nil
}
