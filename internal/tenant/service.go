package tenant

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Store is what the service needs of persistence.
type Store interface {
	CreateTeam(ctx context.Context, t *Team) error
	Team(ctx context.Context, idOrName string) (*Team, error)
	Teams(ctx context.Context) ([]*Team, error)
	UpdateTeam(ctx context.Context, t *Team) error
	CreateKey(ctx context.Context, k *Key, c *Credential) error
	Key(ctx context.Context, id string) (*Key, []*Credential, error)
	Keys(ctx context.Context, teamID string) ([]*Key, error)
	UpdateKey(ctx context.Context, k *Key) error
	Rotate(ctx context.Context, c *Credential, graceEnd time.Time) error
	Credential(ctx context.Context, hash []byte) (*Credential, *Key, *Team, error)
}

// Principal is who a request is from.
type Principal struct {
	Key  *Key
	Team *Team

	// KeyScope and TeamScope ("key:<id>", "team:<id>") are the names the
	// key's and the team's rate limits and budgets are counted under; made
	// once when the key is loaded, not on every request.
	KeyScope, TeamScope string
}

// NewPrincipal returns the principal of key, of team.
func NewPrincipal(key *Key, team *Team) *Principal {
	return &Principal{Key: key, Team: team, KeyScope: "key:" + key.ID, TeamScope: "team:" + team.ID}
}

// AuthError is a refused key; Code is stable (invalid_api_key,
// api_key_revoked, api_key_expired, api_key_rotated, api_key_too_old).
type AuthError struct {
	Code    string
	Message string
}

func (e *AuthError) Error() string { return e.Code + ": " + e.Message }

// cacheTTL bounds how long a change made elsewhere (another replica, the
// CLI on the store file) can go unseen; changes made through this service
// are seen at once.
const cacheTTL = 30 * time.Second

// maxCache bounds the cache; past it the cache starts over.
const maxCache = 100_000

// Service manages teams and keys and authenticates requests. It is safe for
// concurrent use.
type Service struct {
	st  Store
	now func() time.Time

	mu    sync.RWMutex // guards cache and byKey
	cache map[[32]byte]*cached
	byKey map[string][][32]byte // key id → cached hashes, for invalidation
}

type cached struct {
	cred      *Credential
	key       *Key
	team      *Team
	principal *Principal // of key and team, shared by the requests that present cred
	loadedAt  time.Time
}

// NewService returns a service over st; now is the clock (nil: time.Now).
func NewService(st Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, now: now, cache: map[[32]byte]*cached{}, byKey: map[string][][32]byte{}}
}

// Authenticate maps a presented secret to its principal, or an *AuthError.
// The secret is hashed and found by its hash; the stored hash is compared in
// constant time. A found key is cached; revocation through this service
// drops it at once.
func (s *Service) Authenticate(ctx context.Context, secret string) (*Principal, error) {
	if !LooksLikeKey(secret) {
		return nil, &AuthError{Code: "invalid_api_key", Message: "invalid API key"}
	}
	h := Hash(secret)
	now := s.now()
	c, err := s.lookup(ctx, h, now)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(c.cred.Hash, h[:]) != 1 {
		return nil, &AuthError{Code: "invalid_api_key", Message: "invalid API key"}
	}
	if err := check(c, now); err != nil {
		return nil, err
	}
	return c.principal, nil
}

func (s *Service) lookup(ctx context.Context, h [32]byte, now time.Time) (*cached, error) {
	s.mu.RLock()
	c, ok := s.cache[h]
	s.mu.RUnlock()
	if ok && now.Sub(c.loadedAt) < cacheTTL {
		return c, nil
	}
	cred, key, team, err := s.st.Credential(ctx, h[:])
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, &AuthError{Code: "invalid_api_key", Message: "invalid API key"}
		}
		return nil, fmt.Errorf("look up key: %w", err)
	}
	c = &cached{cred: cred, key: key, team: team, principal: NewPrincipal(key, team), loadedAt: now}
	s.mu.Lock()
	if len(s.cache) >= maxCache {
		s.cache, s.byKey = map[[32]byte]*cached{}, map[string][][32]byte{}
	}
	s.cache[h] = c
	s.byKey[key.ID] = append(s.byKey[key.ID], h)
	s.mu.Unlock()
	return c, nil
}

// check applies revocation, expiry, the rotation grace and the team's
// maximum key age.
func check(c *cached, now time.Time) error {
	switch k := c.key; {
	case k.RevokedAt != nil && !now.Before(*k.RevokedAt):
		return &AuthError{Code: "api_key_revoked", Message: "this API key has been revoked"}
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return &AuthError{Code: "api_key_expired", Message: "this API key has expired"}
	case c.cred.NotAfter != nil && !now.Before(*c.cred.NotAfter):
		return &AuthError{Code: "api_key_rotated", Message: "this API key was rotated and its grace period has ended; use the new key"}
	case c.team.MaxKeyAge > 0 && now.Sub(k.RotatedAt) >= c.team.MaxKeyAge:
		return &AuthError{Code: "api_key_too_old", Message: "this API key is older than the team's maximum key age; rotate it"}
	}
	return nil
}

// invalidate drops every cached credential of a key.
func (s *Service) invalidate(keyID string) {
	s.mu.Lock()
	for _, h := range s.byKey[keyID] {
		delete(s.cache, h)
	}
	delete(s.byKey, keyID)
	s.mu.Unlock()
}

// CreateTeam stores a new team, giving it an id.
func (s *Service) CreateTeam(ctx context.Context, t *Team) (*Team, error) {
	if t.Name == "" {
		return nil, errors.New("a team needs a name")
	}
	t.ID, t.CreatedAt = newID("team_"), s.now().UTC()
	if err := s.st.CreateTeam(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// UpdateTeam replaces a team's settings; cached keys of the team see it
// at once.
func (s *Service) UpdateTeam(ctx context.Context, t *Team) error {
	if err := s.st.UpdateTeam(ctx, t); err != nil {
		return err
	}
	keys, err := s.st.Keys(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		s.invalidate(k.ID)
	}
	return nil
}

// CreateKey stores a new key for k.TeamID and returns its secret, which is
// shown this once and never stored.
func (s *Service) CreateKey(ctx context.Context, k *Key) (string, *Key, error) {
	if _, err := s.st.Team(ctx, k.TeamID); err != nil {
		return "", nil, fmt.Errorf("team %q: %w", k.TeamID, err)
	}
	now := s.now().UTC()
	secret := NewSecret()
	k.ID, k.CreatedAt, k.RotatedAt = newID("key_"), now, now
	h := Hash(secret)
	c := &Credential{KeyID: k.ID, Hash: h[:], Prefix: Prefix(secret), CreatedAt: now}
	if err := s.st.CreateKey(ctx, k, c); err != nil {
		return "", nil, err
	}
	return secret, k, nil
}

// Rotate issues a successor secret for the key; the old one keeps working
// until grace has passed, then stops. The key id stays.
func (s *Service) Rotate(ctx context.Context, keyID string, grace time.Duration) (string, *Key, error) {
	k, _, err := s.st.Key(ctx, keyID)
	if err != nil {
		return "", nil, err
	}
	if k.RevokedAt != nil {
		return "", nil, errors.New("a revoked key cannot be rotated")
	}
	now := s.now().UTC()
	secret := NewSecret()
	h := Hash(secret)
	c := &Credential{KeyID: k.ID, Hash: h[:], Prefix: Prefix(secret), CreatedAt: now}
	if err := s.st.Rotate(ctx, c, now.Add(max(grace, 0))); err != nil {
		return "", nil, err
	}
	s.invalidate(k.ID)
	k.RotatedAt = now
	return secret, k, nil
}

// Revoke stops a key at once, every credential of it.
func (s *Service) Revoke(ctx context.Context, keyID string) (*Key, error) {
	k, _, err := s.st.Key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if k.RevokedAt == nil {
		now := s.now().UTC()
		k.RevokedAt = &now
		if err := s.st.UpdateKey(ctx, k); err != nil {
			return nil, err
		}
	}
	s.invalidate(k.ID)
	return k, nil
}

// UpdateKey replaces a key's settings (name, allowed models and tiers,
// limits, budget, expiry); the id, team and times stay.
func (s *Service) UpdateKey(ctx context.Context, k *Key) error {
	if err := s.st.UpdateKey(ctx, k); err != nil {
		return err
	}
	s.invalidate(k.ID)
	return nil
}

// RotationNotice reports a key near or past its team's maximum age.
type RotationNotice struct {
	KeyID   string    `json:"key_id"`
	TeamID  string    `json:"team_id"`
	Name    string    `json:"name"`
	Due     time.Time `json:"due"`
	Overdue bool      `json:"overdue"` // past due: the key no longer works
}

// RotationDue lists keys of teamID ("" for all) within their team's
// rotation warning of the maximum key age, or past it.
func (s *Service) RotationDue(ctx context.Context, teamID string) ([]RotationNotice, error) {
	teams, err := s.st.Teams(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []RotationNotice
	for _, t := range teams {
		if t.MaxKeyAge <= 0 || (teamID != "" && t.ID != teamID) {
			continue
		}
		keys, err := s.st.Keys(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			due := k.RotatedAt.Add(t.MaxKeyAge)
			expired := k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
			if k.RevokedAt == nil && !expired && now.Add(t.RotationWarning).After(due) {
				out = append(out, RotationNotice{KeyID: k.ID, TeamID: t.ID, Name: k.Name, Due: due, Overdue: !now.Before(due)})
			}
		}
	}
	return out, nil
}

// Allows reports whether the key may use a model in a tier.
func (p *Principal) Allows(model, tier string) bool {
	k := p.Key
	return (len(k.AllowedModels) == 0 || slices.Contains(k.AllowedModels, model)) &&
		(len(k.AllowedTiers) == 0 || slices.Contains(k.AllowedTiers, tier))
}

// ErrNotFound is what stores wrap when something does not exist; the store
// package's ErrNotFound is this value.
var ErrNotFound = errors.New("not found")
