package admin

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

// decimalRE is what an amount of dollars may look like: no sign, no
// thousands separators, an exponent of at most two digits (so "1e999999999"
// cannot make math/big allocate a giant power of ten).
var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,2})?$`)

// ParseUSD reads a non-negative decimal amount of dollars exactly into nanos:
// "12.5", "0.000000001", "1e3". More than nine decimals, or more than an
// int64 of nanos, is an error rather than a rounding.
func ParseUSD(s string) (meter.Nanos, error) {
	if len(s) > 64 || !decimalRE.MatchString(s) {
		return 0, fmt.Errorf("%q is not a decimal amount of dollars such as \"50\" or \"12.75\"", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("%q is not a decimal amount of dollars", s)
	}
	r.Mul(r, big.NewRat(1e9, 1))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q has more than 9 decimals (the smallest unit is $0.000000001)", s)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return meter.Nanos(n.Int64()), nil
}

// FormatUSD writes nanos as exact dollars with at least two decimals:
// "50.00", "0.000000001".
func FormatUSD(n meter.Nanos) string {
	sign, u := "", uint64(n)
	if n < 0 {
		sign, u = "-", uint64(-n) // math.MinInt64 wraps to itself, which uint64 reads right
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", u%1e9), "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return fmt.Sprintf("%s%d.%s", sign, u/1e9, frac)
}

// maxDays is the most days a time.Duration holds.
const maxDays = math.MaxInt64 / int64(24*time.Hour)

// ParseDuration reads a Go duration ("720h", "90m") or a whole number of
// days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.ParseInt(n, 10, 64)
		if err != nil || d < 0 || d > maxDays {
			return 0, fmt.Errorf("%q is not a duration such as \"30d\", \"720h\" or \"90m\"", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as \"30d\", \"720h\" or \"90m\"", s)
	}
	return d, nil
}

// FormatDuration writes d as Go does, without trailing zero units: "720h",
// "1h30m", "0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// ParseTime reads an instant: RFC 3339, a UTC date (2006-01-02), or a
// duration before now ("30d", "24h").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration before now (30d, 24h)")
	}
	return now.Add(-d), nil
}
