package config

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// compareRegexps makes cmp compare compiled patterns by their source.
var compareRegexps = cmp.Comparer(func(a, b *regexp.Regexp) bool { return a.String() == b.String() })

// TestPayloadLogging checks the decoded section: defaults, sizes with units,
// the path taken beside the config file, and the compiled patterns.
func TestPayloadLogging(t *testing.T) {
	dir := filepath.Join("etc", "tollgate")
	tests := []struct {
		name string
		src  string
		want PayloadLogging
	}{
		{"absent", base, PayloadLogging{MaxBytes: 64 << 10, MaxFileBytes: 100 << 20}},
		{"empty", base + "payload_logging:\n", PayloadLogging{MaxBytes: 64 << 10, MaxFileBytes: 100 << 20}},
		{"path without teams is off", base + "payload_logging: {path: p.jsonl, teams: []}\n",
			PayloadLogging{Path: filepath.Join(dir, "p.jsonl"), MaxBytes: 64 << 10, MaxFileBytes: 100 << 20}},
		{"defaults", base + "payload_logging:\n  teams: [search]\n  path: payloads.jsonl\n",
			PayloadLogging{Teams: []string{"search"}, Path: filepath.Join(dir, "payloads.jsonl"),
				MaxBytes: 64 << 10, MaxFileBytes: 100 << 20}},
		{"everything", base + `payload_logging:
  teams: [search, team_0123456789abcdef0123]
  path: /var/log/tollgate/payloads.jsonl
  max_bytes: 4KiB
  max_file_bytes: 1MB
  redact:
    - 'ssn-\d{3}-\d{2}-\d{4}'
    - '(?i)internal-[a-z]+'
`, PayloadLogging{Teams: []string{"search", "team_0123456789abcdef0123"}, Path: "/var/log/tollgate/payloads.jsonl",
			MaxBytes: 4096, MaxFileBytes: 1_000_000,
			Redact: []*regexp.Regexp{regexp.MustCompile(`ssn-\d{3}-\d{2}-\d{4}`), regexp.MustCompile(`(?i)internal-[a-z]+`)}}},
		{"one team and one pattern as strings", base + "payload_logging: {teams: search, path: p, redact: 'x+'}\n",
			PayloadLogging{Teams: []string{"search"}, Path: filepath.Join(dir, "p"), MaxBytes: 64 << 10, MaxFileBytes: 100 << 20,
				Redact: []*regexp.Regexp{regexp.MustCompile(`x+`)}}},
		{"environment", base + "payload_logging:\n  teams: ['${TEAM}']\n  path: p\n  max_bytes: ${MAX:-1024}\n",
			PayloadLogging{Teams: []string{"ops"}, Path: filepath.Join(dir, "p"), MaxBytes: 1024, MaxFileBytes: 100 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, problems, err := Parse(filepath.Join(dir, "t.yaml"), []byte(tt.src), envOf(map[string]string{"TEAM": "ops"}))
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, joinProblems(problems))
			}
			if len(problems) != 0 {
				t.Errorf("problems:\n%s", joinProblems(problems))
			}
			if diff := cmp.Diff(c.PayloadLogging, tt.want, compareRegexps); diff != "" {
				t.Errorf("PayloadLogging (-got +want):\n%s", diff)
			}
			if got, want := c.PayloadLogging.Enabled(), len(tt.want.Teams) > 0; got != want {
				t.Errorf("Enabled() = %v, want %v", got, want)
			}
		})
	}
}

// TestPayloadLoggingProblems checks each problem's line, severity and text.
func TestPayloadLoggingProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		sev  Severity
		msg  string
	}{
		{"path required", base + "payload_logging:\n  teams: [search]\n", 6, Error, "payload_logging: path is required when teams is set"},
		{"empty path", base + "payload_logging:\n  teams: [a]\n  path: ''\n", 8, Error, "payload_logging.path: must not be empty"},
		{"path is the store", base + "store: {path: x.db}\npayload_logging:\n  teams: [a]\n  path: x.db\n", 9, Error, `is the store's own file`},
		{"path is the journal", base + "payload_logging:\n  teams: [a]\n  path: tollgate.db.journal\n", 8, Error, `is the store's own file`},
		{"bad regex", base + "payload_logging:\n  teams: [a]\n  path: p\n  redact:\n    - 'ok'\n    - '(ab'\n", 11, Error,
			"payload_logging.redact[1]: bad regular expression: error parsing regexp: missing closing ): `(ab`"},
		{"perl lookahead", base + "payload_logging:\n  redact: ['a(?=b)']\n", 7, Error, "invalid or unsupported Perl syntax"},
		{"empty match", base + "payload_logging:\n  redact: ['x*']\n", 7, Error, `payload_logging.redact[0]: "x*" matches the empty string`},
		{"zero max_bytes", base + "payload_logging:\n  max_bytes: 0\n", 7, Error, "payload_logging.max_bytes: must be positive, got 0"},
		{"negative max_file_bytes", base + "payload_logging:\n  max_file_bytes: -5\n", 7, Error, "payload_logging.max_file_bytes: want a size"},
		{"zero max_file_bytes", base + "payload_logging:\n  max_file_bytes: 0KiB\n", 7, Error, "payload_logging.max_file_bytes: must be positive"},
		{"bad size", base + "payload_logging:\n  max_bytes: lots\n", 7, Error, `payload_logging.max_bytes: want a size such as`},
		{"empty team", base + "payload_logging:\n  path: p\n  teams:\n    - a\n    - ''\n", 10, Error, "payload_logging.teams[1]: empty team name"},
		{"teams not a list", base + "payload_logging:\n  teams: {a: b}\n", 7, Error, "payload_logging.teams: want a list of strings, got a mapping"},
		{"boolean team", base + "payload_logging:\n  teams: [true]\n", 7, Error, "payload_logging.teams[0]: want a string, got a boolean"},
		{"unknown key", base + "payload_logging:\n  team: [a]\n", 7, Error, `payload_logging: unknown key "team"`},
		{"not a mapping", base + "payload_logging: on\n", 6, Error, "payload_logging: want a mapping, got a string"},
		{"repeated team", base + "payload_logging:\n  path: p\n  teams: [a, b, a]\n", 8, Warning, `payload_logging.teams: "a" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, problems, err := Parse("t.yaml", []byte(tt.src), noEnv)
			if !findProblem(problems, tt.line, tt.sev, tt.msg) {
				t.Errorf("Parse(%q) problems:\n%swant a %s on line %d containing %q", tt.src, joinProblems(problems), tt.sev, tt.line, tt.msg)
			}
			if (err != nil) != (tt.sev == Error) || (c == nil) != (tt.sev == Error) {
				t.Errorf("Parse(%q) = %v, %v; want an error exactly when the problem is an error", tt.src, c != nil, err)
			}
		})
	}
}

// TestPayloadLoggingRepeatedTeamKeptOnce checks that a repeated team is
// listed once in the compiled section.
func TestPayloadLoggingRepeatedTeamKeptOnce(t *testing.T) {
	c, _ := mustParse(t, base+"payload_logging:\n  path: p\n  teams: [a, b, a]\n", noEnv)
	if diff := cmp.Diff(c.PayloadLogging.Teams, []string{"a", "b"}); diff != "" {
		t.Errorf("Teams (-got +want):\n%s", diff)
	}
}
