package config

import (
	"strings"
	"testing"
)

// noEnv is a lookup with no variables set.
func noEnv(string) (string, bool) { return "", false }

// envOf returns a lookup over vars.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// mustParse parses src and fails the test on any error.
func mustParse(t *testing.T, src string, lookup func(string) (string, bool)) (*Config, []Problem) {
	t.Helper()
	c, problems, err := Parse("t.yaml", []byte(src), lookup)
	if err != nil {
		t.Fatalf("Parse(%q) error: %v\nproblems:\n%s", src, err, joinProblems(problems))
	}
	if c == nil {
		t.Fatalf("Parse(%q) = nil Config and nil error", src)
	}
	return c, problems
}

func joinProblems(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// findProblem reports whether ps holds a problem on line with severity sev
// whose message contains substr.
func findProblem(ps []Problem, line int, sev Severity, substr string) bool {
	for _, p := range ps {
		if p.Line == line && p.Severity == sev && strings.Contains(p.Message, substr) {
			return true
		}
	}
	return false
}

// base is a valid config of five lines; cases append to it from line 6,
// either more models (indented) or another section.
const base = `providers:
  p: {kind: mock}
tiers: {budget: [m], standard: [m], premium: [m]}
models:
  m: {provider: p, price: 0}
`
