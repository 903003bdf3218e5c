package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrSchemaNewer is returned by OpenSQLite for a database whose schema was
// migrated by a newer Tollgate than this one: this binary does not know the
// newer tables and would corrupt or misread them, so it refuses to start.
var ErrSchemaNewer = errors.New("database schema is newer than this binary; upgrade tollgate")

//go:embed migrations/sqlite/*.sql
var sqliteMigrationFiles embed.FS

// sqliteMigrations is the migration directory of the SQLite backend.
var sqliteMigrations = mustSub(sqliteMigrationFiles, "migrations/sqlite")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant matched by the embed pattern
	}
	return sub
}

// migration is one numbered schema change.
type migration struct {
	version int
	name    string // the file name, for errors
	sql     string
}

// loadMigrations reads the *.sql files at the root of fsys. Each is named
// NNNN_description.sql; the versions must run 1, 2, 3… without gaps, so a
// file lost in a merge is an error rather than a silently skipped change.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: path.Base(name), sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (gap or duplicate)", m.name, m.version, i+1)
		}
	}
	return ms, nil
}

// migrate brings db up to the newest migration in fsys. Each migration runs
// in its own transaction together with its schema_migrations row, so a
// failing one leaves the database at the previous version. The version is
// read again inside each (IMMEDIATE) transaction: two processes opening the
// same file at once apply each migration once.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at TEXT    NOT NULL
	)`
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	if err := checkNotNewer(ctx, db, len(ms)); err != nil {
		return err
	}
	for _, m := range ms {
		if err := applyMigration(ctx, db, m, len(ms)); err != nil {
			return err
		}
	}
	return nil
}

// checkNotNewer fails with ErrSchemaNewer when db is past version known.
func checkNotNewer(ctx context.Context, q querier, known int) error {
	v, err := schemaVersion(ctx, q)
	if err != nil {
		return err
	}
	if v > known {
		return fmt.Errorf("schema version %d, this binary knows up to %d: %w", v, known, ErrSchemaNewer)
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration, known int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	defer tx.Rollback()
	if err := checkNotNewer(ctx, tx, known); err != nil {
		return err
	}
	var done bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.version).Scan(&done)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if done {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.version, timeText(time.Now()))
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx share for reads.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// SchemaVersion reports the newest migration applied to the database.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.read)
}
