package report

import (
	"slices"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

func TestProject(t *testing.T) {
	cfg := parse(t, "other.yaml", otherYAML)
	res, err := Simulate(slices.Values(ledger()), cfg, profile(t, cfg, "production"))
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for _, c := range []struct {
		period                        time.Duration
		actual, simulated, difference meter.Nanos
	}{
		// Ten days × 3 = a month: 2_064_300_000 × 3 = 6_192_900_000 and
		// 10_042_500_000 × 3 = 30_127_500_000; difference 23_934_600_000.
		{10 * day, 6_192_900_000, 30_127_500_000, 23_934_600_000},
		// A month is itself.
		{Month, 2_064_300_000, 10_042_500_000, 7_978_200_000},
		// Seven days × 30/7: 2_064_300_000 × 30 / 7 = 8_847_000_000 exactly;
		// 10_042_500_000 × 30 / 7 = 43_039_285_714.28… → 43_039_285_714.
		{7 * day, 8_847_000_000, 43_039_285_714, 43_039_285_714 - 8_847_000_000},
		{0, 0, 0, 0},
		{-day, 0, 0, 0},
	} {
		p := res.Project(c.period)
		want := Projection{Period: c.period, Actual: c.actual, Simulated: c.simulated, Difference: c.difference}
		if p != want {
			t.Errorf("Project(%v) = %+v, want %+v", c.period, p, want)
		}
	}
}

func TestScale(t *testing.T) {
	for _, c := range []struct {
		n        meter.Nanos
		num, den time.Duration
		want     meter.Nanos
	}{
		{1, 1, 2, 1}, // 0.5 rounds away from zero
		{-1, 1, 2, -1},
		{1, 1, 3, 0}, // 0.33
		{2, 1, 3, 1}, // 0.67
		{-2, 1, 3, -1},
		{-4, 1, 3, -1}, // -1.33
		{0, Month, time.Hour, 0},
		// $5,000 over a day is $150,000 a month: 5e12 × 2.592e15 overflows
		// int64 on the way.
		{5_000_000_000_000, Month, 24 * time.Hour, 150_000_000_000_000},
	} {
		if got := scale(c.n, c.num, c.den); got != c.want {
			t.Errorf("scale(%d, %d, %d) = %d, want %d", c.n, c.num, c.den, got, c.want)
		}
	}
}
