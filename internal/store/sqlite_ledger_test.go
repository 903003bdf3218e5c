package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// ledgerBase is 22:00 UTC but 17:00 in est, so that records near midnight
// test that days are UTC days.
var (
	ledgerBase = time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	est        = time.FixedZone("EST", -5*3600)
)

// testRecords returns n varied records, 4 minutes apart from ledgerBase
// (1000 of them span four UTC days), with ids prefix-0, prefix-1, ….
func testRecords(prefix string, n int) []meter.Record {
	teams := []string{"team_a", "team_b", ""}
	models := []string{"gpt-4o-mini", "claude-haiku", "gemini-flash"}
	providers := []string{"openai", "anthropic", "gemini"}
	tiers := []string{"budget", "standard", "premium"}
	recs := make([]meter.Record, n)
	for i := range recs {
		team := teams[i%len(teams)]
		key := ""
		if team != "" {
			key = fmt.Sprintf("key_%s_%d", team[len("team_"):], i%4)
		}
		status := 200
		if i%13 == 0 {
			status = 429 + i%3*71 // 429, 500, 571
		}
		recs[i] = meter.Record{
			Time:           ledgerBase.Add(time.Duration(i) * 4 * time.Minute).In(est),
			RequestID:      prefix + "-" + strconv.Itoa(i),
			TeamID:         team,
			KeyID:          key,
			Endpoint:       "/v1/chat/completions",
			Tier:           tiers[i/3%len(tiers)],
			Criticality:    "standard",
			Downgraded:     i%11 == 0,
			RequestedModel: "chat",
			ServedModel:    models[i/5%len(models)],
			Provider:       providers[i/7%len(providers)],
			Deployment:     "d" + strconv.Itoa(i%2),
			Attempts:       1 + i%3,
			Fallback:       i%7 == 0,
			PromptTokens:   100 + i,
			Completion:     i % 50,
			CachedTokens:   i % 17,
			Cost:           meter.Nanos(1_000_003*int64(i) + 7),
			Latency:        time.Duration(i%97) * 1_234_567,
			TTFB:           time.Duration(i%31) * time.Millisecond,
			Status:         status,
		}
		if status >= 400 {
			recs[i].ErrorCode = "upstream_error"
		}
	}
	return recs
}

// appendInBatches appends recs in batches of size.
func appendInBatches(t testing.TB, s *SQLite, recs []meter.Record, size int) {
	t.Helper()
	for batch := range slices.Chunk(recs, size) {
		if err := s.AppendUsage(t.Context(), batch); err != nil {
			t.Fatalf("AppendUsage(%d records from %s): %v", len(batch), batch[0].RequestID, err)
		}
	}
}

// refSpend is Spend computed in Go.
func refSpend(recs []meter.Record, teamID, keyID string, since time.Time) meter.Nanos {
	var sum meter.Nanos
	for _, r := range recs {
		if (teamID == "" || r.TeamID == teamID) && (keyID == "" || r.KeyID == keyID) &&
			(since.IsZero() || !r.Time.Before(since)) {
			sum += r.Cost
		}
	}
	return sum
}

// refUsage is Usage computed in Go.
func refUsage(recs []meter.Record, q UsageQuery) []UsageRow {
	type acc struct {
		row       UsageRow
		latency   time.Duration
		latencies []time.Duration
	}
	groups := map[string]*acc{}
	for _, r := range recs {
		if (q.TeamID != "" && r.TeamID != q.TeamID) || (q.KeyID != "" && r.KeyID != q.KeyID) ||
			(!q.Since.IsZero() && r.Time.Before(q.Since)) || (!q.Until.IsZero() && !r.Time.Before(q.Until)) {
			continue
		}
		var vals []string
		for _, dim := range q.By {
			vals = append(vals, map[string]string{
				ByTeam: r.TeamID, ByKey: r.KeyID, ByModel: r.ServedModel, ByTier: r.Tier,
				ByProvider: r.Provider, ByDay: r.Time.UTC().Format(time.DateOnly),
			}[dim])
		}
		id := strings.Join(vals, "\x00")
		a := groups[id]
		if a == nil {
			a = &acc{}
			if len(q.By) > 0 {
				a.row.Group = map[string]string{}
				for i, dim := range q.By {
					a.row.Group[dim] = vals[i]
				}
			}
			groups[id] = a
		}
		a.row.Requests++
		if r.Status >= 400 {
			a.row.Errors++
		}
		if r.Fallback {
			a.row.Fallbacks++
		}
		a.row.PromptTokens += int64(r.PromptTokens)
		a.row.CompletionTokens += int64(r.Completion)
		a.row.CachedTokens += int64(r.CachedTokens)
		a.row.Cost += r.Cost
		a.latency += r.Latency
		a.latencies = append(a.latencies, r.Latency)
	}
	if len(q.By) == 0 && len(groups) == 0 {
		return []UsageRow{{}}
	}
	var rows []UsageRow
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		a := groups[id]
		a.row.CostUSD = a.row.Cost.USD()
		a.row.AvgLatencyMS = float64(a.latency) / float64(a.row.Requests) / 1e6
		slices.Sort(a.latencies)
		n := float64(len(a.latencies))
		a.row.P50LatencyMS = float64(a.latencies[int(math.Ceil(0.50*n))-1]) / 1e6
		a.row.P95LatencyMS = float64(a.latencies[int(math.Ceil(0.95*n))-1]) / 1e6
		a.row.FallbackRate = float64(a.row.Fallbacks) / float64(a.row.Requests)
		rows = append(rows, a.row)
	}
	return rows
}

func TestSQLiteAppendUsageIdempotent(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	recs := testRecords("req", 1000)
	appendInBatches(t, s, recs, 100)
	want := refSpend(recs, "", "", time.Time{})
	assertLedger(t, s, 1000, want)

	// A replayed journal, in other batch sizes, counts nothing twice.
	appendInBatches(t, s, recs, 333)
	assertLedger(t, s, 1000, want)

	// A batch half old, half new adds only the new half.
	more := testRecords("more", 50)
	mixed := append(slices.Clone(recs[:50]), more...)
	if err := s.AppendUsage(ctx, mixed); err != nil {
		t.Fatal(err)
	}
	assertLedger(t, s, 1050, want+refSpend(more, "", "", time.Time{}))

	// Even a replay that changed the cost keeps the first record.
	changed := slices.Clone(recs[:1])
	changed[0].Cost = 1 << 40
	if err := s.AppendUsage(ctx, changed); err != nil {
		t.Fatal(err)
	}
	assertLedger(t, s, 1050, want+refSpend(more, "", "", time.Time{}))
}

// TestSQLiteAppendUsageChunks stores batches that AppendUsage splits into
// statements of every size, and reads every column of every record back,
// so that a value bound to the wrong row or column cannot hide.
func TestSQLiteAppendUsageChunks(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	recs := testRecords("req", 1000)
	// 64 records per statement at most: sizes around 64 and 128 split into
	// full statements and every smaller one (127 is 64+32+16+8+4+2+1).
	sizes := []int{1, 2, 3, 63, 64, 65, 127, 128, 129, 418}
	rest := recs
	for _, n := range sizes {
		if err := s.AppendUsage(ctx, rest[:n]); err != nil {
			t.Fatalf("AppendUsage(%d records): %v", n, err)
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		t.Fatalf("sizes cover %d records of %d", len(recs)-len(rest), len(recs))
	}
	assertStored(t, s, recs)

	// Replayed in one batch of many statements, with every value changed,
	// nothing is stored again.
	replay := testRecords("req", 1000)
	for i := range replay {
		replay[i].Cost, replay[i].Status = 1<<40, 599
	}
	if err := s.AppendUsage(ctx, replay); err != nil {
		t.Fatal(err)
	}
	assertStored(t, s, recs)

	// A request id twice in one batch, in the same statement (records 1
	// and 5) and in different ones (2 and 70): the first one is stored.
	more := testRecords("more", 100)
	dup := slices.Clone(more)
	dup[5].RequestID, dup[5].Cost = dup[1].RequestID, 1<<41
	dup[70].RequestID, dup[70].Cost = dup[2].RequestID, 1<<42
	if err := s.AppendUsage(ctx, dup); err != nil {
		t.Fatal(err)
	}
	// more's times are those of recs[:100]; of one time, recs came first.
	want := slices.Concat(recs, dup[:5], dup[6:70], dup[71:])
	slices.SortStableFunc(want, func(a, b meter.Record) int { return a.Time.Compare(b.Time) })
	assertStored(t, s, want)
}

// TestUsageInsertSizes checks that AppendUsage splits a batch into full
// statements of 1<<maxUsageLog records while that many remain, then one
// of each smaller power of two, and prepares only those.
func TestUsageInsertSizes(t *testing.T) {
	s, _ := openTestSQLite(t)
	recs := testRecords("req", 130) // every size below 64, then 64, 128 and more
	for n := 1; n <= len(recs); n++ {
		withLedgerConn(t, s, func(c *ledgerConn) error {
			for k, st := range c.insert {
				if st != 0 {
					sqlite3.Xsqlite3_finalize(c.tls, st)
					c.insert[k] = 0
				}
			}
			return nil
		})
		if err := s.AppendUsage(t.Context(), recs[:n]); err != nil {
			t.Fatal(err)
		}
		want := uint(n) & (1<<maxUsageLog - 1)
		if n >= 1<<maxUsageLog {
			want |= 1 << maxUsageLog
		}
		var got uint
		withLedgerConn(t, s, func(c *ledgerConn) error {
			for k, st := range c.insert {
				if st != 0 {
					got |= 1 << k
				}
			}
			return nil
		})
		if got != want {
			t.Errorf("AppendUsage(%d records) prepared the sizes %b, want %b", n, got, want)
		}
	}
}

// withLedgerConn calls fn with the ledger's connection, opened if need be.
func withLedgerConn(t *testing.T, s *SQLite, fn func(c *ledgerConn) error) {
	t.Helper()
	s.ledgerMu.Lock()
	defer s.ledgerMu.Unlock()
	if s.ledger == nil {
		c, err := openLedgerConn(s.path)
		if err != nil {
			t.Fatal(err)
		}
		s.ledger = c
	}
	if err := fn(s.ledger); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteInsertUsageCount checks the number of records stored that
// insertUsage returns, from which AppendUsage decides how to add a batch
// to spend_daily (a count too low still gives the right totals, by the
// slower path, so the other tests would not notice).
func TestSQLiteInsertUsageCount(t *testing.T) {
	s, _ := openTestSQLite(t)
	recs := testRecords("req", 200)
	dup := testRecords("dup", 100)
	dup[5].RequestID = dup[1].RequestID   // in the same statement
	dup[70].RequestID = dup[2].RequestID  // in another one
	dup[99].RequestID = recs[0].RequestID // already stored
	for _, tt := range []struct {
		name string
		recs []meter.Record
		want int64
	}{
		{"new", recs[:130], 130},
		{"stored", recs[:130], 0},
		{"partly stored", recs[65:], 70},
		{"ids twice", dup, 97},
	} {
		var got int64
		withLedgerConn(t, s, func(c *ledgerConn) (err error) {
			got, err = c.insertUsage(t.Context(), tt.recs)
			return err
		})
		if got != tt.want {
			t.Errorf("%s: insertUsage(%d records) = %d, want %d", tt.name, len(tt.recs), got, tt.want)
		}
	}
}

// TestSQLiteUsageTypes checks the storage class of every column
// AppendUsage writes, empty strings included: TEXT for strings (a value
// bound as a BLOB would compare unequal to the same text), INTEGER for
// the rest.
func TestSQLiteUsageTypes(t *testing.T) {
	s, _ := openTestSQLite(t)
	recs := testRecords("req", 3) // with a team and key, and without
	if err := s.AppendUsage(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	var types []string
	for col := range strings.SplitSeq(usageColumns, ",") {
		types = append(types, "typeof("+strings.TrimSpace(col)+")")
	}
	got := queryStrings(t, s, `SELECT `+strings.Join(types, " || ' ' || ")+` FROM usage`)
	const want = "text integer text text text text text integer text text text text " +
		"integer integer integer integer integer integer integer integer integer text"
	if len(got) != len(recs) || slices.ContainsFunc(got, func(g string) bool { return g != want }) {
		t.Errorf("storage classes of the columns (%s) = %q, want %q for each record", usageColumns, got, want)
	}
}

// TestSQLiteLedgerConnClose checks the ledger connection's end: Close
// finalizes its statements (sqlite3_close fails on one left behind), a
// later AppendUsage fails instead of writing, and what was written is in
// the file.
func TestSQLiteLedgerConnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	recs := testRecords("req", 100)
	appendInBatches(t, s, recs, 50)
	if s.ledger == nil || s.ledger.insert[5] == 0 || s.ledger.upsert == 0 || s.ledger.text == 0 {
		t.Fatal("AppendUsage prepared no statement on the ledger's connection")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.AppendUsage(t.Context(), testRecords("late", 1)); err == nil {
		t.Error("AppendUsage after Close succeeded")
	}
	if s.ledger != nil {
		t.Error("AppendUsage after Close opened a ledger connection")
	}

	s, err = OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	assertStored(t, s, recs)
	assertDailySpend(t, s)
}

// TestSQLiteLedgerConcurrentWriters has the ledger and the writer pool write
// at once: they take turns, and neither fails with SQLITE_BUSY.
func TestSQLiteLedgerConcurrentWriters(t *testing.T) {
	s, _ := openTestSQLite(t)
	recs := testRecords("req", 400)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < len(recs); i += 40 {
			if err := s.AppendUsage(t.Context(), recs[i:i+40]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range 40 {
		if _, err := s.write.ExecContext(t.Context(), `INSERT INTO spend_daily (key_id, day, team_id, cost_nanos) VALUES (?, ?, 'other', 1)`,
			fmt.Sprintf("other-%d", i), 1); err != nil {
			t.Fatalf("a write beside the ledger's: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("AppendUsage beside another write: %v", err)
	}
	assertStored(t, s, recs)
}

// TestSQLiteAppendUsageAllOrNothing fails a batch in its last statement:
// the statements before it, committed to nothing, are rolled back too.
func TestSQLiteAppendUsageAllOrNothing(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	recs := testRecords("req", 200) // statements of 64, 64, 64 and 8
	_, err := s.write.ExecContext(ctx, `CREATE TRIGGER fail BEFORE INSERT ON usage
		WHEN NEW.request_id = 'req-195' BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendUsage(ctx, recs); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("AppendUsage with record 195 refused = %v, want the trigger's error", err)
	}
	assertStored(t, s, nil)

	if _, err := s.write.ExecContext(ctx, `DROP TRIGGER fail`); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	assertStored(t, s, recs)
}

// TestSQLiteAppendUsageCanceled ends the context at each point where
// AppendUsage looks at it, in turn: every batch that fails stores nothing,
// and the connection stays usable.
func TestSQLiteAppendUsageCanceled(t *testing.T) {
	s, _ := openTestSQLite(t)
	recs := testRecords("req", 200) // statements of 64, 64, 64 and 8
	for n := 0; ; n++ {
		ctx := &canceledAfter{Context: t.Context(), n: n}
		err := s.AppendUsage(ctx, recs)
		if err == nil {
			if n < 4 {
				t.Errorf("AppendUsage succeeded with a context that ended at its %d-th check, want at least 4 checks", n+1)
			}
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("AppendUsage with a context that ended at its %d-th check = %v, want context.Canceled", n+1, err)
		}
		assertStored(t, s, nil)
	}
	assertStored(t, s, recs)
	assertLedger(t, s, int64(len(recs)), refSpend(recs, "", "", time.Time{}))
}

// canceledAfter is a context whose Err reports it canceled from its n+1-th
// call on; its Done channel does not tell.
type canceledAfter struct {
	context.Context
	n int
}

func (c *canceledAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestSQLiteUsageConstraints guards what insertUsageSQL's OR IGNORE
// relies on to act as ON CONFLICT (request_id) DO NOTHING: no CHECK on
// usage, and no unique index but the primary key on request_id.
func TestSQLiteUsageConstraints(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	var table string
	err := s.read.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'usage'`).Scan(&table)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(table), "CHECK") {
		t.Errorf("usage has a CHECK; insertUsageSQL's OR IGNORE would skip the records it refuses:\n%s", table)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT il.name, il.origin, ii.name FROM pragma_index_list('usage') il,
		pragma_index_info(il.name) ii WHERE il."unique"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var unique []string
	for rows.Next() {
		var index, origin, column string
		if err := rows.Scan(&index, &origin, &column); err != nil {
			t.Fatal(err)
		}
		unique = append(unique, origin+":"+column)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(unique, []string{"pk:request_id"}) {
		t.Errorf("unique indexes of usage (origin:column) = %q, want only [pk:request_id]", unique)
	}
}

// assertStored checks that the ledger holds exactly want, in time order,
// every column compared.
func assertStored(t *testing.T, s *SQLite, want []meter.Record) {
	t.Helper()
	var got []meter.Record
	err := s.Records(t.Context(), UsageQuery{}, func(r meter.Record) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(got, want, equalTimes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("stored records (-got +want):\n%s", diff)
	}
}

// assertLedger checks the number of records and their total cost.
func assertLedger(t *testing.T, s *SQLite, requests int64, cost meter.Nanos) {
	t.Helper()
	rows, err := s.Usage(t.Context(), UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Requests != requests || rows[0].Cost != cost {
		t.Errorf("Usage total = %+v, want one row of %d requests costing %d", rows, requests, cost)
	}
	spend, err := s.Spend(t.Context(), "", "", time.Time{})
	if err != nil || spend != cost {
		t.Errorf("Spend(all) = %d, %v; want %d", spend, err, cost)
	}
	assertDailySpend(t, s)
}

// assertDailySpend checks that spend_daily holds exactly the ledger's cost
// per key, UTC day and team, with no zero rows.
func assertDailySpend(t *testing.T, s *SQLite) {
	t.Helper()
	const daily = `SELECT key_id || '/' || day || '/' || team_id || '=' || cost_nanos FROM spend_daily ORDER BY 1`
	const ledger = `SELECT key_id || '/' || day || '/' || team_id || '=' || SUM(cost_nanos) FROM (SELECT key_id, team_id, cost_nanos,
		` + dayOfTimeSQL + ` AS day FROM usage) GROUP BY key_id, day, team_id HAVING SUM(cost_nanos) != 0 ORDER BY 1`
	got, want := queryStrings(t, s, daily), queryStrings(t, s, ledger)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("spend_daily differs from the ledger's totals (-ledger +spend_daily):\n%s", diff)
	}
}

func queryStrings(t *testing.T, s *SQLite, query string) []string {
	t.Helper()
	rows, err := s.read.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSQLiteSpendDaily keeps Spend, read from the daily totals, equal to a
// sum over the records through everything that can put a record in an
// unexpected day: late and replayed records (the rowid path), times before
// 1970 (negative nanoseconds round down), a batch of more keys and days
// than addDailySpend groups at once, zero costs, and a since at, just
// after and just before every UTC midnight, and at every record's time.
func TestSQLiteSpendDaily(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	recs := testRecords("req", 1000)
	appendInBatches(t, s, recs[200:], 300)
	assertDailySpend(t, s)

	// Late records, earlier than everything stored, half of them replayed
	// in one batch with records already stored.
	if err := s.AppendUsage(ctx, recs[:100]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendUsage(ctx, recs[:200]); err != nil {
		t.Fatal(err)
	}
	assertDailySpend(t, s)

	old := testRecords("old", 70) // 1969-12-31 around midnight, 48 keys' worth of groups
	for i := range old {
		old[i].Time = time.Unix(0, 0).Add(time.Duration(i-35) * 41 * time.Minute)
		old[i].KeyID = fmt.Sprintf("key_old_%d", i%48)
		if i%10 == 0 {
			old[i].Cost = 0
		}
	}
	if err := s.AppendUsage(ctx, old); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(recs), old...)
	assertLedger(t, s, int64(len(all)), refSpend(all, "", "", time.Time{}))

	var sinces []time.Time
	for _, r := range all {
		midnight := time.Unix(0, dayOf(r.Time.UnixNano())*dayNanos)
		sinces = append(sinces, r.Time, midnight, midnight.Add(time.Nanosecond), midnight.Add(-time.Nanosecond))
	}
	for i, since := range sinces {
		team, key := []string{"", "team_a", "team_b"}[i%3], ""
		if i%5 == 0 {
			key = fmt.Sprintf("key_%s_%d", map[string]string{"": "a", "team_a": "a", "team_b": "b"}[team], i%4)
		}
		if i%7 == 0 {
			key = old[i%len(old)].KeyID
		}
		got, err := s.Spend(ctx, team, key, since)
		if err != nil {
			t.Fatal(err)
		}
		if want := refSpend(all, team, key, since); got != want {
			t.Fatalf("Spend(%q, %q, %v) = %d, want %d", team, key, since, got, want)
		}
	}
}

func TestDayOf(t *testing.T) {
	for _, tt := range []struct{ ns, day int64 }{
		{0, 0}, {dayNanos - 1, 0}, {dayNanos, 1}, {-1, -1}, {-dayNanos, -1}, {-dayNanos - 1, -2},
		{minInt64, -106752}, {maxInt64, 106751},
	} {
		if got := dayOf(tt.ns); got != tt.day {
			t.Errorf("dayOf(%d) = %d, want %d", tt.ns, got, tt.day)
		}
	}
}

func TestSQLiteAppendUsageRejectsBatch(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	tests := []struct {
		name string
		edit func(*meter.Record)
	}{
		{"no request id", func(r *meter.Record) { r.RequestID = "" }},
		{"zero time", func(r *meter.Record) { r.Time = time.Time{} }},
		{"time past 2262", func(r *meter.Record) { r.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := testRecords(tt.name, 10)
			tt.edit(&recs[9])
			if err := s.AppendUsage(ctx, recs); err == nil {
				t.Fatal("AppendUsage = nil, want an error")
			}
			assertLedger(t, s, 0, 0)
		})
	}
	if err := s.AppendUsage(ctx, nil); err != nil {
		t.Errorf("AppendUsage(nil) = %v, want nil", err)
	}
}

// TestSQLiteUsageColumns reads one stored record back, so that two columns
// swapped in the INSERT cannot hide behind equal aggregates.
func TestSQLiteUsageColumns(t *testing.T) {
	s, _ := openTestSQLite(t)
	r := testRecords("one", 14)[13] // status 500, with an error code
	r.Fallback, r.Downgraded = true, true
	if err := s.AppendUsage(t.Context(), []meter.Record{r}); err != nil {
		t.Fatal(err)
	}
	var got meter.Record
	var ns, lat, ttfb int64
	err := s.read.QueryRowContext(t.Context(), `SELECT request_id, time, team_id, key_id, endpoint,
		tier, criticality, downgraded, requested_model, served_model, provider, deployment, attempts,
		fallback, prompt_tokens, completion_tokens, cached_tokens, cost_nanos, latency_ns, ttfb_ns,
		status, error_code FROM usage`).Scan(&got.RequestID, &ns, &got.TeamID, &got.KeyID,
		&got.Endpoint, &got.Tier, &got.Criticality, &got.Downgraded, &got.RequestedModel,
		&got.ServedModel, &got.Provider, &got.Deployment, &got.Attempts, &got.Fallback,
		&got.PromptTokens, &got.Completion, &got.CachedTokens, &got.Cost, &lat, &ttfb,
		&got.Status, &got.ErrorCode)
	if err != nil {
		t.Fatal(err)
	}
	got.Time, got.Latency, got.TTFB = time.Unix(0, ns), time.Duration(lat), time.Duration(ttfb)
	if diff := gocmp.Diff(got, r, equalTimes); diff != "" {
		t.Errorf("stored record (-got +want):\n%s", diff)
	}
}

func TestSQLiteSpendAndUsage(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	recs := testRecords("req", 1000)
	appendInBatches(t, s, recs, 250)

	day2 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	day3 := day2.Add(24 * time.Hour)
	mid := recs[500].Time // exactly on a record: Since includes it, Until excludes it

	spends := []struct {
		team, key string
		since     time.Time
	}{
		{"team_a", "", time.Time{}},
		{"team_b", "", day2},
		{"team_a", "", mid},
		{"", "key_a_1", time.Time{}},
		{"", "key_b_2", day3},
		{"team_a", "key_b_2", time.Time{}}, // a key of another team: nothing
		{"team_none", "", time.Time{}},
		{"team_a", "", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, // before int64 nanos
		{"team_a", "", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, // after
	}
	for _, sp := range spends {
		got, err := s.Spend(ctx, sp.team, sp.key, sp.since)
		if err != nil {
			t.Fatalf("Spend(%q, %q, %v): %v", sp.team, sp.key, sp.since, err)
		}
		if want := refSpend(recs, sp.team, sp.key, sp.since); got != want {
			t.Errorf("Spend(%q, %q, %v) = %d, want %d", sp.team, sp.key, sp.since, got, want)
		}
	}

	queries := []struct {
		name string
		q    UsageQuery
		rows int // expected number of rows, as a check on the reference; -1 for many
	}{
		{"total", UsageQuery{}, 1},
		{"by model", UsageQuery{By: []string{ByModel}}, 3},
		{"by key and day", UsageQuery{By: []string{ByKey, ByDay}}, 9 * 4},
		{"by day and key", UsageQuery{By: []string{ByDay, ByKey}}, 4 * 9},
		{"by team, tier, provider", UsageQuery{By: []string{ByTeam, ByTier, ByProvider}}, 3 * 3 * 3},
		{"by all six", UsageQuery{By: []string{ByDay, ByTeam, ByKey, ByModel, ByTier, ByProvider}}, -1},
		{"team a by day since mid", UsageQuery{TeamID: "team_a", Since: mid, By: []string{ByDay}}, 2},
		{"key by model in day 2", UsageQuery{KeyID: "key_b_1", Since: day2, Until: day3, By: []string{ByModel}}, 3},
		{"until excludes", UsageQuery{Until: mid}, 1},
		{"empty range total", UsageQuery{Since: day3.Add(100 * 24 * time.Hour)}, 1},
		{"empty range grouped", UsageQuery{TeamID: "team_none", By: []string{ByDay}}, 0},
	}
	approx := cmpopts.EquateApprox(0, 1e-9)
	for _, tt := range queries {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Usage(ctx, tt.q)
			if err != nil {
				t.Fatalf("Usage(%+v): %v", tt.q, err)
			}
			want := refUsage(recs, tt.q)
			if tt.rows >= 0 && len(want) != tt.rows {
				t.Fatalf("reference has %d rows, want %d: the test data changed", len(want), tt.rows)
			}
			if diff := gocmp.Diff(got, want, approx); diff != "" {
				t.Errorf("Usage(%+v) (-got +want):\n%s", tt.q, diff)
			}
			var sum meter.Nanos
			for _, r := range got {
				sum += r.Cost
			}
			if tt.q.Until.IsZero() {
				if spend, _ := s.Spend(ctx, tt.q.TeamID, tt.q.KeyID, tt.q.Since); sum != spend {
					t.Errorf("Usage(%+v) costs sum to %d, Spend says %d", tt.q, sum, spend)
				}
			}
		})
	}
}

// TestSQLiteUsagePercentiles checks nearest-rank percentiles and the
// fallback rate on latencies known by heart, stored out of order.
func TestSQLiteUsagePercentiles(t *testing.T) {
	s, _ := openTestSQLite(t)
	var recs []meter.Record
	add := func(team string, ms int, fallback bool) {
		recs = append(recs, meter.Record{Time: ledgerBase.Add(time.Duration(len(recs)) * time.Second),
			RequestID: "p" + strconv.Itoa(len(recs)), TeamID: team, Fallback: fallback,
			Latency: time.Duration(ms) * time.Millisecond, Status: 200})
	}
	// team_a: 1..100 ms, stored 37, 74, 11, … (37 is prime to 100, so
	// every value once, none in order); every tenth a fallback.
	for i := range 100 {
		ms := (i*37)%100 + 1
		add("team_a", ms, ms%10 == 0)
	}
	add("team_b", 7, true)             // one record: every percentile is it
	for ms := 1019; ms >= 1000; ms-- { // team_c: 20 records, 1000..1019 ms
		add("team_c", ms, false)
	}
	appendInBatches(t, s, recs, 50)

	rows, err := s.Usage(t.Context(), UsageQuery{By: []string{ByTeam}})
	if err != nil {
		t.Fatal(err)
	}
	type pct struct {
		Team           string
		Requests       int64
		P50, P95, Rate float64
	}
	var got []pct
	for _, r := range rows {
		got = append(got, pct{r.Group[ByTeam], r.Requests, r.P50LatencyMS, r.P95LatencyMS, r.FallbackRate})
	}
	want := []pct{
		// n = 100: p50 is rank ceil(50) = 50 → 50 ms, p95 rank 95 → 95 ms;
		// 10 fallbacks of 100.
		{"team_a", 100, 50, 95, 0.1},
		{"team_b", 1, 7, 7, 1},
		// n = 20: p50 rank ceil(10) = 10 → 1009 ms, p95 rank ceil(19) = 19 → 1018 ms.
		{"team_c", 20, 1009, 1018, 0},
	}
	if diff := gocmp.Diff(got, want); diff != "" {
		t.Errorf("Usage(by team) percentiles (-got +want):\n%s", diff)
	}

	// The total is computed over all 121 latencies, not from the groups:
	// sorted, ranks 1..7 are 1..7 ms (team_a), rank 8 is team_b's 7 ms,
	// rank k in 8..101 is k-1 ms, ranks 102..121 are 1000..1019 ms. p50 is
	// rank ceil(60.5) = 61 → 60 ms; p95 is rank ceil(114.95) = 115 → 1013
	// ms. Fallbacks: 10 + 1 of 121.
	total, err := s.Usage(t.Context(), UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	gotTotal := pct{"", total[0].Requests, total[0].P50LatencyMS, total[0].P95LatencyMS, total[0].FallbackRate}
	if want := (pct{"", 121, 60, 1013, 11.0 / 121}); gotTotal != want {
		t.Errorf("Usage() total = %+v, want %+v", gotTotal, want)
	}
}

func TestNearestRank(t *testing.T) {
	ms := func(v ...int64) []int64 {
		for i := range v {
			v[i] *= int64(time.Millisecond)
		}
		return v
	}
	for _, c := range []struct {
		sorted []int64
		p      int
		want   float64
	}{
		{nil, 50, 0},
		{ms(5), 50, 5},
		{ms(5), 95, 5},
		{ms(1, 2), 50, 1},    // rank ceil(1) = 1
		{ms(1, 2), 51, 2},    // rank ceil(1.02) = 2
		{ms(1, 2, 3), 50, 2}, // rank ceil(1.5) = 2
		{ms(1, 2, 3, 4), 95, 4},
		{ms(1, 2, 3, 4), 100, 4},
		{[]int64{1_500_000}, 50, 1.5},
	} {
		if got := nearestRank(c.sorted, c.p); got != c.want {
			t.Errorf("nearestRank(%v, %d) = %v, want %v", c.sorted, c.p, got, c.want)
		}
	}
}

func TestSQLiteRecords(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	recs := testRecords("req", 300)
	// Stored newest batch first, so that storage order is not time order.
	shuffled := slices.Concat(recs[200:], recs[100:200], recs[:100])
	appendInBatches(t, s, shuffled, 100)
	// Two records of the same nanosecond come in the order stored.
	same := recs[299].Time.Add(time.Hour)
	tie := []meter.Record{{Time: same, RequestID: "tie-z"}, {Time: same, RequestID: "tie-a"}}
	if err := s.AppendUsage(ctx, tie); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(recs), tie...)

	mid := recs[150].Time
	for _, q := range []UsageQuery{
		{},
		{TeamID: "team_a"},
		{KeyID: "key_b_1"},
		{TeamID: "team_a", KeyID: "key_a_2", Since: recs[40].Time},
		{Since: mid},
		{Until: mid},
		{Since: recs[10].Time, Until: mid, By: []string{ByModel}}, // By is ignored
		{TeamID: "team_none"},
	} {
		var want []meter.Record
		for _, r := range all {
			if (q.TeamID == "" || r.TeamID == q.TeamID) && (q.KeyID == "" || r.KeyID == q.KeyID) &&
				(q.Since.IsZero() || !r.Time.Before(q.Since)) && (q.Until.IsZero() || r.Time.Before(q.Until)) {
				want = append(want, r)
			}
		}
		var got []meter.Record
		err := s.Records(ctx, q, func(r meter.Record) error {
			if r.Time.Location() != time.UTC {
				t.Errorf("Records(%+v): record %s in %v, want UTC", q, r.RequestID, r.Time.Location())
			}
			got = append(got, r)
			return nil
		})
		if err != nil {
			t.Fatalf("Records(%+v): %v", q, err)
		}
		if diff := gocmp.Diff(got, want, equalTimes); diff != "" {
			t.Errorf("Records(%+v) (-got +want):\n%s", q, diff)
		}
	}

	// An error from fn stops the scan and comes back as is.
	stop := errors.New("stop")
	n := 0
	err := s.Records(ctx, UsageQuery{}, func(meter.Record) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("Records with fn failing at the 3rd record: %v after %d calls, want %v after 3", err, n, stop)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Records(canceled, UsageQuery{}, func(meter.Record) error { return nil }); err == nil {
		t.Error("Records(canceled context) = nil, want an error")
	}
}

func TestSQLiteUsageRejectsDimensions(t *testing.T) {
	s, _ := openTestSQLite(t)
	for _, by := range [][]string{
		{"model; DROP TABLE usage"},
		{"Model"},
		{ByDay, ByModel, ByDay},
		{""},
	} {
		if rows, err := s.Usage(t.Context(), UsageQuery{By: by}); err == nil {
			t.Errorf("Usage(By %q) = %v, nil; want an error", by, rows)
		}
	}
	if _, err := s.Spend(t.Context(), "", "", time.Time{}); err != nil {
		t.Errorf("ledger unusable after rejected queries: %v", err)
	}
}

// TestSQLiteConcurrentAppendAndRead appends from 8 goroutines through two
// stores on the same file (as a server and a CLI would be), while 4 others
// read. Nothing may fail with "database is locked": the writers of one
// store queue on its connection, those of two stores in busy_timeout.
func TestSQLiteConcurrentAppendAndRead(t *testing.T) {
	s1, path := openTestSQLite(t)
	s2, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ctx := t.Context()

	const writers, batches, size = 8, 25, 40
	var all []meter.Record
	perWriter := make([][]meter.Record, writers)
	for w := range perWriter {
		perWriter[w] = testRecords("w"+strconv.Itoa(w), batches*size)
		all = append(all, perWriter[w]...)
	}

	var (
		writing sync.WaitGroup
		reading sync.WaitGroup
		errs    = make(chan error, writers+4)
		done    = make(chan struct{})
	)
	for w := range writers {
		s := []*SQLite{s1, s2}[w%2]
		writing.Go(func() {
			for batch := range slices.Chunk(perWriter[w], size) {
				if err := s.AppendUsage(ctx, batch); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	var reads [4]int
	for r := range 4 {
		s := []*SQLite{s1, s2}[r%2]
		reading.Go(func() {
			var last meter.Nanos
			for {
				select {
				case <-done:
					return
				default:
				}
				spend, err := s.Spend(ctx, "team_a", "", time.Time{})
				if err == nil && r%2 == 0 {
					_, err = s.Usage(ctx, UsageQuery{By: []string{ByModel, ByDay}})
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				if spend < last {
					errs <- fmt.Errorf("reader %d: spend went down from %d to %d", r, last, spend)
					return
				}
				last = spend
				reads[r]++
			}
		})
	}
	writing.Wait()
	close(done)
	reading.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range []*SQLite{s1, s2} {
		got, err := s.Spend(ctx, "team_a", "", time.Time{})
		if want := refSpend(all, "team_a", "", time.Time{}); err != nil || got != want {
			t.Errorf("Spend(team_a) after concurrent appends = %d, %v; want %d", got, err, want)
		}
	}
	if slices.Min(reads[:]) == 0 {
		t.Errorf("reads per reader = %v: a reader never ran during the writes", reads)
	}
}

// BenchmarkSQLiteAppendUsage measures ledger writes in batches as the
// ledger writer sends them; records/s is the figure that matters. The
// batch=N cases scatter their records over every index, the worst case:
// request ids in no order, the times of each batch those of the last.
// time-ordered has times that grow and request ids like the gateway's,
// which grow with them (gateway.newRequestID), in batches of 256, 1024
// (the writer's default) and 4096.
func BenchmarkSQLiteAppendUsage(b *testing.B) {
	scattered := func(r *meter.Record, batch, i int) {
		r.RequestID = "bench-" + strconv.Itoa(i) + "-" + strconv.Itoa(batch)
	}
	timeOrdered := func(r *meter.Record, batch, i int) {
		r.Time = ledgerBase.Add(time.Duration(batch<<20+i) * time.Millisecond)
		r.RequestID = fmt.Sprintf("req_%016x%012x", r.Time.UnixNano(), i*7919)
	}
	for _, c := range []struct {
		name string
		size int
		id   func(r *meter.Record, batch, i int)
	}{{"batch=100", 100, scattered}, {"batch=1000", 1000, scattered}, {"time-ordered", 256, timeOrdered}, {"time-ordered-1024", 1024, timeOrdered}, {"time-ordered-4096", 4096, timeOrdered}} {
		b.Run(c.name, func(b *testing.B) {
			s, _ := openTestSQLite(b)
			batch := testRecords("bench", c.size)
			n := 0
			for b.Loop() {
				for i := range batch {
					c.id(&batch[i], n, i)
				}
				if err := s.AppendUsage(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n*c.size)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// seedLedger inserts n synthetic records in one statement, much faster than
// AppendUsage, for benchmarks at a realistic ledger size: a month, 20
// teams, 100 keys, 12 models, latencies up to 3 s.
func seedLedger(tb testing.TB, s *SQLite, n int) {
	tb.Helper()
	_, err := s.write.ExecContext(tb.Context(), `INSERT INTO usage (request_id, time, team_id, key_id,
		tier, served_model, provider, fallback, prompt_tokens, completion_tokens, cached_tokens,
		cost_nanos, latency_ns, status)
		WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ? - 1)
		SELECT printf('r%08d', i), ? + i * ? / ?, 'team_' || (i % 20), 'key_' || (i % 100),
		CASE i % 3 WHEN 0 THEN 'budget' WHEN 1 THEN 'standard' ELSE 'premium' END,
		'model_' || (i % 12), 'provider_' || (i % 4), (i % 9 = 0), 1000 + i % 500, 100 + i % 300,
		i % 50, 1000000 + i % 777, (i * 7919) % 3001 * 1000000,
		CASE WHEN i % 31 = 0 THEN 500 ELSE 200 END FROM c`,
		n, ledgerBase.UnixNano(), int64(30*24*time.Hour), n)
	if err == nil {
		_, err = s.write.ExecContext(tb.Context(), dailySpendAfterSQL, 0)
	}
	if err != nil {
		tb.Fatalf("seed %d records: %v", n, err)
	}
}

// BenchmarkSQLiteSpend is what a budget loads when its period starts or
// the gateway restarts: a key's and a team's spend over a month of 200k
// records (100 keys, 20 teams), from the daily totals, and as the plain
// SUM over the records that Spend did before them.
func BenchmarkSQLiteSpend(b *testing.B) {
	s, _ := openTestSQLite(b)
	seedLedger(b, s, 200_000)
	since := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ name, team, key string }{{"key", "", "key_7"}, {"team", "team_7", ""}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Spend(b.Context(), c.team, c.key, since); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/ledger-scan", func(b *testing.B) {
			where, args := usageFilter(c.team, c.key, since, time.Time{})
			for b.Loop() {
				var sum int64
				if err := s.read.QueryRowContext(b.Context(), `SELECT SUM(cost_nanos) FROM usage`+where, args...).Scan(&sum); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSQLiteUsage reports on a million records, grouped as the CLI
// is often asked. It backs the choice, in Usage, of grouping in Go.
func BenchmarkSQLiteUsage(b *testing.B) {
	s, _ := openTestSQLite(b)
	seedLedger(b, s, 1_000_000)
	for _, by := range [][]string{nil, {ByModel}, {ByTeam, ByDay}, {ByKey, ByModel, ByDay}} {
		b.Run("by="+strings.Join(by, ","), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Usage(b.Context(), UsageQuery{By: by}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("records", func(b *testing.B) {
		for b.Loop() {
			if err := s.Records(b.Context(), UsageQuery{}, func(meter.Record) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TotalSpend keeps agreeing with a full Spend as records arrive — late ones
// with early times and duplicates included — and starts over for a new since.
func TestSQLiteTotalSpend(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	since := ledgerBase.Add(2 * time.Hour) // a UTC midnight, as a month's start is
	recs := testRecords("a", 100)          // 4 minutes apart: some before since, most after
	late := testRecords("late", 3)         // times before since and after, stored after the others
	late[2].Time = since.Add(time.Minute)
	var stored []meter.Record // what the ledger holds, for refSpend
	check := func(what string, since time.Time) {
		t.Helper()
		got, err := s.TotalSpend(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		spend, err := s.Spend(ctx, "", "", since)
		if err != nil {
			t.Fatal(err)
		}
		want := refSpend(stored, "", "", since)
		if got != want || spend != want || (want == 0 && what != "empty") {
			t.Errorf("%s: TotalSpend = %d, Spend = %d, want %d", what, got, spend, want)
		}
	}
	check("empty", since)
	if err := s.AppendUsage(ctx, recs[:60]); err != nil {
		t.Fatal(err)
	}
	stored = recs[:60]
	check("first batch", since)
	if err := s.AppendUsage(ctx, append(recs[60:], late...)); err != nil {
		t.Fatal(err)
	}
	stored = append(slices.Clone(recs), late...)
	check("second batch with late records", since)
	if err := s.AppendUsage(ctx, recs[:10]); err != nil { // already stored: skipped
		t.Fatal(err)
	}
	check("replayed records", since)
	check("another since", since.Add(3*time.Hour))
	check("the first since again", since)
}

// BenchmarkSQLiteTotalSpend is the monthly-spend alert's query on a month of
// records: the first call reads the daily totals (First), each later one
// only the batch stored since (TotalSpend). Spend is the daily totals' sum
// every time.
func BenchmarkSQLiteTotalSpend(b *testing.B) {
	s, _ := openTestSQLite(b)
	seedLedger(b, s, 200_000)
	since := ledgerBase.Add(-time.Hour)
	if _, err := s.TotalSpend(b.Context(), since); err != nil {
		b.Fatal(err)
	}
	b.Run("First", func(b *testing.B) {
		for b.Loop() {
			s.tally.mu.Lock()
			s.tally.since = 0 // a new since: start over
			s.tally.mu.Unlock()
			if _, err := s.TotalSpend(b.Context(), since); err != nil {
				b.Fatal(err)
			}
		}
	})
	batch := testRecords("more", 100)
	b.Run("TotalSpend", func(b *testing.B) {
		n := 0
		for b.Loop() {
			b.StopTimer()
			for i := range batch {
				batch[i].RequestID = fmt.Sprintf("more-%d-%d", n, i)
			}
			if err := s.AppendUsage(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			n++
			b.StartTimer()
			if _, err := s.TotalSpend(b.Context(), since); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Spend", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Spend(b.Context(), "", "", since); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestMigrationFillsDailySpend upgrades a ledger written before spend_daily
// existed: the migration totals the records already stored.
func TestMigrationFillsDailySpend(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	db := openRawDB(t, path)
	first, err := fs.ReadFile(sqliteMigrations, "0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, fstest.MapFS{"0001_init.sql": {Data: first}}); err != nil {
		t.Fatal(err)
	}
	recs := testRecords("req", 256)
	recs[3].Time = time.Unix(-5, 0) // before 1970: day -1
	var args []any
	for i := range recs {
		r := &recs[i]
		args = append(args, r.RequestID, r.Time.UnixNano(), r.TeamID, r.KeyID, r.Endpoint, r.Tier,
			r.Criticality, r.Downgraded, r.RequestedModel, r.ServedModel, r.Provider, r.Deployment,
			r.Attempts, r.Fallback, r.PromptTokens, r.Completion, r.CachedTokens, int64(r.Cost),
			int64(r.Latency), int64(r.TTFB), r.Status, r.ErrorCode)
	}
	if _, err := db.ExecContext(ctx, insertUsageSQL(len(recs)), args...); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(queryStrings(t, s, `SELECT key_id FROM spend_daily`)); n == 0 {
		t.Fatal("spend_daily is empty after the migration")
	}
	assertLedger(t, s, int64(len(recs)), refSpend(recs, "", "", time.Time{}))
	for _, team := range []string{"team_a", "team_b"} {
		since := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
		if got, want := mustSpend(t, s, team, "", since), refSpend(recs, team, "", since); got != want {
			t.Errorf("Spend(%s since %v) = %d, want %d", team, since, got, want)
		}
	}
}

func mustSpend(t *testing.T, s *SQLite, team, key string, since time.Time) meter.Nanos {
	t.Helper()
	got, err := s.Spend(t.Context(), team, key, since)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
