package store

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// ledgerConn is the connection the ledger's records are inserted on: a
// SQLite connection of its own on the store's file, driven through
// modernc.org/sqlite/lib — the SQLite C API, translated to Go, that the
// database/sql driver itself calls — rather than through the driver.
//
// The driver binds every argument by allocating a C copy of each string,
// binding it, and after the statement binding NULL over it and freeing it,
// each call taking the connection's mutex (it opens every connection
// serialized, SQLITE_OPEN_FULLMUTEX): for the 22 columns of a record,
// some 60 calls into SQLite. That was half of the ledger's CPU, and the
// ledger was the largest piece of the gateway's CPU per request after the
// sockets. Here the connection is opened SQLITE_OPEN_NOMUTEX (it is used
// by one goroutine at a time: AppendUsage holds ledgerMu), the text of a
// statement's records is copied into one C buffer that the statement
// binds without copying (SQLITE_STATIC), and nothing is unbound: the next
// run binds every parameter again. 1024 time-ordered records took 4.3
// instead of 7.0 ms (BenchmarkSQLiteAppendUsage/time-ordered-1024).
//
// The statements are prepared the first time a batch needs them and
// finalized by close.
type ledgerConn struct {
	tls *libc.TLS
	db  uintptr // sqlite3*

	insert                       [maxUsageLog + 1]uintptr // insert[k] inserts 1<<k records
	upsert, spendAfter, maxRowid uintptr
	begin, commit, rollback      uintptr
	text                         uintptr // C buffer for the text a statement binds
	textCap                      int
	closed                       bool
}

// ledgerConnPragmas are the writer pool's settings (sqliteDSN) for this
// connection. journal_mode is the file's, set by the pool when it migrated.
var ledgerConnPragmas = fmt.Sprintf(`PRAGMA busy_timeout = %d; PRAGMA foreign_keys = 1;
	PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 8000`,
	busyTimeout.Milliseconds())

// openLedgerConn opens the existing database file at path.
func openLedgerConn(path string) (*ledgerConn, error) {
	c := &ledgerConn{tls: libc.NewTLS()}
	name, err := libc.CString(path)
	if err != nil {
		c.tls.Close()
		return nil, err
	}
	out := libc.Xmalloc(c.tls, ptrSize)
	if out == 0 {
		libc.Xfree(c.tls, name)
		c.tls.Close()
		return nil, errors.New("ledger connection: out of memory")
	}
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, out, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	c.db = *(*uintptr)(cmem(out))
	libc.Xfree(c.tls, out)
	libc.Xfree(c.tls, name)
	if rc == sqlite3.SQLITE_OK {
		sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
		err = c.exec(ledgerConnPragmas)
	} else {
		err = c.error(rc)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("open ledger connection: %w", err)
	}
	return c, nil
}

const ptrSize = 8 // a C pointer: libc's targets are all 64-bit

// cmem returns p, an address in C memory — libc's allocator maps it
// outside the Go heap — as a pointer. go vet's unsafeptr check cannot tell
// this conversion from turning an integer back into a Go pointer, which
// the collector might have freed or moved; C memory it neither frees nor
// moves, so the conversion is sound, and it goes through p's own variable
// to be spelled once, here.
func cmem(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// textBuf is the text buffer as a slice.
func (c *ledgerConn) textBuf() []byte { return unsafe.Slice((*byte)(cmem(c.text)), c.textCap) }

// ledgerError is a failure SQLite reported on the ledger's connection.
type ledgerError struct {
	code int32 // the extended result code
	msg  string
}

func (e *ledgerError) Error() string { return fmt.Sprintf("%s (%d)", e.msg, e.code) }

// error returns rc as an error with the connection's message for it; call
// it before anything else runs on the connection.
func (c *ledgerConn) error(rc int32) error {
	msg := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	return &ledgerError{code: rc, msg: msg}
}

// exec runs sql, one or more statements without parameters.
func (c *ledgerConn) exec(sql string) error {
	q, err := libc.CString(sql)
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, q)
	if rc := sqlite3.Xsqlite3_exec(c.tls, c.db, q, 0, 0, 0); rc != sqlite3.SQLITE_OK {
		return c.error(rc)
	}
	return nil
}

// stmt returns the statement *p holds, preparing sql() the first time.
func (c *ledgerConn) stmt(p *uintptr, sql func() string) (uintptr, error) {
	if *p != 0 {
		return *p, nil
	}
	if c.closed {
		return 0, errors.New("ledger connection closed")
	}
	q, err := libc.CString(sql())
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, q)
	out := libc.Xmalloc(c.tls, ptrSize)
	if out == 0 {
		return 0, errors.New("ledger connection: out of memory")
	}
	defer libc.Xfree(c.tls, out)
	rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, q, -1, sqlite3.SQLITE_PREPARE_PERSISTENT, out, 0)
	if rc != sqlite3.SQLITE_OK {
		return 0, fmt.Errorf("prepare ledger statement: %w", c.error(rc))
	}
	*p = *(*uintptr)(cmem(out))
	return *p, nil
}

// run steps st once and resets it. It returns the rows the statement
// changed, or the first column of the row it returned.
func (c *ledgerConn) run(st uintptr) (int64, error) {
	var n int64
	var err error
	switch rc := sqlite3.Xsqlite3_step(c.tls, st); rc {
	case sqlite3.SQLITE_DONE:
		n = sqlite3.Xsqlite3_changes64(c.tls, c.db)
	case sqlite3.SQLITE_ROW:
		n = sqlite3.Xsqlite3_column_int64(c.tls, st, 0)
	default:
		err = c.error(rc)
	}
	sqlite3.Xsqlite3_reset(c.tls, st)
	return n, err
}

// runSQL prepares sql once into *p and runs it.
func (c *ledgerConn) runSQL(p *uintptr, sql string) (int64, error) {
	st, err := c.stmt(p, func() string { return sql })
	if err != nil {
		return 0, err
	}
	return c.run(st)
}

// close finalizes the statements and closes the connection; the
// connection is not usable after.
func (c *ledgerConn) close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	for _, p := range append(c.insert[:], c.upsert, c.spendAfter, c.maxRowid, c.begin, c.commit, c.rollback) {
		if p != 0 {
			sqlite3.Xsqlite3_finalize(c.tls, p)
		}
	}
	c.insert, c.upsert, c.spendAfter, c.maxRowid = [maxUsageLog + 1]uintptr{}, 0, 0, 0
	c.begin, c.commit, c.rollback = 0, 0, 0
	var err error
	if c.db != 0 {
		// sqlite3_close, not _v2: a statement left unfinalized fails it
		// (SQLITE_BUSY) instead of keeping the file open unseen.
		if rc := sqlite3.Xsqlite3_close(c.tls, c.db); rc != sqlite3.SQLITE_OK {
			err = fmt.Errorf("close ledger connection: %w", c.error(rc))
		}
		c.db = 0
	}
	if c.text != 0 {
		libc.Xfree(c.tls, c.text)
		c.text, c.textCap = 0, 0
	}
	c.tls.Close()
	return err
}

// appendUsage writes recs and their daily totals in one transaction.
//
// ctx bounds the batch: it is checked before the transaction, before each
// INSERT and before the commit, and an ended ctx rolls everything back. A
// statement is not interrupted once running: 64 records take well under a
// millisecond. The wait for the write lock is busy_timeout's, for another
// process on the file; the store's own writers take turns before they get
// here (AppendUsage).
func (c *ledgerConn) appendUsage(ctx context.Context, recs []meter.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append usage: %w", err)
	}
	if _, err := c.runSQL(&c.begin, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("append usage: %w", err)
	}
	err := c.appendInTx(ctx, recs)
	if err == nil {
		if err = ctx.Err(); err != nil {
			err = fmt.Errorf("append usage: %w", err)
		}
	}
	if err == nil {
		if _, err = c.runSQL(&c.commit, "COMMIT"); err == nil {
			return nil
		}
		err = fmt.Errorf("append usage: commit: %w", err)
	}
	if sqlite3.Xsqlite3_get_autocommit(c.tls, c.db) == 0 { // a transaction is still open
		if _, rerr := c.runSQL(&c.rollback, "ROLLBACK"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("append usage: rollback: %w", rerr))
		}
	}
	return err
}

// appendInTx writes recs and adds them to the daily totals.
func (c *ledgerConn) appendInTx(ctx context.Context, recs []meter.Record) error {
	// The largest rowid before this batch: the rows it inserts come after
	// it, which is how the daily totals find them when some of the batch
	// was already stored.
	before, err := c.runSQL(&c.maxRowid, `SELECT COALESCE(MAX(rowid), 0) FROM usage`)
	if err != nil {
		return fmt.Errorf("append usage: %w", err)
	}
	inserted, err := c.insertUsage(ctx, recs)
	if err != nil {
		return err
	}
	if inserted == int64(len(recs)) {
		return c.addDailySpend(recs)
	}
	// Some were stored already (a replayed journal): total what this
	// batch did insert, read back by rowid. Rare, so not worth finding
	// which in Go.
	st, err := c.stmt(&c.spendAfter, func() string { return dailySpendAfterSQL })
	if err == nil {
		sqlite3.Xsqlite3_bind_int64(c.tls, st, 1, before)
		_, err = c.run(st)
	}
	if err != nil {
		return fmt.Errorf("append usage: daily spend: %w", err)
	}
	return nil
}

// insertUsage inserts recs in statements of 1<<k records and returns how
// many it stored: fewer than len(recs) when some request ids were stored
// already or came twice. It checks ctx before each statement.
func (c *ledgerConn) insertUsage(ctx context.Context, recs []meter.Record) (int64, error) {
	var inserted int64
	for done := 0; done < len(recs); {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("append usage: %w", err)
		}
		// The largest statement that fits: a full one while 64 records
		// remain, then at most one of each smaller size.
		k := min(bits.Len(uint(len(recs)-done))-1, maxUsageLog)
		n := 1 << k
		m, err := c.insertRecords(k, recs[done:done+n])
		if err != nil {
			return 0, fmt.Errorf("append usage: records %d to %d: %w", done, done+n-1, err)
		}
		inserted += m
		done += n
	}
	return inserted, nil
}

// insertRecords runs the INSERT of 1<<k records on recs, which are as many.
func (c *ledgerConn) insertRecords(k int, recs []meter.Record) (int64, error) {
	st, err := c.stmt(&c.insert[k], func() string { return insertUsageSQL(1 << k) })
	if err != nil {
		return 0, err
	}
	if err := c.reserveText(recs); err != nil {
		return 0, err
	}
	b := binder{c: c, st: st, buf: c.textBuf()}
	for i := range recs {
		b.record(&recs[i])
	}
	if b.rc != sqlite3.SQLITE_OK {
		return 0, fmt.Errorf("bind: %w", c.error(b.rc))
	}
	return c.run(st)
}

// reserveText makes the text buffer hold the text of recs. It may move the
// buffer, so it runs before anything is bound to it.
func (c *ledgerConn) reserveText(recs []meter.Record) error {
	n := 0
	for i := range recs {
		r := &recs[i]
		n += len(r.RequestID) + len(r.TeamID) + len(r.KeyID) + len(r.Endpoint) + len(r.Tier) +
			len(r.Criticality) + len(r.RequestedModel) + len(r.ServedModel) + len(r.Provider) +
			len(r.Deployment) + len(r.ErrorCode)
	}
	return c.reserve(n)
}

// reserve makes the text buffer hold at least n bytes.
func (c *ledgerConn) reserve(n int) error {
	if n <= c.textCap && c.text != 0 {
		return nil
	}
	size := max(n, 16<<10, 2*c.textCap)
	p := libc.Xmalloc(c.tls, types.Size_t(size))
	if p == 0 {
		return fmt.Errorf("ledger connection: cannot allocate %d bytes", size)
	}
	if c.text != 0 {
		libc.Xfree(c.tls, c.text)
	}
	c.text, c.textCap = p, size
	return nil
}

// binder binds one statement's parameters in order, its text from buf,
// the connection's text buffer. rc keeps the first failure.
type binder struct {
	c   *ledgerConn
	st  uintptr
	buf []byte
	off int
	i   int32 // the last parameter bound
	rc  int32
}

// record binds r's columns, in usageColumns order: strings as TEXT, the
// rest as INTEGER, flags as 0 or 1.
func (b *binder) record(r *meter.Record) {
	b.text(r.RequestID)
	b.int(r.Time.UnixNano())
	b.text(r.TeamID)
	b.text(r.KeyID)
	b.text(r.Endpoint)
	b.text(r.Tier)
	b.text(r.Criticality)
	b.bool(r.Downgraded)
	b.text(r.RequestedModel)
	b.text(r.ServedModel)
	b.text(r.Provider)
	b.text(r.Deployment)
	b.int(int64(r.Attempts))
	b.bool(r.Fallback)
	b.int(int64(r.PromptTokens))
	b.int(int64(r.Completion))
	b.int(int64(r.CachedTokens))
	b.int(int64(r.Cost))
	b.int(int64(r.Latency))
	b.int(int64(r.TTFB))
	b.int(int64(r.Status))
	b.text(r.ErrorCode)
}

// text binds s from the buffer, without a copy of SQLite's own
// (SQLITE_STATIC, a nil destructor): the buffer is not written again
// before every parameter is bound anew. An empty s is bound as empty text,
// not NULL: the pointer is never nil.
func (b *binder) text(s string) {
	b.i++
	p := b.c.text + uintptr(b.off)
	b.off += copy(b.buf[b.off:], s)
	b.check(sqlite3.Xsqlite3_bind_text(b.c.tls, b.st, b.i, p, int32(len(s)), 0))
}

func (b *binder) int(v int64) {
	b.i++
	b.check(sqlite3.Xsqlite3_bind_int64(b.c.tls, b.st, b.i, v))
}

func (b *binder) bool(v bool) {
	var n int64
	if v {
		n = 1
	}
	b.int(n)
}

func (b *binder) check(rc int32) {
	if rc != sqlite3.SQLITE_OK && b.rc == sqlite3.SQLITE_OK {
		b.rc = rc
	}
}

// addDailySpend adds recs, all newly stored, to the daily totals: one
// upsert per key and day, which for a batch from the gateway is a handful.
func (c *ledgerConn) addDailySpend(recs []meter.Record) error {
	var groups []spendGroup
	var sums []int64
	for i := range recs {
		r := &recs[i]
		if r.Cost == 0 {
			continue
		}
		g := spendGroup{key: r.KeyID, team: r.TeamID, day: dayOf(r.Time.UnixNano())}
		j := -1
		for gi := range groups {
			if groups[gi] == g {
				j = gi
				break
			}
		}
		if j < 0 {
			if len(groups) == maxSpendGroups {
				if err := c.flushDailySpend(groups, sums); err != nil {
					return err
				}
				groups, sums = groups[:0], sums[:0]
			}
			j = len(groups)
			groups, sums = append(groups, g), append(sums, 0)
		}
		sums[j] += int64(r.Cost)
	}
	return c.flushDailySpend(groups, sums)
}

// maxSpendGroups bounds addDailySpend's linear search: a batch of many keys
// costs a few more upserts, not a quadratic scan.
const maxSpendGroups = 32

func (c *ledgerConn) flushDailySpend(groups []spendGroup, sums []int64) error {
	st, err := c.stmt(&c.upsert, func() string { return upsertSpendSQL })
	if err != nil {
		return fmt.Errorf("append usage: daily spend: %w", err)
	}
	for i, g := range groups {
		if sums[i] == 0 {
			continue
		}
		// The key and team go through the text buffer too: the inserts
		// have run, and bind theirs again before they run next.
		if err := c.reserve(len(g.key) + len(g.team)); err != nil {
			return err
		}
		b := binder{c: c, st: st, buf: c.textBuf()}
		b.text(g.key)
		b.int(g.day)
		b.text(g.team)
		b.int(sums[i])
		if b.rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("append usage: daily spend: bind: %w", c.error(b.rc))
		}
		if _, err := c.run(st); err != nil {
			return fmt.Errorf("append usage: daily spend: %w", err)
		}
	}
	return nil
}
