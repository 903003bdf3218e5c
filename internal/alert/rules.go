package alert

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
)

// Alert names. They are stable: dashboards and webhook receivers key on them.
const (
	// FallbackRateHigh: the share of requests in the window that fell back
	// is above config.Alerts.FallbackRate. Value and threshold are fractions.
	FallbackRateHigh = "fallback_rate_high"
	// LatencyP95High: the 95th percentile latency of the window's successful
	// requests is above config.Alerts.LatencyP95. Value and threshold are
	// milliseconds.
	LatencyP95High = "latency_p95_high"
	// ErrorRateHigh: the share of requests in the window with status 500 or
	// more is above config.Alerts.ErrorRate. Value and threshold are fractions.
	ErrorRateHigh = "error_rate_high"
	// MonthlySpendExceeded: the month's spend so far is at or above
	// config.Alerts.MonthlyBudget. Value and threshold are USD; label month.
	MonthlySpendExceeded = "monthly_spend_exceeded"
	// MonthlySpendForecast: the month's spend projected to its end at the
	// rate so far is at or above config.Alerts.MonthlyBudget. Value (the
	// forecast) and threshold are USD; label month.
	MonthlySpendForecast = "monthly_spend_forecast"
	// BreakerOpen: a deployment's breaker has been away from closed for
	// config.Alerts.BreakerOpen or longer. Value and threshold are seconds;
	// label deployment.
	BreakerOpen = "breaker_open"
)

// spendTimeout bounds one call of Options.Spend, so a stuck ledger delays
// one evaluation rather than all of them.
const spendTimeout = 5 * time.Second

// finding is one alert's condition as one evaluation saw it.
type finding struct {
	labels           map[string]string
	value, threshold float64
	holds            bool
	message          string
}

// verdict is one rule's answer for one evaluation.
type verdict struct {
	name string
	// known is false when the rule cannot judge this time (too few requests,
	// the ledger failed): its active alerts keep their state and do not
	// repeat.
	known bool
	// off says the rule is turned off: its active alerts resolve.
	off      bool
	findings []finding
	// gone explains why an active alert with no finding resolved.
	gone func(labels map[string]string) string
}

func unknown(name string) verdict { return verdict{name: name} }

func turnedOff(name string) verdict { return verdict{name: name, known: true, off: true} }

var noLabels = map[string]string{}

// rateVerdict judges a share of the window's requests against threshold.
func rateVerdict(name, what string, part, whole int, threshold float64, r *config.Alerts) verdict {
	switch {
	case threshold <= 0:
		return turnedOff(name)
	case whole < r.MinRequests:
		return unknown(name)
	}
	rate := float64(part) / float64(whole)
	f := finding{labels: noLabels, value: rate, threshold: threshold, holds: rate > threshold}
	verb := "is above"
	if !f.holds {
		verb = "is back at or under"
	}
	f.message = fmt.Sprintf("%s %s over the last %s (%d of %d requests) %s %s",
		what, percent(rate), duration(r.Window), part, whole, verb, percent(threshold))
	return verdict{name: name, known: true, findings: []finding{f}}
}

// latencyVerdict judges the window's p95 latency.
func latencyVerdict(st *stats, r *config.Alerts) verdict {
	if r.LatencyP95 <= 0 {
		return turnedOff(LatencyP95High)
	}
	p95, ok := st.p95()
	if !ok || len(st.latencies) < r.MinRequests {
		return unknown(LatencyP95High)
	}
	f := finding{labels: noLabels, value: ms(p95), threshold: ms(r.LatencyP95), holds: p95 > r.LatencyP95}
	verb := "is above"
	if !f.holds {
		verb = "is back at or under"
	}
	f.message = fmt.Sprintf("p95 latency %s over the last %s (%d successful requests) %s %s",
		p95, duration(r.Window), len(st.latencies), verb, r.LatencyP95)
	return verdict{name: LatencyP95High, known: true, findings: []finding{f}}
}

// spendVerdicts asks the ledger for the month's spend and judges it and its
// forecast against the monthly budget.
func (e *Engine) spendVerdicts(ctx context.Context, now time.Time, r *config.Alerts) (exceeded, projected verdict) {
	if e.spend == nil || r.MonthlyBudget <= 0 {
		return turnedOff(MonthlySpendExceeded), turnedOff(MonthlySpendForecast)
	}
	start, end := monthBounds(now)
	sctx, cancel := context.WithTimeout(ctx, spendTimeout)
	spent, err := e.spend(sctx, start)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "alert: monthly spend unavailable; spend alerts keep their state",
				slog.String("event", "alert_error"), slog.Any("error", err))
		}
		return unknown(MonthlySpendExceeded), unknown(MonthlySpendForecast)
	}
	month := start.Format("2006-01")
	labels := map[string]string{"month": month}
	gone := func(l map[string]string) string { return fmt.Sprintf("month %s ended", l["month"]) }
	budget := r.MonthlyBudget

	f := finding{labels: labels, value: spent.USD(), threshold: budget.USD(), holds: spent >= budget}
	if f.holds {
		f.message = fmt.Sprintf("spend in %s is %s, at or above the %s monthly budget", month, usd(spent), usd(budget))
	} else {
		f.message = fmt.Sprintf("spend in %s is %s, under the %s monthly budget", month, usd(spent), usd(budget))
	}
	exceeded = verdict{name: MonthlySpendExceeded, known: true, findings: []finding{f}, gone: gone}

	projected = verdict{name: MonthlySpendForecast, known: true, gone: gone}
	elapsed, total := now.Sub(start), end.Sub(start)
	if elapsed < forecastAfter {
		return exceeded, projected // no finding: too early in the month to project
	}
	fc := forecast(spent, elapsed, total)
	g := finding{labels: labels, value: fc.USD(), threshold: budget.USD(), holds: fc >= budget}
	verb := "at or above"
	if !g.holds {
		verb = "under"
	}
	g.message = fmt.Sprintf("spend in %s is on course for %s by month end (%s spent with %s of the month gone), %s the %s monthly budget",
		month, usd(fc), usd(spent), percent(float64(elapsed)/float64(total)), verb, usd(budget))
	projected.findings = []finding{g}
	return exceeded, projected
}

// breakerVerdict judges how long each deployment's breaker has been away
// from closed.
func (e *Engine) breakerVerdict(now time.Time, r *config.Alerts) verdict {
	if r.BreakerOpen <= 0 {
		return turnedOff(BreakerOpen)
	}
	e.breakerMu.Lock()
	open := maps.Clone(e.breakers)
	e.breakerMu.Unlock()
	v := verdict{name: BreakerOpen, known: true, gone: func(l map[string]string) string {
		return fmt.Sprintf("breaker of deployment %s closed", l["deployment"])
	}}
	for _, dep := range slices.Sorted(maps.Keys(open)) {
		d := max(now.Sub(open[dep]), 0)
		f := finding{labels: map[string]string{"deployment": dep}, value: d.Seconds(), threshold: r.BreakerOpen.Seconds(),
			holds: d >= r.BreakerOpen}
		f.message = fmt.Sprintf("breaker of deployment %s has not been closed for %s (alert after %s)",
			dep, d.Round(time.Second), duration(r.BreakerOpen))
		v.findings = append(v.findings, f)
	}
	return v
}

func percent(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func usd(n meter.Nanos) string { return fmt.Sprintf("$%.2f", n.USD()) }

// duration writes 5m rather than 5m0s.
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
