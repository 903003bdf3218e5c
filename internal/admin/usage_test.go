package admin_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// seedUsage writes a small ledger: search's key uses two models over two
// days (one error, one fallback), ads's key one model, and one old record
// 40 days back.
func seedUsage(t *testing.T, e *env, searchTeam, searchKey, adsTeam, adsKey string) {
	t.Helper()
	now := e.clock.now()
	day := 24 * time.Hour
	rec := func(i int, at time.Time, team, key, model string, status int, fallback bool) meter.Record {
		return meter.Record{Time: at, RequestID: fmt.Sprintf("req-%d", i), TeamID: team, KeyID: key,
			Endpoint: "/v1/chat/completions", Tier: "standard", ServedModel: model, Provider: "openai",
			Attempts: 1, Fallback: fallback, PromptTokens: 100, Completion: 10, Cost: 1_000_001,
			Latency: time.Duration(100*(i+1)) * time.Millisecond, Status: status}
	}
	recs := []meter.Record{
		rec(0, now.Add(-day-time.Hour), searchTeam, searchKey, "gpt-4o", 200, false),
		rec(1, now.Add(-time.Hour), searchTeam, searchKey, "gpt-4o", 200, true),
		rec(2, now.Add(-time.Hour), searchTeam, searchKey, "gpt-4o-mini", 429, false),
		rec(3, now.Add(-2*time.Hour), adsTeam, adsKey, "claude", 200, false),
		rec(4, now.Add(-40*day), searchTeam, searchKey, "gpt-4o", 200, false),
	}
	if err := e.st.AppendUsage(context.Background(), recs); err != nil {
		t.Fatalf("AppendUsage: %v", err)
	}
}

func TestUsage(t *testing.T) {
	e := newEnv(t)
	search, searchKey, searchSecret := e.seedTeam(t, "search")
	ads, adsKey, adsSecret := e.seedTeam(t, "ads")
	seedUsage(t, e, search.ID, searchKey.ID, ads.ID, adsKey.ID)

	rep := call[admin.UsageReport](t, e, masterKey, "GET", "/admin/usage?team=search&since=30d&by=model,day", nil, 200)
	today, yesterday := "2026-03-10", "2026-03-09"
	group := func(model, day string) map[string]string { return map[string]string{"model": model, "day": day} }
	wantRows := []store.UsageRow{
		{Group: group("gpt-4o", yesterday), Requests: 1, PromptTokens: 100, CompletionTokens: 10, Cost: 1_000_001, CostUSD: 0.001000001,
			AvgLatencyMS: 100, P50LatencyMS: 100, P95LatencyMS: 100},
		{Group: group("gpt-4o", today), Requests: 1, Fallbacks: 1, PromptTokens: 100, CompletionTokens: 10, Cost: 1_000_001, CostUSD: 0.001000001,
			AvgLatencyMS: 200, P50LatencyMS: 200, P95LatencyMS: 200, FallbackRate: 1},
		{Group: group("gpt-4o-mini", today), Requests: 1, Errors: 1, PromptTokens: 100, CompletionTokens: 10, Cost: 1_000_001, CostUSD: 0.001000001,
			AvgLatencyMS: 300, P50LatencyMS: 300, P95LatencyMS: 300},
	}
	// The totals are the store's over the three records (100, 200, 300 ms),
	// not combined from the rows: p50 is rank ceil(1.5) = 2 → 200 ms, p95
	// rank ceil(2.85) = 3 → 300 ms; one fallback in three requests.
	wantTotals := store.UsageRow{Requests: 3, Errors: 1, Fallbacks: 1, PromptTokens: 300, CompletionTokens: 30,
		Cost: 3_000_003, CostUSD: 0.003000003, AvgLatencyMS: 200, P50LatencyMS: 200, P95LatencyMS: 300, FallbackRate: 1.0 / 3}
	if diff := cmp.Diff(rep.Rows, wantRows); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(rep.Totals, wantTotals); diff != "" {
		t.Errorf("totals (-got +want):\n%s", diff)
	}
	since := e.clock.now().Add(-30 * 24 * time.Hour)
	if rep.TeamID != search.ID || rep.Since == nil || !rep.Since.Equal(since) || rep.Until != nil || !cmp.Equal(rep.By, []string{"model", "day"}) {
		t.Errorf("report header = team %q since %v until %v by %v", rep.TeamID, rep.Since, rep.Until, rep.By)
	}

	// No grouping: the one row is the total; everything, the old record too.
	all := call[admin.UsageReport](t, e, masterKey, "GET", "/admin/usage", nil, 200)
	if all.Totals.Requests != 5 || len(all.Rows) != 1 || all.Rows[0].Requests != 5 {
		t.Errorf("ungrouped report: rows %+v totals %+v, want 5 requests", all.Rows, all.Totals)
	}
	byTeam := call[admin.UsageReport](t, e, masterKey, "GET", "/admin/usage?by=team&until=2026-03-10T11:00:00Z", nil, 200)
	if len(byTeam.Rows) != 2 || byTeam.Totals.Requests != 3 {
		t.Errorf("by team until 11:00: rows %+v totals %+v", byTeam.Rows, byTeam.Totals)
	}
	byKey := call[admin.UsageReport](t, e, masterKey, "GET", "/admin/usage?key="+adsKey.ID, nil, 200)
	if byKey.Totals.Requests != 1 || byKey.KeyID != adsKey.ID {
		t.Errorf("key filter: %+v", byKey)
	}
	// Any combination of dimensions, in any order.
	six := call[admin.UsageReport](t, e, masterKey, "GET", "/admin/usage?since=30d&by=provider,day,tier,key,model,team", nil, 200)
	if len(six.Rows) != 4 || six.Totals.Requests != 4 || !cmp.Equal(six.By, []string{"provider", "day", "tier", "key", "model", "team"}) {
		t.Errorf("by all six: by %v, %d rows, totals %+v; want 4 rows of one request", six.By, len(six.Rows), six.Totals)
	}
	for _, r := range six.Rows {
		if len(r.Group) != 6 || r.Requests != 1 || r.P95LatencyMS != r.AvgLatencyMS {
			t.Errorf("by all six: row %+v, want six group values and one request", r)
		}
	}
	empty := call[admin.UsageReport](t, e, masterKey, "GET", "/admin/usage?since=2030-01-01&by=model", nil, 200)
	if empty.Rows == nil || len(empty.Rows) != 0 || empty.Totals.Requests != 0 {
		t.Errorf("empty window: rows %#v totals %+v, want [] and zero", empty.Rows, empty.Totals)
	}

	// A team's key is held to its own team.
	mine := call[admin.UsageReport](t, e, adsSecret, "GET", "/admin/usage?by=team", nil, 200)
	if len(mine.Rows) != 1 || mine.Rows[0].Group["team"] != ads.ID || mine.TeamID != ads.ID {
		t.Errorf("ads's key sees %+v", mine.Rows)
	}
	call[admin.UsageReport](t, e, adsSecret, "GET", "/admin/usage?team=ads", nil, 200)
	wantError(t, e, adsSecret, "GET", "/admin/usage?team=search", nil, 404, "team_not_found", "team")
	wantError(t, e, adsSecret, "GET", "/admin/usage?team="+search.ID, nil, 404, "team_not_found", "team")
	wantError(t, e, adsSecret, "GET", "/admin/usage?key="+searchKey.ID, nil, 404, "key_not_found", "key")
	wantError(t, e, searchSecret, "GET", "/admin/usage?team=nope", nil, 404, "team_not_found", "team")
}

func TestUsageValidation(t *testing.T) {
	e := newEnv(t)
	search, _, _ := e.seedTeam(t, "search")
	_, adsKey, _ := e.seedTeam(t, "ads")
	for _, c := range []struct {
		query       string
		status      int
		code, param string
	}{
		{"by=colour", 400, "invalid_value", "by"},
		{"by=model,model", 400, "invalid_value", "by"},
		{"by=model,", 400, "invalid_value", "by"},
		{"since=yesterday", 400, "invalid_value", "since"},
		{"until=-5d", 400, "invalid_value", "until"},
		{"since=1d&until=2d", 400, "invalid_value", "until"},
		{"group=model", 400, "unknown_parameter", "group"},
		{"team=nope", 404, "team_not_found", "team"},
		{"key=key_nope", 404, "key_not_found", "key"},
		{"team=" + search.ID + "&key=" + adsKey.ID, 400, "invalid_value", "key"},
	} {
		t.Run(c.query, func(t *testing.T) {
			wantError(t, e, masterKey, "GET", "/admin/usage?"+c.query, nil, c.status, c.code, c.param)
		})
	}
}
