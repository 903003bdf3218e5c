package config

import "testing"

// TestPolicyProblems is TestParseProblems for deployments, balancing,
// timeouts, context policies, hold-back, criticality, retry budgets,
// breakers and key cooldowns.
func TestPolicyProblems(t *testing.T) {
	// model appends a model n (line 6) on provider p to base.
	const model = base + "  n:\n    provider: p\n    price: 0\n" // n's keys go from line 9
	// deployed appends a model n priced 0 whose deployments list opens on line 8.
	const deployed = base + "  n:\n    price: 0\n    deployments:\n"
	// profile opens profiles.dev on line 7; its keys go from line 8.
	const profile = base + "profiles:\n  dev:\n"
	tests := []struct {
		name string
		src  string
		line int
		sev  Severity
		msg  string
	}{
		// Providers.
		{"zero key_cooldown", "providers:\n  p:\n    kind: mock\n    key_cooldown: 0s\n", 4, Error, "providers.p.key_cooldown: must be positive, got 0s"},
		{"key_cooldown without unit", "providers:\n  p:\n    kind: mock\n    key_cooldown: 30\n", 4, Error, "providers.p.key_cooldown: 30 needs a unit"},
		{"unknown protocol", "providers:\n  p:\n    kind: mock\n    protocol: http3\n", 4, Error, `providers.p.protocol: unknown protocol "http3" (want http1 or http2)`},

		// Deployments.
		{"provider and deployments", base + "  n:\n    provider: p\n    price: 0\n    deployments:\n      - provider: p\n", 9, Error,
			"models.n: set provider/upstream or deployments, not both"},
		{"upstream and deployments", base + "  n:\n    upstream: x\n    price: 0\n    deployments: [{provider: p}]\n", 9, Error,
			"models.n: set provider/upstream or deployments, not both"},
		{"no provider and no deployments", base + "  n:\n    price: 0\n", 6, Error, "models.n: provider is required"},
		{"empty deployments", base + "  n:\n    price: 0\n    deployments: []\n", 8, Error, "models.n.deployments: empty list"},
		{"null deployments", base + "  n:\n    price: 0\n    deployments:\n", 8, Error, "models.n.deployments: empty list"},
		{"deployments not a list", base + "  n:\n    price: 0\n    deployments: {provider: p}\n", 8, Error, "models.n.deployments: want a list, got a mapping"},
		{"deployment not a mapping", deployed + "      - p\n", 9, Error, "models.n.deployments[0]: want a mapping, got a string"},
		{"deployment without provider", deployed + "      - provider: p\n      - upstream: x\n", 10, Error, "models.n.deployments[1]: provider is required"},
		{"deployment provider undefined", deployed + "      - provider: p\n      - provider: q\n", 10, Error,
			`models.n.deployments[1].provider: provider "q" is not defined`},
		{"deployment empty upstream", deployed + "      - provider: p\n        upstream: \"\"\n", 10, Error, "models.n.deployments[0].upstream: must not be empty"},
		{"unknown deployment key", deployed + "      - provider: p\n        region: eu\n", 10, Error, `models.n.deployments[0]: unknown key "region"`},
		{"zero weight", deployed + "      - provider: p\n        weight: 0\n", 10, Error, "models.n.deployments[0].weight: must be between 1 and 1000, got 0"},
		{"weight too large", deployed + "      - {provider: p, weight: 1001}\n", 9, Error, "weight: must be between 1 and 1000, got 1001"},
		{"fractional weight", deployed + "      - {provider: p, weight: 1.5}\n", 9, Error, "weight: want a whole number, got 1.5"},
		{"empty id", deployed + "      - provider: p\n        id: \"\"\n", 10, Error, "models.n.deployments[0].id: must not be empty"},
		{"duplicate id", deployed + "      - {id: x, provider: p}\n  o:\n    price: 0\n    deployments:\n      - provider: p\n        id: x\n", 14, Error,
			`models.o.deployments[0].id: deployment id "x" is already used at line 9; ids are unique across the file`},
		{"id takes a model's default id", deployed + "      - id: m\n        provider: p\n", 9, Error,
			`models.n.deployments[0].id: deployment id "m" is already used at line 5`},
		{"default id already taken", deployed + "      - {id: o, provider: p}\n  o: {provider: p, price: 0}\n", 10, Error,
			`models.o: its default deployment id "o" is already used at line 9; give it an id`},
		{"default numbered id already taken", deployed + "      - {id: o#2, provider: p}\n  o:\n    price: 0\n    deployments:\n      - provider: p\n      - provider: p\n        upstream: x\n",
			14, Error, `models.o.deployments[1]: its default deployment id "o#2" is already used at line 9`},
		{"anthropic deployment of an embedding model", "providers:\n  p: {kind: mock}\n  a: {kind: anthropic, api_key: k}\nmodels:\n  e:\n" +
			"    type: embedding\n    price: 0\n    deployments:\n      - provider: p\n      - provider: a\n", 10, Error,
			"models.e.deployments[1].provider: a is an anthropic provider, and Anthropic has no embeddings API (e is an embedding model)"},
		{"anthropic embedding model", "providers:\n  a: {kind: anthropic, api_key: k}\nmodels:\n  e:\n    provider: a\n    type: embedding\n    price: 0\n", 5, Error,
			"models.e.provider: a is an anthropic provider, and Anthropic has no embeddings API"},
		{"repeated deployment", deployed + "      - provider: p\n      - provider: p\n        weight: 2\n", 10, Warning,
			"models.n.deployments[1]: same provider and upstream as models.n.deployments[0]"},

		// Model policies.
		{"unknown balancing", model + "    balancing: random\n", 9, Error, `models.n.balancing: unknown strategy "random" (want weighted or latency)`},
		{"unknown model context_policy", model + "    context_policy: truncate\n", 9, Error,
			`models.n.context_policy: unknown policy "truncate" (want reject, trim or fallback)`},
		{"zero model timeout", model + "    timeouts:\n      idle: 0s\n", 10, Error, "models.n.timeouts.idle: must be positive, got 0s"},
		{"unknown timeout", model + "    timeouts: {read: 5s}\n", 9, Error, `models.n.timeouts: unknown key "read" (known keys: connect, first_byte, idle, total)`},
		{"empty hold_back", model + "    hold_back: {}\n", 9, Error, "models.n.hold_back: give duration, tokens or both (or write off to hold nothing back)"},
		{"null hold_back", model + "    hold_back:\n", 9, Error, "models.n.hold_back: give duration, tokens or both"},
		{"hold_back true", model + "    hold_back: true\n", 9, Error, "models.n.hold_back: want {duration: …, tokens: …} or off, got a boolean"},
		{"hold_back on", model + "    hold_back: on\n", 9, Error, "models.n.hold_back: want {duration: …, tokens: …} or off, got a string"},
		{"hold_back list", model + "    hold_back: [1]\n", 9, Error, "models.n.hold_back: want a mapping, got a list"},
		{"zero hold_back tokens", model + "    hold_back:\n      tokens: 0\n", 10, Error, "models.n.hold_back.tokens: must be at least 1, got 0"},
		{"zero hold_back duration", model + "    hold_back: {duration: 0ms, tokens: 3}\n", 9, Error, "models.n.hold_back.duration: must be positive"},
		{"first_byte over the model's total", model + "    timeouts:\n      first_byte: 90s\n      total: 60s\n", 10, Warning,
			"models.n.timeouts.first_byte: 1m30s exceeds the model's total (1m0s), so it can never fire"},
		{"idle over request_timeout", model + "    timeouts:\n      idle: 3m\n", 10, Warning,
			"models.n.timeouts.idle: 3m0s exceeds the request_timeout of profile dev (2m0s), staging (2m0s), production (2m0s)"},
		{"first_byte over one profile's request_timeout", model + "    timeouts: {first_byte: 90s}\nprofiles:\n  staging: {request_timeout: 60s}\n", 9, Warning,
			"models.n.timeouts.first_byte: 1m30s exceeds the request_timeout of profile staging (1m0s), which bounds the whole request, so there it never fires"},
		{"total over request_timeout", model + "    timeouts:\n      first_byte: 150s\n      total: 3m\n", 11, Warning,
			"models.n.timeouts.total: 3m0s exceeds the request_timeout of profile dev (2m0s), staging (2m0s), production (2m0s)"},

		// Profile policies.
		{"profile total", profile + "    timeouts:\n      connect: 2s\n      total: 60s\n", 10, Error,
			"profiles.dev.timeouts: total cannot be set on a profile: a profile's total is its request_timeout; set profiles.dev.request_timeout instead"},
		{"profile first_byte over request_timeout", profile + "    request_timeout: 30s\n    timeouts: {first_byte: 45s}\n", 9, Warning,
			"profiles.dev.timeouts.first_byte: 45s exceeds the profile's request_timeout (30s), so it can never fire"},
		{"unknown criticality", profile + "    criticality:\n      urgent: premium\n", 9, Error,
			`profiles.dev.criticality: unknown key "urgent" (known keys: critical, standard, background)`},
		{"criticality not a tier", profile + "    criticality: {critical: gold}\n", 8, Error,
			`profiles.dev.criticality.critical: "gold" is not a tier (want budget, standard or premium)`},
		{"unknown profile context_policy", profile + "    context_policy: drop\n", 8, Error, `profiles.dev.context_policy: unknown policy "drop"`},
		{"profile hold_back tokens", profile + "    hold_back: {tokens: -1}\n", 8, Error, "profiles.dev.hold_back.tokens: must be at least 1, got -1"},
		{"retry_budget above 1", profile + "    retry_budget: 1.5\n", 8, Error, "profiles.dev.retry_budget: must be between 0 and 1 (a share of attempts), got 1.5"},
		{"negative retry_budget", profile + "    retry_budget: -0.1\n", 8, Error, "retry_budget: must be between 0 and 1"},
		{"zero breaker failures", profile + "    breaker:\n      failures: 0\n", 9, Error, "profiles.dev.breaker.failures: must be at least 1, got 0"},
		{"zero breaker error_rate", profile + "    breaker: {error_rate: 0}\n", 8, Error,
			"profiles.dev.breaker.error_rate: must be above 0 and at most 1 (a share of requests), got 0"},
		{"breaker error_rate above 1", profile + "    breaker: {error_rate: 1.2}\n", 8, Error, "breaker.error_rate: must be above 0 and at most 1"},
		{"zero breaker min_requests", profile + "    breaker: {min_requests: 0}\n", 8, Error, "profiles.dev.breaker.min_requests: must be at least 1, got 0"},
		{"zero breaker window", profile + "    breaker:\n      window: 0s\n", 9, Error, "profiles.dev.breaker.window: must be positive"},
		{"bad breaker cooldown", profile + "    breaker:\n      cooldown: soon\n", 9, Error, `profiles.dev.breaker.cooldown: want a duration such as "30s"`},
		{"unknown breaker key", profile + "    breaker:\n      half_open: 1\n", 9, Error, `profiles.dev.breaker: unknown key "half_open"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblem(t, tt.src, tt.line, tt.sev, tt.msg) })
	}
}
