package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// defaultAlerts is every profile's alerts when the file sets none.
var defaultAlerts = Alerts{
	FallbackRate: 0.15, LatencyP95: 800 * time.Millisecond, MonthlyBudgetUSD: 5000, MonthlyBudget: 5000_000_000_000,
	ErrorRate: 0.05, BreakerOpen: time.Minute, Window: 5 * time.Minute, MinRequests: 20, Cooldown: 15 * time.Minute,
}

func TestAlertDefaults(t *testing.T) {
	c, _ := mustParse(t, base, noEnv)
	for _, name := range Profiles {
		if diff := cmp.Diff(c.Profiles[name].Alerts, defaultAlerts); diff != "" {
			t.Errorf("profile %s alerts (-got +want):\n%s", name, diff)
		}
	}
}

func TestAlertValues(t *testing.T) {
	src := base + `profiles:
  production:
    alerts:
      fallback_rate: 0.2
      error_rate: 0
      breaker_open: 0s
      window: 10m
      min_requests: 50
      cooldown: 1h
      webhooks:
        - url: https://hooks.example.com/x?token=${HOOK_TOKEN}
          format: slack
        - url: ${HOOK_URL}
`
	c, problems := mustParse(t, src, envOf(map[string]string{"HOOK_TOKEN": "s3cret", "HOOK_URL": "http://10.0.0.1:9000/alerts"}))
	if len(problems) != 0 {
		t.Errorf("problems:\n%s", joinProblems(problems))
	}
	want := defaultAlerts
	want.FallbackRate, want.ErrorRate, want.BreakerOpen = 0.2, 0, 0
	want.Window, want.MinRequests, want.Cooldown = 10*time.Minute, 50, time.Hour
	want.Webhooks = []Webhook{
		{URL: "https://hooks.example.com/x?token=s3cret", Format: WebhookSlack},
		{URL: "http://10.0.0.1:9000/alerts", Format: WebhookJSON},
	}
	if diff := cmp.Diff(c.Profiles["production"].Alerts, want); diff != "" {
		t.Errorf("production alerts (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(c.Profiles["dev"].Alerts, defaultAlerts); diff != "" {
		t.Errorf("dev alerts, untouched (-got +want):\n%s", diff)
	}
}

func TestAlertProblems(t *testing.T) {
	// Every case is base + "profiles:\n  dev:\n    alerts:\n" + its lines,
	// so the first of them is line 9.
	const head = base + "profiles:\n  dev:\n    alerts:\n"
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"negative window", "      window: -5m\n", 9, "profiles.dev.alerts.window: must be positive, got -5m0s"},
		{"zero window", "      window: 0s\n", 9, "alerts.window: must be positive"},
		{"window without unit", "      window: 300\n", 9, "alerts.window: 300 needs a unit"},
		{"zero cooldown", "      cooldown: 0s\n", 9, "alerts.cooldown: must be positive"},
		{"zero min_requests", "      min_requests: 0\n", 9, "alerts.min_requests: must be at least 1, got 0"},
		{"error_rate above 1", "      error_rate: 1.5\n", 9, "alerts.error_rate: must be between 0 and 1"},
		{"negative breaker_open", "      breaker_open: -1s\n", 9, "alerts.breaker_open: must not be negative"},
		{"negative latency_p95", "      latency_p95: -1ms\n", 9, "alerts.latency_p95: must not be negative"},
		{"unknown alert key", "      error_budget: 0.1\n", 9, `profiles.dev.alerts: unknown key "error_budget"`},
		{"webhooks not a list", "      webhooks: https://hooks.example.com/x\n", 9,
			"alerts.webhooks: want a list of {url, format} mappings, got a string"},
		{"webhook not a mapping", "      webhooks:\n        - https://hooks.example.com/x\n", 10,
			"alerts.webhooks[0]: want a mapping with url and format, got a string"},
		{"bad URL scheme", "      webhooks:\n        - url: ftp://hooks.example.com/x\n", 10,
			"alerts.webhooks[0].url: want an absolute http or https URL"},
		{"relative URL", "      webhooks:\n        - {url: /alerts}\n", 10, "alerts.webhooks[0].url: want an absolute http or https URL"},
		{"URL with fragment", "      webhooks:\n        - {url: 'https://h.example.com/x#y'}\n", 10, "alerts.webhooks[0].url: must not have a fragment"},
		{"missing URL", "      webhooks:\n        - {format: slack}\n", 10, "alerts.webhooks[0]: url is required"},
		{"bad format", "      webhooks:\n        - url: https://hooks.example.com/x\n          format: teams\n", 11,
			`alerts.webhooks[0].format: unknown format "teams" (want json or slack)`},
		{"unknown webhook key", "      webhooks:\n        - url: https://hooks.example.com/x\n          secret: x\n", 11,
			`alerts.webhooks[0]: unknown key "secret"`},
		{"second webhook bad", "      webhooks:\n        - url: https://a.example.com\n        - url: b.example.com\n", 11,
			"alerts.webhooks[1].url: want an absolute http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblem(t, head+tt.src, tt.line, Error, tt.msg) })
	}
}

// TestWebhookURLNotQuoted checks that a bad webhook URL is not echoed into
// the problem: it may carry a token.
func TestWebhookURLNotQuoted(t *testing.T) {
	src := base + "profiles:\n  dev:\n    alerts:\n      webhooks: [{url: 'ftp://h/SECRET'}]\n"
	_, problems, _ := Parse("t.yaml", []byte(src), noEnv)
	for _, p := range problems {
		if strings.Contains(p.Message, "SECRET") {
			t.Errorf("problem %q quotes the URL", p)
		}
	}
	if len(problems) == 0 {
		t.Error("no problem for an ftp webhook")
	}
}
