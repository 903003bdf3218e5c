package config

import (
	"strings"
	"testing"
	"time"
)

func TestExpandEnv(t *testing.T) {
	env := envOf(map[string]string{"KEY": "sk-1", "EMPTY": "", "PORT": "9090"})
	tests := []struct {
		name, in, want string
		wantErr        string // substring of the only error; "" = none
	}{
		{name: "no reference", in: "plain $text", want: "plain $text"},
		{name: "set", in: "${KEY}", want: "sk-1"},
		{name: "embedded", in: "Bearer ${KEY}!", want: "Bearer sk-1!"},
		{name: "two", in: "${KEY}:${PORT}", want: "sk-1:9090"},
		{name: "default unused", in: "${KEY:-x}", want: "sk-1"},
		{name: "default for unset", in: "${NOPE:-fallback}", want: "fallback"},
		{name: "default for empty", in: "${EMPTY:-fallback}", want: "fallback"},
		{name: "empty default", in: "${NOPE:-}", want: ""},
		{name: "default with colon", in: "${NOPE:-127.0.0.1:8080}", want: "127.0.0.1:8080"},
		{name: "set but empty", in: "a${EMPTY}b", want: "ab"},
		{name: "escaped", in: "$${KEY}", want: "${KEY}"},
		{name: "missing", in: "x ${NOPE} y", want: "x ${NOPE} y", wantErr: "environment variable NOPE is not set"},
		{name: "unterminated", in: "${KEY", want: "${KEY", wantErr: "unterminated"},
		{name: "empty name", in: "${}", want: "${}", wantErr: "bad variable reference ${}"},
		{name: "bad name", in: "${A-B}", want: "${A-B}", wantErr: "bad variable reference ${A-B}"},
		{name: "nested", in: "${NOPE:-${KEY}}", want: "${NOPE:-${KEY}}", wantErr: "nested reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := expandEnv(tt.in, env)
			if got != tt.want {
				t.Errorf("expandEnv(%q) = %q, want %q", tt.in, got, tt.want)
			}
			switch {
			case tt.wantErr == "" && errs != nil:
				t.Errorf("expandEnv(%q) errors %q, want none", tt.in, errs)
			case tt.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0], tt.wantErr)):
				t.Errorf("expandEnv(%q) errors %q, want one containing %q", tt.in, errs, tt.wantErr)
			}
		})
	}
}

// TestEnvBeforeTypes checks that expansion happens before type decoding, so
// numbers and durations can come from the environment, and that keys are not
// expanded.
func TestEnvBeforeTypes(t *testing.T) {
	src := base + `server:
  listen: ${LISTEN:-0.0.0.0:8080}
  max_body_bytes: ${BODY}
profiles:
  production:
    max_retries: ${RETRIES}
    request_timeout: ${TIMEOUT:-45s}
    alerts:
      monthly_budget_usd: ${BUDGET}
`
	c, problems := mustParse(t, src, envOf(map[string]string{"BODY": "2MiB", "RETRIES": "5", "BUDGET": "12.5"}))
	if len(problems) != 0 {
		t.Errorf("problems:\n%s", joinProblems(problems))
	}
	if c.Server.Listen != "0.0.0.0:8080" || c.Server.MaxBodyBytes != 2<<20 {
		t.Errorf("Server = %+v, want listen 0.0.0.0:8080 and 2 MiB", c.Server)
	}
	p, _ := c.Profile("production")
	if p.MaxRetries != 5 || p.RequestTimeout != 45*time.Second || p.Alerts.MonthlyBudget != 12_500_000_000 {
		t.Errorf("production = %+v, want 5 retries, 45s, $12.5 budget", *p)
	}
}

// TestEnvErrors checks the line and wording of expansion failures, and that a
// failed expansion is not reported again as a type error.
func TestEnvErrors(t *testing.T) {
	src := base + "profiles:\n  dev:\n    max_retries: ${RETRIES}\n    request_timeout: ${T}\n"
	_, problems, err := Parse("t.yaml", []byte(src), envOf(map[string]string{"T": "soon"}))
	if err == nil {
		t.Fatal("Parse: want an error")
	}
	if !findProblem(problems, 8, Error, "environment variable RETRIES is not set (write ${RETRIES:-default} to give a default)") {
		t.Errorf("no missing-variable error on line 8; got:\n%s", joinProblems(problems))
	}
	if !findProblem(problems, 9, Error, `want a duration such as "30s" or "800ms", got "soon"`) {
		t.Errorf("no duration error on line 9 for an expanded value; got:\n%s", joinProblems(problems))
	}
	if len(problems) != 2 {
		t.Errorf("want exactly 2 problems, got:\n%s", joinProblems(problems))
	}
}

// TestEnvOptionalKeys checks that keys and headers expanding to "" count as
// absent, so one file serves with and without an optional secret.
func TestEnvOptionalKeys(t *testing.T) {
	src := `providers:
  p:
    kind: anthropic
    api_keys: ["${K1}", "${K2:-}"]   # in [ ] and { }, quote references
    headers:
      X-Org: ${ORG:-}
      x-team: ${TEAM}
models:
  m: {provider: p, price: 0}
tiers: {budget: [m], standard: [m], premium: [m]}
`
	c, _ := mustParse(t, src, envOf(map[string]string{"K1": "a", "TEAM": "t"}))
	p := c.Providers["p"]
	if strings.Join(p.APIKeys, ",") != "a" {
		t.Errorf("APIKeys = %q, want [a]", p.APIKeys)
	}
	if len(p.Headers) != 1 || p.Headers["X-Team"] != "t" {
		t.Errorf("Headers = %q, want only X-Team: t", p.Headers)
	}
}

// TestNilLookup checks that a nil lookup means "nothing is set".
func TestNilLookup(t *testing.T) {
	_, problems, err := Parse("t.yaml", []byte(base+"server: {listen: '${L}'}\n"), nil)
	if err == nil || !findProblem(problems, 6, Error, "L is not set") {
		t.Errorf("Parse with nil lookup: err %v, problems:\n%s", err, joinProblems(problems))
	}
}
