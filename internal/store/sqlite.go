package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the embedded Store: one database file in WAL mode, its schema
// migrated at open. Create it with OpenSQLite; the zero value is not usable.
// It is safe for concurrent use and must not be copied.
//
// It holds two connection pools on the same file. SQLite admits one writer
// at a time whatever we do, so writes go through a single connection: they
// queue in database/sql, in order, instead of spinning in SQLite's busy
// handler, and a transaction that reads before it writes can never fail
// with SQLITE_BUSY against one of our own writers. Write throughput comes
// from the ledger writer's batching (one transaction per batch), not from
// concurrency. Reads use a separate pool of several connections: in WAL
// mode readers see the last committed snapshot and neither block nor are
// blocked by the writer. busy_timeout still matters for other processes
// on the same file (the `tollgate` CLI beside a running server), and every
// write transaction begins IMMEDIATE so that such a process waits for the
// lock instead of failing on a read-to-write upgrade.
//
// The ledger's inserts, the bulk of the writes, run on a third connection
// of their own (ledgerConn), below database/sql, while AppendUsage holds
// the writer pool's connection: still one writer at a time.
type SQLite struct {
	path  string  // absolute
	write *sql.DB // one connection; every write but the ledger's inserts, and the migrations
	read  *sql.DB // a pool for queries, with query_only set

	ledgerMu     sync.Mutex  // guards the two below
	ledger       *ledgerConn // opened by the first AppendUsage
	ledgerClosed bool

	tally spendTally // TotalSpend's running total
}

var _ Store = (*SQLite)(nil)

// busyTimeout is how long a connection waits for another process's lock
// before SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// OpenSQLite opens the database file at path, creating it if missing, and
// applies the embedded migrations it lacks. It refuses a file written by a
// newer binary (ErrSchemaNewer).
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	connector, err := sqlite.NewConnector(sqliteDSN(path, true))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write := sql.OpenDB(connector)
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	if err := migrate(ctx, write, sqliteMigrations); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return &SQLite{path: path, write: write, read: read}, nil
}

// sqliteDSN builds the driver name for path. The path goes in a file: URI,
// escaped, so that a '?' or '%' in it cannot be taken for parameters.
// journal_mode is persistent in the file, so only the writer sets it;
// readers are query_only, a guard against a write slipping into the pool
// that has no single-writer discipline.
func sqliteDSN(path string, writer bool) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		// Ledger request IDs are time-ordered now, but imported or
		// replayed records and the team and key indexes still scatter a
		// batch's writes over many pages. A larger cache keeps them in
		// memory, and checkpointing every 8000 pages (about 32 MiB of WAL)
		// instead of 1000 writes a page rewritten by several batches to the
		// main file once. With 400k records stored, the two took batches of
		// 1000 from about 12.7k to 19k records/s (BenchmarkSQLiteAppendUsage).
		q.Add("_pragma", "cache_size(-32768)") // KiB
		q.Add("_pragma", "wal_autocheckpoint(8000)")
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "1")
	}
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive, file:///C:/…
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Close closes the pools and the ledger's connection. WAL content is
// checkpointed into the main file when the last connection closes.
func (s *SQLite) Close() error {
	s.ledgerMu.Lock()
	var err error
	if s.ledger != nil {
		err = s.ledger.close()
		s.ledger = nil
	}
	s.ledgerClosed = true
	s.ledgerMu.Unlock()
	return errors.Join(err, s.read.Close(), s.write.Close())
}

// inTx runs fn in a write transaction and commits it if fn succeeds.
func (s *SQLite) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// sqliteCode returns the extended result code of a driver error, or 0.
func sqliteCode(err error) int {
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		return se.Code()
	}
	return 0
}

// isUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE violation.
func isUniqueViolation(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKeyViolation reports whether err is a FOREIGN KEY violation.
func isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// textTime is the layout of tenant timestamps: UTC, fixed width, so that
// string order is time order (see migrations/sqlite/0001_init.sql).
const textTime = "2006-01-02T15:04:05.000000000Z"

func timeText(t time.Time) string { return t.UTC().Format(textTime) }

// timeTextOrNull returns nil (SQL NULL) for a nil t.
func timeTextOrNull(t *time.Time) any {
	if t == nil {
		return nil
	}
	return timeText(*t)
}

func parseTimeText(s string) (time.Time, error) {
	t, err := time.Parse(textTime, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}

func parseNullTimeText(ns sql.NullString) (*time.Time, error) {
	if !ns.Valid {
		return nil, nil
	}
	t, err := parseTimeText(ns.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Ledger times are unix nanoseconds, which int64 holds from 1677 to 2262.
var (
	minLedgerTime = time.Unix(0, minInt64)
	maxLedgerTime = time.Unix(0, maxInt64)
)

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

// boundNanos converts a query bound to unix nanoseconds. A time beyond
// what int64 holds becomes the extreme value, which selects the same
// records, since no stored record lies beyond it.
func boundNanos(t time.Time) int64 {
	switch {
	case t.Before(minLedgerTime):
		return minInt64
	case t.After(maxLedgerTime):
		return maxInt64
	}
	return t.UnixNano()
}
