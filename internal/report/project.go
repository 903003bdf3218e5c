package report

import (
	"math/big"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// Month is the length a projection scales to: 30 days.
const Month = 30 * 24 * time.Hour

// Projection is a simulation's totals scaled from its period to a Month.
type Projection struct {
	Period     time.Duration `json:"period_ns"`
	Actual     meter.Nanos   `json:"actual_nanos"`
	Simulated  meter.Nanos   `json:"simulated_nanos"`
	Difference meter.Nanos   `json:"difference_nanos"`
}

// Project scales r's re-priced totals from period, the length of the
// window the records were read from, to a Month. It assumes the window's
// traffic is typical: a period of a few days projects its weekdays or its
// weekend onto the whole month. A period of zero or less projects nothing.
func (r Result) Project(period time.Duration) Projection {
	p := Projection{Period: period}
	if period <= 0 {
		return p
	}
	p.Actual = scale(r.Total.Actual, Month, period)
	p.Simulated = scale(r.Total.Simulated, Month, period)
	p.Difference = p.Simulated - p.Actual
	return p
}

// scale returns n × num / den rounded half away from zero. The product
// overflows int64 from about $3.5 of n at a month of nanoseconds, so it is
// computed exactly in big integers.
func scale(n meter.Nanos, num, den time.Duration) meter.Nanos {
	x := new(big.Int).Mul(big.NewInt(int64(n)), big.NewInt(int64(num)))
	d := big.NewInt(int64(den))
	q, m := new(big.Int).QuoRem(x, d, new(big.Int))
	// |remainder| × 2 ≥ den rounds away from zero; QuoRem truncates.
	if m.Abs(m).Lsh(m, 1).Cmp(d) >= 0 {
		if x.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return meter.Nanos(q.Int64())
}
