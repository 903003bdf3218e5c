package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// usageColumns are the ledger's columns, in the order binder.record binds
// their values and Records scans them.
const usageColumns = `request_id, time, team_id, key_id, endpoint, tier, criticality,
	downgraded, requested_model, served_model, provider, deployment, attempts, fallback,
	prompt_tokens, completion_tokens, cached_tokens, cost_nanos, latency_ns, ttfb_ns, status,
	error_code`

const usageParams = 22 // parameters per record, one per column

// AppendUsage inserts up to 1<<maxUsageLog records per statement. Each
// statement has a fixed cost in database/sql and the driver (then a
// goroutine watching ctx, bind and reset calls) and in SQLite (starting
// the VM, opening a cursor on the table and on each index), which one
// statement per record paid per record: 64 per statement took the CPU per
// record from about 24 to 14 µs for ids as the gateway makes them
// (BenchmarkSQLiteAppendUsage/time-ordered, database on tmpfs). 16 to
// 256 measured alike, and 64 and 128 still do without database/sql and
// that goroutine; 64 records are 1408 parameters, far below SQLite's
// limit of 32766.
const maxUsageLog = 6

// insertUsageSQL returns an INSERT of n records that skips those whose
// request_id is stored, or comes earlier in the same statement.
//
// OR IGNORE does here what ON CONFLICT (request_id) DO NOTHING would:
// binder.record binds no NULL, and usage has no CHECK and no UNIQUE but its
// primary key (TestSQLiteUsageConstraints), so request_id is the only
// conflict possible. Unlike DO NOTHING, it leaves no constraint that can
// abort the statement, and so SQLite keeps no statement journal, a copy
// of every page a multi-row INSERT changes so that it can undo just that
// statement; with ids scattered over the index that copy spilled to a
// temporary file and took a quarter of the CPU. Should usage ever get a
// CHECK, OR IGNORE would silently skip the records violating it.
func insertUsageSQL(n int) string {
	row := "(?" + strings.Repeat(", ?", usageParams-1) + ")"
	return "INSERT OR IGNORE INTO usage (" + usageColumns + ") VALUES " +
		strings.Repeat(row+", ", n-1) + row
}

// AppendUsage writes recs in one transaction, skipping records whose
// RequestID is already stored. Every record needs a RequestID and a Time
// between 1678 and 2262 (unix nanoseconds); otherwise nothing is written.
//
// The records go through the ledger's own connection (ledgerConn), opened
// on first use. It writes while holding the writer pool's one connection,
// so the store's writers still take turns in database/sql, in order, and
// ctx bounds the wait for that turn.
func (s *SQLite) AppendUsage(ctx context.Context, recs []meter.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		if err := checkRecord(&recs[i]); err != nil {
			return fmt.Errorf("append usage: record %d: %w", i, err)
		}
	}
	turn, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("append usage: %w", err)
	}
	defer turn.Close()
	s.ledgerMu.Lock()
	defer s.ledgerMu.Unlock()
	if s.ledgerClosed {
		return errors.New("append usage: store closed")
	}
	if s.ledger == nil {
		if s.ledger, err = openLedgerConn(s.path); err != nil {
			return fmt.Errorf("append usage: %w", err)
		}
	}
	return s.ledger.appendUsage(ctx, recs)
}

// dayNanos is the length of a ledger day: spend_daily's days are UTC, which
// has no leap seconds in unix time.
const dayNanos = int64(24 * time.Hour)

// dayOf returns the day number of unix nanoseconds ns, rounded down
// (spend_daily.day).
func dayOf(ns int64) int64 {
	d := ns / dayNanos
	if ns%dayNanos < 0 {
		d--
	}
	return d
}

// upsertSpendSQL adds to one key's and day's total.
const upsertSpendSQL = `INSERT INTO spend_daily (key_id, day, team_id, cost_nanos) VALUES (?, ?, ?, ?)
	ON CONFLICT (key_id, day, team_id) DO UPDATE SET cost_nanos = cost_nanos + excluded.cost_nanos`

// dayOfTimeSQL is dayOf(usage.time) in SQL, where % truncates towards zero
// (0002_spend_daily.sql has its own copy: a migration never changes).
const dayOfTimeSQL = `(time - (time % 86400000000000 + 86400000000000) % 86400000000000) / 86400000000000`

// dailySpendAfterSQL adds the records with a rowid above ? to the daily
// totals.
const dailySpendAfterSQL = `INSERT INTO spend_daily (key_id, day, team_id, cost_nanos)
	SELECT key_id, ` + dayOfTimeSQL + `, team_id, SUM(cost_nanos)
	FROM usage WHERE rowid > ? GROUP BY 1, 2, 3 HAVING SUM(cost_nanos) != 0
	ON CONFLICT (key_id, day, team_id) DO UPDATE SET cost_nanos = cost_nanos + excluded.cost_nanos`

// spendGroup is one row of spend_daily that a batch adds to.
type spendGroup struct {
	key, team string
	day       int64
}

func checkRecord(r *meter.Record) error {
	if r.RequestID == "" {
		return errors.New("no request id")
	}
	if r.Time.Before(minLedgerTime) || r.Time.After(maxLedgerTime) {
		return fmt.Errorf("request %q: time %v out of range", r.RequestID, r.Time)
	}
	return nil
}

// Spend sums the cost of the records at or after since of team teamID, of
// key keyID, or of both when both are given. An empty ID and a zero since
// do not filter, so Spend(ctx, "", "", time.Time{}) is the ledger's total.
//
// Whole days come from spend_daily, one row per key and day, so a budget
// period's spend costs the same with a million records as with ten. Only
// a since that is not a UTC midnight (never a budget's) reads the records
// of its first, partial day.
func (s *SQLite) Spend(ctx context.Context, teamID, keyID string, since time.Time) (meter.Nanos, error) {
	tx, err := s.read.BeginTx(ctx, nil) // one snapshot for both parts
	if err != nil {
		return 0, fmt.Errorf("spend of team %q key %q: %w", teamID, keyID, err)
	}
	defer tx.Rollback()
	sum, err := spendIn(ctx, tx, teamID, keyID, since)
	if err != nil {
		return 0, fmt.Errorf("spend of team %q key %q: %w", teamID, keyID, err)
	}
	return meter.Nanos(sum), nil
}

// spendIn is Spend in tx.
func spendIn(ctx context.Context, tx *sql.Tx, teamID, keyID string, since time.Time) (int64, error) {
	from := int64(minInt64) // before any record: every day is whole
	if !since.IsZero() {
		from = boundNanos(since)
	}
	day, partial := dayOf(from), false
	if from%dayNanos != 0 && from != minInt64 {
		day, partial = day+1, true // the first whole day; the part before it is read below
	}
	where, args := spendFilter(teamID, keyID)
	var sum, part int64
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(cost_nanos), 0) FROM spend_daily WHERE `+where+`day >= ?`,
		append(args, day)...).Scan(&sum)
	if err == nil && partial {
		var until time.Time // the end of from's day; none past the last whole day int64 holds
		if day <= maxInt64/dayNanos {
			until = time.Unix(0, day*dayNanos)
		}
		w, a := usageFilter(teamID, keyID, since, until)
		err = tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(cost_nanos), 0) FROM usage`+w, a...).Scan(&part)
	}
	return sum + part, err
}

// spendFilter returns spend_daily's conditions on team and key, each
// followed by " AND ", and their arguments.
func spendFilter(teamID, keyID string) (string, []any) {
	where, args := "", make([]any, 0, 3)
	if keyID != "" {
		where, args = where+"key_id = ? AND ", append(args, keyID)
	}
	if teamID != "" {
		where, args = where+"team_id = ? AND ", append(args, teamID)
	}
	return where, args
}

// spendTally is TotalSpend's running total: the cost of the records with
// time at or after since among those with rowid up to through.
type spendTally struct {
	mu      sync.Mutex
	since   int64 // unix nanoseconds
	through int64 // the largest rowid counted; 0: nothing counted yet
	sum     int64
}

// TotalSpend is Spend(ctx, "", "", since) — the cost of every record at or
// after since — for a caller that asks again and again with the same since:
// the monthly-spend alert, every 10 seconds. A plain SUM rescans the whole
// month's records each time, CPU that grows with the month (at 10k req/s, a
// 20 s benchmark's ledger already cost 3% of the gateway's CPU); TotalSpend
// keeps the total and adds only the records stored since its last call.
// Stored records are found by rowid, which only grows (the ledger is
// append-only), so a record stored late with an early time, as a journal
// replay does, is counted once, when it is stored. A new since starts over,
// from Spend's daily totals: the first call after a start reads one row per
// key and day, not the month's records.
func (s *SQLite) TotalSpend(ctx context.Context, since time.Time) (meter.Nanos, error) {
	t := &s.tally
	t.mu.Lock()
	defer t.mu.Unlock()
	from := boundNanos(since)
	if t.since != from {
		t.since, t.through, t.sum = from, 0, 0
	}
	// One read transaction: the largest rowid and the sum up to it come
	// from the same snapshot, so a batch committed in between is counted
	// next time, not half now.
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("total spend: %w", err)
	}
	defer tx.Rollback()
	var top int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(rowid), 0) FROM usage`).Scan(&top); err != nil {
		return 0, fmt.Errorf("total spend: %w", err)
	}
	if top < t.through { // the table was rebuilt under us: count it all again
		t.through, t.sum = 0, 0
	}
	if t.through == 0 && top > 0 {
		// From the daily totals, which hold exactly the records up to top
		// in this snapshot.
		sum, err := spendIn(ctx, tx, "", "", since)
		if err != nil {
			return 0, fmt.Errorf("total spend: %w", err)
		}
		t.through, t.sum = top, sum
	}
	if top > t.through {
		var add int64
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(cost_nanos), 0) FROM usage
			WHERE rowid > ? AND rowid <= ? AND time >= ?`, t.through, top, from).Scan(&add)
		if err != nil {
			return 0, fmt.Errorf("total spend: %w", err)
		}
		t.through, t.sum = top, t.sum+add
	}
	return meter.Nanos(t.sum), nil
}

// usageDimensions maps each grouping dimension to the fixed column it is
// read from; only these strings ever reach the SQL text. A day is the UTC
// date of the time column, formatted in Go (usageGroups.day).
var usageDimensions = map[string]string{
	ByTeam:     "team_id",
	ByKey:      "key_id",
	ByModel:    "served_model",
	ByTier:     "tier",
	ByProvider: "provider",
	ByDay:      "time",
}

// Usage aggregates the ledger records q selects into one row per group of
// q.By values, ordered by those values (byte order, as SQLite's BINARY
// collation); with no By it returns one total row. An unknown or repeated
// dimension is an error.
//
// Percentiles need every latency of a group, so Usage does the grouping
// itself: one unordered scan of the selected records (through the time,
// team or key index), sums and latencies kept per group in Go, each
// group's latencies sorted at the end. Memory is 8 bytes per selected
// record. Grouping in SQL instead, with ROW_NUMBER over (group, latency),
// made SQLite sort every record once for the window and again for GROUP
// BY, and was 2–5 times slower on a million records; this way takes
// 1.1–1.5 s for a million on one core, grouped or not (BenchmarkSQLiteUsage).
func (s *SQLite) Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error) {
	query, args, err := usageSQL(q)
	if err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	g := newUsageGroups(q.By)
	for rows.Next() {
		if err := g.scan(rows); err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return g.rows(), nil
}

// usageSQL builds the scan for q: the group columns in q.By's order, then
// the measures usageGroups.scan reads. Dimension names select fixed
// columns; every value is a parameter.
func usageSQL(q UsageQuery) (string, []any, error) {
	var b strings.Builder
	b.WriteString("SELECT ")
	seen := make(map[string]bool, len(q.By))
	for _, dim := range q.By {
		col, ok := usageDimensions[dim]
		if !ok {
			return "", nil, fmt.Errorf("usage: unknown dimension %q (want team, key, model, tier, provider or day)", dim)
		}
		if seen[dim] {
			return "", nil, fmt.Errorf("usage: dimension %q given twice", dim)
		}
		seen[dim] = true
		b.WriteString(col + ", ")
	}
	b.WriteString("status, fallback, prompt_tokens, completion_tokens, cached_tokens, cost_nanos, latency_ns FROM usage")
	where, args := usageFilter(q.TeamID, q.KeyID, q.Since, q.Until)
	b.WriteString(where)
	return b.String(), args, nil
}

// usageGroup accumulates one group of a usage report.
type usageGroup struct {
	row        UsageRow
	values     []string // the group's values, in By order
	latencySum float64  // nanoseconds; float so that no count of records overflows it
	latencies  []int64  // nanoseconds, unsorted until rows
}

// usageGroups aggregates scanned records by their group values. Its zero
// value is not usable; it is not safe for concurrent use.
type usageGroups struct {
	by     []string
	groups map[string]*usageGroup // by key, see scan
	days   map[int64]string       // UTC day number → YYYY-MM-DD, a cache

	// Scan destinations, reused for every record. raw holds the text
	// dimensions (valid until the next Next), times the day dimensions.
	dest  []any
	raw   []sql.RawBytes
	times []int64
	key   []byte
	m     struct{ status, fallback, prompt, completion, cached, cost, latency int64 }
}

func newUsageGroups(by []string) *usageGroups {
	g := &usageGroups{by: by, groups: map[string]*usageGroup{}, days: map[int64]string{},
		raw: make([]sql.RawBytes, len(by)), times: make([]int64, len(by))}
	for i, dim := range by {
		if dim == ByDay {
			g.dest = append(g.dest, &g.times[i])
		} else {
			g.dest = append(g.dest, &g.raw[i])
		}
	}
	m := &g.m
	g.dest = append(g.dest, &m.status, &m.fallback, &m.prompt, &m.completion, &m.cached, &m.cost, &m.latency)
	return g
}

// scan reads the current record into its group. The group's key is its
// values, each prefixed by its length, so that no two tuples share one.
func (g *usageGroups) scan(rows *sql.Rows) error {
	if err := rows.Scan(g.dest...); err != nil {
		return err
	}
	g.key = g.key[:0]
	for i, dim := range g.by {
		v := g.raw[i]
		if dim == ByDay {
			v = sql.RawBytes(g.day(g.times[i]))
		}
		g.key = binary.AppendUvarint(g.key, uint64(len(v)))
		g.key = append(g.key, v...)
	}
	grp := g.groups[string(g.key)]
	if grp == nil {
		grp = &usageGroup{values: make([]string, len(g.by))}
		for i, dim := range g.by {
			if dim == ByDay {
				grp.values[i] = g.day(g.times[i])
			} else {
				grp.values[i] = string(g.raw[i])
			}
		}
		g.groups[string(g.key)] = grp
	}
	m, r := &g.m, &grp.row
	r.Requests++
	if m.status >= 400 {
		r.Errors++
	}
	r.Fallbacks += m.fallback
	r.PromptTokens += m.prompt
	r.CompletionTokens += m.completion
	r.CachedTokens += m.cached
	r.Cost += meter.Nanos(m.cost)
	grp.latencySum += float64(m.latency)
	grp.latencies = append(grp.latencies, m.latency)
	return nil
}

// day returns the UTC date of unix nanoseconds ns.
func (g *usageGroups) day(ns int64) string {
	const nsPerDay = int64(24 * time.Hour)
	n := ns / nsPerDay
	if ns%nsPerDay < 0 {
		n-- // floor, for times before 1970
	}
	d, ok := g.days[n]
	if !ok {
		d = time.Unix(0, ns).UTC().Format(time.DateOnly)
		g.days[n] = d
	}
	return d
}

// rows finishes every group and returns them ordered by their values; with
// no grouping, the one total row even when no record was selected.
func (g *usageGroups) rows() []UsageRow {
	switch {
	case len(g.groups) > 0:
	case len(g.by) == 0:
		return []UsageRow{{}}
	default:
		return nil
	}
	groups := slices.Collect(maps.Values(g.groups))
	slices.SortFunc(groups, func(a, b *usageGroup) int { return slices.Compare(a.values, b.values) })
	out := make([]UsageRow, 0, len(groups))
	for _, grp := range groups {
		r := grp.row
		if len(g.by) > 0 {
			r.Group = make(map[string]string, len(g.by))
			for i, dim := range g.by {
				r.Group[dim] = grp.values[i]
			}
		}
		n := float64(r.Requests)
		r.CostUSD = r.Cost.USD()
		r.AvgLatencyMS = grp.latencySum / n / float64(time.Millisecond)
		r.FallbackRate = float64(r.Fallbacks) / n
		slices.Sort(grp.latencies)
		r.P50LatencyMS = nearestRank(grp.latencies, 50)
		r.P95LatencyMS = nearestRank(grp.latencies, 95)
		out = append(out, r)
	}
	return out
}

// nearestRank returns, in milliseconds, the p-th percentile (0 < p ≤ 100)
// of the sorted nanosecond latencies by the nearest-rank method: the
// value at rank ceil(p/100 × n), counting from 1. Of 1..100 ms, p50 is
// 50 and p95 is 95; of one value, every percentile is that value.
func nearestRank(sorted []int64, p int) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := (p*n + 99) / 100 // ceil(p·n/100) in integers
	return float64(sorted[rank-1]) / float64(time.Millisecond)
}

// usageFilter returns a WHERE clause (with a leading space, or "") and its
// arguments; zero values do not filter. until is exclusive.
func usageFilter(teamID, keyID string, since, until time.Time) (string, []any) {
	var conds []string
	var args []any
	if teamID != "" {
		conds, args = append(conds, "team_id = ?"), append(args, teamID)
	}
	if keyID != "" {
		conds, args = append(conds, "key_id = ?"), append(args, keyID)
	}
	if !since.IsZero() {
		conds, args = append(conds, "time >= ?"), append(args, boundNanos(since))
	}
	if !until.IsZero() {
		conds, args = append(conds, "time < ?"), append(args, boundNanos(until))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

const selectRecords = `SELECT ` + usageColumns + ` FROM usage`

// Records calls fn with each record q selects (q.By is ignored), oldest
// first; records of the same nanosecond come in the order they were
// stored. Rows are read one at a time from an index on time, so a million
// records cost no more memory than one. Times come back in UTC.
func (s *SQLite) Records(ctx context.Context, q UsageQuery, fn func(meter.Record) error) error {
	where, args := usageFilter(q.TeamID, q.KeyID, q.Since, q.Until)
	rows, err := s.read.QueryContext(ctx, selectRecords+where+" ORDER BY time, rowid", args...)
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r                   meter.Record
			ns, cost, lat, ttfb int64
		)
		err := rows.Scan(&r.RequestID, &ns, &r.TeamID, &r.KeyID, &r.Endpoint, &r.Tier,
			&r.Criticality, &r.Downgraded, &r.RequestedModel, &r.ServedModel, &r.Provider,
			&r.Deployment, &r.Attempts, &r.Fallback, &r.PromptTokens, &r.Completion,
			&r.CachedTokens, &cost, &lat, &ttfb, &r.Status, &r.ErrorCode)
		if err != nil {
			return fmt.Errorf("records: %w", err)
		}
		r.Time = time.Unix(0, ns).UTC()
		r.Cost, r.Latency, r.TTFB = meter.Nanos(cost), time.Duration(lat), time.Duration(ttfb)
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	return nil
}
