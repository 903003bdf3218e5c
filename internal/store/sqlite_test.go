package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// openTestSQLite opens a fresh database file in a temporary directory and
// closes it when the test ends.
func openTestSQLite(tb testing.TB) (*SQLite, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "tollgate.db")
	s, err := OpenSQLite(tb.Context(), path)
	if err != nil {
		tb.Fatalf("OpenSQLite(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// openRawDB opens the file as the store's writer does, without migrating.
func openRawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	return db
}

func embeddedVersion(tb testing.TB) int {
	tb.Helper()
	ms, err := loadMigrations(sqliteMigrations)
	if err != nil {
		tb.Fatalf("loadMigrations(embedded): %v", err)
	}
	if len(ms) == 0 {
		tb.Fatal("no embedded migrations")
	}
	return len(ms)
}

func TestSQLiteOpenFresh(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	got, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := embeddedVersion(t); got != want {
		t.Errorf("SchemaVersion() = %d, want %d", got, want)
	}
	for _, table := range []string{"teams", "keys", "credentials", "usage", "schema_migrations"} {
		var n int
		err := s.read.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("table %s: count %d, err %v; want 1, nil", table, n, err)
		}
	}
	pragmas := []struct {
		db   *sql.DB
		name string
		want string
	}{
		{s.read, "journal_mode", "wal"},
		{s.write, "journal_mode", "wal"},
		{s.write, "foreign_keys", "1"},
		{s.write, "synchronous", "1"}, // NORMAL
		{s.write, "busy_timeout", "5000"},
		{s.write, "cache_size", "-32768"},
		{s.write, "wal_autocheckpoint", "8000"},
		{s.read, "busy_timeout", "5000"},
		{s.read, "query_only", "1"},
	}
	for _, p := range pragmas {
		var got string
		if err := p.db.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", p.name, err)
		}
		if got != p.want {
			t.Errorf("PRAGMA %s = %q, want %q", p.name, got, p.want)
		}
	}
}

func TestSQLiteReopenDoesNotReapply(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTeam(ctx, testTeam("team_1", "one")); err != nil {
		t.Fatal(err)
	}
	before := appliedMigrations(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	after := appliedMigrations(t, s)
	if len(after) != embeddedVersion(t) || strings.Join(after, "|") != strings.Join(before, "|") {
		t.Errorf("schema_migrations after reopen = %q, want unchanged %q", after, before)
	}
	if _, err := s.Team(ctx, "one"); err != nil {
		t.Errorf("Team(one) after reopen: %v", err)
	}
}

// appliedMigrations lists "version@applied_at" rows.
func appliedMigrations(t *testing.T, s *SQLite) []string {
	t.Helper()
	return queryStrings(t, s, `SELECT version || '@' || applied_at FROM schema_migrations ORDER BY version`)
}

func TestSQLiteRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := openRawDB(t, path)
	_, err = db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'x')`)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = OpenSQLite(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite on a schema from a newer binary succeeded, want ErrSchemaNewer")
	}
	if !errors.Is(err, ErrSchemaNewer) || !strings.Contains(err.Error(), "99") {
		t.Errorf("OpenSQLite error = %v, want ErrSchemaNewer naming version 99", err)
	}
}

func TestMigrateUpgradesOlderFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	db := openRawDB(t, path)
	v1 := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")}}
	if err := migrate(ctx, db, v1); err != nil {
		t.Fatalf("migrate v1: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO a (x) VALUES (7)`); err != nil {
		t.Fatal(err)
	}

	// 0001 has no IF NOT EXISTS: applying it twice would fail.
	v2 := fstest.MapFS{
		"0001_a.sql": v1["0001_a.sql"],
		"0002_b.sql": {Data: []byte("CREATE TABLE b (y TEXT); ALTER TABLE a ADD COLUMN z TEXT;")},
	}
	if err := migrate(ctx, db, v2); err != nil {
		t.Fatalf("migrate v1 → v2: %v", err)
	}
	if v, err := schemaVersion(ctx, db); err != nil || v != 2 {
		t.Errorf("schemaVersion = %d, %v; want 2", v, err)
	}
	var x int
	if err := db.QueryRowContext(ctx, `SELECT x FROM a WHERE z IS NULL`).Scan(&x); err != nil || x != 7 {
		t.Errorf("row of a after upgrade: %d, %v; want 7", x, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO b (y) VALUES ('ok')`); err != nil {
		t.Errorf("table b after upgrade: %v", err)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	ctx := t.Context()
	db := openRawDB(t, filepath.Join(t.TempDir(), "m.db"))
	fsys := fstest.MapFS{
		"0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
		"0002_b.sql": {Data: []byte("CREATE TABLE b (y TEXT); INSERT INTO nosuch VALUES (1);")},
	}
	err := migrate(ctx, db, fsys)
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql") {
		t.Fatalf("migrate with a broken 0002 = %v, want an error naming 0002_b.sql", err)
	}
	if v, err := schemaVersion(ctx, db); err != nil || v != 1 {
		t.Errorf("schemaVersion after failed 0002 = %d, %v; want 1", v, err)
	}
	var n int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'`).Scan(&n)
	if n != 0 {
		t.Error("table b of the failed migration exists; the migration was not rolled back")
	}
}

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	tests := []struct {
		name string
		fsys fstest.MapFS
	}{
		{"gap", fstest.MapFS{"0001_a.sql": sql, "0003_c.sql": sql}},
		{"duplicate", fstest.MapFS{"0001_a.sql": sql, "0001_b.sql": sql}},
		{"no number", fstest.MapFS{"init.sql": sql}},
		{"zero", fstest.MapFS{"0000_a.sql": sql}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ms, err := loadMigrations(tt.fsys); err == nil {
				t.Errorf("loadMigrations = %d migrations, nil error; want an error", len(ms))
			}
		})
	}
}

func TestSQLiteDSNEscapesPath(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "we?ird #dir%20", "t.db")
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite(%q): %v", path, err)
	}
	defer s.Close()
	if err := s.CreateTeam(ctx, testTeam("team_1", "one")); err != nil {
		t.Fatal(err)
	}
	if !fileExists(path) {
		t.Errorf("database not created at %q", path)
	}
}

func TestSQLiteOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite with a canceled context succeeded")
	}
}

func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
