package limit

import (
	"fmt"
	"time"

	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// PeriodStart returns the start of the budget period containing t, in UTC:
// daily at 00:00, weekly on Monday at 00:00, monthly on the 1st at 00:00.
// For tenant.PeriodNone (one budget for all time) and any unknown period it
// returns the zero time.
func PeriodStart(period string, t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	switch period {
	case tenant.PeriodDaily:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case tenant.PeriodWeekly:
		back := (int(t.UTC().Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case tenant.PeriodMonthly:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// periodEnd returns the start of the period after the one starting at
// start; the zero time (never) for tenant.PeriodNone.
func periodEnd(period string, start time.Time) time.Time {
	switch period {
	case tenant.PeriodDaily:
		return start.AddDate(0, 0, 1)
	case tenant.PeriodWeekly:
		return start.AddDate(0, 0, 7)
	case tenant.PeriodMonthly:
		return start.AddDate(0, 1, 0) // from the 1st, never normalised
	}
	return time.Time{}
}

func checkPeriod(period string) error {
	switch period {
	case tenant.PeriodDaily, tenant.PeriodWeekly, tenant.PeriodMonthly, tenant.PeriodNone:
		return nil
	}
	return fmt.Errorf("budget period %q: want daily, weekly, monthly or none", period)
}
