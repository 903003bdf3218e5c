package admin

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// dimensions are the groupings a usage report takes, in by=.
var dimensions = []string{store.ByTeam, store.ByKey, store.ByModel, store.ByTier, store.ByProvider, store.ByDay}

// usageReport serves GET /admin/usage?team=&key=&since=&until=&by=model,day.
// by takes any of the dimensions, in any order, each at most once. Every
// row and the totals carry counts, tokens, cost, the average and the
// nearest-rank p50/p95 latency, and the fallback rate (store.UsageRow). A
// team's key is scoped to its own team, as for listing keys.
func (h *Handler) usageReport(w http.ResponseWriter, r *http.Request, a Actor, _ string) error {
	q, err := query(r, "team", "key", "since", "until", "by")
	if err != nil {
		return err
	}
	ctx := r.Context()
	uq := store.UsageQuery{}
	if uq.TeamID, err = h.teamScope(ctx, a, q.Get("team")); err != nil {
		return err
	}
	if id := q.Get("key"); id != "" {
		k, _, err := h.st.Key(ctx, id)
		if err != nil {
			return keyErr(err, id)
		}
		switch {
		case !a.Master && k.TeamID != a.TeamID:
			return keyNotFound(id)
		case uq.TeamID != "" && k.TeamID != uq.TeamID:
			return invalidValue("key", "key %q belongs to team %q, not to %q", id, k.TeamID, q.Get("team"))
		}
		uq.KeyID = k.ID
	}
	rep := UsageReport{Object: "usage_report", TeamID: uq.TeamID, KeyID: uq.KeyID}
	if err := h.usageWindow(q, &uq, &rep); err != nil {
		return err
	}
	if uq.By, err = groupBy(q.Get("by")); err != nil {
		return err
	}
	rep.By = append([]string{}, uq.By...)
	if rep.Rows, err = h.usage.Usage(ctx, uq); err != nil {
		return err
	}
	if rep.Totals, err = h.totals(r, uq, rep.Rows); err != nil {
		return err
	}
	if rep.Rows == nil {
		rep.Rows = []store.UsageRow{}
	}
	for i := range rep.Rows {
		rep.Rows[i].CostUSD = rep.Rows[i].Cost.USD()
	}
	rep.Totals.CostUSD = rep.Totals.Cost.USD()
	return writeJSON(w, http.StatusOK, rep)
}

// usageWindow reads since and until (absolute, or durations before now).
func (h *Handler) usageWindow(q url.Values, uq *store.UsageQuery, rep *UsageReport) error {
	now := h.now()
	for _, p := range []struct {
		name string
		dst  *time.Time
		out  **time.Time
	}{{"since", &uq.Since, &rep.Since}, {"until", &uq.Until, &rep.Until}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := ParseTime(v, now)
		if err != nil {
			return invalidValue(p.name, "%s=%q: %v", p.name, v, err)
		}
		t = t.UTC()
		*p.dst, *p.out = t, &t
	}
	if !uq.Since.IsZero() && !uq.Until.IsZero() && !uq.Until.After(uq.Since) {
		return invalidValue("until", "until must be after since")
	}
	return nil
}

// groupBy reads by=model,day.
func groupBy(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var by []string
	for d := range strings.SplitSeq(s, ",") {
		d = strings.TrimSpace(d)
		switch {
		case !slices.Contains(dimensions, d):
			return nil, invalidValue("by", "by: %q is not one of %s", d, strings.Join(dimensions, ", "))
		case slices.Contains(by, d):
			return nil, invalidValue("by", "by: %q is given twice", d)
		}
		by = append(by, d)
	}
	return by, nil
}

// totals sums a report. Without grouping the one row is the total; with it,
// the ledger is asked again without grouping: the average latency and the
// fallback rate are then the store's own rather than averages of averages,
// and the percentiles are taken over every record — percentiles of groups
// cannot be combined at all.
func (h *Handler) totals(r *http.Request, uq store.UsageQuery, rows []store.UsageRow) (store.UsageRow, error) {
	if len(uq.By) > 0 {
		if len(rows) == 0 {
			return store.UsageRow{}, nil
		}
		uq.By = nil
		var err error
		if rows, err = h.usage.Usage(r.Context(), uq); err != nil {
			return store.UsageRow{}, err
		}
	}
	if len(rows) == 0 {
		return store.UsageRow{}, nil
	}
	t := rows[0]
	t.Group = nil
	return t, nil
}
