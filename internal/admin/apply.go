package admin

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// The values the API accepts for tiers, criticalities and budget periods.
var (
	tiers         = []string{"budget", "standard", "premium"}
	criticalities = []string{"critical", "standard", "background"}
	periods       = []string{tenant.PeriodDaily, tenant.PeriodWeekly, tenant.PeriodMonthly, tenant.PeriodNone}
)

// maxNameLen bounds team and key names.
const maxNameLen = 128

// checkName validates a team or key name: 1–128 characters, no control
// characters, not starting with the id prefix (so a name never reads as an
// id in /admin/teams/{id-or-name}).
func checkName(param, s, idPrefix string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return invalidValue(param, "%s must not be empty", param)
	case len(s) > maxNameLen:
		return invalidValue(param, "%s is longer than %d bytes", param, maxNameLen)
	case strings.ContainsFunc(s, unicode.IsControl):
		return invalidValue(param, "%s must not contain control characters", param)
	case strings.HasPrefix(s, idPrefix):
		return invalidValue(param, "%s must not start with %q, which ids use", param, idPrefix)
	}
	return nil
}

// applyLimits patches dst: each given field replaces its value.
func applyLimits(l *LimitsRequest, dst *tenant.Limits, param string) error {
	if l == nil {
		return nil
	}
	if l.RPM != nil {
		if *l.RPM < 0 {
			return invalidValue(param+".rpm", "%s.rpm must be 0 (unlimited) or more", param)
		}
		dst.RPM = *l.RPM
	}
	if l.TPM != nil {
		if *l.TPM < 0 {
			return invalidValue(param+".tpm", "%s.tpm must be 0 (unlimited) or more", param)
		}
		dst.TPM = *l.TPM
	}
	return nil
}

// applyBudget returns cur patched by o: absent keeps cur, null removes it,
// an object sets the fields it has over cur's (a new budget needs a limit;
// its period defaults to monthly).
func applyBudget(o Optional[BudgetRequest], cur *tenant.Budget, param string) (*tenant.Budget, error) {
	if !o.Set {
		return cur, nil
	}
	req := o.Value
	if req == nil {
		return nil, nil
	}
	b := tenant.Budget{Period: tenant.PeriodMonthly}
	if cur != nil {
		b = *cur
	}
	limit, err := budgetLimit(req, param)
	if err != nil {
		return nil, err
	}
	switch {
	case limit != nil:
		b.Limit = *limit
	case cur == nil:
		return nil, missing(param + ".limit_usd")
	}
	if req.Period != nil {
		if !slices.Contains(periods, *req.Period) {
			return nil, invalidValue(param+".period", "%s.period must be one of %s, not %q", param, strings.Join(periods, ", "), *req.Period)
		}
		b.Period = *req.Period
	}
	if err := percent(req.SoftPercent, &b.SoftPercent, param+".soft_percent"); err != nil {
		return nil, err
	}
	if err := percent(req.DowngradePercent, &b.DowngradePercent, param+".downgrade_percent"); err != nil {
		return nil, err
	}
	return &b, nil
}

// budgetLimit reads limit_usd or limit_nanos; nil when neither is given.
func budgetLimit(req *BudgetRequest, param string) (*meter.Nanos, error) {
	var limit *meter.Nanos
	if req.LimitUSD != nil {
		n, err := ParseUSD(string(*req.LimitUSD))
		if err != nil {
			return nil, invalidValue(param+".limit_usd", "%s.limit_usd: %v", param, err)
		}
		limit = &n
	}
	if req.LimitNanos != nil {
		n := meter.Nanos(*req.LimitNanos)
		if limit != nil && *limit != n {
			return nil, invalidValue(param+".limit_nanos", "%s.limit_nanos (%d) and limit_usd (%s) disagree; send one", param, n, *req.LimitUSD)
		}
		limit = &n
	}
	if limit != nil && *limit <= 0 {
		field := param + ".limit_usd"
		if req.LimitUSD == nil {
			field = param + ".limit_nanos"
		}
		return nil, invalidValue(field, "%s must be more than 0; send \"%s\": null to remove the budget", field, param)
	}
	return limit, nil
}

func percent(p *int, dst *int, param string) error {
	if p == nil {
		return nil
	}
	if *p < 0 || *p > 100 {
		return invalidValue(param, "%s must be between 0 and 100, not %d", param, *p)
	}
	*dst = *p
	return nil
}

// durationField parses a non-negative duration field.
func durationField(s, param string) (time.Duration, error) {
	d, err := ParseDuration(s)
	if err != nil {
		return 0, invalidValue(param, "%s: %v", param, err)
	}
	if d < 0 {
		return 0, invalidValue(param, "%s must not be negative", param)
	}
	return d, nil
}

// envRE is a portable environment variable name.
var envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkProviderKeys(pks []tenant.ProviderKey) error {
	for i, pk := range pks {
		param := fmt.Sprintf("provider_keys[%d]", i)
		switch {
		case pk.Provider == "":
			return missing(param + ".provider")
		case pk.Tier != "" && !slices.Contains(tiers, pk.Tier):
			return invalidValue(param+".tier", "%s.tier must be one of %s, not %q", param, strings.Join(tiers, ", "), pk.Tier)
		case !envRE.MatchString(pk.Env):
			return invalidValue(param+".env", "%s.env must name an environment variable (letters, digits, _), not %q", param, pk.Env)
		}
	}
	return nil
}

// checkList validates a list of models or tiers: no empty entries, and when
// allowed is given, each one of them.
func checkList(vals []string, param string, allowed []string) error {
	for _, v := range vals {
		if v == "" {
			return invalidValue(param, "%s must not contain empty names", param)
		}
		if allowed != nil && !slices.Contains(allowed, v) {
			return invalidValue(param, "%s: %q is not one of %s", param, v, strings.Join(allowed, ", "))
		}
	}
	return nil
}
