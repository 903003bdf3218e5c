package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// Column lists, in the order the scan helpers below expect, qualified by
// the aliases every query uses: t for teams, k for keys, c for credentials.
const (
	teamCols = `t.id, t.name, t.metadata, t.created_at, t.max_key_age_ns, t.rotation_warning_ns,
		t.rpm, t.tpm, t.budget_limit_nanos, t.budget_period, t.budget_soft_percent,
		t.budget_downgrade_percent, t.provider_keys`
	keyCols = `k.id, k.team_id, k.name, k.allowed_models, k.allowed_tiers, k.default_criticality,
		k.expires_at, k.revoked_at, k.created_at, k.rotated_at, k.rpm, k.tpm,
		k.budget_limit_nanos, k.budget_period, k.budget_soft_percent, k.budget_downgrade_percent`
	credCols = `c.key_id, c.hash, c.prefix, c.created_at, c.not_after`
)

// CreateTeam stores a new team. It returns ErrConflict when the id or the
// name is taken.
func (s *SQLite) CreateTeam(ctx context.Context, t *tenant.Team) error {
	args, err := teamArgs(t)
	if err != nil {
		return fmt.Errorf("create team %q: %w", t.ID, err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO teams (id, name, metadata, created_at,
		max_key_age_ns, rotation_warning_ns, rpm, tpm, budget_limit_nanos, budget_period,
		budget_soft_percent, budget_downgrade_percent, provider_keys)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		append([]any{t.ID, t.Name}, args...)...)
	if isUniqueViolation(err) {
		return fmt.Errorf("create team %q (name %q): %v: %w", t.ID, t.Name, err, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create team %q: %w", t.ID, err)
	}
	return nil
}

// teamArgs returns t's columns after id and name, in INSERT order.
func teamArgs(t *tenant.Team) ([]any, error) {
	metadata, err := jsonOrNull(t.Metadata, t.Metadata == nil)
	if err != nil {
		return nil, err
	}
	pks, err := jsonOrNull(t.ProviderKeys, t.ProviderKeys == nil)
	if err != nil {
		return nil, err
	}
	args := []any{metadata, timeText(t.CreatedAt), int64(t.MaxKeyAge), int64(t.RotationWarning),
		t.Limits.RPM, t.Limits.TPM}
	args = append(args, budgetArgs(t.Budget)...)
	return append(args, pks), nil
}

// Team finds a team by id, or else by name.
func (s *SQLite) Team(ctx context.Context, idOrName string) (*tenant.Team, error) {
	var ts teamScan
	err := s.read.QueryRowContext(ctx, `SELECT `+teamCols+` FROM teams t
		WHERE t.id = ? OR t.name = ? ORDER BY t.id = ? DESC LIMIT 1`,
		idOrName, idOrName, idOrName).Scan(ts.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("team %q: %w", idOrName, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("team %q: %w", idOrName, err)
	}
	return ts.team()
}

// Teams lists every team, ordered by name.
func (s *SQLite) Teams(ctx context.Context) ([]*tenant.Team, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+teamCols+` FROM teams t ORDER BY t.name`)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	defer rows.Close()
	var teams []*tenant.Team
	for rows.Next() {
		var ts teamScan
		if err := rows.Scan(ts.dest()...); err != nil {
			return nil, fmt.Errorf("list teams: %w", err)
		}
		t, err := ts.team()
		if err != nil {
			return nil, err
		}
		teams = append(teams, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	return teams, nil
}

// UpdateTeam replaces every field of the team with t's ID except CreatedAt,
// which is fixed at creation. It returns ErrNotFound for an unknown ID and
// ErrConflict when the new name is another team's.
func (s *SQLite) UpdateTeam(ctx context.Context, t *tenant.Team) error {
	args, err := teamArgs(t)
	if err != nil {
		return fmt.Errorf("update team %q: %w", t.ID, err)
	}
	args = append(args[:1], args[2:]...) // drop created_at
	res, err := s.write.ExecContext(ctx, `UPDATE teams SET name = ?, metadata = ?,
		max_key_age_ns = ?, rotation_warning_ns = ?, rpm = ?, tpm = ?, budget_limit_nanos = ?,
		budget_period = ?, budget_soft_percent = ?, budget_downgrade_percent = ?, provider_keys = ?
		WHERE id = ?`,
		append(append([]any{t.Name}, args...), t.ID)...)
	if isUniqueViolation(err) {
		return fmt.Errorf("update team %q (name %q): %v: %w", t.ID, t.Name, err, ErrConflict)
	}
	return affectedOne(res, err, "update team", t.ID)
}

// affectedOne turns an UPDATE's result into ErrNotFound when no row matched.
func affectedOne(res sql.Result, err error, op, id string) error {
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %q: %w", op, id, ErrNotFound)
	}
	return nil
}

// CreateKey stores k with its first credential c, in one transaction. It
// returns ErrNotFound when k's team does not exist and ErrConflict when the
// key ID or the credential hash is taken.
func (s *SQLite) CreateKey(ctx context.Context, k *tenant.Key, c *tenant.Credential) error {
	if err := checkCredential(c, k.ID); err != nil {
		return fmt.Errorf("create key %q: %w", k.ID, err)
	}
	args, err := keyArgs(k)
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.ID, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO keys (id, team_id, name, allowed_models,
			allowed_tiers, default_criticality, expires_at, revoked_at, created_at, rotated_at,
			rpm, tpm, budget_limit_nanos, budget_period, budget_soft_percent,
			budget_downgrade_percent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			append([]any{k.ID, k.TeamID}, args...)...)
		if err != nil {
			return err
		}
		return insertCredential(ctx, tx, c, k.ID)
	})
	switch {
	case isForeignKeyViolation(err):
		return fmt.Errorf("create key %q: team %q: %w", k.ID, k.TeamID, ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("create key %q: %v: %w", k.ID, err, ErrConflict)
	case err != nil:
		return fmt.Errorf("create key %q: %w", k.ID, err)
	}
	return nil
}

// checkCredential validates c before it is stored for key keyID.
func checkCredential(c *tenant.Credential, keyID string) error {
	if c == nil {
		return errors.New("no credential")
	}
	if len(c.Hash) != sha256.Size {
		return fmt.Errorf("credential hash is %d bytes, want %d (SHA-256)", len(c.Hash), sha256.Size)
	}
	if c.KeyID != "" && c.KeyID != keyID {
		return fmt.Errorf("credential belongs to key %q", c.KeyID)
	}
	return nil
}

func insertCredential(ctx context.Context, tx *sql.Tx, c *tenant.Credential, keyID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO credentials (hash, key_id, prefix, created_at, not_after)
		VALUES (?, ?, ?, ?, ?)`,
		c.Hash, keyID, c.Prefix, timeText(c.CreatedAt), timeTextOrNull(c.NotAfter))
	return err
}

// keyArgs returns k's columns after id and team_id, in INSERT order.
func keyArgs(k *tenant.Key) ([]any, error) {
	models, err := jsonOrNull(k.AllowedModels, k.AllowedModels == nil)
	if err != nil {
		return nil, err
	}
	tiers, err := jsonOrNull(k.AllowedTiers, k.AllowedTiers == nil)
	if err != nil {
		return nil, err
	}
	args := []any{k.Name, models, tiers, k.DefaultCriticality, timeTextOrNull(k.ExpiresAt),
		timeTextOrNull(k.RevokedAt), timeText(k.CreatedAt), timeText(k.RotatedAt),
		k.Limits.RPM, k.Limits.TPM}
	return append(args, budgetArgs(k.Budget)...), nil
}

// Key returns a key and its credentials, newest first, from one snapshot.
func (s *SQLite) Key(ctx context.Context, id string) (*tenant.Key, []*tenant.Credential, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", id, err)
	}
	defer tx.Rollback()
	var ks keyScan
	err = tx.QueryRowContext(ctx, `SELECT `+keyCols+` FROM keys k WHERE k.id = ?`, id).Scan(ks.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("key %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", id, err)
	}
	k, err := ks.key()
	if err != nil {
		return nil, nil, err
	}
	// rowid breaks ties between credentials created in the same nanosecond.
	rows, err := tx.QueryContext(ctx, `SELECT `+credCols+` FROM credentials c
		WHERE c.key_id = ? ORDER BY c.created_at DESC, c.rowid DESC`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("key %q credentials: %w", id, err)
	}
	defer rows.Close()
	var creds []*tenant.Credential
	for rows.Next() {
		var cs credScan
		if err := rows.Scan(cs.dest()...); err != nil {
			return nil, nil, fmt.Errorf("key %q credentials: %w", id, err)
		}
		c, err := cs.credential()
		if err != nil {
			return nil, nil, err
		}
		creds = append(creds, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("key %q credentials: %w", id, err)
	}
	return k, creds, nil
}

// Keys lists a team's keys, or every key for teamID "", oldest first.
func (s *SQLite) Keys(ctx context.Context, teamID string) ([]*tenant.Key, error) {
	query, args := `SELECT `+keyCols+` FROM keys k ORDER BY k.created_at, k.id`, []any(nil)
	if teamID != "" {
		query = `SELECT ` + keyCols + ` FROM keys k WHERE k.team_id = ? ORDER BY k.created_at, k.id`
		args = []any{teamID}
	}
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list keys of team %q: %w", teamID, err)
	}
	defer rows.Close()
	var keys []*tenant.Key
	for rows.Next() {
		var ks keyScan
		if err := rows.Scan(ks.dest()...); err != nil {
			return nil, fmt.Errorf("list keys of team %q: %w", teamID, err)
		}
		k, err := ks.key()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys of team %q: %w", teamID, err)
	}
	return keys, nil
}

// UpdateKey replaces the key's mutable fields with k's. TeamID and
// CreatedAt are fixed at creation, and RotatedAt belongs to Rotate: writing
// it here would let a stale copy of the key undo a concurrent rotation.
// It returns ErrNotFound for an unknown ID.
func (s *SQLite) UpdateKey(ctx context.Context, k *tenant.Key) error {
	args, err := keyArgs(k)
	if err != nil {
		return fmt.Errorf("update key %q: %w", k.ID, err)
	}
	args = append(args[:6], args[8:]...) // drop created_at, rotated_at
	res, err := s.write.ExecContext(ctx, `UPDATE keys SET name = ?, allowed_models = ?,
		allowed_tiers = ?, default_criticality = ?, expires_at = ?, revoked_at = ?, rpm = ?,
		tpm = ?, budget_limit_nanos = ?, budget_period = ?, budget_soft_percent = ?,
		budget_downgrade_percent = ? WHERE id = ?`,
		append(args, k.ID)...)
	return affectedOne(res, err, "update key", k.ID)
}

// Rotate adds c to its key, ends every other credential of the key at
// graceEnd unless it already ends earlier, and sets the key's RotatedAt to
// c.CreatedAt, in one transaction. It returns ErrNotFound for an unknown key
// and ErrConflict for a hash already stored.
func (s *SQLite) Rotate(ctx context.Context, c *tenant.Credential, graceEnd time.Time) error {
	if c == nil {
		return errors.New("rotate: no credential")
	}
	if err := checkCredential(c, c.KeyID); err != nil {
		return fmt.Errorf("rotate key %q: %w", c.KeyID, err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE keys SET rotated_at = ? WHERE id = ?`,
			timeText(c.CreatedAt), c.KeyID)
		if err := affectedOne(res, err, "key", c.KeyID); err != nil {
			return err
		}
		grace := timeText(graceEnd)
		_, err = tx.ExecContext(ctx, `UPDATE credentials SET not_after = ?
			WHERE key_id = ? AND (not_after IS NULL OR not_after > ?)`, grace, c.KeyID, grace)
		if err != nil {
			return err
		}
		return insertCredential(ctx, tx, c, c.KeyID)
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("rotate key %q: %v: %w", c.KeyID, err, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("rotate key %q: %w", c.KeyID, err)
	}
	return nil
}

// Credential finds the credential with this hash, with its key and team.
func (s *SQLite) Credential(ctx context.Context, hash []byte) (*tenant.Credential, *tenant.Key, *tenant.Team, error) {
	var (
		cs credScan
		ks keyScan
		ts teamScan
	)
	dest := append(append(cs.dest(), ks.dest()...), ts.dest()...)
	err := s.read.QueryRowContext(ctx, `SELECT `+credCols+`, `+keyCols+`, `+teamCols+`
		FROM credentials c JOIN keys k ON k.id = c.key_id JOIN teams t ON t.id = k.team_id
		WHERE c.hash = ?`, hash).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil, fmt.Errorf("credential: %w", ErrNotFound)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("credential: %w", err)
	}
	c, err := cs.credential()
	if err != nil {
		return nil, nil, nil, err
	}
	k, err := ks.key()
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := ts.team()
	if err != nil {
		return nil, nil, nil, err
	}
	return c, k, t, nil
}

// teamScan receives a row of teamCols.
type teamScan struct {
	t            tenant.Team
	metadata     sql.NullString
	createdAt    string
	maxKeyAge    int64
	rotationWarn int64
	budget       budgetScan
	providerKeys sql.NullString
}

func (s *teamScan) dest() []any {
	d := []any{&s.t.ID, &s.t.Name, &s.metadata, &s.createdAt, &s.maxKeyAge, &s.rotationWarn,
		&s.t.Limits.RPM, &s.t.Limits.TPM}
	d = append(d, s.budget.dest()...)
	return append(d, &s.providerKeys)
}

func (s *teamScan) team() (*tenant.Team, error) {
	t := s.t
	var err error
	if t.CreatedAt, err = parseTimeText(s.createdAt); err != nil {
		return nil, fmt.Errorf("team %q: %w", t.ID, err)
	}
	t.MaxKeyAge = time.Duration(s.maxKeyAge)
	t.RotationWarning = time.Duration(s.rotationWarn)
	t.Budget = s.budget.budget()
	if err := fromJSON(s.metadata, &t.Metadata); err != nil {
		return nil, fmt.Errorf("team %q metadata: %w", t.ID, err)
	}
	if err := fromJSON(s.providerKeys, &t.ProviderKeys); err != nil {
		return nil, fmt.Errorf("team %q provider keys: %w", t.ID, err)
	}
	return &t, nil
}

// keyScan receives a row of keyCols.
type keyScan struct {
	k         tenant.Key
	models    sql.NullString
	tiers     sql.NullString
	expiresAt sql.NullString
	revokedAt sql.NullString
	createdAt string
	rotatedAt string
	budget    budgetScan
}

func (s *keyScan) dest() []any {
	d := []any{&s.k.ID, &s.k.TeamID, &s.k.Name, &s.models, &s.tiers, &s.k.DefaultCriticality,
		&s.expiresAt, &s.revokedAt, &s.createdAt, &s.rotatedAt, &s.k.Limits.RPM, &s.k.Limits.TPM}
	return append(d, s.budget.dest()...)
}

func (s *keyScan) key() (*tenant.Key, error) {
	k := s.k
	var err error
	if k.CreatedAt, err = parseTimeText(s.createdAt); err != nil {
		return nil, fmt.Errorf("key %q: %w", k.ID, err)
	}
	if k.RotatedAt, err = parseTimeText(s.rotatedAt); err != nil {
		return nil, fmt.Errorf("key %q: %w", k.ID, err)
	}
	if k.ExpiresAt, err = parseNullTimeText(s.expiresAt); err != nil {
		return nil, fmt.Errorf("key %q: %w", k.ID, err)
	}
	if k.RevokedAt, err = parseNullTimeText(s.revokedAt); err != nil {
		return nil, fmt.Errorf("key %q: %w", k.ID, err)
	}
	k.Budget = s.budget.budget()
	if err := fromJSON(s.models, &k.AllowedModels); err != nil {
		return nil, fmt.Errorf("key %q allowed models: %w", k.ID, err)
	}
	if err := fromJSON(s.tiers, &k.AllowedTiers); err != nil {
		return nil, fmt.Errorf("key %q allowed tiers: %w", k.ID, err)
	}
	return &k, nil
}

// credScan receives a row of credCols.
type credScan struct {
	c         tenant.Credential
	createdAt string
	notAfter  sql.NullString
}

func (s *credScan) dest() []any {
	return []any{&s.c.KeyID, &s.c.Hash, &s.c.Prefix, &s.createdAt, &s.notAfter}
}

func (s *credScan) credential() (*tenant.Credential, error) {
	c := s.c
	var err error
	if c.CreatedAt, err = parseTimeText(s.createdAt); err != nil {
		return nil, fmt.Errorf("credential of key %q: %w", c.KeyID, err)
	}
	if c.NotAfter, err = parseNullTimeText(s.notAfter); err != nil {
		return nil, fmt.Errorf("credential of key %q: %w", c.KeyID, err)
	}
	return &c, nil
}

// budgetScan receives the four budget columns; all NULL is no budget.
type budgetScan struct {
	limit, soft, downgrade sql.NullInt64
	period                 sql.NullString
}

func (s *budgetScan) dest() []any {
	return []any{&s.limit, &s.period, &s.soft, &s.downgrade}
}

func (s *budgetScan) budget() *tenant.Budget {
	if !s.limit.Valid {
		return nil
	}
	return &tenant.Budget{
		Limit:            meter.Nanos(s.limit.Int64),
		Period:           s.period.String,
		SoftPercent:      int(s.soft.Int64),
		DowngradePercent: int(s.downgrade.Int64),
	}
}

// budgetArgs returns the four budget columns: all NULL for no budget.
func budgetArgs(b *tenant.Budget) []any {
	if b == nil {
		return []any{nil, nil, nil, nil}
	}
	return []any{int64(b.Limit), b.Period, b.SoftPercent, b.DowngradePercent}
}

// jsonOrNull encodes v as JSON text, or returns nil (SQL NULL) when isNil,
// so that a nil map or slice reads back nil and an empty one empty.
func jsonOrNull(v any, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// fromJSON decodes a JSON column into dst, leaving dst alone for NULL.
func fromJSON(ns sql.NullString, dst any) error {
	if !ns.Valid {
		return nil
	}
	return json.Unmarshal([]byte(ns.String), dst)
}
