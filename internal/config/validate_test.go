package config

import (
	"errors"
	"strings"
	"testing"
)

// TestParseProblems checks, for each kind of problem, the exact line it is
// reported on, its severity and its message; and that an Error makes Parse
// fail with a nil Config while a Warning does not.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		sev  Severity
		msg  string
	}{
		// Strict decoding and types.
		{"unknown top-level key", base + "sever:\n  listen: x\n", 6, Error, `top level: unknown key "sever"`},
		{"unknown nested key", base + "server:\n  listen: ':80'\n  max_body: 1\n", 8, Error, `server: unknown key "max_body"`},
		{"unknown model key", "providers: {p: {kind: mock}}\nmodels:\n  m:\n    provider: p\n    price: 0\n    contxt_window: 5\n" +
			"tiers: {budget: [m], standard: [m], premium: [m]}\n", 6, Error, `models.m: unknown key "contxt_window"`},
		{"duplicate key", base + "profiles:\n  dev: {}\n  dev: {}\n", 8, Error, `duplicate key "dev" (first at line 7)`},
		{"merge key", base + "profiles:\n  dev:\n    <<: {max_retries: 1}\n", 8, Error, "merge keys (<<) are not supported"},
		{"string where a number goes", base + "profiles:\n  dev:\n    max_retries: three\n", 8, Error, "profiles.dev.max_retries: want a number, got a string"},
		{"quoted number", base + "profiles:\n  dev:\n    max_retries: \"3\"\n", 8, Error, "want a number, got a string"},
		{"fraction where a whole number goes", base + "profiles:\n  dev:\n    max_retries: 1.5\n", 8, Error, "want a whole number, got 1.5"},
		{"mapping where a string goes", base + "default_profile: {a: b}\n", 6, Error, "default_profile: want a string, got a mapping"},
		{"list where a mapping goes", base + "server: [a]\n", 6, Error, "server: want a mapping, got a list"},
		{"boolean where a string goes", "providers:\n  p:\n    kind: openai\n    base_url: http://h\n    api_key: true\n" +
			"models: {m: {provider: p, price: 0}}\ntiers: {budget: [m], standard: [m], premium: [m]}\n", 5, Error, "api_key: want a string, got a boolean"},
		{"duration without unit", base + "profiles:\n  dev:\n    request_timeout: 30\n", 8, Error, "30 needs a unit, e.g. 30ms or 30s"},
		{"bad duration", base + "profiles:\n  dev:\n    request_timeout: soon\n", 8, Error, `want a duration such as "30s"`},
		{"zero timeout", base + "profiles:\n  dev:\n    request_timeout: 0s\n", 8, Error, "request_timeout: must be positive"},
		{"bad size", base + "server:\n  max_body_bytes: 10XB\n", 7, Error, `want a size such as 1048576, "512KiB" or "10MiB", got "10XB"`},
		{"zero size", base + "server:\n  max_body_bytes: 0\n", 7, Error, "max_body_bytes: must be positive"},
		{"bad listen", base + "server:\n  listen: localhost\n", 7, Error, "server.listen: want host:port"},

		// Env expansion.
		{"missing variable", base + "server:\n  listen: ${LISTEN}\n", 7, Error, "environment variable LISTEN is not set"},
		{"bad reference", base + "server:\n  listen: ${1X}\n", 7, Error, "bad variable reference ${1X}"},

		// Providers.
		{"unknown kind", "providers:\n  p:\n    kind: gemini\n", 3, Error, `providers.p.kind: unknown kind "gemini"`},
		{"kind required", "providers:\n  p:\n    base_url: http://h\n", 2, Error, "providers.p: kind is required"},
		{"relative base_url", "providers:\n  p:\n    kind: openai\n    base_url: api.openai.com/v1\n", 4, Error, "base_url: want an absolute http or https URL"},
		{"ftp base_url", "providers:\n  p:\n    kind: anthropic\n    base_url: ftp://h/v1\n", 4, Error, "want an absolute http or https URL"},
		{"base_url with credentials", "providers:\n  p:\n    kind: openai\n    base_url: https://u:pw@h/v1\n", 4, Error, "must not carry credentials"},
		{"openai without base_url", "providers:\n  p:\n    kind: openai\n    api_key: k\n", 2, Error, "base_url is required for kind openai"},
		{"no api key", "providers:\n  p:\n    kind: openai\n    base_url: http://localhost:11434/v1\n" +
			"models: {m: {provider: p, price: 0}}\ntiers: {budget: [m], standard: [m], premium: [m]}\n", 2, Warning, "no api_key"},
		{"api_key and api_keys", "providers:\n  p:\n    kind: anthropic\n    api_key: a\n    api_keys: [b]\n", 5, Error, "set api_key or api_keys, not both"},
		{"empty literal key", "providers:\n  p:\n    kind: anthropic\n    api_keys:\n      - a\n      - \"\"\n", 6, Error, "api_keys[1]: empty key"},
		{"reserved header", "providers:\n  p:\n    kind: mock\n    headers:\n      authorization: x\n", 5, Error, "Authorization may not be set here: set api_key instead"},
		{"base_url with query", "providers:\n  p:\n    kind: openai\n    base_url: https://h/v1?x=1\n", 4, Error, "must not have a query or fragment"},
		{"header set twice", "providers:\n  p:\n    kind: mock\n    headers:\n      X-A: x\n      x-a: y\n", 6, Error, "header X-A is set twice"},
		{"header value with newline", "providers:\n  p:\n    kind: mock\n    headers:\n      X-A: \"a\\nb\"\n", 5, Error, "must not contain line breaks"},
		{"bad header name", "providers:\n  p:\n    kind: mock\n    headers:\n      \"a b\": x\n", 5, Error, `"a b" is not a valid header name`},
		{"unknown catalog", "providers:\n  p:\n    kind: openai\n    base_url: https://h\n    catalog: deepsek\n", 5, Error, `"deepsek" is not a litellm_provider`},

		// Models.
		{"undefined provider", "providers: {p: {kind: mock}}\nmodels:\n  m:\n    provider: q\n    price: 0\n", 4, Error, `models.m.provider: provider "q" is not defined`},
		{"provider required", "providers: {p: {kind: mock}}\nmodels:\n  m:\n    price: 0\n", 3, Error, "models.m: provider is required"},
		{"model named auto", base + "  auto: {provider: p, price: 0}\n", 6, Error, `the name "auto" is reserved`},
		{"unknown type", "providers: {p: {kind: mock}}\nmodels:\n  m:\n    provider: p\n    type: image\n    price: 0\n", 5, Error, `models.m.type: unknown type "image"`},
		{"negative context window", "providers: {p: {kind: mock}}\nmodels:\n  m:\n    provider: p\n    context_window: -1\n    price: 0\n", 5, Error, "context_window: must be at least 0, got -1"},
		{"unpriced model", "providers: {p: {kind: mock}}\nmodels:\n  m:\n    provider: p\n" +
			"tiers: {budget: [m], standard: [m], premium: [m]}\n", 3, Error, "model m has no known price"},
		{"unpriced on a non-catalogue host", "providers:\n  ds: {kind: openai, base_url: https://api.deepseek.com, api_key: k}\nmodels:\n  deepseek-chat:\n    provider: ds\n",
			4, Error, `set the provider's catalog:`},
		{"nonzero scalar price", base + "  n:\n    provider: p\n    price: 1\n", 8, Error, "a number here can only be 0"},
		{"price without output", base + "  n:\n    provider: p\n    price:\n      input: 1\n", 8, Error, "models.n.price: output is required"},
		{"price too precise", base + "  n:\n    provider: p\n    price: {input: 0.0000001, output: 1}\n", 8, Error, "has more than 6 decimal places"},
		{"negative price", base + "  n:\n    provider: p\n    price: {input: -1, output: 1}\n", 8, Error, "must not be negative"},
		{"unknown price key", base + "  n:\n    provider: p\n    price: {input: 1, output: 1, reasoning: 2}\n", 8, Error, `unknown key "reasoning"`},

		// Chains.
		{"fallback undefined", base + "  n:\n    provider: p\n    price: 0\n    fallbacks: [x]\n", 9, Error, `models.n.fallbacks: model "x" is not defined`},
		{"fallback to itself", base + "  n:\n    provider: p\n    price: 0\n    fallbacks:\n      - n\n", 10, Error, "cannot fall back to itself"},
		{"fallback of another type", base + "  e: {provider: p, type: embedding, price: 0, fallbacks: [m]}\n", 6, Error, "m is a chat model but e is embedding"},
		{"long model chain", base + "  n: {provider: p, price: 0}\n  o: {provider: p, price: 0, fallbacks: [m, n]}\n", 7, Warning,
			"a chain of 3 models; the design note advises a primary plus at most one fallback"},
		{"tier names undefined model", "providers: {p: {kind: mock}}\nmodels: {m: {provider: p, price: 0}}\ntiers:\n  budget: [m]\n  standard: [m, x]\n  premium: [m]\n",
			5, Error, `tiers.standard: model "x" is not defined`},
		{"tier names an alias", "providers: {p: {kind: mock}}\nmodels: {m: {provider: p, price: 0}}\ntiers:\n  budget: [m]\n  standard: [chat]\n  premium: [m]\naliases: {chat: m}\n",
			5, Error, "tiers.standard: chat is an alias; chains name models, not aliases"},
		{"duplicate section", base + "tiers:\n", 6, Error, `duplicate key "tiers" (first at line 3)`},
		{"unknown tier name", "providers: {p: {kind: mock}}\nmodels: {m: {provider: p, price: 0}}\ntiers:\n  budget: [m]\n  standard: [m]\n  premium: [m]\n  gold: [m]\n",
			7, Error, `tiers: unknown tier "gold"`},
		{"empty tier", "providers: {p: {kind: mock}}\nmodels: {m: {provider: p, price: 0}}\ntiers:\n  budget: []\n  standard: [m]\n  premium: [m]\n",
			4, Error, "tiers.budget: empty chain"},
		{"embedding in a tier", "providers: {p: {kind: mock}}\nmodels:\n  m: {provider: p, price: 0}\n  e: {provider: p, type: embedding, price: 0}\n" +
			"tiers:\n  budget: [m]\n  standard:\n    - m\n    - e\n  premium: [m]\n", 9, Error, "tiers.standard: e is an embedding model"},
		{"long tier chain", "providers: {p: {kind: mock}}\nmodels:\n  a: {provider: p, price: 0}\n  b: {provider: p, price: 0}\n  c: {provider: p, price: 0}\n" +
			"tiers:\n  budget: [a, b, c]\n  standard: [a]\n  premium: [a]\n", 7, Warning, "tiers.budget: a chain of 3 models"},
		{"missing tier used by a default profile", "providers: {p: {kind: mock}}\nmodels: {m: {provider: p, price: 0}}\ntiers:\n  budget: [m]\n  standard: [m]\n",
			3, Error, "tier premium is not defined, but profile production uses it as default_tier (the default for production)"},
		{"missing tier used by an explicit default_tier", "providers: {p: {kind: mock}}\nmodels: {m: {provider: p, price: 0}}\ntiers: {budget: [m], standard: [m]}\n" +
			"profiles:\n  production: {default_tier: standard}\n  staging:\n    default_tier: premium\n",
			7, Error, "tier premium is not defined, but profile staging uses it as default_tier; define tiers.premium"},
		{"missing tier nobody uses", "providers: {p: {kind: mock}}\nmodels: {m: {provider: p, price: 0}}\ntiers:\n  budget: [m]\n  standard: [m]\n" +
			"profiles:\n  production: {default_tier: standard}\n", 3, Warning, "tier premium is not defined; it uses tier standard's chain"},
		{"no models", "providers: {p: {kind: mock}}\n", 1, Warning, "no models are defined"},

		// Aliases.
		{"alias undefined model", base + "aliases:\n  chat:\n    budget: [x]\n", 8, Error, `aliases.chat.budget: model "x" is not defined`},
		{"alias shadows model", base + "aliases:\n  m: {budget: m}\n", 7, Error, "alias m shadows the model of the same name (line 5)"},
		{"alias auto", base + "aliases:\n  auto: m\n", 7, Error, `the name "auto" is reserved`},
		{"alias unknown tier", base + "aliases:\n  chat:\n    gold: m\n", 8, Error, `aliases.chat: unknown tier "gold"`},
		{"alias with no tier", base + "aliases:\n  chat: {}\n", 7, Error, "aliases.chat: maps no tier"},
		{"alias mixes types", base + "  e: {provider: p, type: embedding, price: 0}\naliases:\n  x:\n    budget: m\n    premium: e\n", 10, Error,
			"aliases.x: mixes chat and embedding models"},
		{"partial embedding alias", base + "  e: {provider: p, type: embedding, price: 0}\naliases:\n  x:\n    budget: e\n", 8, Error,
			"an embedding alias must give a chain for every tier"},
		{"long alias chain", base + "  n: {provider: p, price: 0}\n  o: {provider: p, price: 0}\naliases:\n  chat:\n    premium: [m, n, o]\n", 10, Warning,
			"aliases.chat.premium: a chain of 3 models"},
		{"chain names an alias", base + "  n: {provider: p, price: 0, fallbacks: [chat]}\naliases: {chat: m}\n", 6, Error, "chat is an alias; chains name models"},

		// Profiles.
		{"unknown profile", base + "profiles:\n  prod: {}\n", 7, Error, `profiles: unknown profile "prod"`},
		{"default_tier not a tier", base + "profiles:\n  dev:\n    default_tier: gold\n", 8, Error, `profiles.dev.default_tier: "gold" is not a tier`},
		{"too many retries", base + "profiles:\n  production:\n    max_retries: 11\n", 8, Error, "max_retries: must be between 0 and 10, got 11"},
		{"fallback_rate above 1", base + "profiles:\n  dev:\n    alerts:\n      fallback_rate: 1.5\n", 9, Error, "fallback_rate: must be between 0 and 1"},
		{"negative budget", base + "profiles:\n  dev:\n    alerts: {monthly_budget_usd: -5}\n", 8, Error, "monthly_budget_usd: must not be negative"},
		{"unknown alert", base + "profiles:\n  dev:\n    alerts:\n      error_budget: 0.1\n", 9, Error, `profiles.dev.alerts: unknown key "error_budget"`},
		{"default_profile unknown", base + "default_profile: prod\n", 6, Error, `default_profile: unknown profile "prod"`},

		// The YAML itself.
		{"syntax error", base + "server:\n  listen: [\n", 7, Error, "YAML: did not find expected node content"},
		{"two documents", base + "---\nserver: {}\n", 6, Error, "a second YAML document"},
		{"unknown anchor", base + "server: *nothing\n", 6, Error, "YAML: unknown anchor 'nothing' referenced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblem(t, tt.src, tt.line, tt.sev, tt.msg) })
	}
}

// checkProblem parses src and checks that it reports a problem of severity
// sev on line whose message contains msg; that an Error makes Parse fail
// with a nil Config; and that every problem names the file.
func checkProblem(t *testing.T, src string, line int, sev Severity, msg string) {
	t.Helper()
	c, problems, err := Parse("t.yaml", []byte(src), noEnv)
	if !findProblem(problems, line, sev, msg) {
		t.Errorf("Parse(%q): no %v on line %d containing %q; got:\n%s", src, sev, line, msg, joinProblems(problems))
	}
	if sev == Error {
		var inv *InvalidError
		if !errors.As(err, &inv) || c != nil {
			t.Errorf("Parse(%q) = %v, %v; want nil Config and an *InvalidError", src, c, err)
		}
	}
	for _, p := range problems {
		if p.File != "t.yaml" {
			t.Errorf("problem %v has File %q, want t.yaml", p, p.File)
		}
	}
}

// TestWarningsOnly checks that warnings alone leave the file loadable.
func TestWarningsOnly(t *testing.T) {
	src := "providers:\n  local: {kind: openai, base_url: http://localhost:8000/v1}\n" +
		"models:\n  a: {provider: local, price: 0}\n  b: {provider: local, price: 0}\n  c: {provider: local, price: 0}\n" +
		"tiers:\n  budget: [a, b, c]\n  standard: [a]\n  premium: [a]\n"
	c, problems := mustParse(t, src, noEnv)
	if got := len(problems); got != 2 {
		t.Errorf("Parse: %d problems, want 2 (no key, long chain):\n%s", got, joinProblems(problems))
	}
	if Errors(problems) != 0 {
		t.Errorf("Errors(problems) = %d, want 0", Errors(problems))
	}
	if got, _ := c.Chain(AutoAlias, TierBudget); len(got) != 3 {
		t.Errorf("Chain(auto, budget) = %v, want three models", got)
	}
}

// TestMissingTierInherits checks that an unreferenced missing tier takes the
// nearest defined tier's chain, cheaper first.
func TestMissingTierInherits(t *testing.T) {
	src := "providers: {p: {kind: mock}}\nmodels:\n  a: {provider: p, price: 0}\n  b: {provider: p, price: 0}\n" +
		"tiers: {budget: [a], premium: [b]}\nprofiles:\n  staging: {default_tier: budget}\n"
	c, _ := mustParse(t, src, noEnv)
	if got, _ := c.Chain(AutoAlias, TierStandard); strings.Join(got, ",") != "a" {
		t.Errorf("Chain(auto, standard) = %v, want [a] (from budget, the cheaper neighbour)", got)
	}
}

// TestNoCascade checks that one mistake yields one error: a provider with a
// bad kind must not also make its models "undefined" or "unpriced".
func TestNoCascade(t *testing.T) {
	src := "providers:\n  p: {kind: gemini}\nmodels:\n  m: {provider: p}\ntiers: {budget: [m], standard: [m], premium: [m]}\n"
	_, problems, err := Parse("t.yaml", []byte(src), noEnv)
	if err == nil || len(problems) != 1 {
		t.Errorf("Parse(%q): want exactly one problem, got:\n%s", src, joinProblems(problems))
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "a.yaml", Line: 3, Severity: Error, Message: "bad"}, "a.yaml:3: bad"},
		{Problem{File: "a.yaml", Line: 4, Severity: Warning, Message: "meh"}, "a.yaml:4: warning: meh"},
		{Problem{File: "a.yaml", Severity: Error, Message: "unreadable"}, "a.yaml: unreadable"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	_, _, err := Parse("t.yaml", []byte("sever: 1\nprofles: 2\n"), noEnv)
	want := `t.yaml: 2 errors; first: t.yaml:1: top level: unknown key "sever"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Parse error = %v, want prefix %q", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	c, problems, err := Load(t.TempDir()+"/nope.yaml", noEnv)
	if err == nil || c != nil || problems != nil {
		t.Errorf("Load(missing) = %v, %v, %v; want nil, nil, error", c, problems, err)
	}
}
