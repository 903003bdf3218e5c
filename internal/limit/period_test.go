package limit

import (
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/tenant"
)

func TestPeriodStart(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		period string
		t      time.Time
		want   time.Time
	}{
		{tenant.PeriodDaily, date(2026, 3, 2, 0, 0, 0), date(2026, 3, 2, 0, 0, 0)},
		{tenant.PeriodDaily, date(2026, 3, 2, 23, 59, 59), date(2026, 3, 2, 0, 0, 0)},
		{tenant.PeriodDaily, time.Date(2026, 3, 2, 0, 30, 0, 0, paris), date(2026, 3, 1, 0, 0, 0)}, // 23:30 UTC the day before
		{tenant.PeriodWeekly, date(2026, 3, 2, 0, 0, 0), date(2026, 3, 2, 0, 0, 0)},                // a Monday
		{tenant.PeriodWeekly, date(2026, 3, 8, 23, 59, 59), date(2026, 3, 2, 0, 0, 0)},             // the Sunday after
		{tenant.PeriodWeekly, date(2026, 3, 1, 12, 0, 0), date(2026, 2, 23, 0, 0, 0)},              // a Sunday, across a month
		{tenant.PeriodWeekly, date(2026, 1, 1, 12, 0, 0), date(2025, 12, 29, 0, 0, 0)},             // across a year
		{tenant.PeriodWeekly, date(2024, 3, 2, 12, 0, 0), date(2024, 2, 26, 0, 0, 0)},              // across a leap day
		{tenant.PeriodMonthly, date(2026, 1, 31, 23, 59, 59), date(2026, 1, 1, 0, 0, 0)},
		{tenant.PeriodMonthly, date(2024, 2, 29, 12, 0, 0), date(2024, 2, 1, 0, 0, 0)},
		{tenant.PeriodMonthly, date(2026, 3, 1, 0, 0, 0), date(2026, 3, 1, 0, 0, 0)},
		{tenant.PeriodNone, date(2026, 3, 1, 0, 0, 0), time.Time{}},
		{"yearly", date(2026, 3, 1, 0, 0, 0), time.Time{}},
	} {
		if got := PeriodStart(tc.period, tc.t); !got.Equal(tc.want) || got.Location() != tc.want.Location() {
			t.Errorf("PeriodStart(%q, %v) = %v, want %v", tc.period, tc.t, got, tc.want)
		}
	}
}

func TestPeriodEnd(t *testing.T) {
	for _, tc := range []struct {
		period      string
		start, want time.Time
	}{
		{tenant.PeriodDaily, date(2026, 2, 28, 0, 0, 0), date(2026, 3, 1, 0, 0, 0)},
		{tenant.PeriodWeekly, date(2025, 12, 29, 0, 0, 0), date(2026, 1, 5, 0, 0, 0)},
		{tenant.PeriodMonthly, date(2026, 1, 1, 0, 0, 0), date(2026, 2, 1, 0, 0, 0)},
		{tenant.PeriodMonthly, date(2024, 2, 1, 0, 0, 0), date(2024, 3, 1, 0, 0, 0)},
		{tenant.PeriodMonthly, date(2025, 12, 1, 0, 0, 0), date(2026, 1, 1, 0, 0, 0)},
		{tenant.PeriodNone, time.Time{}, time.Time{}},
	} {
		if got := periodEnd(tc.period, tc.start); !got.Equal(tc.want) {
			t.Errorf("periodEnd(%q, %v) = %v, want %v", tc.period, tc.start, got, tc.want)
		}
		// The end is the start of the next period.
		if tc.period != tenant.PeriodNone && !PeriodStart(tc.period, tc.want).Equal(tc.want) {
			t.Errorf("periodEnd(%q, %v) = %v is no period start", tc.period, tc.start, tc.want)
		}
	}
}
