package store

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

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
		row     UsageRow
		latency time.Duration
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
	}
	if len(q.By) == 0 && len(groups) == 0 {
		return []UsageRow{{}}
	}
	var rows []UsageRow
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		a := groups[id]
		a.row.CostUSD = a.row.Cost.USD()
		a.row.AvgLatencyMS = float64(a.latency) / float64(a.row.Requests) / 1e6
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
		rows int // expected number of rows, as a check on the reference
	}{
		{"total", UsageQuery{}, 1},
		{"by model", UsageQuery{By: []string{ByModel}}, 3},
		{"by key and day", UsageQuery{By: []string{ByKey, ByDay}}, 9 * 4},
		{"by day and key", UsageQuery{By: []string{ByDay, ByKey}}, 4 * 9},
		{"by team, tier, provider", UsageQuery{By: []string{ByTeam, ByTier, ByProvider}}, 3 * 3 * 3},
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
			if len(want) != tt.rows {
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
// ledger writer sends them; records/s is the figure that matters.
func BenchmarkSQLiteAppendUsage(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			s, _ := openTestSQLite(b)
			template := testRecords("bench", size)
			batch := slices.Clone(template)
			n := 0
			for b.Loop() {
				for i := range batch {
					batch[i].RequestID = template[i].RequestID + "-" + strconv.Itoa(n)
				}
				if err := s.AppendUsage(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n*size)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
