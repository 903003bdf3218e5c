package alert

import (
	"math"
	"math/bits"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// forecastAfter is how much of a month must pass before the spend forecast
// is trusted: extrapolating from the first hours would turn one busy morning
// into a month-end alarm. One day is about 3% of a month.
const forecastAfter = 24 * time.Hour

// monthBounds returns the start of now's calendar month in UTC and the start
// of the next. Months are UTC months, as the ledger's times are UTC.
func monthBounds(now time.Time) (start, end time.Time) {
	y, m, _ := now.UTC().Date()
	start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// forecast projects spent, reached after elapsed of a month lasting total,
// to the month's end at the same rate: spent × total / elapsed, computed in
// 128 bits so no amount overflows on the way, saturating at the largest
// Nanos. Before any time has passed, or after the month, it is spent.
func forecast(spent meter.Nanos, elapsed, total time.Duration) meter.Nanos {
	if spent <= 0 || elapsed <= 0 || elapsed >= total {
		return spent
	}
	hi, lo := bits.Mul64(uint64(spent), uint64(total))
	if hi >= uint64(elapsed) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(elapsed))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return meter.Nanos(q)
}
