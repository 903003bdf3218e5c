package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

const insertUsage = `INSERT INTO usage (request_id, time, team_id, key_id, endpoint, tier,
	criticality, downgraded, requested_model, served_model, provider, deployment, attempts,
	fallback, prompt_tokens, completion_tokens, cached_tokens, cost_nanos, latency_ns, ttfb_ns,
	status, error_code)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (request_id) DO NOTHING`

// AppendUsage writes recs in one transaction, skipping records whose
// RequestID is already stored. Every record needs a RequestID and a Time
// between 1678 and 2262 (unix nanoseconds); otherwise nothing is written.
func (s *SQLite) AppendUsage(ctx context.Context, recs []meter.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		if err := checkRecord(&recs[i]); err != nil {
			return fmt.Errorf("append usage: record %d: %w", i, err)
		}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, insertUsage)
		if err != nil {
			return fmt.Errorf("append usage: %w", err)
		}
		defer stmt.Close()
		for i := range recs {
			r := &recs[i]
			_, err := stmt.ExecContext(ctx, r.RequestID, r.Time.UnixNano(), r.TeamID, r.KeyID,
				r.Endpoint, r.Tier, r.Criticality, boolInt(r.Downgraded), r.RequestedModel,
				r.ServedModel, r.Provider, r.Deployment, r.Attempts, boolInt(r.Fallback),
				r.PromptTokens, r.Completion, r.CachedTokens, int64(r.Cost), int64(r.Latency),
				int64(r.TTFB), r.Status, r.ErrorCode)
			if err != nil {
				return fmt.Errorf("append usage: request %q: %w", r.RequestID, err)
			}
		}
		return nil
	})
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

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Spend sums the cost of the records at or after since of team teamID, of
// key keyID, or of both when both are given. An empty ID and a zero since
// do not filter, so Spend(ctx, "", "", time.Time{}) is the ledger's total.
func (s *SQLite) Spend(ctx context.Context, teamID, keyID string, since time.Time) (meter.Nanos, error) {
	where, args := usageFilter(teamID, keyID, since, time.Time{})
	var sum int64
	err := s.read.QueryRowContext(ctx, `SELECT COALESCE(SUM(cost_nanos), 0) FROM usage`+where, args...).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("spend of team %q key %q: %w", teamID, keyID, err)
	}
	return meter.Nanos(sum), nil
}

// usageDimensions maps each grouping dimension to a fixed column
// expression; only these strings ever reach the SQL text.
var usageDimensions = map[string]string{
	ByTeam:     "team_id",
	ByKey:      "key_id",
	ByModel:    "served_model",
	ByTier:     "tier",
	ByProvider: "provider",
	ByDay:      "strftime('%Y-%m-%d', time / 1000000000, 'unixepoch')",
}

// Usage aggregates the ledger records q selects into one row per group of
// q.By values, ordered by those values; with no By it returns one total row.
// An unknown or repeated dimension is an error.
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
	var out []UsageRow
	group := make([]string, len(q.By))
	for rows.Next() {
		var (
			r          UsageRow
			cost       int64
			avgLatency float64
		)
		dest := make([]any, 0, len(group)+9)
		for i := range group {
			dest = append(dest, &group[i])
		}
		dest = append(dest, &r.Requests, &r.Errors, &r.Fallbacks, &r.PromptTokens,
			&r.CompletionTokens, &r.CachedTokens, &cost, &avgLatency)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
		if len(q.By) > 0 {
			r.Group = make(map[string]string, len(q.By))
			for i, dim := range q.By {
				r.Group[dim] = group[i]
			}
		}
		r.Cost = meter.Nanos(cost)
		r.CostUSD = r.Cost.USD()
		r.AvgLatencyMS = avgLatency / float64(time.Millisecond)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return out, nil
}

// usageSQL builds the query for q. Dimension names select fixed column
// expressions; every value is a parameter.
func usageSQL(q UsageQuery) (string, []any, error) {
	var b strings.Builder
	b.WriteString("SELECT ")
	seen := make(map[string]bool, len(q.By))
	for _, dim := range q.By {
		expr, ok := usageDimensions[dim]
		if !ok {
			return "", nil, fmt.Errorf("usage: unknown dimension %q (want team, key, model, tier, provider or day)", dim)
		}
		if seen[dim] {
			return "", nil, fmt.Errorf("usage: dimension %q given twice", dim)
		}
		seen[dim] = true
		b.WriteString(expr)
		b.WriteString(", ")
	}
	b.WriteString(`COUNT(*),
		COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(fallback), 0),
		COALESCE(SUM(prompt_tokens), 0),
		COALESCE(SUM(completion_tokens), 0),
		COALESCE(SUM(cached_tokens), 0),
		COALESCE(SUM(cost_nanos), 0),
		COALESCE(AVG(latency_ns), 0)
		FROM usage`)
	where, args := usageFilter(q.TeamID, q.KeyID, q.Since, q.Until)
	b.WriteString(where)
	if len(q.By) > 0 {
		positions := make([]string, len(q.By))
		for i := range positions {
			positions[i] = fmt.Sprint(i + 1)
		}
		list := strings.Join(positions, ", ")
		b.WriteString(" GROUP BY " + list + " ORDER BY " + list)
	}
	return b.String(), args, nil
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
